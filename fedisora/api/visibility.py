"""Batch forms of :mod:`fedisora.services.visibility` for lists of statuses.

The rules are the same as ``can_see_clip``/``can_see_comment`` (tests compare them), but a page
of forty statuses costs a fixed number of queries instead of forty times several.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from fedisora.api.lookup import column
from fedisora.models import (
    Account,
    AccountDomainBlock,
    Block,
    Clip,
    Comment,
    Follow,
    FollowState,
    Mention,
    Mute,
    Visibility,
)
from fedisora.services import domain_blocks

__all__ = ["hidden_account_ids", "public_timeline", "visible_statuses"]

S = TypeVar("S", bound=Clip | Comment)
_OPEN = (Visibility.PUBLIC, Visibility.UNLISTED)


async def hidden_account_ids(viewer: Account | None, *, mutes: bool = True) -> set[int]:
    """Accounts whose posts *viewer* never sees in lists: blocks both ways, the accounts of
    the domains *viewer* blocked (``/api/v1/domain_blocks``), and their mutes."""
    if viewer is None:
        return set()
    ids = set(await column(Block.filter(account_id=viewer.pk), "target_id")) | set(
        await column(Block.filter(target_id=viewer.pk), "account_id")
    )
    if mutes:
        ids |= set(await column(Mute.filter(account_id=viewer.pk), "target_id"))
    domains = [
        str(d) for d in await column(AccountDomainBlock.filter(account_id=viewer.pk), "domain")
    ]
    if domains:
        q = domain_blocks.domain_q("domain", domains)
        assert q is not None
        ids |= set(await column(Account.filter(q).exclude(domain=None), "id"))
    return {int(i) for i in ids}


async def public_timeline(query: QuerySet[Clip]) -> QuerySet[Clip]:
    """*query* (of clips) without those of the domains this instance silences or suspends:
    what the public (federated) timelines, in the API and on the pages, apply. Their
    followers still see them at home."""
    domains = (await domain_blocks.current()).limited_domains()
    q = domain_blocks.domain_q("account__domain", domains)
    if q is None:
        return query
    # (NOT of a comparison with a local account's NULL domain would drop it too.)
    return query.exclude(Q(account__domain__not_isnull=True) & q)


async def visible_statuses(viewer: Account | None, items: Sequence[S]) -> list[S]:
    """The statuses of *items* that *viewer* may see, in order (comments need their clip too)."""
    if not items:
        return []
    comments = [s for s in items if isinstance(s, Comment)]
    clips_needed = {c.clip_id for c in comments} - {s.pk for s in items if isinstance(s, Clip)}
    parent_clips = {c.pk: c for c in await Clip.filter(pk__in=clips_needed)} if clips_needed else {}
    parent_clips.update({s.pk: s for s in items if isinstance(s, Clip)})
    everything: list[Clip | Comment] = [*items, *parent_clips.values()]

    author_ids = {s.account_id for s in everything}
    hidden_here = Q(suspended_at__not_isnull=True) | Q(origin_suspended_at__not_isnull=True)
    suspended = set(await column(Account.filter(hidden_here, pk__in=author_ids), "id"))
    blocked: set[int] = set()
    followed: set[int] = set()
    mentioned: set[str] = set()
    if viewer is not None:
        blocked = await hidden_account_ids(viewer, mutes=False)
        followed = set(
            await column(
                Follow.filter(
                    follower_id=viewer.pk, target_id__in=author_ids, state=FollowState.ACCEPTED
                ),
                "target_id",
            )
        )
        closed_clips = [
            s.pk for s in everything if isinstance(s, Clip) and s.visibility not in _OPEN
        ]
        closed_comments = [
            s.pk for s in everything if isinstance(s, Comment) and s.visibility not in _OPEN
        ]
        if closed_clips or closed_comments:
            mentioned = set(
                await column(
                    Mention.filter(
                        Q(clip_id__in=closed_clips) | Q(comment_id__in=closed_comments),
                        account_id=viewer.pk,
                    ),
                    "target_key",
                )
            )

    def sees(status: Clip | Comment) -> bool:
        if status.deleted_at is not None:
            return False
        if viewer is not None and viewer.pk == status.account_id:
            return True
        if status.account_id in suspended or status.account_id in blocked:
            return False
        if status.visibility in _OPEN:
            return True
        if viewer is None:
            return False
        kind = "clip" if isinstance(status, Clip) else "comment"
        if f"{kind}:{status.pk}" in mentioned:
            return True
        return status.visibility == Visibility.FOLLOWERS and status.account_id in followed

    out: list[S] = []
    for status in items:
        if not sees(status):
            continue
        if isinstance(status, Comment):
            clip = parent_clips.get(status.clip_id)
            if clip is None or not sees(clip):
                continue
        out.append(status)
    return out
