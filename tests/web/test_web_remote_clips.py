"""Remote clips on the web pages: a logged-in user's feed shows the clips of the remote
accounts they follow, played through this server's media proxy once their provenance check
fetched the video (never from the peer's URLs: tests/federation/test_fed_media_proxy.py),
each with its provenance label
(verified, unverified, invalid, or still checking), under the API's visibility rules, with
everything the peer sent escaped.

Remote clips arrive as a peer federates them: a Create(Note) built by the real serializer goes
through :func:`handle_activity` (the code the inbox machine runs). The labels are then set on
the media as the RemoteMediaCheck machine leaves them (that machine is tested on its own in
tests/federation/test_fed_media_check.py).
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from factories import local_account, rendered_video
from webhelpers import (
    PEER,
    browser,
    card,
    create,
    logged_in,
    peer_account,
    receive,
    scripts_besides_app,
    video_url,
)

from fedisora import urls
from fedisora.federation.context import Federation
from fedisora.federation.ingest import handle_activity
from fedisora.models import Account, Clip, MediaFile, TimelineEntry
from fedisora.services import follows, posts

CHECKED = "2026-01-02T03:04:05+00:00"


async def label(clip: Clip, state: str, reason: str, **details: Any) -> None:
    """Set the clip's label as the RemoteMediaCheck machine writes it once it fetched the
    video (the size and digest of what it checked among the details)."""
    media = await MediaFile.get(pk=clip.media_id)
    await MediaFile.filter(pk=media.pk).update(
        provenance={
            **media.provenance,
            "file_size": 1234,
            "file_sha256": "ab" * 32,
            **details,
            "state": state,
            "reason": reason,
            "checked_at": CHECKED,
        }
    )


async def proxied(clip: Clip, kind: str = "original") -> str:
    """Where the page plays *clip*'s video (or shows its poster) from: this server."""
    media = await MediaFile.get(pk=clip.media_id)
    remote = media.remote_url if kind == "original" else media.remote_poster_url
    url = urls.current().media_proxy(media.pk, kind, str(remote))
    assert url.startswith("https://fedisora.test/media_proxy/")
    return url


async def accepted_follow(fed: Federation, follower: Account, target: Account) -> None:
    """*follower* follows remote *target*, and the peer's Accept comes in through the inbox."""
    row = await follows.follow(follower, target)
    accept = {
        "id": f"{target.uri}#accepts/{row.pk}",
        "type": "Accept",
        "actor": target.uri,
        "object": {"id": row.uri, "type": "Follow", "actor": follower.uri, "object": target.uri},
    }
    await handle_activity(fed, accept)


