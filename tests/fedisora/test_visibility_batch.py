"""The one rule of who sees a status, batched (visible_to) and for one (can_see_clip/comment)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from for_you_factories import author, clip
from tortoise import connections

from fedisora.api.visibility import visible_statuses
from fedisora.models import (
    Account,
    AccountDomainBlock,
    Block,
    Clip,
    Comment,
    Follow,
    FollowState,
    Mention,
    Visibility,
    utcnow,
)
from fedisora.services.visibility import can_see_clip, can_see_comment, visible_to


@contextmanager
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record every query the default connection runs."""
    conn = connections.get("default")
    seen: list[str] = []
    for name in ("execute_query", "execute_query_dict", "execute_select"):
        if not hasattr(conn, name):
            continue
        original: Callable[..., Awaitable[Any]] = getattr(conn, name)

        def wrapper(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            seen.append(str(args[0])[:80] if args else "")
            return _original(*args, **kwargs)

        monkeypatch.setattr(conn, name, wrapper)
    yield seen
    monkeypatch.undo()


async def _comment(who: Account, on: Clip, visibility: Visibility = Visibility.PUBLIC) -> Comment:
    return await Comment.create(
        account=who,
        clip=on,
        uri=f"https://x.test/c/{on.pk}/{who.pk}/{visibility}",
        content="hi",
        visibility=visibility,
    )


async def test_the_batch_and_the_one_status_checks_agree_case_by_case(db: str) -> None:
    now = utcnow()
    ann = await author("ann")  # the author of most clips
    viewer, follower, mentioned = await author("viewer"), await author("fan"), await author("m")
    blocked, blocker = await author("blocked"), await author("blocker")
    suspended = await author("gone", suspended_at=now)
    far = await author("far", "peer.example")
    far_gone = await author("fargone", "peer.example", origin_suspended_at=now)
    theirs = await author("t", "theirs.example")
    await Follow.create(follower=follower, target=ann, state=FollowState.ACCEPTED, uri="f:1")
    await Follow.create(follower=viewer, target=far, state=FollowState.PENDING, uri="f:2")
    await Block.create(account=viewer, target=blocked)
    await Block.create(account=blocker, target=viewer)
    await AccountDomainBlock.create(account=viewer, domain="theirs.example")

    public = await clip(ann)
    unlisted = await clip(ann, visibility=Visibility.UNLISTED)
    followers = await clip(ann, visibility=Visibility.FOLLOWERS)
    direct = await clip(ann, visibility=Visibility.DIRECT)
    await Mention.create(account=mentioned, clip=direct, target_key=f"clip:{direct.pk}")
    mentions_viewer = await clip(ann, visibility=Visibility.FOLLOWERS)
    await Mention.create(
        account=viewer, clip=mentions_viewer, target_key=f"clip:{mentions_viewer.pk}"
    )
    deleted = await clip(ann, deleted_at=now)
    own = await clip(viewer, visibility=Visibility.DIRECT)
    own_deleted = await clip(viewer, deleted_at=now)
    by_blocked, by_blocker = await clip(blocked), await clip(blocker)
    by_suspended, by_remote, by_remote_gone = (
        await clip(suspended),
        await clip(far),
        await clip(far_gone),
    )
    remote_followers = await clip(far, visibility=Visibility.FOLLOWERS)  # (a pending follow)
    domain_blocked = await clip(theirs)
    comment_ok = await _comment(follower, public)
    comment_on_closed = await _comment(viewer, followers)  # the viewer's own, on a clip it
    comment_closed = await _comment(ann, public, Visibility.FOLLOWERS)  # cannot see
    statuses: list[Clip | Comment] = [
        public,
        unlisted,
        followers,
        direct,
        mentions_viewer,
        deleted,
        own,
        own_deleted,
        by_blocked,
        by_blocker,
        by_suspended,
        by_remote,
        by_remote_gone,
        remote_followers,
        domain_blocked,
        comment_ok,
        comment_on_closed,
        comment_closed,
    ]
    everyone = {public, unlisted, by_blocked, by_blocker, by_remote, domain_blocked, comment_ok}
    expected: dict[Account | None, set[Clip | Comment]] = {
        None: everyone,
        viewer: (everyone - {by_blocked, by_blocker}) | {mentions_viewer, own},
        follower: everyone | {followers, mentions_viewer, comment_on_closed, comment_closed},
        mentioned: everyone | {direct},
        ann: everyone | {followers, direct, mentions_viewer, comment_closed, comment_on_closed},
        blocked: everyone,  # ("blocked" by the viewer only: others see it as anyone does)
    }
    for who, seen in expected.items():
        want = [s for s in statuses if s in seen]
        names = {id(s): n for n, s in enumerate(statuses)}
        got = await visible_to(who, statuses)
        assert [names[id(s)] for s in got] == [names[id(s)] for s in want], who
        one = [
            s
            for s in statuses
            if (
                await can_see_clip(who, s) if isinstance(s, Clip) else await can_see_comment(who, s)
            )
        ]
        assert one == want, who
    # The lists' form also leaves out the domains the viewer blocked.
    listed = await visible_statuses(viewer, statuses)
    assert listed == [s for s in statuses if s in expected[viewer] and s is not domain_blocked]


async def test_the_batch_costs_the_same_for_one_status_as_for_many(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    viewer = await author("viewer")
    makers = [await author(f"maker{i}") for i in range(6)]
    many: list[Clip] = []
    for n, who in enumerate(makers * 4):
        closed = Visibility.FOLLOWERS if n % 3 else Visibility.PUBLIC
        many.append(await clip(who, visibility=closed))
    with counting(monkeypatch) as few:
        await visible_to(viewer, many[1:2])
    with counting(monkeypatch) as lots:
        await visible_to(viewer, many)
    assert len(lots) == len(few) <= 4, lots
