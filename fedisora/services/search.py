"""Search: accounts, hashtags and statuses, as Mastodon's ``/api/v2/search`` finds them (the
API and the web page ``/search`` both search through here).

- Accounts: local and known remote accounts whose username or display name (or a word of it)
  starts with the query; ``user@domain`` names one account exactly, and with ``resolve=true``
  an unknown (or stale) remote one is looked up through WebFinger and fetched. An actor URL
  resolves the same way.
- Hashtags: tags starting with the query, with their ``history``, among the tags anyone may
  see (:mod:`fedisora.services.tags`: a tag of followers-only or direct clips only is not).
- Statuses: only for signed-in users (as on Mastodon): clips whose caption and comments whose
  text contain the query, among statuses the viewer may see, from accounts that allow
  indexing (or the viewer's own); a status URL or URI finds that status.

Resolving remote accounts and searching statuses are for signed-in users only, as on
Mastodon (the API answers 401 without a user token; the page searches without them). Blocks
both ways hide accounts and statuses; mutes hide statuses.
"""

from __future__ import annotations

import logging

from tortoise.expressions import Q

from fedisora.api.lookup import column
from fedisora.api.visibility import hidden_account_ids, visible_statuses
from fedisora.config import Settings
from fedisora.models import Account, Clip, Comment, Follow, FollowState, Tag
from fedisora.services.accounts import INSTANCE_ACTOR
from fedisora.services.tags import visible_tags
from fedisora.services.visibility import limited_account_ids

__all__ = [
    "MAX_QUERY",
    "is_url",
    "resolve_remote",
    "search_accounts",
    "search_hashtags",
    "search_statuses",
]

log = logging.getLogger("fedisora.services.search")

MAX_QUERY = 2048
"""The longest query searched (longer ones are refused)."""
SCAN_BATCH = 200
SCAN_LIMIT = 2000  # statuses looked at per request at most (text search without an index)


def is_url(q: str) -> bool:
    return q.startswith(("https://", "http://"))


async def resolve_remote(settings: Settings, q: str) -> Account | None:
    """The remote account *q* names (``user@domain`` or an actor URL), fetched if needed."""
    from fedisora.federation.actors import ActorError, fetch_actor, resolve_acct
    from fedisora.federation.context import get_federation

    fed = get_federation(settings)
    try:
        if is_url(q):
            return await fetch_actor(fed, q)
        return await resolve_acct(fed, q)
    except ActorError as exc:
        log.info("search could not resolve %s: %s", q, exc)
        return None


async def search_accounts(
    viewer: Account | None,
    q: str,
    *,
    settings: Settings,
    offset: int = 0,
    limit: int = 20,
    resolve: bool = False,
    following: bool = False,
) -> list[Account]:
    """Accounts *q* finds for *viewer* (see the module's description); *resolve* looks an
    unknown remote ``user@domain`` or actor URL up (callers allow it to signed-in users
    only, as Mastodon does); *following* keeps the accounts *viewer* follows."""
    me = viewer
    clean = q.strip().lstrip("@")
    instance_ids = await column(Account.filter(username=INSTANCE_ACTOR, domain=None), "id")
    query = Account.filter(suspended_at=None, origin_suspended_at=None).exclude(
        pk__in=list(instance_ids)
    )
    exact: Account | None = None
    username, _, domain = clean.partition("@")
    if is_url(q.strip()):
        exact = await Account.get_or_none(Q(uri=q.strip()) | Q(url=q.strip()))
        if exact is None and resolve:
            exact = await resolve_remote(settings, q.strip())
        query = query.filter(pk=exact.pk if exact is not None else -1)
    elif domain:
        dom = None if domain.lower() == settings.domain else domain.lower()
        if resolve and dom is not None:
            exact = await resolve_remote(settings, f"{username}@{dom}")
        query = query.filter(username__istartswith=username, domain=dom)
    else:
        query = query.filter(
            Q(username__istartswith=clean)
            | Q(display_name__istartswith=clean)
            | Q(display_name__icontains=f" {clean}")
        )
    followed: set[int] | None = None
    if following and me is not None:
        followed = {
            int(i)
            for i in await column(
                Follow.filter(follower_id=me.pk, state=FollowState.ACCEPTED), "target_id"
            )
        }
        query = query.filter(pk__in=sorted(followed))
    hidden = await hidden_account_ids(me, mutes=False)
    limited = await limited_account_ids(me)  # silenced: found by followers (or by full name)
    if hidden | limited:
        query = query.exclude(pk__in=sorted(hidden | limited))
    found: list[Account] = list(
        await query.order_by("-followers_count", "id").offset(offset).limit(limit)
    )
    if (
        exact is not None
        and offset == 0
        and not exact.suspended
        and exact.pk not in hidden
        and (followed is None or exact.pk in followed)
        and all(a.pk != exact.pk for a in found)
    ):
        found = [exact, *found][:limit]
    # an exact username match first, as Mastodon orders it
    found.sort(
        key=lambda a: a.acct.lower() != clean.lower() and a.username.lower() != clean.lower()
    )
    return found


async def search_hashtags(q: str, offset: int = 0, limit: int = 20) -> list[Tag]:
    """Hashtags starting with *q* (a ``#`` or not), among those anyone may see."""
    name = q.strip().lstrip("#").lower()
    if not name:
        return []
    query = visible_tags().filter(name__startswith=name)  # none only private clips carry
    rows = await query.order_by("name").offset(offset).limit(limit)
    return sorted(rows, key=lambda t: (t.name != name, len(t.name), t.name))


async def search_statuses(
    viewer: Account, q: str, *, offset: int = 0, limit: int = 20, author: int | None = None
) -> list[Clip | Comment]:
    """Clips and comments containing *q* (or the one a URL names) that *viewer* may see,
    from accounts that allow indexing (or *viewer*'s own), newest first; *author* keeps one
    account's."""
    me = viewer
    text = q.strip()
    if is_url(text):
        clips: list[Clip | Comment] = list(
            await Clip.filter(Q(uri=text) | Q(url=text), deleted_at=None)
        )
        clips += list(await Comment.filter(Q(uri=text) | Q(url=text), deleted_at=None))
        return (await visible_statuses(me, clips))[offset : offset + limit]
    hidden = await hidden_account_ids(me) | await limited_account_ids(me)
    indexable = Q(account__indexable=True) | Q(account_id=me.pk)
    wanted = offset + limit
    out: list[Clip | Comment] = []
    before: int | None = None
    scanned = 0
    while len(out) < wanted and scanned < SCAN_LIMIT:
        clip_q = Clip.filter(indexable, caption__icontains=text, deleted_at=None)
        comment_q = Comment.filter(indexable, text__icontains=text, deleted_at=None)
        if author is not None:
            clip_q = clip_q.filter(account_id=author)
            comment_q = comment_q.filter(account_id=author)
        if hidden:
            clip_q = clip_q.exclude(account_id__in=list(hidden))
            comment_q = comment_q.exclude(account_id__in=list(hidden))
        if before is not None:
            clip_q = clip_q.filter(pk__lt=before)
            comment_q = comment_q.filter(pk__lt=before)
        batch: list[Clip | Comment] = [
            *await clip_q.order_by("-id").limit(SCAN_BATCH),
            *await comment_q.order_by("-id").limit(SCAN_BATCH),
        ]
        if not batch:
            break
        batch.sort(key=lambda s: s.pk, reverse=True)
        batch = batch[:SCAN_BATCH]
        scanned += len(batch)
        before = batch[-1].pk
        out += await visible_statuses(me, batch)
    return out[offset:wanted]