async def test_a_follower_sees_remote_clips_with_their_provenance_labels(
    web: httpx.ASGITransport, fed: Federation
) -> None:
    ann = await local_account("ann")
    await local_account("bob")
    rita = await peer_account("rita", display_name="Rita")
    await accepted_follow(fed, ann, rita)

    verified = await receive(fed, create(rita, 1))
    unverified = await receive(fed, create(rita, 2, visibility="private"))
    invalid = await receive(fed, create(rita, 3))
    checking = await receive(fed, create(rita, 4, visibility="private"))
    await label(verified, "verified", f"rendered and signed by {PEER}", file_manifest_digest="x")
    await label(
        unverified,
        "unverified",
        "the file carries no C2PA provenance manifest",
        file_manifest_digest=None,
    )
    await label(invalid, "invalid", "the manifest is signed by someone else")

    async with logged_in(web, "ann") as http:
        page = await http.get("/feed")
        style = (await http.get("/static/site.css")).text
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    clips = {
        "verified": verified,
        "unverified": unverified,
        "invalid": invalid,
        "checking": checking,
    }
    cards = {name: card(html, c) for name, c in clips.items()}
    assert all(cards.values()), html
    # Newest first, as the API's home timeline.
    positions = [html.index(cards[n]) for n in ("checking", "invalid", "unverified", "verified")]
    assert positions == sorted(positions)

    for n, (name, shown) in enumerate(cards.items(), start=1):
        # Played through this server once checked, never from the peer; linked out as user
        # content. A clip still being checked shows no video (nothing is fetched for it).
        clip = clips[name]
        if name == "checking":
            assert "<video" not in shown and "poster=" not in shown
            assert "The video shows once this server has checked its provenance." in shown
        else:
            assert f'src="{await proxied(clip)}"' in shown
        assert video_url(n) not in shown and f"media.{PEER}" not in shown
        # An invalid clip's poster is not even loaded (test_web_public_pages.py).
        poster = f'poster="{await proxied(clip, "small")}"'
        assert (poster in shown) is (name not in ("invalid", "checking"))
        assert "/media/" not in shown
        assert 'data-origin="remote"' in shown and f"from {PEER}" in shown
        assert f'href="https://{PEER}/@rita/{n}" rel="nofollow noopener ugc"' in shown
        assert f'href="https://{PEER}/@rita" rel="nofollow noopener ugc"' in shown
        assert "<strong>Rita</strong>" in shown and f"@rita@{PEER}" in shown
        assert "a lighthouse in a storm" in shown
        assert shown.count("data-provenance=") == 1, shown
        assert f'data-provenance="{name}"' in shown

    assert "Verified AI provenance" in cards["verified"]
    assert f"rendered and signed by {PEER}" in cards["verified"]
    assert "Unverified: no provenance manifest" in cards["unverified"]
    assert "Verified" not in cards["unverified"]
    assert "Invalid provenance" in cards["invalid"]
    assert "the manifest is signed by someone else" in cards["invalid"]
    # Invalid stands out: a warning sign, its own warning style, and the whole card framed.
    assert '<strong class="prov prov-invalid"' in cards["invalid"]
    assert "&#9888;" in cards["invalid"] and "clip-prov-invalid" in cards["invalid"]
    assert "prov-invalid" not in cards["verified"] + cards["unverified"] + cards["checking"]
    assert "Provenance checking…" in cards["checking"]
    assert "Verified" not in cards["checking"] and "Invalid" not in cards["checking"]
    # Followers-only clips say so; public ones carry no badge.
    assert "followers only" in cards["unverified"] and "followers only" in cards["checking"]
    assert "followers only" not in cards["verified"] + cards["invalid"]
    # The labels are styled as the local clips' labels are (the site's style sheet).
    assert '<link rel="stylesheet" href="/static/site.css">' in html
    assert ".prov-invalid {" in style and ".prov-checking {" in style


async def test_a_non_follower_sees_no_followers_only_or_direct_remote_clip(
    web: httpx.ASGITransport, fed: Federation
) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    rita = await peer_account("rita")
    await accepted_follow(fed, ann, rita)
    public = await receive(fed, create(rita, 1))
    followers_only = await receive(fed, create(rita, 2, visibility="private"))
    to_ann = await receive(fed, create(rita, 3, visibility="direct", mentions=[ann]))

    async with logged_in(web, "ann") as http:
        mine = (await http.get("/feed")).text
    assert card(mine, public) and card(mine, followers_only)
    assert "direct" in card(mine, to_ann)  # addressed to ann: hers to see, marked direct

    async with logged_in(web, "bob") as http:
        feed = await http.get("/feed")
        home = await http.get("/")
        assert feed.status_code == home.status_code == 200
        for page in (feed.text, home.text):
            assert not card(page, public) and not card(page, followers_only)
            assert not card(page, to_ann)
            assert video_url(2) not in page and video_url(3) not in page

        # Even with rows in bob's feed (as a follow since rejected could leave), the page
        # applies the API's visibility rules: only the public clip is shown to him.
        for clip in (public, followers_only, to_ann):
            await TimelineEntry.create(owner_id=bob.pk, clip_id=clip.pk)
        page = (await http.get("/feed")).text
        assert card(page, public)
        assert not card(page, followers_only) and not card(page, to_ann)
        assert video_url(2) not in page and video_url(3) not in page

    async with browser(web) as anon:
        r = await anon.get("/feed")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/feed"
        front = (await anon.get("/")).text
        assert video_url(1) not in front  # the instance's page lists clips made here only


