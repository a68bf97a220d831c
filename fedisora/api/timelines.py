"""Timelines (home, public, tag), notifications and trends.

Home reads the fan-out rows (``TimelineEntry``) and pages on the clip id, so a boost shows at
its clip's place in time. Public and tag timelines list clips only: comments live in threads.
Trends rank recent public local clips and tags by real engagement (likes, boosts, comments,
distinct authors), never by anything configured.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response
from starlette.routing import BaseRoute
from tortoise.expressions import Subquery

from fedisora.api.entities import (
    notification_entities,
    reblog_entity,
    render_accounts,
    status_entities,
    tag_entities,
)
from fedisora.api.http import Ctx, api_route, endpoint, json
from fedisora.api.lookup import column
from fedisora.api.pagination import Page, link_header, page_of
from fedisora.api.replay_cache import visitor_page
from fedisora.api.visibility import hidden_account_ids, public_timeline, visible_statuses
from fedisora.errors import NotFound
from fedisora.fastload import by_ids, related
from fedisora.models import (
    Account,
    Boost,
    Clip,
    ClipTag,
    Notification,
    NotificationType,
    Tag,
    TimelineEntry,
    Visibility,
    utcnow,
)
from fedisora.services.notifications import (
    GROUPED_TYPES,
    NotificationGroup,
    clear_all,
    dismiss_one,
    find_group,
    grouped_page,
    notifications_query,
)
from fedisora.services.notifications import dismiss_group as dismiss_notification_group
from fedisora.services.notifications import unread_count as count_unread
from fedisora.services.tags import find_visible
from fedisora.services.visibility import limited_account_ids, without_limited

__all__ = ["routes", "trending_clips"]

SOURCES_AND_AUTHORS = ("account", "remix_of", "remix_of.account")
"""The rows a page of clips is read with: their authors, the clips they remix and theirs."""
TREND_WINDOW = timedelta(days=7)
MAX_TAG_TERMS = 4
"""Tags a tag timeline's ``any[]``, ``all[]`` and ``none[]`` each take (Mastodon's limit)."""
TREND_SCAN = 1000
"""Recent clips trends look at, at most (each request's work is bounded, not the week's)."""


@endpoint("read", "read:statuses", user=True)
async def home(ctx: Ctx) -> Response:
    me = ctx.me
    page = Page.from_params(ctx.params)
    hidden = await hidden_account_ids(me)
    query = TimelineEntry.filter(owner_id=me.pk)
    entries = await page_of(query, page, field="clip_id")
    found = await by_ids(Clip, [e.clip_id for e in entries], related="account")
    clips = {c.pk: c for c in found}
    ordered = [clips[e.clip_id] for e in entries if e.clip_id in clips]
    # The authors, read with the clips: for their visibility and their entities.
    authors: dict[int, Account] = related(found, "account")
    visible = {c.pk: c for c in await visible_statuses(me, ordered, authors=authors)}
    shown = [
        e
        for e in entries
        if e.clip_id in visible
        and visible[e.clip_id].account_id not in hidden
        and (e.boosted_by_id is None or e.boosted_by_id not in hidden)
    ]
    rendered = await status_entities(me, [visible[e.clip_id] for e in shown], authors=authors)
    boost_keys = [(e.boosted_by_id, e.clip_id) for e in shown if e.boosted_by_id is not None]
    boosts: dict[tuple[int, int], Boost] = {}
    boosters: dict[int, Account] = {}
    if boost_keys:
        rows = await Boost.filter(
            account_id__in=[k[0] for k in boost_keys], clip_id__in=[k[1] for k in boost_keys]
        )
        boosts = {(b.account_id, b.clip_id): b for b in rows}
        boosters = {a.pk: a for a in await by_ids(Account, [k[0] for k in boost_keys])}
    body: list[dict[str, Any]] = []
    for entry, entity in zip(shown, rendered, strict=True):
        key = (entry.boosted_by_id, entry.clip_id) if entry.boosted_by_id is not None else None
        if key is not None and key in boosts and key[0] in boosters:
            body.append(reblog_entity(boosts[key], boosters[key[0]], entity))
        else:
            body.append(entity)
    headers = link_header(ctx.request, entries[0].clip_id, entries[-1].clip_id) if entries else {}
    return json(body, headers=headers)


async def _clip_timeline(ctx: Ctx, query: Any) -> Response:
    p = ctx.params
    page = Page.from_params(p)
    if p.flag("local"):
        query = query.filter(local=True)
    else:
        query = await public_timeline(query.filter(local=False) if p.flag("remote") else query)
    if p.flag("only_media"):
        query = query.exclude(media_id=None)
    query = await without_limited(query, ctx.account)  # silenced accounts: followers only
    hidden = await hidden_account_ids(ctx.account)
    if hidden:
        query = query.exclude(account_id__in=list(hidden))
    # The authors and the clips remixed (with theirs), read with the page: for their
    # visibility and their entities.
    rows = await page_of(query, page, related=SOURCES_AND_AUTHORS)
    authors: dict[int, Account] = related(rows, "account")
    visible = await visible_statuses(ctx.account, rows, authors=authors)
    headers = link_header(ctx.request, rows[0].pk, rows[-1].pk) if rows else {}
    return json(await status_entities(ctx.account, visible, authors=authors), headers=headers)


@endpoint("read", "read:statuses")
async def public(ctx: Ctx) -> Response:
    query = Clip.filter(visibility=Visibility.PUBLIC, deleted_at=None)
    return await visitor_page(ctx, lambda: _clip_timeline(ctx, query))


@endpoint("read", "read:statuses")
async def tag(ctx: Ctx) -> Response:
    p = ctx.params
    names = {str(ctx.request.path_params["hashtag"]).lower().lstrip("#")}
    names |= {n.lower().lstrip("#") for n in p.texts("any")[:MAX_TAG_TERMS]}
    query = Clip.filter(visibility=Visibility.PUBLIC, deleted_at=None)
    query = query.filter(clip_tags__tag__name__in=sorted(names)).distinct()
    # Subqueries: a popular tag's clip ids are never loaded into the process.
    for required in p.texts("all")[:MAX_TAG_TERMS]:
        tagged = ClipTag.filter(tag__name=required.lower().lstrip("#")).values("clip_id")
        query = query.filter(pk__in=Subquery(tagged))
    excluded = [n.lower().lstrip("#") for n in p.texts("none")[:MAX_TAG_TERMS]]
    if excluded:
        tagged = ClipTag.filter(tag__name__in=excluded).values("clip_id")
        query = query.exclude(pk__in=Subquery(tagged))
    return await visitor_page(ctx, lambda: _clip_timeline(ctx, query))


@endpoint("read", "read:statuses", user=True)
async def for_you(ctx: Ctx) -> Response:
    """``GET /api/fedisora/v1/timelines/for_you``: a page of the caller's For You list
    (:func:`fedisora.for_you.feed.page`), Status entities each with ``fedisora.reason``.
    Pages by an opaque cursor: the ``Link`` header's next page carries it in ``max_id``
    (``cursor`` is read as well); a ranked list has no previous page."""
    from fedisora.for_you import feed

    p = ctx.params
    limit = min(p.number("limit", feed.DEFAULT_LIMIT, low=1, high=2**31), feed.MAX_LIMIT)
    cursor = p.text("max_id", max_length=feed.MAX_CURSOR) or p.text(
        "cursor", max_length=feed.MAX_CURSOR
    )
    found = await feed.page(ctx.me, cursor or None, limit, secret=ctx.settings.secret_key)
    clips = [item.clip for item in found.items]
    body = await status_entities(ctx.me, clips, authors=found.authors)
    for entity, item in zip(body, found.items, strict=True):
        extra = entity.get("fedisora")
        entity["fedisora"] = {**(extra if isinstance(extra, dict) else {}), "reason": item.reason}
    headers: dict[str, str] = {}
    if found.next_cursor is not None and found.items:
        request = ctx.request
        keep = [
            (k, v)
            for k, v in request.query_params.multi_items()
            if k not in ("max_id", "cursor", "since_id", "min_id")
        ]
        base = ctx.settings.base_url + request.url.path
        query = urlencode([*keep, ("max_id", found.next_cursor)])
        headers["Link"] = f'<{base}?{query}>; rel="next"'
    return json(body, headers=headers)


@endpoint("read", "read:notifications", user=True)
async def notifications(ctx: Ctx) -> Response:
    p = ctx.params
    page = Page.from_params(p, maximum=80, default=40)
    rows = await page_of(_notifications_query(ctx), page)
    headers = link_header(ctx.request, rows[0].pk, rows[-1].pk) if rows else {}
    return json(await notification_entities(ctx.me, rows), headers=headers)


def _notifications_query(ctx: Ctx) -> Any:
    """The caller's undismissed notifications, filtered by types[], exclude_types[] and
    account_id as Mastodon defines them."""
    p = ctx.params
    return notifications_query(
        ctx.me,
        types=[NotificationType.REMIX.value if n == "quote" else n for n in p.texts("types")],
        exclude_types=_model_types(p.texts("exclude_types")),
        from_account_id=p.id("account_id"),
    )


async def _grouped(ctx: Ctx, groups: list[NotificationGroup]) -> dict[str, Any]:
    """GroupedNotificationsResults of *groups* (:mod:`fedisora.services.notifications`
    groups them: likes and boosts of one clip, and follows, within a window)."""
    latest = [g.latest for g in groups]
    entities = {int(e["id"]): e for e in await notification_entities(ctx.me, latest)}
    sample_ids = {i for g in groups for i in g.sample_account_ids}
    found = {a.pk: a for a in await Account.filter(pk__in=sample_ids)}
    accounts: dict[str, Any] = {}
    for rendered in await render_accounts(list(found.values())):
        accounts[rendered["id"]] = rendered
    statuses: dict[str, Any] = {}
    out = []
    for group in groups:
        note = entities.get(group.latest.pk)
        if note is None:
            continue
        accounts.setdefault(note["account"]["id"], note["account"])
        status = note.get("status")
        if status is not None:
            statuses[status["id"]] = status
        oldest = group.oldest_in_page or group.latest
        sample = [str(i) for i in group.sample_account_ids if str(i) in accounts]
        entry: dict[str, Any] = {
            "group_key": group.key,
            "notifications_count": group.count,
            "type": note["type"],
            # an integer here, unlike every other id (as Mastodon serializes it and its
            # OpenAPI description types it)
            "most_recent_notification_id": int(note["id"]),
            "page_min_id": str(oldest.pk),
            "page_max_id": note["id"],
            "latest_page_notification_at": note["created_at"],
            "sample_account_ids": sample or [note["account"]["id"]],
            "status_id": None if status is None else status["id"],
        }
        if "render_job_id" in note:
            entry["render_job_id"] = note["render_job_id"]
        if "moderation_warning" in note:
            entry["moderation_warning"] = note["moderation_warning"]
        out.append(entry)
    return {
        "accounts": list(accounts.values()),
        "statuses": list(statuses.values()),
        "notification_groups": out,
    }


@endpoint("read", "read:notifications", user=True)
async def notifications_v2(ctx: Ctx) -> Response:
    p = ctx.params
    page = Page.from_params(p, maximum=80, default=40)
    grouped_types = p.texts("grouped_types")
    found = await grouped_page(
        ctx.me,
        _notifications_query(ctx),
        limit=page.limit,
        max_id=page.max_id,
        since_id=page.since_id,
        min_id=page.min_id,
        grouped_types=_model_types(grouped_types) if grouped_types else GROUPED_TYPES,
    )
    headers: dict[str, str] = {}
    if found.groups:
        oldest = min(g.latest.pk for g in found.groups)
        headers = link_header(ctx.request, found.newest_id, oldest)
    return json(await _grouped(ctx, found.groups), headers=headers)


async def _group(ctx: Ctx) -> NotificationGroup:
    key = str(ctx.request.path_params.get("group_key", ""))
    group = await find_group(ctx.me, key)
    if group is None:
        raise NotFound("Record not found")
    return group


@endpoint("read", "read:notifications", user=True)
async def notification_group(ctx: Ctx) -> Response:
    return json(await _grouped(ctx, [await _group(ctx)]))


@endpoint("read", "read:notifications", user=True)
async def notification_group_accounts(ctx: Ctx) -> Response:
    group = await _group(ctx)
    found = {a.pk: a for a in await Account.filter(pk__in=group.sample_account_ids)}
    return json(await render_accounts([found[i] for i in group.sample_account_ids if i in found]))


@endpoint("write", "write:notifications", user=True)
async def dismiss_group(ctx: Ctx) -> Response:
    key = str(ctx.request.path_params.get("group_key", ""))
    if not await dismiss_notification_group(ctx.me, key):
        raise NotFound("Record not found")
    return json({})


def _model_types(names: list[str]) -> list[str]:
    """Stored notification types for API names (``quote`` is a remix); unknown names dropped."""
    out = {NotificationType.REMIX.value if n == "quote" else n for n in names}
    return sorted(out & _TYPES)


_TYPES = {t.value for t in NotificationType}


async def _notification(ctx: Ctx) -> Notification:
    note = await Notification.get_or_none(
        pk=max(ctx.path_id(), -1), recipient_id=ctx.me.pk, dismissed=False
    )
    if note is None:
        raise NotFound("Record not found")
    return note


@endpoint("read", "read:notifications", user=True)
async def notification(ctx: Ctx) -> Response:
    note = await _notification(ctx)
    rendered = await notification_entities(ctx.me, [note])
    if not rendered:
        raise NotFound("Record not found")
    return json(rendered[0])


@endpoint("write", "write:notifications", user=True)
async def dismiss(ctx: Ctx) -> Response:
    if not await dismiss_one(ctx.me, max(ctx.path_id(), -1)):
        raise NotFound("Record not found")
    return json({})


@endpoint("write", "write:notifications", user=True)
async def clear(ctx: Ctx) -> Response:
    await clear_all(ctx.me)
    return json({})


@endpoint("read", "read:notifications", user=True)
async def unread_count(ctx: Ctx) -> Response:
    return json({"count": await count_unread(ctx.me)})


def _offset_limit(ctx: Ctx, default: int, maximum: int) -> tuple[int, int]:
    p = ctx.params
    limit = max(1, min(p.number("limit", default, high=2**31), maximum))
    return p.number("offset", 0, high=10_000), limit


async def trending_clips(
    viewer: Account | None, offset: int, limit: int, *, federated: bool = False
) -> list[Clip]:
    """Public local clips of the last week that *viewer* may see, ranked by likes + boosts +
    comments (ties: newer); clips nobody engaged with are not trending. The API's trends,
    the web feed's Trending tab and For You's candidates (:mod:`fedisora.for_you.candidates`)
    read this. ``federated=True``: remote clips instead (of the latest :data:`TREND_SCAN`,
    those of domains this instance silences or suspends left out, as public timelines do),
    by the engagement this instance knows of."""
    query = Clip.filter(
        visibility=Visibility.PUBLIC,
        deleted_at=None,
        local=not federated,
        created_at__gte=utcnow() - TREND_WINDOW,
    )
    if federated:
        query = await public_timeline(query)
    candidates = await query.order_by("-id").limit(TREND_SCAN)
    hidden = await hidden_account_ids(viewer) | await limited_account_ids(viewer)
    scored = [
        c
        for c in candidates
        if c.account_id not in hidden and c.likes_count + c.boosts_count + c.comments_count > 0
    ]
    scored.sort(
        key=lambda c: (c.likes_count + c.boosts_count + c.comments_count, c.pk), reverse=True
    )
    return await visible_statuses(viewer, scored[offset : offset + limit])


@endpoint("read", "read:statuses")
async def trending_statuses(ctx: Ctx) -> Response:
    """Public local clips of the last week ranked by likes + boosts + comments (ties: newer)."""
    offset, limit = _offset_limit(ctx, 20, 40)
    visible = await trending_clips(ctx.account, offset, limit)
    return json(await status_entities(ctx.account, visible))


@endpoint("read", "read:statuses")
async def trending_tags(ctx: Ctx) -> Response:
    """Tags on the latest :data:`TREND_SCAN` public clips of the last week (of authors not
    suspended), ranked by distinct authors, then by uses."""
    offset, limit = _offset_limit(ctx, 10, 20)
    recent = await column(
        Clip.filter(
            visibility=Visibility.PUBLIC,
            deleted_at=None,
            created_at__gte=utcnow() - TREND_WINDOW,
            account__suspended_at=None,
            account__origin_suspended_at=None,
            account__silenced_at=None,
        )
        .order_by("-id")
        .limit(TREND_SCAN),
        "id",
    )
    uses: dict[int, int] = {}
    authors: dict[int, set[int]] = {}
    for row in await ClipTag.filter(clip_id__in=recent).values("tag_id", "clip__account_id"):
        uses[row["tag_id"]] = uses.get(row["tag_id"], 0) + 1
        authors.setdefault(row["tag_id"], set()).add(row["clip__account_id"])
    ranked = sorted(uses, key=lambda t: (len(authors[t]), uses[t], -t), reverse=True)
    chosen = ranked[offset : offset + limit]
    tags = {t.pk: t for t in await Tag.filter(pk__in=chosen)}
    return json(await tag_entities([tags[i] for i in chosen if i in tags]))


@endpoint("read", "read:statuses")
async def tag_info(ctx: Ctx) -> Response:
    """A tag anyone may see (a tag used only in followers-only or direct clips is unknown)."""
    name = str(ctx.request.path_params["name"]).lower().lstrip("#")
    found = await find_visible(name)
    if found is None:
        raise NotFound("Record not found")
    return json((await tag_entities([found]))[0])


def routes() -> list[BaseRoute]:
    return [
        *api_route("/api/v1/timelines/home", home, ["GET"]),
        *api_route("/api/v1/timelines/public", public, ["GET"]),
        *api_route("/api/v1/timelines/tag/{hashtag}", tag, ["GET"]),
        *api_route("/api/fedisora/v1/timelines/for_you", for_you, ["GET"]),
        *api_route("/api/v1/notifications", notifications, ["GET"]),
        *api_route("/api/v1/notifications/clear", clear, ["POST"]),
        *api_route("/api/v1/notifications/unread_count", unread_count, ["GET"]),
        *api_route("/api/v1/notifications/{id}", notification, ["GET"]),
        *api_route("/api/v1/notifications/{id}/dismiss", dismiss, ["POST"]),
        *api_route("/api/v2/notifications", notifications_v2, ["GET"]),
        *api_route("/api/v2/notifications/unread_count", unread_count, ["GET"]),
        *api_route("/api/v2/notifications/{group_key}", notification_group, ["GET"]),
        *api_route(
            "/api/v2/notifications/{group_key}/accounts", notification_group_accounts, ["GET"]
        ),
        *api_route("/api/v2/notifications/{group_key}/dismiss", dismiss_group, ["POST"]),
        *api_route("/api/v1/trends", trending_tags, ["GET"]),
        *api_route("/api/v1/trends/tags", trending_tags, ["GET"]),
        *api_route("/api/v1/trends/statuses", trending_statuses, ["GET"]),
        *api_route("/api/v1/tags/{name}", tag_info, ["GET"]),
    ]
