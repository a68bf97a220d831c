"""The public pages a browser (say a Mastodon user clicking through) lands on: a local
account's profile (``/users/<name>``, ``/@<name>``), a local clip (``/users/<name>/clips/<id>``,
``/@<name>/<id>``) and a hashtag (``/tags/<name>``).

Each is the real app on the real database: clips are posted through the services, remote
clips come in as a peer federates them (:func:`handle_activity`). What is checked: who sees
what (a followers-only or direct clip never shows to anyone not allowed, anywhere, its
metadata included), the OpenGraph tags previews are built from, the 4xx pages (403
suspended, 410 deleted, 404 unknown or hidden, 400 bad cursor), pagination, and the escaping
of everything a remote peer or a user wrote. ActivityPub clients still get JSON at the same
URLs.
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Sequence
from typing import Any

import httpx
from factories import local_account, rendered_video
from webhelpers import (
    DOMAIN,
    PEER,
    browser,
    card,
    create,
    logged_in,
    peer_account,
    receive,
    scripts_besides_app,
)

from fedisora import urls
from fedisora.config import Settings
from fedisora.federation.context import Federation
from fedisora.ids import new_id
from fedisora.models import Account, Clip, Comment, MediaFile
from fedisora.services import follows, interactions, posts
from fedisora.services.account_deletion import delete_local_account, suspend_account
from fedisora.services.accounts import create_instance_actor

AP = {"Accept": "application/activity+json"}


async def clip(author: Account, caption: str = "", **kwargs: Any) -> Clip:
    return await posts.post_clip(author, await rendered_video(author), caption=caption, **kwargs)


def path(url: str) -> str:
    return url.removeprefix(f"https://{DOMAIN}")


def meta(page: str) -> dict[str, str]:
    """The page's ``<meta property|name=... content=...>`` tags, unescaped."""
    head = page.split("</head>", 1)[0]
    return {
        key: htmllib.unescape(value)
        for key, value in re.findall(r'<meta (?:property|name)="([^"]+)" content="([^"]*)">', head)
    }


def alternate(page: str) -> str | None:
    found = re.search(
        r'<link rel="alternate" type="application/activity\+json" href="([^"]*)">', page
    )
    return htmllib.unescape(found.group(1)) if found else None


def assert_page(r: httpx.Response, status: int) -> str:
    """A server-rendered page in the site layout, answered with *status*."""
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("text/html")
    assert "source code of this instance" in r.text  # base.html's footer
    return r.text


async def remote_clip(
    fed: Federation,
    author: Account,
    n: int,
    *,
    visibility: str = "public",
    content: str = "<p>waves #Sea</p>",
    hashtags: Sequence[str] = ("Sea",),
) -> Clip:
    """A clip *author*'s peer federates."""
    activity = create(author, n, visibility=visibility, content=content, hashtags=hashtags)
    return await receive(fed, activity)


# --- profiles --------------------------------------------------------------------------------


