"""Who may see what. Every read path (API, web, federation) asks these functions.

Moderation's two softer measures live here too, each in one place:

- A **silenced** account (Mastodon's "limited", :attr:`Account.silenced_at`) is left out of
  the public lists (local and federated timelines, trends, hashtags, search) for everyone but
  itself and its accepted followers (:func:`limited_account_ids`, :func:`without_limited`);
  its profile and its clips' own pages still show them, and its notifications to accounts
  that do not follow it are dropped (:func:`limits_notification`).
- A **sensitized** account's clips and comments are all served as sensitive
  (:func:`shown_sensitive`: the API entity, the ActivityPub objects and the web cards).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, TypeVar

from tortoise.expressions import Q, Subquery
from tortoise.queryset import QuerySet

from fedisora.fastload import by_ids
from fedisora.models import Account, Block, Clip, Comment, Follow, FollowState, Mention, Visibility

__all__ = [
    "account_clips_visible_to",
    "can_see_clip",
    "can_see_comment",
    "is_blocked",
    "limited_account_ids",
    "limits_notification",
    "shown_sensitive",
    "visible_clips_q",
    "visible_to",
    "without_limited",
]


async def is_blocked(a: Account | None, b: Account) -> bool:
    """Whether either account blocks the other."""
    if a is None:
        return False
    return await Block.filter(
        Q(account_id=a.pk, target_id=b.pk) | Q(account_id=b.pk, target_id=a.pk)
    ).exists()


async def _follows(viewer: Account, author_id: int) -> bool:
    return await Follow.filter(
        follower_id=viewer.pk, target_id=author_id, state=FollowState.ACCEPTED
    ).exists()


S = TypeVar("S", bound=Clip | Comment)
_OPEN = (Visibility.PUBLIC, Visibility.UNLISTED)


async def visible_to(
    viewer: Account | None,
    items: Sequence[S],
    *,
    hidden: Collection[int] = (),
    authors: dict[int, Account] | None = None,
) -> list[S]:
    """The statuses of *items* that *viewer* may see, in order: the one rule of who sees a
    clip or a comment (:func:`can_see_clip` and :func:`can_see_comment` are this for one
    status), for any number of them in a fixed number of queries.

    A deleted status is seen by no one; one's own by its author; else not when its author
    is suspended (here or by its server) or either account blocks the other (or the author
    is in *hidden*: a list's own exclusions, such as the viewer's domain blocks); public
    and unlisted ones by everyone; followers-only ones by accepted followers; any closed
    one by the accounts it mentions. A comment also needs its clip to be seen.

    *authors*: the account rows the caller read already, by id; the authors' rows this reads
    are added to it (a page then renders them without reading them again: see
    :func:`fedisora.api.entities.status_entities`)."""
    if not items:
        return []
    comments = [s for s in items if isinstance(s, Comment)]
    given = {s.pk: s for s in items if isinstance(s, Clip)}
    needed = {c.clip_id for c in comments} - given.keys()
    parents: dict[int, Clip] = {c.pk: c for c in await by_ids(Clip, needed)}
    parents.update(given)
    everything: list[Clip | Comment] = [*items, *parents.values()]
    others = [
        s
        for s in everything
        if s.deleted_at is None and (viewer is None or s.account_id != viewer.pk)
    ]
    author_ids = sorted({s.account_id for s in others})
    suspended: set[int] = set()
    blocked: set[int] = set(hidden)
    followed: set[int] = set()
    mentioned: set[str] = set()
    if authors is not None:
        unread = {s.account_id for s in everything} - authors.keys()
        if unread:
            authors.update({a.pk: a for a in await by_ids(Account, unread)})
        suspended = {i for i in author_ids if i in authors and authors[i].suspended}
    elif author_ids:
        gone = Q(suspended_at__not_isnull=True) | Q(origin_suspended_at__not_isnull=True)
        suspended = await _ids(Account.filter(gone, pk__in=author_ids), "id")
    if author_ids and viewer is not None:
        blocks = await Block.filter(
            Q(account_id=viewer.pk, target_id__in=author_ids)
            | Q(account_id__in=author_ids, target_id=viewer.pk)
        ).values("account_id", "target_id")
        blocked |= {int(b["target_id"]) for b in blocks} | {int(b["account_id"]) for b in blocks}
        blocked.discard(viewer.pk)
        closed = [s for s in others if s.visibility not in _OPEN]
        if closed:  # (public and unlisted ones need neither)
            rows = await Mention.filter(
                account_id=viewer.pk, target_key__in=[_key(s) for s in closed]
            ).values("target_key")
            mentioned = {str(r["target_key"]) for r in rows}
        private = sorted({s.account_id for s in closed if s.visibility == Visibility.FOLLOWERS})
        if private:
            followed = await _ids(
                Follow.filter(
                    follower_id=viewer.pk, target_id__in=private, state=FollowState.ACCEPTED
                ),
                "target_id",
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
        if _key(status) in mentioned:
            return True
        return status.visibility == Visibility.FOLLOWERS and status.account_id in followed

    out: list[S] = []
    for status in items:
        if not sees(status):
            continue
        if isinstance(status, Comment):
            clip = parents.get(status.clip_id)
            if clip is None or not sees(clip):
                continue
        out.append(status)
    return out


def _key(status: Clip | Comment) -> str:
    """A mention's ``target_key`` for *status*."""
    return f"{'clip' if isinstance(status, Clip) else 'comment'}:{status.pk}"


