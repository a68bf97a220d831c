"""The clip page's actions: comments and replies (through the API's own service), deleting
one's own, the action bar (like, remix, boost, share, download) and the remix lineage."""

from __future__ import annotations

import re

import httpx
from factories import local_account, rendered_video
from webhelpers import browser, form_csrf, logged_in

from fedisora.models import Comment, Notification, Visibility
from fedisora.services import interactions, posts
from fedisora.services.interactions import MAX_COMMENT


async def _clip_page(http: httpx.AsyncClient, path: str) -> str:
    r = await http.get(path)
    assert r.status_code == 200, r.text[:500]
    return r.text


async def test_comment_reply_and_delete(web: httpx.ASGITransport) -> None:
    alice = await local_account("alice")
    await local_account("bob")
    clip = await posts.post_clip(alice, await rendered_video(alice), caption="a sunset")
    page_path = f"/@alice/{clip.pk}"
    async with logged_in(web, "bob") as http:
        page = await _clip_page(http, page_path)
        assert 'id="compose"' in page and f'action="{page_path}/comments"' in page
        for name in ("Like", "Comment", "Remix", "Boost", "Share", "Download"):
            assert f'<span class="action-name">{name}</span>' in page, name
        assert f'href="/create?remix_of={clip.pk}"' in page
        r = await http.post(
            f"{page_path}/comments", data={"csrf": form_csrf(page), "text": "Lovely @alice"}
        )
        assert r.status_code == 303
        first = await Comment.get(clip_id=clip.pk)
        assert r.headers["location"] == f"{page_path}?after={first.pk - 1}#comment-{first.pk}"
        assert first.text == "Lovely @alice" and first.parent_id is None
        assert await Notification.filter(recipient_id=alice.pk, type="mention").exists()
        shown = await _clip_page(http, r.headers["location"].split("#")[0])
        assert f'id="comment-{first.pk}"' in shown and "Lovely" in shown
        # Bob may delete his own comment: the button is there.
        assert f'action="/comments/{first.pk}/delete"' in shown
    async with logged_in(web, "alice") as http:
        page = await _clip_page(http, f"{page_path}?reply_to={first.pk}")
        assert "Replying to @bob" in page and f'name="parent_id" value="{first.pk}"' in page
        r = await http.post(
            f"{page_path}/comments",
            data={"csrf": form_csrf(page), "text": "Thanks!", "parent_id": str(first.pk)},
        )
        assert r.status_code == 303
        reply = await Comment.get(clip_id=clip.pk, parent_id=first.pk)
        shown = await _clip_page(http, f"{page_path}#comments")
        assert "replying to @bob" in shown and "comment-reply" in shown
        # The clip's author may delete any comment under it.
        r = await http.post(
            f"/comments/{first.pk}/delete", data={"csrf": form_csrf(page), "next": page_path}
        )
        assert r.status_code == 303 and r.headers["location"] == f"{page_path}#comments"
        assert (await Comment.get(pk=first.pk)).deleted_at is not None
    await local_account("carol")
    async with logged_in(web, "carol") as http:
        page = await _clip_page(http, page_path)
        assert f'action="/comments/{reply.pk}/delete"' not in page  # not hers
        r = await http.post(f"/comments/{reply.pk}/delete", data={"csrf": form_csrf(page)})
        assert r.status_code == 403 and "only the author" in r.text
    assert (await Comment.get(pk=reply.pk)).deleted_at is None


async def test_refused_comments_come_back_in_the_page(web: httpx.ASGITransport) -> None:
    alice = await local_account("alice")
    await local_account("bob")
    clip = await posts.post_clip(alice, await rendered_video(alice), caption="a sunset")
    path = f"/@alice/{clip.pk}/comments"
    async with logged_in(web, "bob") as http:
        page = await _clip_page(http, f"/@alice/{clip.pk}")
        csrf = form_csrf(page)
        long_text = "x" * (MAX_COMMENT + 1)
        r = await http.post(path, data={"csrf": csrf, "text": long_text})
        assert r.status_code == 422 and 'role="alert"' in r.text
        assert "the limit is 1000" in r.text and long_text in r.text  # the text is kept
        assert 'aria-invalid="true"' in r.text
        r = await http.post(path, data={"csrf": csrf, "text": "   "})
        assert r.status_code == 422 and "A comment needs some text." in r.text
        r = await http.post(path, data={"csrf": csrf, "text": "hi", "parent_id": "12345"})
        assert r.status_code == 422 and "gone or not visible" in r.text
        r = await http.post(path, data={"csrf": "forged", "text": "hi"})
        assert r.status_code == 403
        assert await Comment.filter(clip_id=clip.pk).count() == 0  # refused ones make none
        # The same form sent twice (a double click) makes one comment.
        token = re.search(r'name="form_token" value="([^"]+)"', page)
        assert token is not None
        form = {"csrf": csrf, "text": "only once", "form_token": token.group(1)}
        first, second = [await http.post(path, data=form) for _ in range(2)]
        assert first.status_code == second.status_code == 303
        assert first.headers["location"] == second.headers["location"]
    assert await Comment.filter(clip_id=clip.pk).count() == 1
    async with browser(web) as visitor:
        page = await _clip_page(visitor, f"/@alice/{clip.pk}")
        assert "to comment." in page and 'id="compose-text"' not in page
        r = await visitor.post(path, data={"csrf": "x", "text": "hi"})
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


