"""A hashtag is only what clips anyone may see make of it.

A tag used only in followers-only or direct clips once showed to anonymous callers (``uses:
1`` at ``/api/v1/tags/NAME``, found by hashtag search). Now a tag's existence, its counts and
its authors come only from public and unlisted clips that are not deleted and whose author
is not suspended, on every path that shows a tag: the tag endpoint, search, trends, and the
web tag page.
"""

from __future__ import annotations

from typing import Any

import httpx
from apihelpers import login
from factories import local_account, rendered_video

from fedisora.models import Account, Clip
from fedisora.services import posts
from fedisora.services.account_deletion import suspend_account


async def _clip(author: Account, caption: str, visibility: str = "public") -> Clip:
    return await posts.post_clip(
        author, await rendered_video(author), caption=caption, visibility=visibility
    )


def _today(tag: dict[str, Any]) -> tuple[str, str]:
    day = tag["history"][0]
    return day["uses"], day["accounts"]


async def test_tags_of_private_and_direct_clips_do_not_exist_for_others(
    client: httpx.AsyncClient, db: str
) -> None:
    ann = await local_account("ann")
    bob = await login(client, await local_account("bob"))
    await _clip(ann, "the plan #SecretPlan", "private")
    await _clip(ann, "just us #dmonly", "direct")
    await _clip(ann, "out in the open #mixed #openly")
    await _clip(ann, "not for trends #mixed #quietly", "unlisted")
    await _clip(ann, "also #mixed, but followers only", "private")

    unknown = await client.get("/api/v1/tags/neverused")
    assert unknown.status_code == 404
    for headers in ({}, bob.headers):
        for name in ("secretplan", "SecretPlan", "%23secretplan", "dmonly"):
            r = await client.get(f"/api/v1/tags/{name}", headers=headers)
            assert (r.status_code, r.json()) == (unknown.status_code, unknown.json())
        # Counts come from the public and unlisted clips only.
        r = await client.get("/api/v1/tags/mixed", headers=headers)
        assert r.status_code == 200 and _today(r.json()) == ("2", "1")
        assert _today((await client.get("/api/v1/tags/quietly", headers=headers)).json()) == (
            "1",
            "1",
        )
        for q in ("secret", "#SecretPlan", "dm"):
            r = await client.get(
                "/api/v2/search", params={"q": q, "type": "hashtags"}, headers=headers
            )
            assert r.status_code == 200 and r.json()["hashtags"] == [], q
        r = await client.get("/api/v2/search", params={"q": "#mi"}, headers=headers)
        assert [t["name"] for t in r.json()["hashtags"]] == ["mixed"]
        assert _today(r.json()["hashtags"][0]) == ("2", "1")

    # Trends count public clips only: neither the private nor the unlisted tags.
    trends = (await client.get("/api/v1/trends/tags")).json()
    assert sorted(t["name"] for t in trends) == ["mixed", "openly"]
    assert {t["name"]: _today(t) for t in trends}["mixed"] == ("2", "1")

    # The web tag page of a private-only tag is the page of a tag nobody used.
    secret = await client.get("/tags/secretplan", headers={"accept": "text/html"})
    never = await client.get("/tags/nobodyusedthis", headers={"accept": "text/html"})
    assert secret.status_code == never.status_code == 200
    assert "the plan" not in secret.text
    assert secret.text.replace("secretplan", "X") == never.text.replace("nobodyusedthis", "X")


async def test_tags_of_suspended_authors_and_deleted_clips_do_not_count(
    client: httpx.AsyncClient, db: str
) -> None:
    ann = await local_account("ann")
    eve = await local_account("eve")
    gone = await _clip(ann, "soon deleted #ephemeral")
    await _clip(eve, "spam #spamtag")
    await posts.delete_clip(ann, gone)
    await suspend_account(eve)
    for name in ("ephemeral", "spamtag"):
        assert (await client.get(f"/api/v1/tags/{name}")).status_code == 404
    for q in ("#e", "#sp"):
        r = await client.get("/api/v2/search", params={"q": q, "type": "hashtags"})
        assert r.json()["hashtags"] == []
    assert (await client.get("/api/v1/trends/tags")).json() == []
