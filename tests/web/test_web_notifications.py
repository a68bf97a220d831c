"""The notifications page: grouped as the API's v2 groups them (one service), each type in
words with its links, pages with an "Older" link, dismiss and clear as CSRF-protected forms."""

from __future__ import annotations

import re

import httpx
from factories import local_account, rendered_video
from webhelpers import DOMAIN, browser, form_csrf, logged_in

from fedisora.models import Account, Marker, Notification, NotificationType, RenderJob
from fedisora.services import follows, interactions, posts
from fedisora.services.notify import notify


def notes(page: str) -> list[tuple[str, str, str]]:
    """Each notification of *page*: its type, its sentence (tags stripped), its markup."""
    out = []
    for m in re.finditer(
        r'<li class="note [^"]*" data-group="[^"]*" data-type="([^"]+)">(.*?)</li>', page, re.S
    ):
        sentence = m.group(2).split('<div class="note-meta">')[0]
        sentence = sentence.replace('<span class="badge badge-new">New</span> ', "")
        text = re.sub(r"<[^>]+>", "", sentence)
        out.append((m.group(1), " ".join(text.split()), m.group(2)))
    return out


async def test_every_type_grouped_and_in_words(web: httpx.ASGITransport) -> None:
    ann = await local_account("ann")
    fans = [await local_account(f"fan{n}") for n in range(4)]
    bob = await local_account("bob")
    await Account.filter(pk=bob.pk).update(display_name="Bob Builder")
    bob = await Account.get(pk=bob.pk)
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="the sea")
    for fan in fans:
        await interactions.like(fan, clip)
    await follows.follow(fans[1], ann)
    await follows.follow(fans[2], ann)
    await Account.filter(pk=ann.pk).update(locked=True)
    await follows.follow(fans[0], await Account.get(pk=ann.pk))  # now a request
    await interactions.boost(bob, clip)
    await interactions.boost(fans[3], clip)
    reply = await interactions.comment(bob, clip, "@ann what a sea")
    liked_comment = await interactions.comment(ann, clip, "thanks")
    await interactions.like(bob, liked_comment)
    remix = await posts.post_clip(bob, await rendered_video(bob), caption="again", remix_of=clip)
    await notify(ann, NotificationType.LIKENESS_USE, dedupe_key="u1", from_account=bob, clip=remix)
    await notify(ann, NotificationType.LIKENESS_REQUEST, dedupe_key="r1", from_account=bob)
    await notify(ann, NotificationType.STATUS, dedupe_key="s1", from_account=bob, clip=remix)
    await notify(ann, NotificationType.UPDATE, dedupe_key="e1", from_account=bob, clip=remix)
    job = await RenderJob.create(account=ann, state="ready", spec={"prompt": "waves"})
    await notify(ann, NotificationType.RENDER_FINISHED, dedupe_key="j1", render_job=job)
    await notify(ann, NotificationType.RENDER_FAILED, dedupe_key="j2", render_job=job)

    async with logged_in(web, "ann") as http:
        r = await http.get("/notifications")
        assert r.status_code == 200, r.text
        assert '<link rel="stylesheet" href="/static/pages.css">' in r.text
        shown = {kind: (text, markup) for kind, text, markup in notes(r.text)}
        kinds = [kind for kind, _, _ in notes(r.text)]
    # one group per kind here (likes of the clip and of the comment are two groups)
    assert kinds.count("favourite") == 2 and len(kinds) == len(set(kinds)) + 1
    likes = [t for k, t, _ in notes(r.text) if k == "favourite"]
    assert "@fan3 and 3 others liked your clip" in likes
    assert "Bob Builder @bob liked your comment" in likes
    expected = {
        "reblog": "@fan3 and Bob Builder @bob boosted your clip",
        "follow": "@fan2 and @fan1 followed you",
        "follow_request": "@fan0 asked to follow you",
        "mention": "Bob Builder @bob mentioned you in a comment",
        "fedisora.remix": "Bob Builder @bob remixed your clip in their remix",
        "fedisora.likeness_use": "Bob Builder @bob used your likeness in a clip",
        "fedisora.likeness_request": "Bob Builder @bob asked to use your likeness: answer",
        "status": "Bob Builder @bob posted a new clip",
        "update": "Bob Builder @bob edited a clip you interacted with",
        "fedisora.render_finished": "Your render is ready: see it and publish it",
        "fedisora.render_failed": "Your render failed: see why",
    }
    for kind, words in expected.items():
        assert shown[kind][0] == words, (kind, shown[kind][0])
    # the links: accounts to their profiles, clips to their pages, comments to theirs
    assert '<a class="note-account" href="/@bob">' in shown["mention"][1]
    assert f'href="https://{DOMAIN}/users/bob/comments/{reply.pk}"' in shown["mention"][1]
    assert f'<a class="note-target" href="/@ann/{clip.pk}">' in shown["reblog"][1]
    assert f'<a class="note-target" href="/@bob/{remix.pk}">' in shown["fedisora.remix"][1]
    assert f'href="/@bob/{remix.pk}"' in shown["fedisora.likeness_use"][1]
    # a likeness request links to the requests to answer (web.likeness_settings)
    answer = '<a class="note-target" href="/settings/likeness/requests#incoming">answer</a>'
    assert answer in shown["fedisora.likeness_request"][1]
    assert f'href="/renders/{job.pk}"' in shown["fedisora.render_finished"][1]
    # the comment page the mention links to opens in a browser
    async with logged_in(web, "ann") as http:
        page = await http.get(f"/users/bob/comments/{reply.pk}")
        assert page.status_code == 200 and "what a sea" in page.text


