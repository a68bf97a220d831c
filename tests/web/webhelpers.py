"""Helpers of the web page tests: browsers with their own sessions, and clips of a remote
peer's accounts as it federates them (a Create(Note) built by the real serializer, through
the handler the inbox machine runs)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from api_tokens import PASSWORD, password_grant
from factories import remote_account

from activitypub import objects
from fedisora.federation.context import Federation
from fedisora.federation.ingest import handle_activity
from fedisora.models import Account, Clip, utcnow

DOMAIN = "fedisora.test"
PEER = "peer.example"


APP_SCRIPT = '<script type="module" src="/static/app.js"></script>'
"""The one script every page loads (a file of this site: web/static/app.js)."""


def scripts_besides_app(page: str) -> bool:
    """Whether *page* has any ``<script`` other than :data:`APP_SCRIPT` in its head."""
    return "<script" in page.replace(APP_SCRIPT, "", 1)


def browser(transport: httpx.ASGITransport) -> httpx.AsyncClient:
    """A browser of its own: its own cookie jar (session)."""
    return httpx.AsyncClient(
        transport=transport,
        base_url=f"https://{DOMAIN}",
        headers={"accept": "text/html,application/xhtml+xml"},
    )


@asynccontextmanager
async def logged_in(transport: httpx.ASGITransport, login: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own, logged in as *login* (whose password is :data:`PASSWORD`)."""
    async with browser(transport) as http:
        await log_in(http, login)
        yield http


def form_csrf(page: str) -> str:
    """The CSRF token of the (first) form on *page*."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page[:2000]
    return found.group(1)


async def log_in(http: httpx.AsyncClient, login: str, password: str = PASSWORD) -> None:
    """Log *http* (a browser) in on the login form as *login*."""
    page = await http.get("/login")
    form = {"login": login, "password": password}
    if 'name="csrf"' in page.text:
        form["csrf"] = form_csrf(page.text)
    r = await http.post("/login", data=form)
    assert r.status_code == 303, r.text


async def api_token(
    client: httpx.AsyncClient, username: str, scopes: str = "read write"
) -> dict[str, str]:
    """Headers with a client API token of *username* (whose password is :data:`PASSWORD`)
    with *scopes*: a password grant through a new app."""
    token, _, _ = await password_grant(client, username, scopes, app_scopes=scopes)
    return {"Authorization": f"Bearer {token}"}


async def peer_account(username: str, **kwargs: Any) -> Account:
    """A remote account as actor discovery caches it (fetched just now)."""
    uri = f"https://{PEER}/users/{username}"
    kwargs.setdefault("url", f"https://{PEER}/@{username}")
    account: Account = await remote_account(
        username, PEER, followers_uri=f"{uri}/followers", fetched_at=utcnow(), **kwargs
    )
    return account


def video_url(n: int) -> str:
    return f"https://media.{PEER}/videos/{n}.mp4"


def create(
    author: Account,
    n: int,
    *,
    visibility: str = "public",
    content: str = "<p>a lighthouse in a storm</p>",
    mentions: Sequence[Account] = (),
    url: str | None = None,
    summary: str = "",
    hashtags: Sequence[str] = (),
) -> dict[str, Any]:
    """A Create(Note) with a video, as a peer federates a clip (the real serializer)."""
    assert author.followers_uri is not None
    note_id = f"{author.uri}/statuses/{n}"
    to, cc = objects.addressing(visibility, author.followers_uri, [m.uri for m in mentions])
    note = objects.note_document(
        objects.NoteInfo(
            id=note_id,
            attributed_to=author.uri,
            content=content,
            published="2026-01-01T00:00:00Z",
            to=to,
            cc=cc,
            url=url or f"https://{PEER}/@{author.username}/{n}",
            summary=summary,
            mentions=[(m.uri, f"@{m.username}@{DOMAIN}") for m in mentions],
            hashtags=[(name, f"https://{PEER}/tags/{name.lower()}") for name in hashtags],
            video=objects.VideoInfo(
                url=video_url(n),
                poster_url=f"https://media.{PEER}/posters/{n}.jpg",
                width=64,
                height=112,
                duration=1.0,
            ),
        ),
        context=False,
    )
    return objects.activity(
        "Create", f"{note_id}/activity", author.uri, note, to=note["to"], cc=note["cc"]
    )


async def receive(fed: Federation, activity: dict[str, Any]) -> Clip:
    await handle_activity(fed, activity)
    return await Clip.get(uri=activity["object"]["id"])


def card(page: str, clip: Clip) -> str:
    """The rendered card of *clip* on *page* ('' when it is not shown)."""
    found = re.search(rf'<article [^>]*data-clip-id="{clip.pk}".*?</article>', page, re.DOTALL)
    return found.group(0) if found else ""