async def test_a_clip_you_cannot_see_takes_no_comment(web: httpx.ASGITransport) -> None:
    alice = await local_account("alice")
    await local_account("bob")
    hidden = await posts.post_clip(
        alice, await rendered_video(alice), caption="friends", visibility=Visibility.FOLLOWERS
    )
    async with logged_in(web, "bob") as http:
        csrf = form_csrf((await http.get("/settings/password")).text)
        r = await http.post(f"/@alice/{hidden.pk}/comments", data={"csrf": csrf, "text": "hi"})
        assert r.status_code == 404 and "not visible to you" in r.text
        r = await http.post("/comments/999/delete", data={"csrf": csrf})
        assert r.status_code == 404
    assert await Comment.filter(clip_id=hidden.pk).count() == 0


async def test_the_remix_lineage(web: httpx.ASGITransport) -> None:
    alice, bob = await local_account("alice"), await local_account("bob")
    source = await posts.post_clip(alice, await rendered_video(alice), caption="the original")
    remix = await posts.remix_clip(bob, source, await rendered_video(bob), caption="my take")
    private = await posts.remix_clip(
        bob, source, await rendered_video(bob), caption="secret", visibility=Visibility.DIRECT
    )
    await interactions.comment(alice, source, "first")
    async with browser(web) as visitor:
        page = await _clip_page(visitor, f"/@alice/{source.pk}")
        remixes = page.split('id="remixes-title"')[1]
        assert f'href="/@bob/{remix.pk}"' in remixes
        assert f"/@bob/{private.pk}" not in page  # not visible to a visitor
        below = await _clip_page(visitor, f"/@bob/{remix.pk}")
        assert re.search(rf'Remix of <a href="/@alice/{source.pk}"', below)


async def test_follow_block_and_mute_from_a_profile(web: httpx.ASGITransport) -> None:
    from fedisora.models import Block, Follow, Mute

    alice, bob = await local_account("alice"), await local_account("bob")
    async with logged_in(web, "bob") as http:
        page = await _clip_page(http, "/@alice")
        for action in ("follow", "mute", "block"):
            assert f'action="/accounts/{alice.pk}/{action}"' in page, action
        csrf = form_csrf(page)
        for action in ("follow", "mute", "block"):
            r = await http.post(
                f"/accounts/{alice.pk}/{action}", data={"csrf": csrf, "next": "/@alice"}
            )
            assert r.status_code == 303 and r.headers["location"] == "/@alice", action
        assert await Mute.filter(account_id=bob.pk, target_id=alice.pk).exists()
        assert await Block.filter(account_id=bob.pk, target_id=alice.pk).exists()
        # a block ends the follow, as the API's does
        assert not await Follow.filter(follower_id=bob.pk, target_id=alice.pk).exists()
        page = await _clip_page(http, "/@alice")
        assert f'action="/accounts/{alice.pk}/unblock"' in page
        assert f'action="/accounts/{alice.pk}/unmute"' in page
        for action in ("unmute", "unblock"):
            r = await http.post(f"/accounts/{alice.pk}/{action}", data={"csrf": csrf})
            assert r.status_code == 303
        assert not await Block.filter(account_id=bob.pk, target_id=alice.pk).exists()
        r = await http.post(f"/accounts/{alice.pk}/block", data={"csrf": "forged"})
        assert r.status_code == 403
        # one's own profile has no such buttons
        own = await _clip_page(http, "/@bob")
        assert f'action="/accounts/{bob.pk}/block"' not in own
        # the search page's results carry the follow button
        found = await _clip_page(http, "/search?q=alice")
        assert f'action="/accounts/{alice.pk}/follow"' in found
    async with browser(web) as visitor:
        page = await _clip_page(visitor, "/@alice")
        assert f"/accounts/{alice.pk}/block" not in page
        r = await visitor.post(f"/accounts/{alice.pk}/block", data={"csrf": "x"})
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