async def test_a_use_of_ones_likeness_in_a_render_links_to_the_uses(
    web: httpx.ASGITransport,
) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    job = await RenderJob.create(account=bob, state="ready", spec={"prompt": "ann dances"})
    await notify(
        ann, NotificationType.LIKENESS_USE, dedupe_key="u1", from_account=bob, render_job=job
    )
    async with logged_in(web, "ann") as http:
        (kind, words, markup), *_ = notes((await http.get("/notifications")).text)
        # bob's render is not ann's page: the uses of her likeness are
        assert kind == "fedisora.likeness_use"
        assert words == "@bob used your likeness in a render (not posted): see the uses"
        assert 'href="/settings/likeness/uses"' in markup and "/renders/" not in markup
        assert (await http.get("/settings/likeness/uses")).status_code == 200


async def test_a_notification_about_a_clip_no_longer_visible_is_not_shown(
    web: httpx.ASGITransport,
) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    clip = await posts.post_clip(ann, await rendered_video(ann))
    theirs = await posts.post_clip(bob, await rendered_video(bob), caption="@ann hi")
    await interactions.like(bob, clip)
    await posts.delete_clip(bob, theirs)
    async with logged_in(web, "ann") as http:
        kinds = [k for k, _, _ in notes((await http.get("/notifications")).text)]
    assert kinds == ["favourite"]  # the mention's clip was deleted


async def test_pages_go_back_in_time_without_repeating_a_group(
    web: httpx.ASGITransport,
) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    fans = [await local_account(f"fan{n}") for n in range(3)]
    clip = await posts.post_clip(ann, await rendered_video(ann))
    await interactions.like(fans[0], clip)  # the oldest like: its group is the newest one's
    for n in range(24):
        await notify(ann, NotificationType.MENTION, dedupe_key=f"m{n}", from_account=bob, clip=clip)
    await interactions.like(fans[1], clip)
    await interactions.like(fans[2], clip)
    async with logged_in(web, "ann") as http:
        first = await http.get("/notifications")
        one = notes(first.text)
        assert len(one) == 20
        assert one[0][1] == "@fan2 and 2 others liked your clip"
        older = re.search(
            r'<a rel="next" href="(/notifications\?max_id=\d+)">Older</a>', first.text
        )
        assert older is not None
        second = await http.get(older.group(1))
        two = notes(second.text)
        assert [k for k, _, _ in two] == ["mention"] * 5  # the first like is not shown again
        assert (
            'rel="next"' not in second.text and '<a href="/notifications">Newest</a>' in second.text
        )
        assert (await http.get("/notifications?max_id=nope")).status_code == 400
        last = await http.get("/notifications?max_id=1")
        assert last.status_code == 200 and "No older notifications." in last.text


