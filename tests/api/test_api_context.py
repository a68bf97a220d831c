"""``/api/v1/statuses/:id/context`` is bounded, as Mastodon bounds it.

A thread of 1,722 comments once came back whole (2.6 MB) to anyone. Now an anonymous caller
gets at most 40 ancestors, 60 descendants and 20 levels of replies; a signed-in one at most
4,096 of each; the reply tree is walked without recursion (a chain of thousands of replies is
a valid thread); and the statuses a viewer may not see are left out without taking a place.
"""

from __future__ import annotations

import itertools
import time

import httpx
import pytest
from apihelpers import login
from factories import local_account, rendered_video

from fedisora.ids import new_id
from fedisora.models import Account, Clip, Comment, Visibility
from fedisora.services import follows, interactions, posts, threads


async def _comments(
    clip: Clip,
    author: Account,
    count: int,
    *,
    parent: Comment | None = None,
    chain: bool = False,
    visibility: Visibility = Visibility.PUBLIC,
) -> list[Comment]:
    """*count* comments under *clip* (answers to *parent*; each to the previous if *chain*),
    written in one batch: the shape of a big thread without posting each through the API."""
    rows: list[Comment] = []
    above = parent
    for n in range(count):
        pk = new_id(next(_clock))
        row = Comment(
            id=pk,
            account_id=author.pk,
            clip_id=clip.pk,
            parent_id=above.pk if above is not None else None,
            uri=f"https://fedisora.test/users/{author.username}/comments/{pk}",
            text=f"comment {n}",
            content=f"<p>comment {n}</p>",
            visibility=visibility,
        )
        rows.append(row)
        if chain:
            above = row
    await Comment.bulk_create(rows, batch_size=500)
    return rows


_clock = itertools.count(int(time.time() * 1000))
"""One millisecond per comment: their ids sort in the order they are made here."""


def ids(statuses: list[dict[str, object]]) -> list[str]:
    return [str(s["id"]) for s in statuses]


async def test_anonymous_context_is_capped_as_on_mastodon(
    client: httpx.AsyncClient, db: str
) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="a big thread")
    flat = await _comments(clip, bob, 100)
    deep = await _comments(clip, bob, 50, parent=flat[0], chain=True)

    r = await client.get(f"/api/v1/statuses/{clip.pk}/context")
    assert r.status_code == 200
    body = r.json()
    assert body["ancestors"] == []
    got = ids(body["descendants"])
    assert len(got) == threads.DESCENDANTS_LIMIT == 60
    # Depth first, each level oldest first, at most 20 levels below the clip: flat[0], then
    # its chain down to level 20 (19 replies), then the other top-level comments.
    assert got[:20] == [str(c.pk) for c in [flat[0], *deep[:19]]]
    assert got[20:] == [str(c.pk) for c in flat[1:41]]

    # Below a deep reply: its 40 nearest ancestors, the clip first; 20 levels of descendants.
    r = await client.get(f"/api/v1/statuses/{deep[-1].pk}/context")
    assert r.json()["descendants"] == []
    up = ids(r.json()["ancestors"])
    assert len(up) == threads.ANCESTORS_LIMIT == 40
    assert up[0] == str(clip.pk)
    assert up[1:] == [str(c.pk) for c in deep[-40:-1]]

    r = await client.get(f"/api/v1/statuses/{flat[0].pk}/context")
    assert ids(r.json()["ancestors"]) == [str(clip.pk)]
    assert ids(r.json()["descendants"]) == [str(c.pk) for c in deep[:20]]


async def test_signed_in_context_is_bounded_by_the_context_limit(
    client: httpx.AsyncClient, db: str
) -> None:
    ann = await local_account("ann")
    bob = await login(client, await local_account("bob"))
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="a long chain")
    # A chain deeper than Python's recursion limit: the old tree walk raised RecursionError.
    chain = await _comments(clip, bob.account, 1500, chain=True)
    r = await client.get(f"/api/v1/statuses/{clip.pk}/context", headers=bob.headers)
    assert r.status_code == 200
    assert ids(r.json()["descendants"]) == [str(c.pk) for c in chain]
    r = await client.get(f"/api/v1/statuses/{chain[-1].pk}/context", headers=bob.headers)
    assert ids(r.json()["ancestors"]) == [str(clip.pk), *(str(c.pk) for c in chain[:-1])]

    # More than 4,096 answers: the first 4,096 in order, never the whole thread.
    flat = await _comments(clip, bob.account, threads.CONTEXT_LIMIT + 10 - len(chain))
    r = await client.get(f"/api/v1/statuses/{clip.pk}/context", headers=bob.headers)
    got = ids(r.json()["descendants"])
    assert len(got) == threads.CONTEXT_LIMIT
    assert got[: len(chain)] == [str(c.pk) for c in chain]
    assert got[-1] == str(flat[threads.CONTEXT_LIMIT - len(chain) - 1].pk)


async def test_hidden_statuses_take_no_place_and_their_replies_still_show(
    client: httpx.AsyncClient, db: str
) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    carl = await login(client, await local_account("carl"))
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="mixed")
    secret = await interactions.comment(bob, clip, "for my followers", visibility="private")
    answers = await _comments(clip, ann, 70, parent=secret)

    anonymous = ids((await client.get(f"/api/v1/statuses/{clip.pk}/context")).json()["descendants"])
    assert str(secret.pk) not in anonymous
    assert anonymous == [str(c.pk) for c in answers[:60]]

    # carl follows bob: the followers-only comment is his to see, first in its place.
    await follows.follow(carl.account, bob)
    r = await client.get(f"/api/v1/statuses/{clip.pk}/context", headers=carl.headers)
    assert ids(r.json()["descendants"]) == [str(secret.pk), *(str(c.pk) for c in answers)]
    # A muted author's comments leave the list; the replies to them stay.
    await follows.mute(carl.account, bob)
    r = await client.get(f"/api/v1/statuses/{clip.pk}/context", headers=carl.headers)
    assert ids(r.json()["descendants"]) == [str(c.pk) for c in answers]
    # And the private comment's own context is a 404 for anyone who may not see it.
    r = await client.get(f"/api/v1/statuses/{secret.pk}/context")
    assert r.status_code == 404 and r.json() == {"error": "Record not found"}


async def test_anonymous_callers_get_their_answer_from_the_threads_first_comments(
    client: httpx.AsyncClient, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An anonymous request costs nothing to send: its answer is found among the first
    comments of the thread only (2,000: a 1,722-comment thread whole)."""
    ann = await local_account("ann")
    bob = await login(client, await local_account("bob"))
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="a thread")
    rows = await _comments(clip, ann, 10)
    monkeypatch.setattr(threads, "ANONYMOUS_SCAN_LIMIT", 4)
    r = await client.get(f"/api/v1/statuses/{clip.pk}/context")
    assert ids(r.json()["descendants"]) == [str(c.pk) for c in rows[:4]]
    r = await client.get(f"/api/v1/statuses/{clip.pk}/context", headers=bob.headers)
    assert ids(r.json()["descendants"]) == [str(c.pk) for c in rows]