async def test_profile_page_for_anonymous_viewers(web: httpx.ASGITransport) -> None:
    ann = await local_account("ann", display_name='Ann "<b>the</b>" Maker')
    await Account.filter(pk=ann.pk).update(
        note="I make <script>alert(1)</script> clips of the #Sea\n\nand more",
        avatar_url=f"https://{DOMAIN}/media/avatars/ann.png",
    )
    public = await clip(ann, "a public wave")
    unlisted = await clip(ann, "an unlisted wave", visibility="unlisted")
    private = await clip(ann, "a secret for followers", visibility="private")
    direct = await clip(ann, "a direct secret", visibility="direct")

    async with browser(web) as anon:
        at_users = await anon.get("/users/ann")
        at_handle = await anon.get("/@ann")
        other_case = await anon.get("/@ANN")
        page = assert_page(at_users, 200)
        assert assert_page(at_handle, 200) == page == assert_page(other_case, 200)
        assert "Accept" in at_users.headers["vary"]

        # Who: the display name and bio escaped, the handle, the counts, the avatar.
        assert "<h1>Ann &#34;&lt;b&gt;the&lt;/b&gt;&#34; Maker</h1>" in page
        assert "@ann@fedisora.test" in page
        assert "<script>alert(1)" not in page
        assert "I make &lt;script&gt;alert(1)&lt;/script&gt; clips" in page
        assert f'href="https://{DOMAIN}/tags/sea" class="mention hashtag"' in page
        assert "<p>and more</p>" in page  # the bio's paragraphs
        assert f'<img class="avatar" src="https://{DOMAIN}/media/avatars/ann.png"' in page
        assert re.search(
            r'<strong>4</strong> clips · <a href="/@ann/following"><strong>0</strong> following',
            page,
        )

        # What: public and unlisted clips, newest first; nothing followers-only or direct.
        shown = [card(page, c) for c in (unlisted, public)]
        assert all(shown)
        assert page.index(shown[0]) < page.index(shown[1])
        assert "unlisted" in shown[0]
        for hidden in (private, direct):
            assert not card(page, hidden)
            assert f"/{hidden.pk}" not in page
        assert "secret" not in page
        # The grid's posters link to the clip pages here; the video plays there only.
        assert f'<a class="grid-link" href="/@ann/{public.pk}">' in shown[1]
        assert "nofollow" not in shown[1] and "<video" not in page

        # Link previews and discovery of the actor.
        tags = meta(page)
        assert tags["og:type"] == "profile"
        assert tags["og:title"] == 'Ann "<b>the</b>" Maker (@ann@fedisora.test)'
        assert tags["og:url"] == f"https://{DOMAIN}/@ann"
        assert tags["og:site_name"]
        assert tags["og:image"] == f"https://{DOMAIN}/media/avatars/ann.png"
        assert tags["og:description"].startswith("4 clips, 0 following, 0 followers · I make")
        assert "\n" not in tags["og:description"]
        assert tags["twitter:card"] == "summary_large_image"
        assert tags["profile:username"] == "ann@fedisora.test"
        assert alternate(page) == ann.uri
        assert '<link rel="canonical" href="https://fedisora.test/@ann">' in page

        # ActivityPub clients still get the actor.
        doc = await anon.get("/users/ann", headers=AP)
        assert doc.status_code == 200 and doc.json()["id"] == ann.uri
        moved = await anon.get("/@ann", headers=AP)
        assert moved.status_code == 302 and moved.headers["location"] == ann.uri
        assert (await anon.get("/@no!such", headers=AP)).status_code == 404


async def test_profile_clips_follow_the_visibility_rules(web: httpx.ASGITransport) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")  # follows ann
    await local_account("carol")  # mentioned in the direct clip
    await local_account("dave")  # nobody to ann
    eve = await local_account("eve")  # blocked by ann
    await follows.follow(bob, ann)
    public = await clip(ann, "open waves")
    private = await clip(ann, "friendly waves", visibility="private")
    direct = await clip(ann, "whispered waves for @carol", visibility="direct")
    await follows.block(ann, eve)

    expected = {
        "ann": {public, private, direct},
        "bob": {public, private},
        "carol": {public, direct},
        "dave": {public},
        "eve": set(),
    }
    words = {public: "open waves", private: "friendly waves", direct: "whispered waves"}
    for login, allowed in expected.items():
        async with logged_in(web, login) as http:
            page = assert_page(await http.get("/@ann"), 200)
        for row, word in words.items():
            assert bool(card(page, row)) is (row in allowed), (login, word)
            assert (word in page) is (row in allowed), (login, word)

    # A muted author's own profile still lists their clips (mutes hide them from lists).
    async with logged_in(web, "dave") as http:
        await follows.mute(await Account.get(username="dave"), ann)
        page = assert_page(await http.get("/@ann"), 200)
        assert card(page, public)
        assert not card(assert_page(await http.get("/"), 200), public)


