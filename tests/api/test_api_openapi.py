"""The OpenAPI document of fedisora's own endpoints: valid, complete, and honoured by a live
instance under schemathesis' property-based requests (no 500s, responses as declared)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from apihelpers import login
from factories import local_account
from instance import Instance, running_instance
from PIL import Image
from starlette.routing import Route

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
        if method in ("get", "post", "put", "delete")
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


CONTENT_DEPENDENT = {"uploadMediaV1", "uploadMediaV2", "createRender"}


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
            auth = {"Authorization": f"Bearer {token}"}
            still = io.BytesIO()
            Image.linear_gradient("L").convert("RGB").save(still, format="PNG")
            media = http.post(
                "/api/v2/media", files={"file": ("s.png", still.getvalue())}, headers=auth
            )
            assert media.status_code == 200, media.text
            render = http.post("/api/fedisora/v1/renders", json={"prompt": "kite"}, headers=auth)
            assert render.status_code == 202, render.text
            yield Live(inst, token, media.json()["id"], render.json()["id"])


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
        _fuzz(operation.as_strategy(), operation.path, headers, excluded, seen)
        if "{id}" in operation.path:  # again on a row that exists: the caller's own
            real = live.media_id if "/media/" in operation.path else live.render_id
            strategy = operation.as_strategy(path_parameters={"id": real})
            _fuzz(strategy, operation.path + " (own)", headers, excluded, seen)
    assert time.monotonic() - started < 60
    # 9 operations, 5 of them again with an existing id, and the documented render example.
    assert len(seen) == 9 + 5 + 1, seen
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
    assert job["state"] == "cancelled" or job["cancel_requested"] is True, job
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
