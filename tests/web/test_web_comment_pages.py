"""A clip page shows its comments a page at a time, with a plain "more comments" link.

The link carries an ``after`` cursor and works without JavaScript: following it (a plain GET,
as a browser with scripts off does) shows the next comments, until the last page, which has
no link. Comments the viewer may not see take no place and never show; the author a comment
answers is named only when the viewer may see that comment, even on a later page; a bad
cursor is a 400 page.
"""

from __future__ import annotations

import asyncio
import html as htmllib
import re
import time

import httpx
from factories import local_account, rendered_video
from webhelpers import browser, logged_in, scripts_besides_app

from fedisora.ids import new_id
from fedisora.models import Account, Clip, Comment, Visibility
from fedisora.services import follows, interactions, posts
from fedisora.services.threads import COMMENTS_PAGE


async def _comments(clip: Clip, author: Account, count: int) -> list[Comment]:
    """*count* comments in one batch, one millisecond apart (their ids sort in the order
    made); back once their last millisecond is past, so later comments sort after them."""
    start = int(time.time() * 1000)
    rows = []
    for n in range(count):
        pk = new_id(start + n)
        rows.append(
            Comment(
                id=pk,
                account_id=author.pk,
                clip_id=clip.pk,
                uri=f"https://fedisora.test/users/{author.username}/comments/{pk}",
                text=f"comment number {n}",
                content=f"<p>comment number {n}</p>",
                visibility=Visibility.PUBLIC,
            )
        )
    await Comment.bulk_create(rows)
    await asyncio.sleep(max(0.0, (start + count + 1) / 1000 - time.time()))
    return rows


def shown(page: str) -> list[str]:
    return re.findall(r"comment number (\d+)<", page)


def more_link(page: str) -> str | None:
    found = re.search(r'<a rel="next" class="more-comments" href="([^"]+)">More comments</a>', page)
    return htmllib.unescape(found.group(1)) if found else None


async def test_comments_page_by_page_without_javascript(web: httpx.ASGITransport) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="many comments")
    await _comments(clip, bob, COMMENTS_PAGE + 10)
    async with browser(web) as anon:
        first = await anon.get(f"/@ann/{clip.pk}")
        assert first.status_code == 200
        assert shown(first.text) == [str(n) for n in range(COMMENTS_PAGE)]
        link = more_link(first.text)
        assert link is not None and link.startswith(f"/@ann/{clip.pk}?after=")
        assert link.endswith("#comments") and 'id="comments"' in first.text
        assert not scripts_besides_app(first.text)  # a plain link: nothing else to run

        second = await anon.get(link.split("#", 1)[0])
        assert second.status_code == 200
        assert shown(second.text) == [str(n) for n in range(COMMENTS_PAGE, COMMENTS_PAGE + 10)]
        assert more_link(second.text) is None
        assert f'href="/@ann/{clip.pk}#comments">First comments</a>' in second.text

        for bad in ("x", "-1", "1" * 30):
            r = await anon.get(f"/@ann/{clip.pk}", params={"after": bad})
            assert r.status_code == 400 and "after must be the id of a comment" in r.text


async def test_hidden_comments_take_no_place_and_answers_name_only_what_may_be_seen(
    web: httpx.ASGITransport,
) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    await local_account("carl")
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="a thread")
    secret = await interactions.comment(bob, clip, "secret words", visibility="private")
    opener = await interactions.comment(bob, clip, "public opener")
    await _comments(clip, ann, COMMENTS_PAGE)
    await interactions.comment(ann, clip, "late answer", parent=opener)
    await follows.follow(ann, bob)  # ann may see (and answer) bob's followers-only comment
    await interactions.comment(ann, clip, "answer to the secret", parent=secret)

    async with browser(web) as anon:
        first = (await anon.get(f"/@ann/{clip.pk}")).text
        assert "secret words" not in first and "public opener" in first
        # The private comment took no place on the page: 50 public ones are shown.
        assert len(shown(first)) == COMMENTS_PAGE - 1
        link = more_link(first)
        assert link is not None
        second = (await anon.get(link.split("#", 1)[0])).text
        assert "late answer" in second and "answer to the secret" in second
        answers = second.split("late answer", 1)[0]
        assert "replying to @bob" in answers.rsplit("<article", 1)[-1]
        # Who wrote the comment the last one answers is not for anonymous eyes.
        last = second.split("answer to the secret", 1)[0].rsplit("<article", 1)[-1]
        assert "replying to" not in last
        assert "secret words" not in second

    await follows.follow(await Account.get(username="carl"), bob)
    async with logged_in(web, "carl") as carl:
        first = (await carl.get(f"/@ann/{clip.pk}")).text
        assert "secret words" in first
