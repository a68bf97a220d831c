"""The search page: accounts, hashtags, clips and comments by the API's rules (one service);
``@name@host`` and actor URLs resolved for logged-in users only, from a scripted peer (a
mock transport: nothing but loopback is ever reached); bad queries get a message."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from factories import local_account, rendered_video
from webhelpers import browser, logged_in

from activitypub import keys, objects
from fedisora.config import Settings
from fedisora.federation import http as peer_http
from fedisora.federation.context import Federation, set_federation
from fedisora.federation.http import PeerClient
from fedisora.models import Account
from fedisora.services import interactions, posts

FAR = "far.example"
ACTOR = f"https://{FAR}/users/faraway"


def _actor_doc() -> dict[str, Any]:
    key = keys.generate_rsa_key()
    return objects.actor_document(
        objects.ActorInfo(
            id=ACTOR,
            type="Person",
            username="faraway",
            name="Far Away",
            summary="<p>from afar</p>",
            url=f"https://{FAR}/@faraway",
            inbox=f"{ACTOR}/inbox",
            outbox=f"{ACTOR}/outbox",
            followers=f"{ACTOR}/followers",
            following=f"{ACTOR}/following",
            featured=f"{ACTOR}/featured",
            shared_inbox=f"https://{FAR}/inbox",
            public_key_id=f"{ACTOR}#main-key",
            public_key_pem=keys.public_key_to_pem(key.public_key()),
            published="2026-01-01T00:00:00Z",
        )
    )


class ScriptedPeer:
    """far.example, answering WebFinger for faraway and its actor document, nothing else."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.doc = _actor_doc()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(str(request.url))
        if request.url.path == "/.well-known/webfinger":
            if request.url.params.get("resource") == f"acct:faraway@{FAR}":
                links = [{"rel": "self", "type": "application/activity+json", "href": ACTOR}]
                return httpx.Response(200, json={"subject": f"acct:faraway@{FAR}", "links": links})
            return httpx.Response(404)
        if str(request.url) == ACTOR:
            return httpx.Response(
                200, json=self.doc, headers={"content-type": "application/activity+json"}
            )
        return httpx.Response(404)


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """far.example "resolves" to a public address without asking DNS (the mock transport
    answers; no connection is ever made)."""

    async def public(host: str, port: int) -> list[str]:
        assert host == FAR, host
        return ["93.184.216.34"]

    monkeypatch.setattr(peer_http, "system_resolve", public)
    yield


@pytest.fixture
async def peer(settings: Settings, no_dns: None) -> AsyncIterator[ScriptedPeer]:
    scripted = ScriptedPeer()
    federation = Federation(
        settings, PeerClient(insecure=False, transport=httpx.MockTransport(scripted))
    )
    set_federation(federation)
    try:
        yield scripted
    finally:
        set_federation(None)
        await federation.aclose()


def section(page: str, heading: str) -> str:
    found = re.search(rf'<h2 id="found-{heading}">.*?</section>', page, re.S)
    assert found is not None, page[:3000]
    return found.group(0)


async def test_local_accounts_tags_and_clips(web: httpx.ASGITransport) -> None:
    alice = await local_account("alice")
    bob = await local_account("bob")
    await Account.filter(pk=bob.pk).update(display_name="Bob Builder")
    dave = await local_account("dave")
    public = await posts.post_clip(alice, await rendered_video(alice), caption="the #sea at dawn")
    await posts.post_clip(
        alice, await rendered_video(alice), caption="a secret sea", visibility="private"
    )
    said = await interactions.comment(bob, public, "what a sea")
    await interactions.comment(bob, public, "nothing to see")

    async with browser(web) as anon:
        r = await anon.get("/search")
        assert r.status_code == 200 and 'role="search"' in r.text and "found-accounts" not in r.text
        assert '<link rel="stylesheet" href="/static/pages.css">' in r.text
        r = await anon.get("/search", params={"q": "builder"})
        accounts = section(r.text, "accounts")
        assert '<a href="/@bob"><strong>Bob Builder</strong>' in accounts
        assert "alice" not in accounts
        r = await anon.get("/search", params={"q": "#se"})
        assert '<a href="/tags/sea">#sea</a>' in section(r.text, "tags")
        # a visitor does not search the words of clips (as the API without a user)
        clips = section((await anon.get("/search", params={"q": "sea"})).text, "clips")
        assert "Log in" in clips and "data-clip-id" not in clips

    async with logged_in(web, "dave") as http:
        page = (await http.get("/search", params={"q": "sea"})).text
        clips = section(page, "clips")
        assert f'data-clip-id="{public.pk}"' in clips
        assert f'<a class="grid-link" href="/@alice/{public.pk}">' in clips
        assert "secret" not in page  # followers-only, and dave follows nobody
        assert f"/users/bob/comments/{said.pk}" in clips and "nothing to see" not in clips
        assert "<video" not in page
    # the author sees their own followers-only clip
    async with logged_in(web, "alice") as http:
        assert "a secret sea" in (await http.get("/search", params={"q": "secret"})).text
    del dave


async def test_bad_queries_get_a_message(web: httpx.ASGITransport) -> None:
    await local_account("alice")
    for who in (None, "alice"):
        async with logged_in(web, who) if who else browser(web) as http:
            for q, status in (
                ("", 200),
                ("   ", 200),
                ("#", 200),
                ("@", 200),
                ("@@@", 200),
                ("https://", 200),
                ("%", 200),
                ("_", 200),
                ("'; drop table accounts; --", 200),
                ("x" * 501, 400),
                ("x" * 5000, 400),
                ("a\x00b", 400),
                ("tab\there", 400),
            ):
                r = await http.get("/search", params={"q": q})
                assert r.status_code == status, (who, q[:20], r.text[:500])
                assert r.headers["content-type"].startswith("text/html")
                if status == 400:
                    assert 'class="error" role="alert"' in r.text
            r = await http.get("/search?q=%ff%fe%00")
            assert r.status_code in (200, 400) and "text/html" in r.headers["content-type"]


async def test_remote_accounts_are_resolved_for_logged_in_users(
    web: httpx.ASGITransport, peer: ScriptedPeer
) -> None:
    await local_account("alice")
    async with browser(web) as anon:
        r = await anon.get("/search", params={"q": f"@faraway@{FAR}"})
        assert r.status_code == 200
        assert "No accounts found (log in to look up accounts on other instances)" in r.text
    assert peer.asked == []  # a visitor's search never asks another server

    async with logged_in(web, "alice") as http:
        r = await http.get("/search", params={"q": f"@faraway@{FAR}"})
        accounts = section(r.text, "accounts")
        assert (
            f'<a href="https://{FAR}/@faraway" rel="nofollow noopener ugc">'
            "<strong>Far Away</strong>" in accounts
        )
        assert f"@faraway@{FAR}" in accounts and f"from {FAR}" in accounts
        assert any("webfinger" in u for u in peer.asked) and ACTOR in peer.asked
        stored = await Account.get(uri=ACTOR)
        assert stored.domain == FAR

        # cached now: found again without asking, and by its URL
        peer.asked.clear()
        r = await http.get("/search", params={"q": ACTOR})
        assert f'data-account-id="{stored.pk}"' in section(r.text, "accounts")
        r = await http.get("/search", params={"q": f"faraway@{FAR}"})
        assert f'data-account-id="{stored.pk}"' in section(r.text, "accounts")
        assert peer.asked == []

        # someone the peer does not know: nothing found, no error
        r = await http.get("/search", params={"q": f"@nobody@{FAR}"})
        assert r.status_code == 200 and "No accounts found" in section(r.text, "accounts")
