"""For You in the browser (web/for_you.py): the player's batches on the session with its
CSRF token, "Not interested" and "Show less like this" as plain and enhanced forms, and
/settings/for-you (what was learned, forgetting it, the controls)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from factories import local_account, rendered_video
from webhelpers import browser, form_csrf, logged_in

from fedisora.models import Account, Clip, ClipView, ForYouSettings, Interest, Visibility
from fedisora.services import interactions, posts

PARTIAL = {"X-Fedisora-Partial": "1"}


async def clip(author: Account, caption: str = "", **kwargs: Any) -> Clip:
    return await posts.post_clip(author, await rendered_video(author), caption=caption, **kwargs)


def meta_csrf(page: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def test_the_player_reports_on_the_session(web: httpx.ASGITransport) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    shown = await clip(bob, "#sea")
    hidden = await clip(bob, "followers", visibility=Visibility.FOLLOWERS)
    events = [
        {"clip_id": str(shown.pk), "type": "impression"},
        {"clip_id": str(shown.pk), "type": "watch", "watch_ms": 1200},
        {"clip_id": str(shown.pk), "type": "skip"},
        {"clip_id": str(hidden.pk), "type": "impression"},
    ]
    async with browser(web) as anon:
        r = await anon.post("/feedback", json={"events": events})
        assert r.status_code == 401 and "error" in r.json()
        script = await anon.get("/static/feedback.js")  # app.js imports it
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert 'from "./feedback.js"' in (await anon.get("/static/app.js")).text
    async with logged_in(web, "ann") as http:
        token = meta_csrf((await http.get("/")).text)
        r = await http.post("/feedback", json={"events": events})
        assert r.status_code == 403 and "error" in r.json()  # no CSRF token
        r = await http.post("/feedback", json={"events": events}, headers={"X-CSRF-Token": token})
        assert r.status_code == 200 and r.json() == {"accepted": 3, "ignored": 1}
        # sendBeacon cannot set headers: the token may come in the body
        r = await http.post("/feedback", json={"csrf": token, "events": events[:1]})
        assert r.status_code == 200 and r.json() == {"accepted": 1, "ignored": 0}
        bad = [{"clip_id": str(shown.pk), "type": "watch", "watch_ms": -3}]
        r = await http.post("/feedback", json={"csrf": token, "events": bad})
        assert r.status_code == 422 and "watch_ms" in r.json()["error"]
        r = await http.post("/feedback", json={"csrf": token, "events": events * 30})
        assert r.status_code == 422 and "at most 100" in r.json()["error"]
        r = await http.post(
            "/feedback", content=b"[oops", headers={"content-type": "application/json"}
        )
        assert r.status_code == 400 and "error" in r.json()
    row = await ClipView.get(account_id=ann.pk)
    assert (row.impressions, row.watch_ms, row.skips) == (2, 1200, 1)
    assert (await Clip.get(pk=shown.pk)).skips_count == 1


async def test_not_interested_and_show_less_from_the_feed(web: httpx.ASGITransport) -> None:
    await local_account("ann")
    bob = await local_account("bob")
    cy = await local_account("cy")
    first = await clip(bob, "#sea")
    second = await clip(cy, "#sky")
    mine = await clip(await Account.get(username="ann"), "mine")
    async with logged_in(web, "ann") as http:
        page = (await http.get("/?tab=local")).text
        assert f'action="/clips/{first.pk}/not_interested"' in page
        assert f'action="/clips/{second.pk}/show_less"' in page
        assert "Not interested</button>" in page and "Show less like this</button>" in page
        assert f'action="/clips/{mine.pk}/not_interested"' not in page  # one's own clip
        csrf = form_csrf(page)
        # without JavaScript: a form post and a 303 back to the clip
        r = await http.post(
            f"/clips/{first.pk}/not_interested", data={"csrf": csrf, "next": "/?tab=local"}
        )
        assert r.status_code == 303 and r.headers["location"] == f"/?tab=local#clip-{first.pk}"
        # enhanced: the fragment replacing the form
        r = await http.post(f"/clips/{second.pk}/show_less", data={"csrf": csrf}, headers=PARTIAL)
        assert r.status_code == 200 and "show less like this" in r.text
        r = await http.post(f"/clips/{second.pk}/show_less", data={}, headers=PARTIAL)
        assert r.status_code == 403
        r = await http.post("/clips/424242/not_interested", data={"csrf": csrf}, headers=PARTIAL)
        assert r.status_code == 404
    assert (await ClipView.get(clip_id=first.pk)).hidden
    assert not (await ClipView.get(clip_id=second.pk)).hidden
    weights = {(str(i.kind), i.key): i.weight for i in await Interest.all()}
    assert weights[("creator", str(bob.pk))] == -8.0 and weights[("tag", "sky")] == -4.0
    async with browser(web) as anon:
        r = await anon.post(f"/clips/{first.pk}/not_interested", data={})
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_the_settings_page_shows_and_forgets_what_was_learned(
    web: httpx.ASGITransport,
) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    await interactions.like(ann, await clip(bob, "#sea"))
    async with logged_in(web, "ann") as http:
        index = (await http.get("/settings")).text
        assert 'href="/settings/for-you"' in index
        page = (await http.get("/settings/for-you")).text
        assert "@bob" in page and "#sea" in page
        assert "Fresh ↔ Popular" in page and "Following ↔ Discovery" in page
        assert 'type="range"' in page and 'name="personalised" checked' in page
        assert "Reset everything your feed learned" in page
        csrf = form_csrf(page)
        r = await http.post(
            "/settings/for-you/forget", data={"csrf": csrf, "kind": "tag", "key": "sea"}
        )
        assert r.status_code == 303
        page = (await http.get("/settings/for-you")).text
        assert "#sea" not in page and "@bob" in page
        r = await http.post("/settings/for-you/forget", data={"csrf": csrf})
        assert r.status_code == 303
        assert not await Interest.filter(account_id=ann.pk).exists()
        assert "No creators yet." in (await http.get("/settings/for-you")).text
        # the controls
        r = await http.post(
            "/settings/for-you",
            data={"csrf": csrf, "popular": "80", "discovery": "10", "tags": "#cats, dogs"},
        )
        assert r.status_code == 303 and r.headers["location"] == "/settings/for-you?saved=1"
        row = await ForYouSettings.get(account_id=ann.pk)
        assert (row.personalised, row.popular, row.discovery, row.tags) == (
            False,
            0.8,
            0.1,
            ["cats", "dogs"],
        )
        r = await http.post(
            "/settings/for-you",
            data={"csrf": csrf, "popular": "80", "tags": " ".join(f"t{n}" for n in range(11))},
        )
        assert r.status_code == 422 and "at most 10" in r.text and 'role="alert"' in r.text
        r = await http.post("/settings/for-you", data={"popular": "80"})
        assert r.status_code == 403
    async with browser(web) as anon:
        r = await anon.get("/settings/for-you")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