async def _ids(query: QuerySet[Any], field: str) -> set[int]:
    return {int(r[field]) for r in await query.values(field)}


async def can_see_clip(viewer: Account | None, clip: Clip) -> bool:
    """Whether *viewer* (None: a visitor) may see *clip*: :func:`visible_to` for one."""
    return bool(await visible_to(viewer, [clip]))


async def can_see_comment(viewer: Account | None, comment: Comment) -> bool:
    """Whether *viewer* may see *comment* (and its clip): :func:`visible_to` for one."""
    return bool(await visible_to(viewer, [comment]))


def visible_clips_q(viewer: Account | None) -> Q:
    """A filter for listing: public and unlisted clips, plus the viewer's own."""
    q = Q(deleted_at=None) & Q(visibility__in=[Visibility.PUBLIC, Visibility.UNLISTED])
    if viewer is not None:
        q = q | (Q(deleted_at=None) & Q(account_id=viewer.pk))
    return q


async def account_clips_visible_to(
    viewer: Account | None, account: Account
) -> QuerySet[Clip] | None:
    """*account*'s clips that *viewer* may see, narrowed in the query (None: none at all, a
    block either way): all of them for the author; public and unlisted ones, followers-only
    ones for an accepted follower, and any clip that mentions the viewer, for anyone else
    (what Mastodon's account timeline shows: ``AccountStatusesFilter``)."""
    clips = Clip.filter(account_id=account.pk, deleted_at=None)
    if viewer is not None and viewer.pk == account.pk:
        return clips
    allowed = Q(visibility__in=[Visibility.PUBLIC, Visibility.UNLISTED])
    if viewer is None:
        return clips.filter(allowed)
    if await is_blocked(viewer, account):
        return None
    if await _follows(viewer, account.pk):
        allowed |= Q(visibility=Visibility.FOLLOWERS)
    mentions = Mention.filter(account_id=viewer.pk, clip__account_id=account.pk)
    # (tortoise types values_list(flat=True) as tuples)
    mentioned: list[Any] = list(await mentions.values_list("clip_id", flat=True))
    if mentioned:
        allowed |= Q(pk__in=mentioned)
    return clips.filter(allowed)


def shown_sensitive(status: Clip | Comment, author: Account) -> bool:
    """Whether *status* is served as sensitive: its own flag, or its author marked sensitive
    by a moderator (:attr:`Account.sensitized_at`; lifting it restores each clip's own)."""
    return bool(status.sensitive) or author.sensitized_at is not None


async def limited_account_ids(viewer: Account | None) -> set[int]:
    """The silenced accounts whose clips *viewer* does not see in public lists: all of them
    but *viewer* itself and the accounts it follows (accepted)."""
    rows: list[Any] = list(
        await Account.filter(silenced_at__not_isnull=True).values_list("id", flat=True)
    )
    ids = {int(i) for i in rows}
    if not ids or viewer is None:
        return ids
    ids.discard(viewer.pk)
    followed: list[Any] = list(
        await Follow.filter(
            follower_id=viewer.pk, target_id__in=sorted(ids), state=FollowState.ACCEPTED
        ).values_list("target_id", flat=True)
    )
    return ids - {int(i) for i in followed}


async def public_readers_of_limited(author_id: int, viewer_ids: Collection[int]) -> set[int] | None:
    """Which of *viewer_ids* see *author_id*'s clips in public lists (streams) when the author
    is silenced: the author and its followers (:func:`limited_account_ids`, for one author and
    many viewers at once). None when the author is not silenced: everyone does."""
    if not await Account.filter(pk=author_id, silenced_at__not_isnull=True).exists():
        return None
    followers: list[Any] = list(
        await Follow.filter(
            target_id=author_id, follower_id__in=sorted(viewer_ids), state=FollowState.ACCEPTED
        ).values_list("follower_id", flat=True)
    )
    return {int(i) for i in followers} | ({author_id} & set(viewer_ids))


async def without_limited(query: QuerySet[Clip], viewer: Account | None) -> QuerySet[Clip]:
    """*query* (of clips, for a public list) without the clips of silenced accounts *viewer*
    does not follow (:func:`limited_account_ids`), as a subquery of the list's own query
    (one query less per page: the silenced accounts are a handful, the list an index scan)."""
    limited = Account.filter(silenced_at__not_isnull=True)
    if viewer is not None:
        followed = Follow.filter(follower_id=viewer.pk, state=FollowState.ACCEPTED)
        limited = limited.exclude(pk=viewer.pk).exclude(
            pk__in=Subquery(followed.values("target_id"))
        )
    return query.exclude(account_id__in=Subquery(limited.values("id")))


async def limits_notification(recipient: Account, sender: Account) -> bool:
    """Whether *sender* being silenced keeps its notification from *recipient*: it is, and
    *recipient* does not follow it (as Mastodon filters a limited account's notifications)."""
    if sender.pk == recipient.pk:
        return False
    # (read from the row: the caller's copy of the sender may predate the silence)
    if not await Account.filter(pk=sender.pk, silenced_at__not_isnull=True).exists():
        return False
    return not await _follows(recipient, sender.pk)
