"""Entity builders: a fixed number of queries per list, and the same visibility as services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from factories import local_account, rendered_video
from tortoise import connections

from fedisora.api.entities import account_entities, notification_entities, status_entities
from fedisora.api.visibility import visible_statuses
from fedisora.models import Account, Clip, Comment, Notification, Visibility
from fedisora.services import follows, interactions, posts
from fedisora.services.visibility import can_see_clip, can_see_comment


@contextmanager
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record every query the default connection runs."""
    conn = connections.get("default")
    seen: list[str] = []
    for name in ("execute_query", "execute_query_dict", "execute_select"):
        if not hasattr(conn, name):
            continue
        original: Callable[..., Awaitable[Any]] = getattr(conn, name)

        def wrapper(*args: Any, _original: Any = original, **kwargs: Any) -> Awaitable[Any]:
            seen.append(str(args[0])[:80] if args else "")
            return _original(*args, **kwargs)

        monkeypatch.setattr(conn, name, wrapper)
    yield seen
    monkeypatch.undo()


async def _world() -> tuple[Account, Account, list[Clip], list[Comment]]:
    alice = await local_account("alice")
    bob = await local_account("bob")
    await follows.follow(bob, alice)
    clips: list[Clip] = []
    for n in range(8):
        media = await rendered_video(alice)
        source = clips[0] if n and n % 3 == 0 else None
        clips.append(
            await posts.post_clip(
                alice,
                media,
                caption=f"#t{n} @bob clip {n}",
                remix_of=source,
                visibility=Visibility.FOLLOWERS if n == 5 else Visibility.PUBLIC,
            )
        )
    comments = []
    for clip in clips[:4]:
        comments.append(await interactions.comment(bob, clip, "nice @alice"))
        await interactions.like(bob, clip)
    return alice, bob, clips, comments


async def test_status_entities_cost_does_not_grow_with_the_list(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _alice, bob, clips, comments = await _world()
    small: list[Clip | Comment] = [clips[3], comments[1]]  # a remix and a comment
    large: list[Clip | Comment] = [*clips, *comments]
    with counting(monkeypatch) as few:
        await status_entities(bob, small)
    with counting(monkeypatch) as many:
        rendered = await status_entities(bob, large)
    assert len(many) == len(few), many
    assert [r["id"] for r in rendered] == [str(s.pk) for s in large]
    assert rendered[3]["quote"]["quoted_status"]["id"] == str(clips[0].pk)

    notes = await Notification.all()
    assert len(notes) >= 8
    one_per_type = list({n.type: n for n in notes}.values())
    assert len(one_per_type) < len(notes)
    with counting(monkeypatch) as few:
        await notification_entities(_alice, one_per_type)
    with counting(monkeypatch) as many:
        await notification_entities(_alice, notes)
    # batches that only run when some row needs them may add one or two; never one per item
    assert len(many) <= len(few) + 2
    with counting(monkeypatch) as none:
        account_entities([_alice, bob])
    assert none == []


async def test_batch_visibility_agrees_with_the_services(db: str) -> None:
    alice, bob, clips, _comments = await _world()
    carol = await local_account("carol")
    dm = await posts.post_clip(
        alice, await rendered_video(alice), caption="@carol psst", visibility=Visibility.DIRECT
    )
    await posts.delete_clip(alice, clips[7])
    deleted = await Clip.get(pk=clips[7].pk)
    await follows.block(carol, bob)
    everything: list[Clip | Comment] = [*await Clip.all(), *await Comment.all()]
    assert dm.pk in {s.pk for s in everything} and deleted.deleted_at is not None
    for viewer in (None, alice, bob, carol):
        batch = {s.pk for s in await visible_statuses(viewer, everything)}
        single = set()
        for s in everything:
            ok = (
                await can_see_clip(viewer, s)
                if isinstance(s, Clip)
                else await can_see_comment(viewer, s)
            )
            if ok:
                single.add(s.pk)
        assert batch == single, viewer
