"""Every ActivityPub id here opens a page in a browser and the JSON for a server: the
actor, clips, comments (with a link that lands on the comment in its thread), the
collections (sent to the page that shows them) and a likeness consent (in words)."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from factories import local_account, rendered_video
from likenesses import verified_likeness
from webhelpers import browser, logged_in

from fedisora.config import Settings
from fedisora.models import Visibility, utcnow
from fedisora.services import follows, interactions, posts
from fedisora.services import likeness as likeness_svc
from fedisora.services.threads import COMMENTS_PAGE

AP = {"accept": "application/activity+json"}


async def test_collections_and_alternates_send_browsers_to_pages(
    web: httpx.ASGITransport,
) -> None:
    alice = await local_account("alice")
    clip = await posts.post_clip(alice, await rendered_video(alice), caption="hi")
    base = f"/users/alice/clips/{clip.pk}"
    redirects = {
        "/users/alice/outbox": "/@alice",
        "/users/alice/followers": "/@alice/followers",
        "/users/alice/following": "/@alice/following",
        "/users/alice/collections/featured": "/@alice",
        f"{base}/video": f"/@alice/{clip.pk}",
        f"{base}/likes": f"/@alice/{clip.pk}",
        f"{base}/shares": f"/@alice/{clip.pk}",
        f"{base}/replies": f"/@alice/{clip.pk}#comments",
        "/actor/outbox": "/actor",
    }
    async with browser(web) as http:
        for path, page in redirects.items():
            r = await http.get(path)
            assert r.status_code == 303 and r.headers["location"] == page, path
            assert "Accept" in r.headers["vary"]
            shown = await http.get(urlsplit(page).path)
            assert shown.status_code == 200, path
            assert shown.headers["content-type"].startswith("text/html"), path
        # A server still gets the JSON at every one of them.
        for path in redirects:
            r = await http.get(path, headers=AP)
            assert r.status_code == 200, path
            assert r.headers["content-type"].startswith("application/activity+json"), path
        # A name that is nobody's: the profile page says so, in a page.
        r = await http.get("/users/nobody/outbox", follow_redirects=True)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")


async def test_a_comment_opens_as_a_page_with_its_thread(web: httpx.ASGITransport) -> None:
    alice, bob = await local_account("alice"), await local_account("bob")
    clip = await posts.post_clip(alice, await rendered_video(alice), caption="a sunset")
    first = await interactions.comment(bob, clip, "First! <b>bold</b>")
    # Enough comments that the reply is not on the clip page's first page of comments.
    for n in range(COMMENTS_PAGE):
        await interactions.comment(alice, clip, f"filler {n}")
    reply = await interactions.comment(alice, clip, "Thanks @bob", parent=first)
    async with browser(web) as http:
        r = await http.get(reply.uri.replace("https://fedisora.test", ""))
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "Thanks" in r.text and "&lt;b&gt;" not in r.text
        assert f'href="{first.uri}"' in r.text  # the comment it answers
        assert "@bob" in r.text and "a clip by @alice" in r.text
        thread = re.search(r'href="(/@alice/\d+\?after=\d+#comment-\d+)"', r.text)
        assert thread is not None
        page = await http.get(thread.group(1).split("#")[0])
        assert f'id="comment-{reply.pk}"' in page.text  # it lands on the reply
        bold = await http.get(first.uri.replace("https://fedisora.test", ""))
        assert "&lt;b&gt;bold&lt;/b&gt;" in bold.text  # the author's text, escaped
        # A server gets the Note.
        note = await http.get(reply.uri.replace("https://fedisora.test", ""), headers=AP)
        assert note.json()["type"] == "Note"


async def test_a_private_or_deleted_comment_page(web: httpx.ASGITransport) -> None:
    alice, bob = await local_account("alice"), await local_account("bob")
    clip = await posts.post_clip(
        alice, await rendered_video(alice), caption="for friends", visibility=Visibility.FOLLOWERS
    )
    await follows.follow(bob, alice)
    hidden = await interactions.comment(alice, clip, "only for followers")
    path = hidden.uri.replace("https://fedisora.test", "")
    async with browser(web) as visitor:
        r = await visitor.get(path)
        assert r.status_code == 404 and "not visible to you" in r.text
        assert "only for followers" not in r.text
    async with logged_in(web, "bob") as http:
        r = await http.get(path)
        assert r.status_code == 200 and "only for followers" in r.text
    await interactions.delete_comment(alice, hidden)
    async with logged_in(web, "bob") as http:
        r = await http.get(path)
        assert r.status_code == 410 and r.headers["content-type"].startswith("text/html")
        r = await http.get("/users/alice/comments/123")
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")


async def test_a_consent_opens_in_words(web: httpx.ASGITransport, settings: Settings) -> None:
    owner, gus = await local_account("owner"), await local_account("gus")
    await verified_likeness(owner, settings, audience="approved", restrictions="no ads")
    row = await likeness_svc.grant(owner, gus, expires_at=utcnow() + timedelta(days=1))
    assert row.uri is not None
    path = urlsplit(row.uri).path
    async with browser(web) as http:
        r = await http.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "@owner" in r.text and "@gus" in r.text and "Expires" in r.text
        assert "eddsa-jcs-2022" in r.text
        signed = await http.get(path, headers=AP)
        assert signed.json()["type"] == "LikenessAuthorization"
        await likeness_svc.revoke_grant(owner, row.pk)
        r = await http.get(path)
        assert r.status_code == 410 and "Revoked on" in r.text
        assert (await http.get(path, headers=AP)).json()["type"] == "LikenessRevocation"
        r = await http.get("/likeness/grants/999")
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