async def test_profile_pages_and_bad_cursors(web: httpx.ASGITransport) -> None:
    ann = await local_account("ann")
    rows = [await clip(ann, f"wave {n}") for n in range(23)]
    newest_first = rows[::-1]
    async with browser(web) as anon:
        first = assert_page(await anon.get("/@ann"), 200)
        assert [bool(card(first, c)) for c in newest_first] == [True] * 20 + [False] * 3
        older = re.search(r'<a rel="next" href="/@ann\?max_id=(\d+)">Older clips</a>', first)
        assert older is not None and int(older.group(1)) == newest_first[19].pk
        second = assert_page(await anon.get(f"/users/ann?max_id={older.group(1)}"), 200)
        assert [bool(card(second, c)) for c in newest_first] == [False] * 20 + [True] * 3
        assert 'rel="next"' not in second
        assert '<a href="/@ann">Newest clips</a>' in second

        for bad in ("abc", "-1", "1.5", "²", "9" * 19, "1" * 40, "0x10", " 1"):
            r = await anon.get("/@ann", params={"max_id": bad})
            page = assert_page(r, 400)
            assert "max_id must be the id of a clip" in page
        assert_page(await anon.get("/@ann", params={"max_id": str(2**63 - 1)}), 200)
        # Unknown parameters are ignored; the feed refuses bad cursors the same way.
        assert_page(await anon.get("/@ann", params={"page": "<x>", "q": "\x00"}), 200)
    async with logged_in(web, "ann") as http:
        assert_page(await http.get("/feed", params={"max_id": "1" * 40}), 400)