async def test_remote_text_is_escaped_and_remote_urls_are_checked(
    web: httpx.ASGITransport, fed: Federation
) -> None:
    from web.pages import templates

    for name in ("feed.html", "home.html", "_clip.html", "_provenance.html"):
        assert templates.env.autoescape(name) is True  # type: ignore[operator]

    ann = await local_account("ann")
    mallory = await peer_account(
        "mallory", display_name="<script>alert('name')</script>", url="javascript:alert(1)"
    )
    await accepted_follow(fed, ann, mallory)
    clip = await receive(
        fed,
        create(
            mallory,
            1,
            content=(
                "<p>&lt;script&gt;alert('text')&lt;/script&gt; <b onmouseover=x()>bold</b> "
                "<img src=x onerror=alert(2)> see https://elsewhere.example/a?b=1&amp;c=2</p>"
                "<script>alert('markup')</script>"
            ),
            url="javascript:alert(3)",
            summary="<i>cw</i> & <script>alert(4)</script>",
        ),
    )
    # A row written with markup in it (however it got there) is not trusted either.
    await Clip.filter(pk=clip.pk).update(content="<script>alert('stored')</script>")

    async with logged_in(web, "ann") as http:
        page = (await http.get("/feed")).text
    shown = card(page, clip)
    assert shown, page
    assert not scripts_besides_app(page) and "alert('stored')" not in page
    assert "<img" not in shown and "<b " not in shown and "onmouseover" not in shown
    assert "onerror" not in shown and "javascript:" not in shown
    # The peer's text, shown as text.
    assert "&lt;script&gt;alert(&#x27;text&#x27;)&lt;/script&gt;" in shown
    assert "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;" in shown
    assert "&lt;i&gt;cw&lt;/i&gt; &amp; &lt;script&gt;alert(4)&lt;/script&gt;" in shown
    assert "<summary>" in shown
    # Links in the text are the server's own markup, marked as user content.
    assert (
        '<a href="https://elsewhere.example/a?b=1&amp;c=2" rel="nofollow noopener ugc" '
        'target="_blank">'
    ) in shown
    # The note's javascript: url is dropped for its id; the actor's for its uri.
    assert f'href="{clip.uri}" rel="nofollow noopener ugc"' in shown
    assert f'href="{mallory.uri}" rel="nofollow noopener ugc"' in shown
    assert video_url(1) not in shown  # not checked yet: no video, and never the peer's URL


async def test_a_remote_video_url_that_is_not_http_is_not_played(
    web: httpx.ASGITransport, fed: Federation
) -> None:
    ann = await local_account("ann")
    rita = await peer_account("rita")
    await accepted_follow(fed, ann, rita)
    clip = await receive(fed, create(rita, 1))
    await label(clip, "unverified", "the file carries no C2PA provenance manifest")
    await MediaFile.filter(pk=clip.media_id).update(
        remote_url="javascript:alert(1)", remote_poster_url="data:image/png;base64,AAAA"
    )
    async with logged_in(web, "ann") as http:
        shown = card((await http.get("/feed")).text, clip)
    assert "<video" not in shown and "javascript:" not in shown and "data:" not in shown
    assert "The video is not available." in shown


async def test_the_feed_mixes_local_and_remote_clips_and_pages(
    web: httpx.ASGITransport, fed: Federation
) -> None:
    ann = await local_account("ann")
    rita = await peer_account("rita")
    await accepted_follow(fed, ann, rita)
    own = await posts.post_clip(ann, await rendered_video(ann), caption="made here #sea")
    remote = [await receive(fed, create(rita, n)) for n in range(1, 22)]

    async with logged_in(web, "ann") as http:
        first = await http.get("/feed")
        assert first.status_code == 200
        assert sum(bool(card(first.text, c)) for c in remote) == 20
        assert not card(first.text, remote[0])
        older = re.search(r'href="/feed\?max_id=(\d+)"', first.text)
        assert older is not None
        second = (await http.get(f"/feed?max_id={older.group(1)}")).text
    assert card(second, remote[0])
    mine = card(second, own) or card(first.text, own)
    assert 'data-origin="local"' in mine and 'data-provenance="trusted"' in mine
    assert "Verified AI provenance · rendered here" in mine.replace("&middot;", "·")
    assert 'src="https://fedisora.test/media/clips/' in mine
    assert 'rel="nofollow noopener ugc"' not in mine  # nothing remote about it
