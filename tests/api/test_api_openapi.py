"""The OpenAPI document of fedisora's own endpoints: valid, complete, and honoured by a live
instance under schemathesis' property-based requests (no 500s, responses as declared). And
Mastodon's description of its client API, over every operation fedisora serves: no 500s."""

from __future__ import annotations

import io
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from apihelpers import login
from factories import local_account
from instance import Instance, finished_render, running_instance
from PIL import Image
from starlette.routing import Match, Route

from fedisora.api.openapi import OPENAPI_PATH
from fedisora.models import NotificationType

FEDISORA_PATHS = ("/api/fedisora/", "/api/v1/media", "/api/v2/media")


async def test_document_is_valid_openapi_and_served(client: httpx.AsyncClient, db: str) -> None:
    from openapi_spec_validator import validate

    r = await client.get(OPENAPI_PATH)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.headers["access-control-allow-origin"] == "*"
    doc = r.json()
    validate(doc)  # raises on any violation of the OpenAPI 3.1 schema
    assert doc["openapi"] == "3.1.0"
    assert doc["servers"] == [{"url": "https://fedisora.test"}]
    types = doc["components"]["schemas"]["FedisoraNotificationType"]["enum"]
    assert types == [t.value for t in NotificationType if t.value.startswith("fedisora.")]
    assert {"fedisora.likeness_use", "fedisora.render_finished"} <= set(types)
    upload = doc["paths"]["/api/v2/media"]["post"]
    assert "AI-only rule" in upload["description"]
    assert set(upload["responses"]) >= {"200", "401", "403", "413", "422"}