async def test_unknown_suspended_and_deleted_accounts(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    await create_instance_actor()
    sue = await local_account("sue")
    dan = await local_account("dan")
    sues = await clip(sue, "sue's clip")
    dans = await clip(dan, "dan's clip")
    await suspend_account(sue)
    await delete_local_account(dan, settings=settings)

    async with browser(web) as anon:
        for url in ("/users/nobody", "/@nobody", "/users/instance", "/@x%22%3E%3Cscript%3E"):
            page = assert_page(await anon.get(url), 404)
            assert "<script>" not in page
        for url in ("/users/sue", "/@sue", path(sues.uri), f"/@sue/{sues.pk}"):
            page = assert_page(await anon.get(url), 403)
            assert "suspended" in page and "sue&#39;s clip" not in page
        for url in ("/users/dan", "/@dan"):
            assert "@dan was deleted" in assert_page(await anon.get(url), 410)
        for url in (path(dans.uri), f"/@dan/{dans.pk}"):
            assert "This clip was deleted" in assert_page(await anon.get(url), 410)

        # ActivityPub stays as it was: the suspended actor, the deleted one's tombstone.
        suspended = await anon.get("/users/sue", headers=AP)
        assert suspended.status_code == 200 and suspended.json()["suspended"] is True
        gone = await anon.get("/users/dan", headers=AP)
        assert gone.status_code == 410 and gone.json()["type"] == "Tombstone"
        assert (await anon.get("/users/nobody", headers=AP)).json() == {"error": "no such actor"}

        # The instance actor: a page for browsers, the Application for ActivityPub.
        page = assert_page(await anon.get("/actor"), 200)
        assert alternate(page) == f"https://{DOMAIN}/actor"
        assert (await anon.get("/actor", headers=AP)).json()["type"] == "Application"


# --- clips -----------------------------------------------------------------------------------


async def test_clip_page(web: httpx.ASGITransport, fed: Federation) -> None:
    ann = await local_account("ann", display_name="Ann")
    bob = await local_account("bob")
    rita = await peer_account("rita", display_name="<img src=x onerror=alert(1)>")
    await follows.follow(bob, ann)
    shown = await clip(ann, 'storm "over" the <sea> #Waves')
    await interactions.like(bob, shown)
    remix = await posts.remix_clip(ann, shown, await rendered_video(ann), caption="again")
    await interactions.comment(bob, shown, "lovely #waves")
    await interactions.comment(bob, shown, "only for my followers", visibility="private")
    hostile = Comment(
        id=new_id(),
        account=rita,
        clip=shown,
        text="<script>alert('c')</script> see https://x.example/?a=1&b=2",
        content="<script>alert('stored')</script>",
        local=False,
        visibility="public",
    )
    hostile.uri = f"{rita.uri}/statuses/99"
    await interactions.store_comment(hostile, rita, shown, None)
    media = await MediaFile.get(pk=shown.media_id)
    video = f"https://{DOMAIN}/media/{media.file}"

    async with browser(web) as anon:
        by_id = await anon.get(path(shown.uri))
        by_url = await anon.get(path(shown.url or ""))
        page = assert_page(by_id, 200)
        assert assert_page(by_url, 200) == page
        assert "Accept" in by_id.headers["vary"]

        the_card = card(page, shown)
        player = f'<video class="clip-video" controls playsinline preload="none" src="{video}"'
        assert player in the_card
        assert 'data-provenance="trusted"' in the_card
        assert "storm &quot;over&quot; the &lt;sea&gt;" in the_card and "<sea>" not in page
        assert f'href="https://{DOMAIN}/tags/waves"' in the_card
        counts = dict(
            re.findall(
                r'<span class="action-name">(\w+)</span> <span class="action-count">(\d+)</span>',
                page,
            )
        )
        assert counts == {"Like": "1", "Comment": "3", "Remix": "1", "Boost": "0"}
        assert '<a href="/@ann">More clips by Ann (@ann@fedisora.test)</a>' in page
        # Comments: the public ones; the remote one from its text, escaped, linked as UGC.
        assert "lovely" in page and "only for my followers" not in page
        assert not scripts_besides_app(page) and "alert(&#39;stored&#39;)" not in page
        assert "&lt;script&gt;alert(&#x27;c&#x27;)&lt;/script&gt;" in page
        assert '<a href="https://x.example/?a=1&amp;b=2" rel="nofollow noopener ugc"' in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img src=x" not in page
        assert f'<a href="https://{PEER}/@rita" rel="nofollow noopener ugc"' in page

        tags = meta(page)
        assert tags["og:type"] == "video.other"
        assert tags["og:title"] == "Ann (@ann@fedisora.test)"
        assert tags["og:description"] == 'storm "over" the <sea> #Waves'
        assert tags["og:url"] == shown.url
        assert tags["og:video"] == tags["og:video:secure_url"]
        assert tags["og:video"] == video
        assert tags["og:video:type"] == "video/mp4"
        assert (tags["og:video:width"], tags["og:video:height"]) == ("256", "448")
        assert tags["twitter:card"] == "summary"  # no poster, no avatar: no image
        assert "robots" not in tags
        assert alternate(page) == shown.uri
        assert 'content="storm &#34;over&#34; the &lt;sea&gt; #Waves"' in page

        # The remix says where it comes from.
        remix_page = assert_page(await anon.get(f"/@ann/{remix.pk}"), 200)
        assert f'Remix of <a href="/@ann/{shown.pk}">a clip by @ann</a>' in remix_page

        # Bob, a follower, sees his followers-only comment too.
    async with logged_in(web, "bob") as http:
        assert "only for my followers" in assert_page(await http.get(path(shown.uri)), 200)

    # ActivityPub clients still get the Note, at the id and from the url.
    async with browser(web) as anon:
        doc = await anon.get(path(shown.uri), headers=AP)
        assert doc.status_code == 200 and doc.json()["type"] == "Note"
        moved = await anon.get(f"/@ann/{shown.pk}", headers=AP)
        assert moved.status_code == 302 and moved.headers["location"] == shown.uri


async def test_followers_only_and_direct_clip_pages(web: httpx.ASGITransport) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    await local_account("carol")
    await local_account("dave")
    await follows.follow(bob, ann)
    private = await clip(ann, "friends only", visibility="private")
    direct = await clip(ann, "hey @carol", visibility="direct")

    allowed = {"ann": {private, direct}, "bob": {private}, "carol": {direct}, "dave": set()}
    for login, rows in allowed.items():
        async with logged_in(web, login) as http:
            for row in (private, direct):
                for url in (path(row.uri), f"/@ann/{row.pk}"):
                    r = await http.get(url)
                    if row in rows:
                        page = assert_page(r, 200)
                        assert card(page, row)
                        # Its page says nothing about it to previews or crawlers.
                        assert not any(k.startswith(("og:", "twitter:")) for k in meta(page))
                        assert meta(page)["robots"] == "noindex, noarchive"
                        assert alternate(page) is None
                    else:
                        page = assert_page(r, 404)
                        assert row.caption not in page and "og:" not in page
    async with browser(web) as anon:
        for row in (private, direct):
            page = assert_page(await anon.get(path(row.uri)), 404)
            assert row.caption not in page
            assert (await anon.get(path(row.uri), headers=AP)).status_code == 404


async def test_bad_clip_urls(web: httpx.ASGITransport) -> None:
    ann = await local_account("ann")
    await local_account("bob")
    anns = await clip(ann, "mine")
    gone = await clip(ann, "gone soon")
    await posts.delete_clip(ann, gone)
    async with browser(web) as anon:
        for url in (
            "/users/ann/clips/abc",
            "/@ann/abc",
            "/users/ann/clips/99999999999999999999999",
            "/@ann/99999999999999999999999",
            "/@ann/" + "9" * 5000,
            "/users/ann/clips/12",
            f"/users/bob/clips/{anns.pk}",  # someone else's clip
            f"/@bob/{anns.pk}",
            f"/users/nobody/clips/{anns.pk}",
        ):
            assert_page(await anon.get(url), 404)
        assert "This clip was deleted" in assert_page(await anon.get(path(gone.uri)), 410)
        assert (await anon.get(path(gone.uri), headers=AP)).json()["type"] == "Tombstone"
        assert (await anon.get("/users/ann/clips/abc", headers=AP)).json() == {
            "error": "no such clip"
        }
        assert (await anon.get("/@ann/abc", headers=AP)).status_code == 404


async def test_sensitive_and_unlisted_clip_previews(web: httpx.ASGITransport) -> None:
    ann = await local_account("ann")
    await Account.filter(pk=ann.pk).update(avatar_url=f"https://{DOMAIN}/media/a.png")
    ann = await Account.get(pk=ann.pk)
    warned = await clip(ann, "the details", spoiler_text='spiders "up close"')
    unlisted = await clip(ann, "quietly", visibility="unlisted")
    await MediaFile.filter(pk=unlisted.media_id).update(poster_file="posters/u.jpg")
    async with browser(web) as anon:
        page = assert_page(await anon.get(path(warned.uri)), 200)
        tags = meta(page)
        assert tags["og:description"] == 'CW: spiders "up close"'
        assert "og:video" not in tags  # a preview does not show what the warning hides
        assert tags["og:image"] == f"https://{DOMAIN}/media/a.png"
        assert '<details class="cw"><summary>spiders &#34;up close&#34;</summary>' in page

        page = assert_page(await anon.get(path(unlisted.uri)), 200)
        tags = meta(page)
        assert tags["og:image"] == f"https://{DOMAIN}/media/posters/u.jpg"
        assert tags["og:description"] == "quietly"
        assert tags["robots"] == "noindex, noarchive"  # unlisted: not for search engines
        assert alternate(page) == unlisted.uri


# --- hashtags --------------------------------------------------------------------------------


async def test_tag_page_lists_public_clips_only(web: httpx.ASGITransport, fed: Federation) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    rita = await peer_account("rita", display_name="<script>alert('rita')</script>")
    await follows.follow(bob, ann)
    await follows.follow(bob, rita)  # pending: bob is no follower of rita's
    public = await clip(ann, "the #Sea at dawn")
    await clip(ann, "the #sea unlisted", visibility="unlisted")
    private = await clip(ann, "the #sea for friends", visibility="private")
    await clip(ann, "the #sea, directly", visibility="direct")
    await clip(ann, "no tag here, sea")
    other = await clip(ann, "#seaside")
    remote = await remote_clip(fed, rita, 1, content="<p>remote <b>#Sea</b></p>")
    await remote_clip(fed, rita, 2, visibility="private")
    gone = await clip(ann, "#sea soon gone")
    await posts.delete_clip(ann, gone)

    for who in (None, "bob", "ann"):
        async with logged_in(web, who) if who else browser(web) as http:
            page = assert_page(await http.get("/tags/sea"), 200)
            assert card(page, remote) and card(page, public)
            assert page.index(card(page, remote)) < page.index(card(page, public))
            assert len(re.findall(r"<article ", page)) == 2, who
            assert "unlisted" not in page and "friends" not in page and "directly" not in page
            assert not card(page, private) and not card(page, other)
            assert f"media.{PEER}/videos/2.mp4" not in page
            for same in ("/tags/SEA", "/tags/Sea", "/tags/%23sea"):
                assert assert_page(await http.get(same), 200).count("<article ") == 2

    async with browser(web) as anon:
        page = assert_page(await anon.get("/tags/sea"), 200)
        assert "<h1>#sea</h1>" in page
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(&#39;rita&#39;)&lt;/script&gt;" in page
        # A remote caption's hashtags, re-rendered here, point at this page.
        assert f'href="https://{DOMAIN}/tags/sea" class="mention hashtag"' in card(page, remote)
        assert meta(page)["og:url"] == f"https://{DOMAIN}/tags/sea"

        # The hashtag links of local captions lead to these pages too.
        profile = assert_page(await anon.get("/@ann"), 200)
        links = re.findall(
            r'href="https://fedisora\.test(/tags/[^"]+)" class="mention hashtag"', profile
        )
        assert sorted(set(links)) == ["/tags/sea", "/tags/seaside"]
        for link in links:
            assert assert_page(await anon.get(link), 200).count("<article ") >= 1

        empty = assert_page(await anon.get("/tags/nothinghere"), 200)
        assert "No public clips are tagged #nothinghere yet." in empty
        for bad in (
            "/tags/c%2B%2B",
            "/tags/1234",
            "/tags/" + "a" * 101,
            "/tags/a%20b",
            "/tags/%3Cb%3E",
        ):
            assert "<b>" not in assert_page(await anon.get(bad), 404)
        assert_page(await anon.get("/tags/sea?max_id=nope"), 400)
        assert_page(await anon.get("/tags/日本"), 200)


async def test_tag_page_pages(web: httpx.ASGITransport) -> None:
    ann = await local_account("ann")
    rows = [await clip(ann, f"#wave number {n}") for n in range(21)][::-1]
    async with browser(web) as anon:
        first = assert_page(await anon.get("/tags/wave"), 200)
        assert [bool(card(first, c)) for c in rows] == [True] * 20 + [False]
        older = re.search(r'<a rel="next" href="(/tags/wave\?max_id=\d+)">', first)
        assert older is not None
        second = assert_page(await anon.get(older.group(1)), 200)
        assert [bool(card(second, c)) for c in rows] == [False] * 20 + [True]
        assert 'rel="next"' not in second


async def test_invalid_provenance_clips_stay_collapsed(
    web: httpx.ASGITransport, fed: Federation
) -> None:
    rita = await peer_account("rita")
    bad = await remote_clip(fed, rita, 1)
    fine = await remote_clip(fed, rita, 2)
    for row, state in ((bad, "invalid"), (fine, "verified")):
        media = await MediaFile.get(pk=row.media_id)
        await MediaFile.filter(pk=media.pk).update(
            provenance={
                **media.provenance,
                "state": state,
                "reason": "checked",
                "checked_at": "2026-01-02T03:04:05+00:00",
                "file_size": 1234,  # the check fetched the video: it is played from here
            }
        )
    async with browser(web) as anon:
        page = assert_page(await anon.get("/tags/sea"), 200)
    collapsed, shown = card(page, bad), card(page, fine)
    # In the grid, a clip whose provenance is invalid shows neither poster nor video: a
    # warning, and its label (a video plays only on a clip page, never in a grid).
    assert "provenance is invalid" in collapsed and 'data-provenance="invalid"' in collapsed
    assert "<video" not in page and "<img" not in collapsed
    assert f"media.{PEER}/posters/1.jpg" not in collapsed
    fine_media = await MediaFile.get(pk=fine.media_id)
    poster = urls.current().media_proxy(fine_media.pk, "small", str(fine_media.remote_poster_url))
    assert "provenance is invalid" not in shown and f'src="{poster}"' in shown
