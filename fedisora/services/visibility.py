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

from collections.abc import Collection
from typing import Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

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


async def _can_see(
    viewer: Account | None, author_id: int, visibility: str, deleted: bool, mention_q: Q
) -> bool:
    if deleted:
        return False
    if viewer is not None and viewer.pk == author_id:
        return True
    author = await Account.get(pk=author_id)
    if author.suspended or await is_blocked(viewer, author):
        return False
    if visibility in (Visibility.PUBLIC, Visibility.UNLISTED):
        return True
    if viewer is None:
        return False
    if await Mention.filter(mention_q & Q(account_id=viewer.pk)).exists():
        return True
    return visibility == Visibility.FOLLOWERS and await _follows(viewer, author_id)


async def can_see_clip(viewer: Account | None, clip: Clip) -> bool:
    return await _can_see(
        viewer,
        clip.account_id,
        clip.visibility,
        clip.deleted_at is not None,
        Q(clip_id=clip.pk),
    )


async def can_see_comment(viewer: Account | None, comment: Comment) -> bool:
    if not await _can_see(
        viewer,
        comment.account_id,
        comment.visibility,
        comment.deleted_at is not None,
        Q(comment_id=comment.pk),
    ):
        return False
    clip = await Clip.get(pk=comment.clip_id)
    return await can_see_clip(viewer, clip)


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
    does not follow (:func:`limited_account_ids`)."""
    limited = await limited_account_ids(viewer)
    return query.exclude(account_id__in=sorted(limited)) if limited else query


async def limits_notification(recipient: Account, sender: Account) -> bool:
    """Whether *sender* being silenced keeps its notification from *recipient*: it is, and
    *recipient* does not follow it (as Mastodon filters a limited account's notifications)."""
    if sender.pk == recipient.pk:
        return False
    # (read from the row: the caller's copy of the sender may predate the silence)
    if not await Account.filter(pk=sender.pk, silenced_at__not_isnull=True).exists():
        return False
    return not await _follows(recipient, sender.pk)
