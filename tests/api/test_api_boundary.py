"""The input boundary over HTTP (issue 13, findings 2 and 9), on both databases.

Each finding is sent as it was found and must get a clear 4xx with the database left as it was;
where the same request without the bad input is accepted, that is checked too, so that the
refusal is shown to be for the input and not for something else about the request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from apihelpers import PASSWORD, app_token, login, register_app
from factories import local_account, rendered_video
from tortoise import Tortoise

from fedisora.api.oauth import APP_RATE
from fedisora.boundary.limits import FORM_BODY_LIMIT, INBOX_BODY_LIMIT, MEDIA_BODY_LIMIT
from fedisora.models import Account, MediaFile, User
from fedisora.ratelimits import DEFAULTS

OOB = "urn:ietf:wg:oauth:2.0:oob"
DEEP = "[" * 600 + "]" * 600  # past Python's recursion limit in any recursive reader
DEEPEST = "[" * 30_000 + "]" * 30_000  # past the JSON reader's own, within the body limit


async def snapshot() -> dict[str, Any]:
    """Every table's row count, and the text columns the requests here would change."""
    counts = {m.__name__: await m.all().count() for m in Tortoise.apps["fedisora"].values()}
    return {
        "counts": counts,
        "accounts": await Account.all().order_by("id").values("display_name", "note"),
        "media": await MediaFile.all().order_by("id").values("description"),
        "logins": await User.all().order_by("id").values("last_login_at"),
    }


@dataclass
class World:
    client: httpx.AsyncClient
    alice: Any  # apihelpers.Login
    clip_id: str
    media_id: int
    client_id: str
    client_secret: str

    def headers(self, who: str, ctype: str) -> dict[str, str]:
        out = {"content-type": ctype}
        if who == "alice":
            out.update(self.alice.headers)
        return out