async def test_every_fedisora_route_is_documented(client: httpx.AsyncClient, db: str) -> None:
    doc = (await client.get(OPENAPI_PATH)).json()
    app: Any = client.app  # type: ignore[attr-defined]
    served: set[tuple[str, str]] = set()
    for route in app.routes:
        if not isinstance(route, Route) or route.path.endswith("/"):
            continue
        if not route.path.startswith(FEDISORA_PATHS):
            continue
        for method in route.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                served.add((route.path, method.lower()))
    documented = {
        (path, method)
        for path, item in doc["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert served == documented
    for path, method in documented:
        operation = doc["paths"][path][method]
        assert any(code.startswith("2") for code in operation["responses"]), (path, method)
        if path != OPENAPI_PATH:
            assert operation["security"] and "401" in operation["responses"], (path, method)


async def test_errors_have_the_declared_shape(client: httpx.AsyncClient, db: str) -> None:
    alice = await login(client, await local_account("alice"), scope="read write")
    r = await client.get("/api/fedisora/v1/renders/12345", headers=alice.headers)
    assert r.status_code == 404 and r.json() == {"error": "Record not found"}
    r = await client.post(
        "/api/fedisora/v1/renders",
        content=b"{not json",
        headers={**alice.headers, "content-type": "application/json"},
    )
    assert r.status_code == 400 and "JSON" in r.json()["error"]


# --------------------------------------------------------------------------- schemathesis

MAX_EXAMPLES = 25


@dataclass
class Live:
    instance: Instance
    token: str
    media_id: str
    render_id: str
    likeness_token: str = ""
    """A second user's, for the likeness operations: the API's rate limit is per token."""


CONTENT_DEPENDENT = {
    "uploadMediaV1",
    "uploadMediaV2",
    "createRender",
    # Whether a file is a video is in its bytes (an empty or random "binary" is not one).
    "lookUpProvenance",
    # A likeness is registered from real images and a one-time challenge; requests, grants
    # and policies need a likeness (and an owner who allows them) to exist.
    "registerLikeness",
    "updateLikenessPolicy",
    "requestLikeness",
    # For You's cursor is signed for one account: any other string is refused (400), as it
    # must be; tests/api/test_api_for_you.py covers real cursors.
    "forYouTimeline",
    "createLikenessGrant",
    "approveLikenessRequest",  # an expiry in the past is refused
    # An opt-out's terms must be distinct names long enough to match on, and its contact an
    # address that works (an e-mail address or an http(s) URL).
    "requestOptOut",
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A running instance, an access token (read write) of a user signed up through the API,
    an image that user uploaded and a render they queued."""
    with running_instance(
        tmp_path_factory.mktemp("openapi"),
        FEDISORA_RENDER_CLIPS_PER_DAY="3",
        FEDISORA_RENDER_STEPS="1",
    ) as inst:
        with httpx.Client(base_url=inst.url, timeout=30) as http:
            app = http.post(
                "/api/v1/apps",
                data={"client_name": "schemathesis", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
                      "scopes": "read write"},
            ).json()  # fmt: skip
            app_token = http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials", "client_id": app["client_id"],
                      "client_secret": app["client_secret"], "scope": "read write"},
            ).json()["access_token"]  # fmt: skip
            signup = http.post(
                "/api/v1/accounts",
                data={"username": "fuzz", "email": "fuzz@example.com",
                      "password": "a long password 1", "agreement": "true", "locale": "en"},
                headers={"Authorization": f"Bearer {app_token}"},
            )  # fmt: skip
            assert signup.status_code == 200, signup.text
            token = signup.json()["access_token"]
            second = http.post(
                "/api/v1/accounts",
                data={"username": "fuzzface", "email": "fuzzface@example.com",
                      "password": "a long password 2", "agreement": "true", "locale": "en"},
                headers={"Authorization": f"Bearer {app_token}"},
            )  # fmt: skip
            assert second.status_code == 200, second.text
            auth = {"Authorization": f"Bearer {token}"}
            still = io.BytesIO()
            Image.linear_gradient("L").convert("RGB").save(still, format="PNG")
            media = http.post(
                "/api/v2/media", files={"file": ("s.png", still.getvalue())}, headers=auth
            )
            assert media.status_code == 200, media.text
            render = http.post("/api/fedisora/v1/renders", json={"prompt": "kite"}, headers=auth)
            assert render.status_code == 202, render.text
            yield Live(
                inst,
                token,
                media.json()["id"],
                render.json()["id"],
                second.json()["access_token"],
            )


def test_schemathesis_finds_no_server_errors(live: Live) -> None:
    import schemathesis
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    schema = schemathesis.openapi.from_url(f"{live.instance.url}{OPENAPI_PATH}", timeout=30)
    headers = {"Authorization": f"Bearer {live.token}"}
    started = time.monotonic()
    seen: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        # The event stream of a live render stays open until the render ends: its 404, 401
        # and finished-render answers are covered in test_api_renders.py.
        if operation.path.endswith("/events"):
            continue

        # Whether an upload is acceptable depends on the file's bytes (a decodable still, a
        # signed clip) and whether a render is, on quotas and on other rows (your media, a
        # visible clip, existing accounts): no schema can say so, so for these two "schema-valid
        # but refused" is expected; every other check still applies to them.
        excluded = (
            [positive_data_acceptance]
            if operation.definition.raw.get("operationId") in CONTENT_DEPENDENT
            else []
        )

        # The documented examples first: each must be accepted as it stands (all checks).
        content = (operation.definition.raw.get("requestBody") or {}).get("content", {})
        for media_type, item in content.items():
            for example in (item.get("examples") or {}).values():
                case = operation.Case(body=example["value"], media_type=media_type)
                response = case.call_and_validate(headers=headers, timeout=30)
                seen.setdefault(f"{case.method} {operation.path} (example)", set()).add(
                    response.status_code
                )
        if "/likeness" in operation.path:  # another user's token: another rate limit
            likeness_headers = {"Authorization": f"Bearer {live.likeness_token}"}
            _fuzz(operation.as_strategy(), operation.path, likeness_headers, excluded, seen)
            if "{id}" in operation.path:
                strategy = operation.as_strategy(path_parameters={"id": live.render_id})
                _fuzz(strategy, operation.path + " (own)", likeness_headers, excluded, seen)
            continue
        _fuzz(operation.as_strategy(), operation.path, headers, excluded, seen)
        if "{id}" in operation.path:  # again on a row that exists: the caller's own
            real = live.media_id if "/media/" in operation.path else live.render_id
            strategy = operation.as_strategy(path_parameters={"id": real})
            _fuzz(strategy, operation.path + " (own)", headers, excluded, seen)
    assert time.monotonic() - started < 60
    # 9 operations, 5 of them again with an existing id, and the documented render example;
    # 16 likeness operations, 4 of them with an id (the render's: someone else's row); the
    # opt-out request and the published list; For You's feedback, interests (read, reset),
    # controls (read, change) and page; the provenance lookup.
    assert len(seen) == 9 + 5 + 1 + 16 + 4 + 2 + 6 + 1, seen
    assert all(code < 500 for codes in seen.values() for code in codes), seen
    # The token works and the happy paths ran: renders queued from the documented examples,
    # the caller's own media and render read, updated and cancelled.
    assert seen["POST /api/fedisora/v1/renders (example)"] == {202}, seen
    assert 200 in seen["GET /api/fedisora/v1/renders"], seen
    for own in ("GET /api/v1/media/{id}", "PUT /api/v1/media/{id}"):
        assert 200 in seen[f"{own} (own)"], seen
    assert 200 in seen["GET /api/fedisora/v1/renders/{id} (own)"], seen
    # Deleting a render cancels it, and the schema lists DELETE before cancel: the caller's
    # render was deleted (200), then its cancel answered 200 if a worker was still stopping
    # it, or 409 if it was already cancelled (it was still queued). The render ends cancelled.
    assert 200 in seen["DELETE /api/fedisora/v1/renders/{id} (own)"], seen
    assert seen["POST /api/fedisora/v1/renders/{id}/cancel (own)"] <= {200, 409}, seen
    job = httpx.get(
        f"{live.instance.url}/api/fedisora/v1/renders/{live.render_id}", headers=headers
    ).json()
    assert job.get("state") == "cancelled" or job.get("cancel_requested") is True, job
    assert 401 not in set().union(*seen.values()), seen


def _fuzz(
    strategy: Any, path: str, headers: dict[str, str], excluded: list[Any], seen: Any
) -> None:
    """Run schemathesis' generated cases of one operation, recording the status codes."""
    from hypothesis import HealthCheck, Phase, given, settings

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call_and_validate(headers=headers, timeout=30, excluded_checks=excluded)
        seen.setdefault(f"{case.method} {path}", set()).add(response.status_code)

    run()


# ------------------------------------------------- schemathesis over the Mastodon description

MASTODON_SPEC = Path(__file__).parent / "fixtures" / "mastodon-openapi-4.7.0.json"
#: Cases per operation, each valid and invalid under the description (and again on rows that
#: exist): a seeded, bounded run that fits the suite's time. Raise it locally to dig deeper
#: (``MASTODON_FUZZ_EXAMPLES=60``; with derandomize off in ``_fuzz_mastodon``, new seeds).
MASTODON_EXAMPLES = int(os.environ.get("MASTODON_FUZZ_EXAMPLES", "4"))
#: Requests per token stay under the API's limit (300 in 5 minutes): the run rotates tokens.
REQUESTS_PER_TOKEN = 250


@dataclass
class MastodonLive:
    instance: Instance
    tokens: list[str]
    own: dict[str, str]  # path parameter -> an id that exists (the fuzzing user's own rows)
    used: list[int]  # requests made so far
    errors: list[str]  # each server error, with the request that caused it


def _served(paths: dict[str, Any]) -> set[tuple[str, str]]:
    """The (method, path) pairs of the description that fedisora serves; streaming excluded
    (its endpoints stay open: tests/api/test_api_streaming*.py cover them)."""
    from fedisora.app import create_app
    from fedisora.config import load_settings

    app = create_app(load_settings({"FEDISORA_DATA_DIR": "/nonexistent"}), run_work=False)
    served: set[tuple[str, str]] = set()
    for path, item in paths.items():
        if path.startswith("/api/v1/streaming"):
            continue
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        for method in item:
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            scope = {"type": "http", "path": concrete, "method": method.upper()}
            if any(isinstance(r, Route) and r.matches(scope)[0] == Match.FULL for r in app.routes):
                served.add((method.upper(), path))
    return served


@pytest.fixture(scope="module")
def mastodon_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MastodonLive]:
    """A running instance; a user (signed up through the API) with a few tokens, a clip, a
    notification and an uploaded image; another account that follows them."""
    with running_instance(tmp_path_factory.mktemp("mastodon"), "--no-render-worker") as inst:
        with httpx.Client(base_url=inst.url, timeout=30) as http:
            app = http.post(
                "/api/v1/apps",
                data={"client_name": "fuzz", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
                      "scopes": "read write follow push"},
            ).json()  # fmt: skip
            client = {"client_id": app["client_id"], "client_secret": app["client_secret"]}
            app_token = http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials", "scope": "read write", **client},
            ).json()["access_token"]
            accounts = {}
            for name in ("fuzz", "friend"):
                signup = http.post(
                    "/api/v1/accounts",
                    data={"username": name, "email": f"{name}@example.com",
                          "password": "a long password 1", "agreement": "true"},
                    headers={"Authorization": f"Bearer {app_token}"},
                )  # fmt: skip
                assert signup.status_code == 200, signup.text
                accounts[name] = {"Authorization": f"Bearer {signup.json()['access_token']}"}
            tokens = [accounts["fuzz"]["Authorization"].removeprefix("Bearer ")]
            for _ in range(4):
                grant = http.post(
                    "/oauth/token",
                    data={"grant_type": "password", "username": "fuzz",
                          "password": "a long password 1", "scope": "read write follow push",
                          **client},
                )  # fmt: skip
                assert grant.status_code == 200, grant.text
                tokens.append(grant.json()["access_token"])
            me = http.get("/api/v1/accounts/verify_credentials", headers=accounts["fuzz"]).json()
            friend = http.get(
                "/api/v1/accounts/verify_credentials", headers=accounts["friend"]
            ).json()
            video = finished_render(inst, "fuzz")
            clip = http.post(
                "/api/v1/statuses",
                data={"status": "a kite #fuzz", "media_ids[]": str(video)},
                headers=accounts["fuzz"],
            )
            assert clip.status_code == 200, clip.text
            still = io.BytesIO()
            Image.linear_gradient("L").convert("RGB").save(still, format="PNG")
            media = http.post(
                "/api/v2/media", files={"file": ("s.png", still.getvalue())},
                headers=accounts["fuzz"],
            )  # fmt: skip
            assert media.status_code == 200, media.text
            # Locked: the friend's follow waits for the fuzzing user to authorize it.
            locked = http.patch(
                "/api/v1/accounts/update_credentials",
                data={"locked": "true"},
                headers=accounts["fuzz"],
            )
            assert locked.status_code == 200, locked.text
            http.post(f"/api/v1/accounts/{me['id']}/follow", headers=accounts["friend"])
            http.post(f"/api/v1/statuses/{clip.json()['id']}/favourite", headers=accounts["friend"])
            notes = http.get("/api/v1/notifications", headers=accounts["fuzz"]).json()
            assert notes, "the friend's follow and favourite notify"
            own = {
                "id": clip.json()["id"],
                "account_id": friend["id"],
                "group_key": notes[0]["group_key"],  # a group (a follow, a favourite)
                "notification": notes[0]["id"],
                "name": "fuzz",
                "hashtag": "fuzz",
                "media": media.json()["id"],
            }
            yield MastodonLive(inst, tokens, own, [0], [])


def _order(operation: Any) -> int:
    """The friend's pending follow is answered first; what removes the user's rows (their
    clip, notifications, the follow when they block the friend) runs last."""
    path = operation.path
    if path.startswith("/api/v1/follow_requests/"):
        return 0
    if operation.method.upper() == "DELETE" or path.endswith(("/dismiss", "/clear", "/block")):
        return 2
    return 1


def _own_id(live: MastodonLive, path: str) -> dict[str, str]:
    """Path parameters naming rows that exist, for *path*."""
    out: dict[str, str] = {}
    for name in re.findall(r"\{([^}]+)\}", path):
        if name == "id" and path.startswith("/api/v1/media"):
            out[name] = live.own["media"]
        elif name == "id" and path.startswith("/api/v1/accounts/"):
            out[name] = live.own["account_id"]
        elif name == "id" and path.startswith("/api/v1/notifications/"):
            out[name] = live.own["notification"]
        elif name in live.own:
            out[name] = live.own[name]
    return out


def test_schemathesis_over_the_mastodon_description_finds_no_server_errors(
    mastodon_live: MastodonLive,
) -> None:
    """Mastodon's own description of its client API (4.7, tests/api/fixtures), every
    operation fedisora serves: generated requests, seeded and bounded, authorised as a user
    with rows of their own. Only server errors (and crashes: a dropped connection, a hang)
    fail it; what fedisora refuses or does differently is covered by the tests of each area
    (and the entities by test_api_conformance.py)."""
    import schemathesis
    from schemathesis import GenerationMode

    spec = json.loads(MASTODON_SPEC.read_text(encoding="utf-8"))
    served = _served(spec["paths"])
    assert len(served) > 60, len(served)  # the description's paths and ours still meet
    schema = schemathesis.openapi.from_dict(spec)
    schema.config.base_url = mastodon_live.instance.url
    started = time.monotonic()
    seen: dict[str, set[int]] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=_order)
    for operation in operations:
        if (operation.method.upper(), operation.path) not in served:
            continue
        own = _own_id(mastodon_live, operation.path)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            label = f"{operation.path} ({mode.value})"
            _fuzz_mastodon(operation.as_strategy(mode), label, mastodon_live, seen)
            if own:
                strategy = operation.as_strategy(mode, path_parameters=own)
                _fuzz_mastodon(strategy, label + " (own)", mastodon_live, seen)
    hostile = _hostile_pass(spec, served, mastodon_live)
    elapsed = time.monotonic() - started
    assert not mastodon_live.errors, "\n".join(mastodon_live.errors)
    assert hostile == len(served) * len(HOSTILE), hostile
    assert len({op.partition(" (")[0] for op in seen}) == len(served), seen
    # The user's token worked (not every answer is a refusal), and rows of theirs were found.
    assert any(200 in codes for codes in seen.values()), seen
    for own in (
        "GET /api/v1/statuses/{id}",
        "GET /api/v1/statuses/{id}/context",
        "POST /api/v1/statuses/{id}/favourite",
        "GET /api/v1/accounts/{id}",
        "GET /api/v1/media/{id}",
        "GET /api/v2/notifications/{group_key}",
        "POST /api/v1/follow_requests/{account_id}/authorize",
    ):
        assert 200 in seen[f"{own} (positive) (own)"], (own, seen)
    print(f"{sum(mastodon_live.used)} requests over {len(seen)} operations in {elapsed:.0f} s")


