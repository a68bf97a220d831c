"""The vertical feed (``/``, ``/explore``), its pages as fragments, and the like, boost and
follow controls as plain form posts and as enhanced (fetch) posts (web/feed.py)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from factories import local_account, rendered_video
from webhelpers import DOMAIN, browser, card, create, form_csrf, logged_in, peer_account, receive

from fedisora.federation.context import Federation
from fedisora.models import Account, Boost, Clip, Follow, Like, User
from fedisora.services import follows, posts

PARTIAL = {"X-Fedisora-Partial": "1"}


async def clip(author: Account, caption: str = "", **kwargs: Any) -> Clip:
    return await posts.post_clip(author, await rendered_video(author), caption=caption, **kwargs)


def articles(page: str) -> list[str]:
    return re.findall(r'<article class="reel[^"]*"[^>]*data-clip-id="(\d+)"', page)


def older(page: str) -> str | None:
    found = re.search(r'<a class="feed-next" rel="next" href="([^"]+)"', page)
    return found.group(1).replace("&amp;", "&") if found else None


async def test_tabs_show_what_each_promises(web: httpx.ASGITransport, fed: Federation) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    cy = await local_account("cy")
    rita = await peer_account("rita")
    popular = await clip(bob, "a popular one #sea")
    quiet = await clip(cy, "a quiet one")
    hidden = await clip(cy, "for followers", visibility="private")
    remote = await receive(fed, create(rita, 1))
    await follows.follow(ann, bob)
    async with logged_in(web, "cy") as http:
        page = (await http.get(f"/@bob/{popular.pk}")).text  # cy likes bob's clip
        r = await http.post(f"/clips/{popular.pk}/like", data={"csrf": form_csrf(page)})
        assert r.status_code == 303

    async with logged_in(web, "ann") as http:
        foryou = await http.get("/")
        assert foryou.status_code == 200
        shown = articles(foryou.text)
        # For You's ranking (its order: tests/fedisora/for_you/test_rank.py): the local clips
        # ann may see, not the remote one without verified provenance
        assert set(shown) == {str(popular.pk), str(quiet.pk)}
        assert str(hidden.pk) not in shown
        assert 'role="feed"' in foryou.text and 'aria-busy="false"' in foryou.text
        assert 'aria-current="page">For You<' in foryou.text
        assert 'href="/create"' in foryou.text and 'href="/notifications"' in foryou.text
        assert 'href="/admin"' not in foryou.text  # not an admin

        following = (await http.get("/?tab=following")).text
        assert articles(following) == [str(popular.pk)]
        local = (await http.get("/?tab=local")).text
        assert set(articles(local)) == {str(popular.pk), str(quiet.pk)}
        federated = (await http.get("/?tab=federated")).text
        assert str(remote.pk) in articles(federated)
        assert (await http.get("/?tab=nonsense")).status_code == 404
        assert (await http.get("/?tab=local&max_id=x")).status_code == 400

        # each clip's overlay: author, caption with its hashtag, provenance, the buttons
        mine = card(foryou.text, popular)
        first = card(foryou.text, popular if shown[0] == str(popular.pk) else quiet)
        assert 'tabindex="0"' in mine and 'aria-posinset="1"' in first
        assert 'aria-setsize="-1"' in mine
        assert f'aria-labelledby="clip-{popular.pk}-by"' in mine
        assert '/tags/sea"' in mine  # the caption's hashtag links to its page
        assert f'href="/@bob/{popular.pk}#provenance"' in mine
        assert f'href="/@bob/{popular.pk}#comments"' in mine
        assert f'href="/create?remix_of={popular.pk}"' in mine
        assert 'aria-label="AI-generated video: a popular one #sea"' in mine
        assert re.search(r'aria-pressed="false">.*?Like</span> <span class="action-count">1<', mine)
        assert ">Following<" in mine  # ann follows bob
        for name in ("Like", "Comment", "Remix", "Share", "Boost"):
            assert f'<span class="action-name">{name}</span>' in mine
        # Without JavaScript: the first clip plays by itself and links to its page (a player
        # with controls); the others have controls.
        lead = (popular, "bob") if shown[0] == str(popular.pk) else (quiet, "cy")  # the first
        assert "<video" in first and " autoplay " in first and " controls " not in first
        link = f'href="/@{lead[1]}/{lead[0].pk}">Sound and controls: open the clip</a></noscript>'
        assert link in first
        second = card(local, quiet if articles(local)[0] == str(popular.pk) else popular)
        assert "<video" in second and " controls " in second and " autoplay " not in second

    async with browser(web) as anon:
        for path in ("/", "/explore", "/explore?tab=federated", "/explore?tab=trending"):
            r = await anon.get(path)
            assert r.status_code == 200, path
            assert str(hidden.pk) not in articles(r.text)
        front = (await anon.get("/")).text
        assert set(articles(front)) == {str(popular.pk), str(quiet.pk)}  # made here only
        assert (await anon.get("/?tab=following")).status_code == 404  # a visitor has none
        trending = (await anon.get("/explore?tab=trending")).text
        assert articles(trending) == [str(popular.pk)]
        assert 'href="/notifications"' not in front


async def test_pages_as_links_and_as_fragments(web: httpx.ASGITransport) -> None:
    ann = await local_account("ann")
    rows = [await clip(ann, f"wave {n}") for n in range(23)]
    newest = [str(c.pk) for c in rows[::-1]]
    async with browser(web) as anon:
        first = (await anon.get("/explore")).text
        assert articles(first) == newest[:10]
        link = older(first)
        assert link == f"/explore?tab=local&max_id={newest[9]}"
        # the no-JavaScript path: the link is a full page
        second = await anon.get(link)
        assert "<html" in second.text and articles(second.text) == newest[10:20]
        assert 'href="/explore?tab=local">Newest clips' in second.text
        # app.js fetches the same URL as a fragment: articles and the next link only
        fragment = await anon.get(link, headers=PARTIAL)
        assert fragment.status_code == 200
        assert "<html" not in fragment.text and "<header" not in fragment.text
        assert articles(fragment.text) == newest[10:20]
        assert "X-Fedisora-Partial" in fragment.headers["vary"]
        last = await anon.get(older(fragment.text) or "", headers=PARTIAL)
        assert articles(last.text) == newest[20:]
        assert older(last.text) is None and "all caught up" in last.text

        # "N new": what arrived since the page was made
        since = newest[0]
        assert (await anon.get(f"/feed/new?tab=local&since_id={since}")).text.strip() == ""
        await clip(ann, "fresh")
        await clip(ann, "fresher")
        fresh = await anon.get(f"/feed/new?tab=local&since_id={since}")
        assert "2 new clips" in fresh.text and 'href="/explore?tab=local"' in fresh.text
        assert (await anon.get("/feed/new?tab=local&since_id=nope")).status_code == 400


async def test_like_and_boost_by_form_and_by_fetch(web: httpx.ASGITransport) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    target = await clip(bob, "like me")
    async with logged_in(web, "ann") as http:
        page = (await http.get("/?tab=local")).text
        csrf = form_csrf(page)

        # without JavaScript: a 303 back to the page the form was on, at the clip
        r = await http.post(f"/clips/{target.pk}/like", data={"csrf": csrf, "next": "/?tab=local"})
        assert r.status_code == 303
        assert r.headers["location"] == f"/?tab=local#clip-{target.pk}"
        assert await Like.filter(account_id=ann.pk, clip_id=target.pk).count() == 1
        assert (await Clip.get(pk=target.pk)).likes_count == 1
        # no next field: the Referer's path on this site (another site's: home)
        r = await http.post(
            f"/clips/{target.pk}/like",
            data={"csrf": csrf},
            headers={"referer": f"https://{DOMAIN}/explore?tab=local"},
        )
        assert r.headers["location"] == f"/explore?tab=local#clip-{target.pk}"
        r = await http.post(
            f"/clips/{target.pk}/like",
            data={"csrf": csrf, "next": "https://evil.example/"},
        )
        assert r.headers["location"] == f"/#clip-{target.pk}"
        assert (await Clip.get(pk=target.pk)).likes_count == 1  # liking twice is one like

        # with JavaScript: the button re-rendered, pressed or not, with its count
        r = await http.post(
            f"/clips/{target.pk}/unlike",
            data={"next": "/"},
            headers={**PARTIAL, "X-CSRF-Token": csrf},
        )
        assert r.status_code == 200
        assert r.text.lstrip().startswith("<form")
        assert f'action="/clips/{target.pk}/like"' in r.text
        assert 'aria-pressed="false"' in r.text and '"action-count">0<' in r.text
        r = await http.post(f"/clips/{target.pk}/like", data={"csrf": csrf}, headers=PARTIAL)
        assert 'aria-pressed="true"' in r.text and '"action-count">1<' in r.text
        assert f'action="/clips/{target.pk}/unlike"' in r.text

        r = await http.post(f"/clips/{target.pk}/boost", data={"csrf": csrf}, headers=PARTIAL)
        assert 'aria-pressed="true"' in r.text and '"action-count">1<' in r.text
        assert await Boost.filter(account_id=ann.pk, clip_id=target.pk).exists()
        r = await http.post(f"/clips/{target.pk}/unboost", data={"csrf": csrf}, headers=PARTIAL)
        assert 'aria-pressed="false"' in r.text
        assert not await Boost.filter(account_id=ann.pk, clip_id=target.pk).exists()

        # CSRF: refused, with a message, and nothing done
        for headers in ({}, PARTIAL, {**PARTIAL, "X-CSRF-Token": "forged"}):
            r = await http.post(
                f"/clips/{target.pk}/unlike", data={"csrf": "forged"}, headers=headers
            )
            assert r.status_code == 403
            assert "did not come from this site" in r.text
        r = await http.post(f"/clips/{target.pk}/unlike", headers=PARTIAL)
        assert r.status_code == 403 and 'role="alert"' in r.text
        assert (await Clip.get(pk=target.pk)).likes_count == 1


async def test_refusals_anonymous_invisible_and_bad_ids(web: httpx.ASGITransport) -> None:
    await local_account("ann")
    bob = await local_account("bob")
    public = await clip(bob, "open")
    private = await clip(bob, "followers only", visibility="private")
    direct = await clip(bob, "just me", visibility="direct")
    async with browser(web) as anon:
        r = await anon.post(f"/clips/{public.pk}/like", data={"next": "/explore"})
        assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fexplore"
        r = await anon.post(f"/accounts/{bob.pk}/follow", headers=PARTIAL)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    async with logged_in(web, "ann") as http:
        csrf = form_csrf((await http.get("/")).text)
        for row in (private, direct):
            for action in ("like", "unlike", "boost"):
                r = await http.post(f"/clips/{row.pk}/{action}", data={"csrf": csrf})
                assert r.status_code == 404, (row.caption, action)
                assert "not visible to you" in r.text or "Record not found" in r.text
        for bad in ("0", "99999999999", "abc"):
            r = await http.post(f"/clips/{bad}/like", data={"csrf": csrf}, headers=PARTIAL)
            assert r.status_code == 404
        assert await Like.filter(clip_id__in=[private.pk, direct.pk]).count() == 0
        # the rules are the services': following yourself is refused in words
        ann = await Account.get(username="ann")
        r = await http.post(f"/accounts/{ann.pk}/follow", data={"csrf": csrf}, headers=PARTIAL)
        assert r.status_code == 422 and "cannot follow yourself" in r.text


async def test_follow_and_unfollow(web: httpx.ASGITransport) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    lee = await local_account("lee")
    await Account.filter(pk=lee.pk).update(locked=True)
    lee = await Account.get(pk=lee.pk)
    await clip(bob, "hello")
    async with logged_in(web, "ann") as http:
        csrf = form_csrf((await http.get("/?tab=local")).text)
        r = await http.post(
            f"/accounts/{bob.pk}/follow", data={"csrf": csrf, "next": "/?tab=local"}
        )
        assert r.status_code == 303 and r.headers["location"] == "/?tab=local"
        assert await Follow.filter(follower_id=ann.pk, target_id=bob.pk).exists()
        r = await http.post(f"/accounts/{bob.pk}/unfollow", data={"csrf": csrf}, headers=PARTIAL)
        assert r.status_code == 200 and 'aria-pressed="false"' in r.text and ">Follow<" in r.text
        assert f'data-enhance-key="follow-{bob.pk}"' in r.text
        assert not await Follow.filter(follower_id=ann.pk, target_id=bob.pk).exists()
        r = await http.post(f"/accounts/{lee.pk}/follow", data={"csrf": csrf}, headers=PARTIAL)
        assert ">Requested<" in r.text and 'aria-pressed="true"' in r.text
        nobody = (await Account.all().order_by("-id").first() or ann).pk + 1000  # no such id
        r = await http.post(f"/accounts/{nobody}/follow", data={"csrf": csrf})
        assert r.status_code == 404


async def test_shell_manifest_and_admin_link(web: httpx.ASGITransport) -> None:
    await local_account("ann")
    boss = await local_account("boss")
    await User.filter(account_id=boss.pk).update(is_admin=True)
    async with browser(web) as anon:
        r = await anon.get("/manifest.webmanifest")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/manifest+json")
        body = r.json()
        assert body["start_url"] == "/" and body["display"] == "standalone"
        for icon in body["icons"]:
            assert (await anon.get(icon["src"])).status_code == 200, icon
        front = (await anon.get("/")).text
        assert '<link rel="manifest" href="/manifest.webmanifest">' in front
        assert '<script type="module" src="/static/app.js"></script>' in front
        assert (await anon.get("/static/app.js")).status_code == 200
    async with logged_in(web, "ann") as http:
        assert 'href="/admin"' not in (await http.get("/settings")).text
    async with logged_in(web, "boss") as http:
        assert 'href="/admin"' in (await http.get("/settings")).text


async def test_admin_counts_people_not_the_instance_actor(web: httpx.ASGITransport) -> None:
    from fedisora.services.accounts import create_instance_actor

    await create_instance_actor()  # it signs the server's requests: nobody's account
    boss = await local_account("boss")
    await User.filter(account_id=boss.pk).update(is_admin=True)
    await local_account("ann")
    async with logged_in(web, "boss") as http:
        page = (await http.get("/admin")).text
    assert '<a href="/admin/accounts">2 local accounts</a>' in page


async def test_the_sound_control_follows_what_the_clip_claims(web: httpx.ASGITransport) -> None:
    """A clip whose signed claim says it has sound gets the Sound toggle; one rendered
    silent says "No sound" instead; another server's video, whose sound nobody knows, keeps
    the toggle (``MediaFile.has_sound``, which the API's ``meta.fedisora.audio`` reads too)."""
    ann = await local_account("ann")
    silent = await clip(ann, "a silent sea")
    loud = await posts.post_clip(
        ann,
        await rendered_video(ann, claim={"audio": True, "job_id": "1"}),
        caption="a bell at sea",
    )
    async with browser(web) as anon:
        page = (await anon.get("/explore")).text
    assert "action-sound" in card(page, loud) and "No sound" not in card(page, loud)
    assert "No sound" in card(page, silent) and "action-sound" not in card(page, silent)
    remote_media = await rendered_video(ann, local=False, state="verified")
    assert remote_media.has_sound() is None
    assert (await rendered_video(ann, claim={"audio": False})).has_sound() is False