@pytest.fixture
async def world(client: httpx.AsyncClient) -> AsyncIterator[World]:
    alice = await login(client, await local_account("alice"))
    video = await rendered_video(alice.account)
    r = await client.post(
        "/api/v1/statuses",
        json={"status": "a kite", "media_ids": [str(video.pk)]},
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    cid, secret = await register_app(client, "read")
    yield World(client, alice, r.json()["id"], video.pk, cid, secret)


# (name, who, method, path, content type, body template, bad value, good value, status).
# {V} in the template is replaced by the value; {clip}, {media}, {cid} and {secret} by the
# world's. Good values None: the request is only sent bad (what it needs besides is not here).
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
APP = '{"client_name": "c", "redirect_uris": "' + OOB + '", "scopes": "read", "x": {V}}'
TOKEN = '{"grant_type": "client_credentials", "client_id": "{cid}", "client_secret": "{secret}", "x": {V}}'  # noqa: E501
CASES = [
    ("apps: JSON nested 600 deep", "anon", "POST", "/api/v1/apps", JSON, APP, DEEP, "[]", 400),
    ("apps: JSON nested 30000 deep", "anon", "POST", "/api/v1/apps", JSON, APP, DEEPEST, "1", 400),
    ("token: JSON nested 600 deep", "anon", "POST", "/oauth/token", JSON, TOKEN, DEEP, "[]", 400),
    ("revoke: JSON nested 600 deep", "anon", "POST", "/oauth/revoke", JSON, TOKEN, DEEP, None, 400),
    (
        "apps: a lone surrogate",
        "anon",
        "POST",
        "/api/v1/apps",
        JSON,
        '{"client_name": "c{V}", "redirect_uris": "' + OOB + '"}',
        "\\ud800",
        "x",
        400,
    ),
    (
        "apps: a surrogate's raw bytes",
        "anon",
        "POST",
        "/api/v1/apps",
        JSON,
        '{"client_name": "c{V}", "redirect_uris": "' + OOB + '"}',
        "\udcd8",  # written as the bytes ED B3 98 (surrogatepass)
        "x",
        400,
    ),
    (
        "apps: a lone surrogate in a key",
        "anon",
        "POST",
        "/api/v1/apps",
        JSON,
        '{"client_name": "c", "redirect_uris": "' + OOB + '", "k{V}": 1}',
        "\\udfff",
        "x",
        400,
    ),
    (
        "apps: a NUL",
        "anon",
        "POST",
        "/api/v1/apps",
        JSON,
        '{"client_name": "c{V}", "redirect_uris": "' + OOB + '"}',
        "\\u0000",
        "x",
        400,
    ),
    (
        "apps: a NUL in a form",
        "anon",
        "POST",
        "/api/v1/apps",
        FORM,
        "client_name=c{V}&redirect_uris=" + OOB,
        "%00",
        "x",
        400,
    ),
    (
        "apps: an unparsable redirect URI",
        "anon",
        "POST",
        "/api/v1/apps",
        JSON,
        '{"client_name": "c", "redirect_uris": "https://{V}/"}',
        "[::1",
        "example.com",
        422,
    ),
    (
        "token: a lone surrogate",
        "anon",
        "POST",
        "/oauth/token",
        JSON,
        '{"grant_type": "client_credentials", "client_id": "{cid}", "client_secret": "{secret}", "scope": "read{V}"}',  # noqa: E501
        "\\ud83d",
        "",
        400,
    ),
    (
        "statuses: a lone surrogate",
        "alice",
        "POST",
        "/api/v1/statuses",
        JSON,
        '{"status": "nice{V}", "in_reply_to_id": "{clip}"}',
        "\\ud800",
        "!",
        400,
    ),
    (
        "statuses: a NUL in a form",
        "alice",
        "POST",
        "/api/v1/statuses",
        FORM,
        "status=nice{V}&in_reply_to_id={clip}",
        "%00",
        "!",
        400,
    ),
    (
        "statuses: a control character",
        "alice",
        "POST",
        "/api/v1/statuses",
        FORM,
        "status=nice{V}&in_reply_to_id={clip}",
        "%1B",
        "%09",
        422,
    ),
    (
        "display name: a lone surrogate",
        "alice",
        "PATCH",
        "/api/v1/accounts/update_credentials",
        JSON,
        '{"display_name": "Al{V}"}',
        "\\udc00",
        "ice",
        400,
    ),
    (
        "display name: a control character",
        "alice",
        "PATCH",
        "/api/v1/accounts/update_credentials",
        JSON,
        '{"display_name": "Al{V}"}',
        "\\u0085",
        "ice",
        422,
    ),
    (
        "note: a lone surrogate in source[note]",
        "alice",
        "PATCH",
        "/api/v1/accounts/update_credentials",
        JSON,
        '{"source": {"note": "hi{V}"}}',
        "\\ud800",
        "!",
        400,
    ),
    (
        "media description: a lone surrogate",
        "alice",
        "PUT",
        "/api/v1/media/{media}",
        JSON,
        '{"description": "a kite{V}"}',
        "\\ud800",
        "!",
        400,
    ),
    (
        "render prompt: a lone surrogate",
        "alice",
        "POST",
        "/api/fedisora/v1/renders",
        JSON,
        '{"prompt": "a kite{V}"}',
        "\\ud800",
        None,
        400,
    ),
    (
        "render prompt: JSON nested 600 deep",
        "alice",
        "POST",
        "/api/fedisora/v1/renders",
        JSON,
        '{"prompt": "a kite", "x": {V}}',
        DEEP,
        None,
        400,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
async def test_each_finding_is_refused_and_changes_nothing(
    world: World, case: tuple[Any, ...]
) -> None:
    _, who, method, path, ctype, template, bad, good, status = case

    def body(value: str) -> bytes:
        text = (
            template.replace("{clip}", world.clip_id)
            .replace("{cid}", world.client_id)
            .replace("{secret}", world.client_secret)
            .replace("{V}", value)
        )
        return text.encode("utf-8", "surrogatepass")

    url = path.replace("{media}", str(world.media_id))
    headers = world.headers(who, ctype)
    before = await snapshot()
    r = await world.client.request(method, url, content=body(bad), headers=headers)
    assert r.status_code == status, r.text
    assert isinstance(r.json()["error"], str) and r.json()["error"]
    assert await snapshot() == before
    if good is not None:
        r = await world.client.request(method, url, content=body(good), headers=headers)
        assert r.status_code == 200, r.text
        assert await snapshot() != before


async def test_a_nul_in_the_web_login_form(client: httpx.AsyncClient, db: str) -> None:
    await local_account("alice")
    before = await snapshot()
    for name, password in (("alice\x00", PASSWORD), ("alice", PASSWORD + "\x00")):
        r = await client.post("/login", data={"login": name, "password": password})
        assert r.status_code == 400, r.text
        assert "NUL" in r.text
        assert "set-cookie" not in r.headers
    assert await snapshot() == before


async def test_unknown_parameters_are_ignored_whatever_they_hold(
    client: httpx.AsyncClient, db: str
) -> None:
    """Control characters are refused where a handler reads them, as the value of a field; a
    parameter no handler reads is ignored, as Mastodon ignores it. What no column can store
    (a NUL, an unpaired surrogate) is refused wherever it is."""
    alice = await login(client, await local_account("alice"))
    r = await client.patch(
        "/api/v1/accounts/update_credentials",
        json={"display_name": "Alice", "x\x1b": "\x07\x85"},
        headers=alice.headers,
    )
    assert r.status_code == 200 and r.json()["display_name"] == "Alice"
    for junk in ("\x00", "\ud800"):
        r = await client.patch(
            "/api/v1/accounts/update_credentials",
            content=json.dumps({"display_name": "Bob", "x": junk}).encode(),
            headers={**alice.headers, "content-type": JSON},
        )
        assert r.status_code == 400, r.text
    assert (await Account.get(pk=alice.account.pk)).display_name == "Alice"
    # Tabs and line breaks are text.
    r = await client.patch(
        "/api/v1/accounts/update_credentials",
        json={"note": "line one\r\nline\ttwo"},
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text


# --------------------------------------------------------------------------- body limits


FILE_PART = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'


async def _counting(
    chunks: int, size: int, consumed: list[int], head: bytes = b""
) -> AsyncIterator[bytes]:
    """*chunks* chunks of *size* spaces after *head*, each counted in *consumed* when asked
    for: what the app read of the body."""
    if head:
        yield head
    for _ in range(chunks):
        consumed.append(size)
        yield b" " * size


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/api/v1/apps", FORM_BODY_LIMIT),
        ("/oauth/token", FORM_BODY_LIMIT),
        ("/login", FORM_BODY_LIMIT),
        ("/api/v2/media", MEDIA_BODY_LIMIT),
        ("/inbox", INBOX_BODY_LIMIT),
    ],
)
async def test_a_declared_length_over_the_limit_is_refused_before_reading(
    client: httpx.AsyncClient, db: str, path: str, limit: int
) -> None:
    """Content-Length over the route's limit: 413 at once, not a byte of the body read (the
    stream is never asked for its first chunk), before any authentication."""
    consumed: list[int] = []

    async def never() -> AsyncIterator[bytes]:
        consumed.append(1)
        yield b"{}"

    before = await snapshot()
    r = await client.post(
        path,
        content=never(),
        headers={"content-type": JSON, "content-length": str(limit + 1)},
    )
    assert r.status_code == 413, r.text
    assert str(limit) in r.json()["error"]
    assert consumed == []
    assert await snapshot() == before


@pytest.mark.parametrize(
    ("path", "ctype"),
    [
        ("/api/v1/apps", JSON),
        ("/api/v1/apps", FORM),
        ("/oauth/token", FORM),
        ("/login", FORM),
        ("/inbox", "application/activity+json"),
        ("/api/v1/statuses", "multipart/form-data; boundary=x"),
    ],
)
async def test_a_streamed_body_is_cut_off_at_the_limit(
    client: httpx.AsyncClient, db: str, path: str, ctype: str
) -> None:
    """Without a Content-Length (chunked), the body is read only up to the route's limit and
    the request answered 413 (a JSON error on the API, an error page on the web): a 200 MB
    body is never held or spooled whole."""
    alice = await login(client, await local_account("alice"))
    size = 16 * 1024
    limit = INBOX_BODY_LIMIT if path == "/inbox" else FORM_BODY_LIMIT
    consumed: list[int] = []
    before = await snapshot()
    head = FILE_PART if ctype.startswith("multipart/") else b""
    body = _counting(10_000, size, consumed, head)
    headers = {"content-type": ctype, **(alice.headers if path.startswith("/api/") else {})}
    r = await client.post(path, content=body, headers=headers)
    assert r.status_code == 413, r.text
    assert "larger than" in r.text
    assert sum(consumed) <= limit + size
    assert await snapshot() == before


async def test_a_multipart_upload_is_spooled_only_up_to_the_media_limit(
    client: httpx.AsyncClient, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The media route's limit (about 99 MB, the one Mastodon clients are told) is lowered
    here so that the test is quick: the file part is spooled until the limit, then the
    upload is cut off with 413 and its temporary file closed (and so gone)."""
    from tempfile import SpooledTemporaryFile

    from starlette import formparsers

    from fedisora.boundary import limits

    alice = await login(client, await local_account("alice"))
    small = limits.BodyClass("a media upload", 1024 * 1024)
    monkeypatch.setattr(limits, "_MEDIA", small)
    spooled: list[SpooledTemporaryFile[bytes]] = []

    class Recorded(SpooledTemporaryFile):  # type: ignore[type-arg]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            spooled.append(self)

    monkeypatch.setattr(formparsers, "SpooledTemporaryFile", Recorded)
    consumed: list[int] = []
    before = await snapshot()
    r = await client.post(
        "/api/v2/media",
        content=_counting(10_000, 64 * 1024, consumed, FILE_PART),
        headers={"content-type": "multipart/form-data; boundary=x", **alice.headers},
    )
    assert r.status_code == 413, r.text
    assert r.headers["access-control-allow-origin"] == "*"
    assert sum(consumed) <= small.limit + 64 * 1024
    assert len(spooled) == 1 and spooled[0].closed
    assert await snapshot() == before


async def test_app_registration_is_rate_limited_per_client_ip(
    client: httpx.AsyncClient, db: str
) -> None:
    limit = DEFAULTS[APP_RATE].count
    data = {"client_name": "c", "redirect_uris": OOB}
    for _ in range(limit):
        assert (await client.post("/api/v1/apps", data=data)).status_code == 200
    before = await snapshot()
    r = await client.post("/api/v1/apps", data=data)
    assert r.status_code == 429 and r.json()["error"]
    assert r.headers["x-ratelimit-remaining"] == "0"
    assert await snapshot() == before
    # X-Forwarded-For is not believed by default (FEDISORA_TRUSTED_PROXIES is empty).
    r = await client.post("/api/v1/apps", data=data, headers={"x-forwarded-for": "192.0.2.7"})
    assert r.status_code == 429


# --------------------------------------------------------------------------- field caps

# (who, method, path, JSON body, what the error names). Each stored text field a client sets,
# one past its cap: a 422 that names it, nothing stored. ("x" * n, with {clip}, {media}.)
LONG = [
    (
        "alice",
        "PATCH",
        "/api/v1/accounts/update_credentials",
        {"display_name": 101},
        "display_name",
    ),
    ("alice", "PATCH", "/api/v1/accounts/update_credentials", {"note": 501}, "note"),
    ("alice", "PATCH", "/api/v1/accounts/update_credentials", {"source": {"note": 501}}, "note"),
    ("alice", "POST", "/api/v1/statuses", {"status": 1001, "media_ids": ["{media2}"]}, "caption"),
    ("alice", "POST", "/api/v1/statuses", {"status": 1001, "in_reply_to_id": "{clip}"}, "comment"),
    (
        "alice",
        "POST",
        "/api/v1/statuses",
        {"status": "x", "spoiler_text": 501, "in_reply_to_id": "{clip}"},
        "spoiler_text",
    ),
    (
        "alice",
        "POST",
        "/api/v1/statuses",
        {"status": "x", "language": 17, "in_reply_to_id": "{clip}"},
        "language",
    ),
    ("alice", "PUT", "/api/v1/statuses/{clip}", {"status": 1001}, "caption"),
    ("alice", "PUT", "/api/v1/statuses/{clip}", {"spoiler_text": 501}, "spoiler_text"),
    ("alice", "PUT", "/api/v1/media/{media}", {"description": 1501}, "description"),
    ("alice", "POST", "/api/fedisora/v1/renders", {"prompt": 2001}, "prompt"),
    (
        "alice",
        "POST",
        "/api/fedisora/v1/renders",
        {"prompt": "x", "negative_prompt": 2001},
        "negative_prompt",
    ),
    ("anon", "POST", "/api/v1/apps", {"client_name": 201, "redirect_uris": OOB}, "client_name"),
    (
        "anon",
        "POST",
        "/api/v1/apps",
        {"client_name": "c", "website": 2049, "redirect_uris": OOB},
        "website",
    ),
    (
        "app",
        "POST",
        "/api/v1/accounts",
        {
            "username": 65,
            "email": "a@example.com",
            "password": "a long password",
            "agreement": True,
        },
        "username",
    ),
    (
        "app",
        "POST",
        "/api/v1/accounts",
        {"username": "newbie", "email": 255, "password": "a long password", "agreement": True},
        "email",
    ),
    (
        "app",
        "POST",
        "/api/v1/accounts",
        {"username": "newbie", "email": "a@example.com", "password": 1025, "agreement": True},
        "password",
    ),
]


def _long(value: Any, world: World, media2: int) -> Any:
    if isinstance(value, dict):
        return {k: _long(v, world, media2) for k, v in value.items()}
    if isinstance(value, list):
        return [_long(v, world, media2) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return "x" * value
    if isinstance(value, str):
        return (
            value.replace("{clip}", world.clip_id)
            .replace("{media2}", str(media2))
            .replace("{media}", str(world.media_id))
        )
    return value


@pytest.mark.parametrize("case", LONG, ids=[f"{c[2]} {c[4]}" for c in LONG])
async def test_every_stored_text_field_a_client_sets_is_capped(
    world: World, case: tuple[Any, ...]
) -> None:
    """A value one past its field's cap is a 422 naming the field, and nothing is stored (no
    500 from a column too short, no over-long row where the column has no limit)."""
    who, method, path, fields, named = case
    media2 = (await rendered_video(world.alice.account)).pk
    headers = world.alice.headers if who == "alice" else {}
    if who == "app":  # signing up takes an app's token
        headers = await app_token(world.client, "read write")
    before = await snapshot()
    r = await world.client.request(
        method, _long(path, world, media2), json=_long(fields, world, media2), headers=headers
    )
    assert r.status_code == 422, r.text
    assert named in r.json()["error"], r.text
    assert await snapshot() == before