async def test_dismiss_and_clear_need_the_form_token(web: httpx.ASGITransport) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    clip = await posts.post_clip(ann, await rendered_video(ann))
    await interactions.like(bob, clip)
    await follows.follow(bob, ann)
    async with logged_in(web, "ann") as http:
        page = (await http.get("/notifications")).text
        csrf = form_csrf(page)
        key = re.search(r'data-group="([^"]+)" data-type="favourite"', page)
        assert key is not None
        group = key.group(1)
        for data in ({"group": group}, {"group": group, "csrf": "forged"}):
            r = await http.post("/notifications/dismiss", data=data)
            assert r.status_code == 403
        assert await Notification.filter(dismissed=True).count() == 0
        async with logged_in(web, "bob") as other:
            bob_csrf = form_csrf((await other.get("/notifications")).text)
            r = await other.post("/notifications/dismiss", data={"group": group, "csrf": bob_csrf})
            assert r.status_code == 404  # not bob's
        r = await http.post("/notifications/dismiss", data={"group": group, "csrf": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/notifications"
        assert [k for k, _, _ in notes((await http.get("/notifications")).text)] == ["follow"]
        r = await http.post("/notifications/dismiss", data={"group": "x" * 500, "csrf": csrf})
        assert r.status_code == 404
        assert (await http.post("/notifications/clear", data={})).status_code == 403
        r = await http.post("/notifications/clear", data={"csrf": csrf})
        assert r.status_code == 303
        page = (await http.get("/notifications")).text
        assert notes(page) == [] and "No notifications yet." in page
    me = await Account.get(username="ann")
    assert await Notification.filter(recipient_id=me.pk, dismissed=False).count() == 0


async def test_visitors_are_sent_to_log_in(web: httpx.ASGITransport) -> None:
    async with browser(web) as anon:
        r = await anon.get("/notifications")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/notifications"
        r = await anon.post("/notifications/clear", data={"csrf": "x"})
        assert r.status_code == 401


async def test_new_since_last_look_and_the_shared_marker(web: httpx.ASGITransport) -> None:
    """Groups newer than the notifications marker are marked New; looking at the newest page
    moves the marker (the one the API's /api/v1/markers shares with the user's apps)."""
    ann, bob = await local_account("ann"), await local_account("bob")
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="the sea")
    await interactions.like(bob, clip)
    async with logged_in(web, "ann") as http:
        first = (await http.get("/notifications")).text
        assert "1 new since you last looked" in first
        assert first.count('<span class="badge badge-new">New</span>') == 1
        again = (await http.get("/notifications")).text
        assert "new since you last looked" not in again and "badge-new" not in again
        await follows.follow(bob, ann)
        third = (await http.get("/notifications")).text
        assert "1 new since you last looked" in third
        fresh = [n for n in notes(third) if "badge-new" in n[2]]
        assert [n[0] for n in fresh] == ["follow"]
        # an app reads the same position
        marker = await Marker.get(account_id=ann.pk, timeline="notifications")
        newest = await Notification.filter(recipient_id=ann.pk).order_by("-id").first()
        assert newest is not None and marker.last_read_id == newest.pk


async def test_the_tab_badge_counts_what_is_new(web: httpx.ASGITransport) -> None:
    ann, bob = await local_account("ann"), await local_account("bob")
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="the sea")
    async with logged_in(web, "ann") as http:
        feed = (await http.get("/explore")).text
        assert '<span class="tab-badge" data-badge="/notifications/badge"></span>' in feed
        empty = await http.get("/notifications/badge")
        assert empty.status_code == 200 and "tab-count" not in empty.text
        assert empty.headers["cache-control"] == "no-store"
        await interactions.like(bob, clip)
        await follows.follow(bob, ann)
        badge = (await http.get("/notifications/badge")).text
        assert '<span class="tab-count" aria-hidden="true">2</span>' in badge
        assert '<span class="visually-hidden">, 2 new</span>' in badge
        page = (await http.get("/notifications")).text  # seen: the count goes
        assert 'data-badge="/notifications/badge"' not in page  # not on its own tab
        assert "tab-count" not in (await http.get("/notifications/badge")).text
    async with browser(web) as visitor:
        r = await visitor.get("/notifications/badge")
        assert r.status_code == 200 and "tab-count" not in r.text
        assert "data-badge" not in (await visitor.get("/explore")).text
