"""Threads: a status's ancestors and descendants, and a clip's comments page by page.

A clip is the root of its thread; its comments form a tree (``Comment.parent``). Every read is
bounded, whatever the thread's size:

- :func:`thread_context` answers ``/api/v1/statuses/:id/context`` with Mastodon's limits
  (``Api::V1::Statuses::ContextsController``): for anonymous callers 40 ancestors, 60
  descendants and a descendant depth of 20; for signed-in ones 4,096 of each ("a relatively
  high number to cover most conversations as unlimited, while enforcing a resource cap").
  Ancestors are one recursive query on primary keys, stopped at the limit. Descendants need
  the tree's shape to be put in reply order, so one index range scan reads the narrow columns
  of at most :data:`SCAN_LIMIT` comments (:data:`ANONYMOUS_SCAN_LIMIT` for anonymous
  callers: ids, parent, author, visibility), the tree is walked only as far as the answer
  needs, and full rows and entities are made only for the statuses returned.
- :func:`clip_comments` gives one page of a clip's comments, oldest first, after a cursor (the
  web clip page's "more comments" link).

Who may see what is the batch rules' (:mod:`fedisora.api.visibility`); what can be decided from
the narrow columns (blocked and muted authors, closed visibilities for anonymous viewers) is
decided in the query, the rest on the page's rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from tortoise.queryset import QuerySet

from fedisora.api.visibility import hidden_account_ids, visible_statuses
from fedisora.fastload import prepared
from fedisora.ids import id_for_time
from fedisora.models import Account, Clip, Comment, Visibility

__all__ = [
    "ANCESTORS_LIMIT",
    "ANONYMOUS_SCAN_LIMIT",
    "COMMENTS_PAGE",
    "CONTEXT_LIMIT",
    "DESCENDANTS_DEPTH_LIMIT",
    "DESCENDANTS_LIMIT",
    "SCAN_LIMIT",
    "CommentsPage",
    "ContextLimits",
    "clip_comments",
    "thread_context",
]

CONTEXT_LIMIT = 4096
"""Ancestors and descendants for a signed-in viewer (Mastodon's ``CONTEXT_LIMIT``)."""
ANCESTORS_LIMIT = 40
DESCENDANTS_LIMIT = 60
DESCENDANTS_DEPTH_LIMIT = 20
"""Mastodon's limits for anonymous callers ("avoid expensive computation")."""
SCAN_LIMIT = 2 * CONTEXT_LIMIT
"""Comments whose shape (not content) one signed-in context request reads at most."""
ANONYMOUS_SCAN_LIMIT = 2000
"""The same for anonymous callers, whose requests cost nothing to send: the first 2,000
comments of a thread (a 1,722-comment thread whole) are where their 60 come from."""
COMMENTS_PAGE = 50
"""Comments on one page of a clip's web page."""

_OPEN = (Visibility.PUBLIC, Visibility.UNLISTED)

Status = Clip | Comment


@dataclass(frozen=True)
class ContextLimits:
    ancestors: int
    descendants: int
    depth: int | None
    """How many levels below the status descendants may be (None: unlimited)."""
    scan: int = SCAN_LIMIT
    """How many comments' shape the descendants are found among, at most."""

    @classmethod
    def for_viewer(cls, viewer: Account | None) -> ContextLimits:
        if viewer is None:
            return cls(
                ANCESTORS_LIMIT, DESCENDANTS_LIMIT, DESCENDANTS_DEPTH_LIMIT, ANONYMOUS_SCAN_LIMIT
            )
        return cls(CONTEXT_LIMIT, CONTEXT_LIMIT, None)


async def thread_context(
    viewer: Account | None, status: Status, limits: ContextLimits | None = None
) -> tuple[list[Status], list[Status]]:
    """The ancestors (the clip first, then the comments down to *status*'s parent) and the
    descendants (the reply tree below *status*, depth first, each level oldest first) that
    *viewer* may see, within *limits* (by default :meth:`ContextLimits.for_viewer`).

    The caller checked that *viewer* may see *status*. When there are more ancestors than
    the limit, the clip and the nearest comments are kept."""
    limits = limits or ContextLimits.for_viewer(viewer)
    if isinstance(status, Clip):
        clip = status
        ancestors: list[Status] = []
    else:
        clip = await Clip.get(pk=status.clip_id)
        chain = await _ancestor_ids(status, max(0, limits.ancestors - 1))
        rows = {c.pk: c for c in await Comment.filter(pk__in=chain, clip_id=clip.pk)}
        found = [rows[i] for i in reversed(chain) if i in rows]
        ancestors = await visible_statuses(viewer, [clip, *found]) if limits.ancestors else []
    hidden = await hidden_account_ids(viewer)
    order = await _descendant_order(viewer, clip, status, limits, hidden)
    return ancestors, await _first_visible(viewer, order, limits.descendants)


async def _ancestor_ids(comment: Comment, limit: int) -> list[int]:
    """The ids of *comment*'s parent, its parent's parent... (nearest first, at most *limit*):
    one recursive query that follows primary keys and stops at the limit (a cycle, which a
    peer's data could hold, ends there too)."""
    if comment.parent_id is None or limit <= 0:
        return []
    db = Comment._meta.db
    mark = ("$1", "$2") if db.capabilities.dialect == "postgres" else ("?", "?")
    sql = (
        "WITH RECURSIVE up(id, parent_id, depth) AS ("
        f" SELECT id, parent_id, 1 FROM comments WHERE id = {mark[0]}"
        " UNION ALL"
        " SELECT c.id, c.parent_id, up.depth + 1 FROM comments c JOIN up ON c.id = up.parent_id"
        f" WHERE up.depth < {mark[1]}"
        ") SELECT id FROM up ORDER BY depth"
    )
    rows = await db.execute_query_dict(sql, [comment.parent_id, limit])
    return [int(row["id"]) for row in rows]


async def _descendant_order(
    viewer: Account | None,
    clip: Clip,
    status: Status,
    limits: ContextLimits,
    hidden: set[int],
) -> Iterator[int]:
    """The ids below *status* in reply order, from one scan of narrow columns.

    A clip's comments whose parent is gone (deleted, or never fetched) are answers to the
    clip. Below a comment, the scan starts at its id's millisecond: a reply's id is drawn
    after what it answers exists. Comments of blocked or muted authors, and (for anonymous
    viewers) closed ones, are left out of the answer but not of the tree: visible replies to
    them still show."""
    # Plain SQL on the (clip_id, id) index: building ORM values for thousands of rows cost
    # several times the query (bench/context.py).
    db = Comment._meta.db
    marks = [f"${n}" for n in range(1, 4)] if db.capabilities.dialect == "postgres" else ["?"] * 3
    since = id_for_time(status.pk >> 16) if isinstance(status, Comment) else 0
    rows = await db.execute_query_dict(
        "SELECT id, parent_id, account_id, visibility FROM comments"
        f" WHERE clip_id = {marks[0]} AND deleted_at IS NULL AND id >= {marks[1]}"
        f" ORDER BY id LIMIT {marks[2]}",
        [clip.pk, since, limits.scan],
    )
    known = {int(r["id"]) for r in rows}
    root = status.pk
    children: dict[int, list[int]] = {}
    shown: set[int] = set()
    for row in rows:
        pk, parent, author = int(row["id"]), row["parent_id"], int(row["account_id"])
        visibility = str(row["visibility"])
        if pk == root:
            continue
        if parent is None or parent not in known:
            if isinstance(status, Comment) and parent != root:
                continue  # not below this comment
            parent = root
        children.setdefault(parent, []).append(pk)
        if author in hidden:
            continue
        if viewer is None and visibility not in _OPEN:
            continue
        shown.add(pk)
    # Walked lazily: an anonymous answer of 60 stops the walk there.
    return (pk for pk in _depth_first(children, root, limits.depth) if pk in shown)


def _depth_first(children: dict[int, list[int]], root: int, depth: int | None) -> Iterator[int]:
    """The nodes below *root* depth first, children in the order given (no recursion: a
    chain of thousands of replies is a valid thread)."""
    stack: list[tuple[Iterator[int], int]] = [(iter(children.get(root, ())), 1)]
    seen = {root}
    while stack:
        branch, level = stack[-1]
        node = next(branch, None)
        if node is None:
            stack.pop()
            continue
        if node in seen:
            continue
        seen.add(node)
        yield node
        if depth is None or level < depth:
            stack.append((iter(children.get(node, ())), level + 1))


async def _first_visible(viewer: Account | None, order: Iterator[int], limit: int) -> list[Status]:
    """The first *limit* comments of *order* that *viewer* may see: rows are loaded for as
    many as are still wanted (then again, if some were not to be seen)."""
    out: list[Status] = []
    while len(out) < limit:
        ids = list(itertools.islice(order, limit - len(out)))
        if not ids:
            break
        rows = {c.pk: c for c in await Comment.filter(pk__in=ids)}
        out += await visible_statuses(viewer, [rows[i] for i in ids if i in rows])
    return out


@dataclass(frozen=True)
class CommentsPage:
    comments: list[Comment]
    """The page's comments *viewer* may see, oldest first."""
    after: int | None
    """The cursor of the next page (None: this is the last one)."""


async def clip_comments(
    viewer: Account | None, clip: Clip, *, after: int | None = None, limit: int = COMMENTS_PAGE
) -> CommentsPage:
    """One page of *clip*'s comments after the comment id *after*, oldest first.

    The query reads at most ``limit + 1`` rows of the ``(clip_id, id)`` index; comments the
    viewer may not see are dropped from the page (so a page may show fewer), and the cursor
    moves past them."""
    hidden = sorted(await hidden_account_ids(viewer))

    def comments(clip_id: int, *rest: int) -> QuerySet[Comment]:
        query = Comment.filter(clip_id=clip_id, deleted_at=None)
        if after is not None:
            query = query.filter(id__gt=rest[0])
        if hidden:
            query = query.exclude(account_id__in=list(rest[after is not None :]))
        if viewer is None:
            query = query.filter(visibility__in=list(_OPEN))
        return query.order_by("id").limit(limit + 1)

    # (the statement's shape: whether there is a cursor, how many hidden, a visitor or not)
    shape = ("clip_comments", after is None, len(hidden), viewer is None, limit)
    first = [] if after is None else [after]
    rows = await prepared(shape, Comment, comments, clip.pk, *first, *hidden)
    more = len(rows) > limit
    rows = rows[:limit]
    return CommentsPage(
        comments=await visible_statuses(viewer, rows),
        after=rows[-1].pk if more and rows else None,
    )
