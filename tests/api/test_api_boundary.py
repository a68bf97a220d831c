"""The input boundary over HTTP (issue 13, finding 2), on both databases: request bodies are
held to their route's limit while read, and app registration is rate-limited.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from apihelpers import login
from factories import local_account
from tortoise import Tortoise

from fedisora.api.oauth import APP_RATE
from fedisora.boundary.limits import FORM_BODY_LIMIT, INBOX_BODY_LIMIT, MEDIA_BODY_LIMIT
from fedisora.models import Account, MediaFile, User

OOB = "urn:ietf:wg:oauth:2.0:oob"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


async def snapshot() -> dict[str, Any]:
    """Every table's row count, and the text columns the requests here would change."""
    counts = {m.__name__: await m.all().count() for m in Tortoise.apps["fedisora"].values()}
    return {
        "counts": counts,
        "accounts": await Account.all().order_by("id").values("display_name", "note"),
        "media": await MediaFile.all().order_by("id").values("description"),
        "logins": await User.all().order_by("id").values("last_login_at"),
    }


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
    _, limit, _ = APP_RATE
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