#: What the security review sent (issue 13, finding 9), put in every parameter the description
#: names, of every operation: (label, the value of each string, whether sent as JSON).
HOSTILE: list[tuple[str, Any, bool]] = [
    ("a lone surrogate", "x\ud800", True),
    ("a NUL", "a\x00b", False),
    ("a control character", "a\x1bb", False),
    ("an unparsable URI", "https://[::1/", False),
    ("JSON nested 600 deep", json.loads("[" * 600 + "]" * 600), True),
]


def _fields(spec: dict[str, Any], item: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The query parameter names and body property names of an operation."""

    def resolve(node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            target: Any = spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    query = [
        p["name"].removesuffix("[]")
        for p in (resolve(p) for p in item.get("parameters", []))
        if p.get("in") == "query"
    ]
    body: list[str] = []
    for content in (resolve(item.get("requestBody")) or {}).get("content", {}).values():
        body += list(resolve(content.get("schema", {})).get("properties", {}))
    return query, list(dict.fromkeys(body))


def _hostile_pass(spec: dict[str, Any], served: set[tuple[str, str]], live: MastodonLive) -> int:
    """Each :data:`HOSTILE` value in every query parameter and body field of every operation
    (on the user's own rows where the path names one): never a server error. Returns how many
    requests were made."""
    made = 0
    with httpx.Client(base_url=live.instance.url, timeout=30) as http:
        for method, path in sorted(served):
            query_names, body_names = _fields(spec, spec["paths"][path][method.lower()])
            own = _own_id(live, path)
            url = re.sub(r"\{([^}]+)\}", lambda m, own=own: own.get(m.group(1), "1"), path)
            for label, value, as_json in HOSTILE:
                token = live.tokens[live.used[0] // REQUESTS_PER_TOKEN % len(live.tokens)]
                live.used[0] += 1
                headers = {"Authorization": f"Bearer {token}"}
                # A URL carries no surrogate (its UTF-8 cannot hold one) and no JSON.
                params = {name: "x" if as_json else value for name in query_names}
                fields: dict[str, Any] = {name: value for name in body_names or ["x"]}
                try:
                    if method in ("GET", "HEAD"):
                        r = http.request(method, url, params=params, headers=headers)
                    elif as_json:
                        body = json.dumps(fields).encode()
                        r = http.request(
                            method, url, params=params, content=body,
                            headers={**headers, "Content-Type": "application/json"},
                        )  # fmt: skip
                    else:
                        r = http.request(method, url, params=params, data=fields, headers=headers)
                except httpx.TransportError as exc:  # a crash: the connection dropped
                    live.errors.append(f"{exc!r}: {label} to {method} {url}")
                    continue
                made += 1
                if r.status_code >= 500:
                    live.errors.append(f"{r.status_code} {r.text[:200]}: {label} to {method} {url}")
    return made


def _fuzz_mastodon(strategy: Any, path: str, live: MastodonLive, seen: Any) -> None:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable

    @given(case=strategy)
    @settings(
        max_examples=MASTODON_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        token = live.tokens[live.used[0] // REQUESTS_PER_TOKEN % len(live.tokens)]
        live.used[0] += 1
        response = case.call(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        seen.setdefault(f"{case.method} {path}", set()).add(response.status_code)
        if response.status_code >= 500:
            live.errors.append(
                f"{response.status_code} {response.text[:200]}: {case.as_curl_command()}"
            )

    try:
        run()
    except Unsatisfiable:
        # An operation whose description allows anything (no parameters, no body) has no
        # invalid request to make.
        assert "(negative)" in path, path
