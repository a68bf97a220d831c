"""Mastodon API entities built from fedisora rows, loading related rows in batches.

Each public function takes a whole list of rows and issues a fixed number of queries however
long the list is (GoToSocial's ``typeutils``, Takahe's ``api/schemas.py``). Field names and
shapes follow the Mastodon 4.7 OpenAPI description.

How fedisora maps onto Mastodon:

- A clip is a status with exactly one ``video`` media attachment.
- A comment is a status with ``in_reply_to_id`` (its parent comment, or the clip) and no media.
- A remix is a status whose ``quote`` (Mastodon 4.5+ quote posts) is the source clip.
- A boost in a home feed is a status whose ``reblog`` is the boosted clip.
- Notification types are Mastodon's plus fedisora's own (clients ignore unknown types).
  A remix of your clip is Mastodon's ``quote`` type (4.5+; ``status`` is the remix) so that
  clients show it; ``types[]=fedisora.remix`` filters for it too. fedisora's own:
  ``fedisora.likeness_use`` (your likeness appears in a clip, drafts included; ``status`` is it),
  ``fedisora.render_finished`` and ``fedisora.render_failed`` (your render job ended;
  ``account`` is you, ``render_job_id`` names the job).
  A moderator's action on your account or posts is Mastodon 4.3's ``moderation_warning``
  (``account`` is you, ``moderation_warning`` the ``AccountWarning``);
  ``fedisora.appeal_approved`` and ``fedisora.appeal_rejected`` tell you of your appeal's
  decision (the same fields). Staff are told of a new appeal with ``fedisora.admin_appeal``
  (``account`` is the appellant, ``moderation_warning`` the warning appealed, with its
  ``appeal``; it is decided at ``/admin/appeals``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any

from tortoise.expressions import Q

from fedisora import urls
from fedisora.api import entity_cache
from fedisora.api.lookup import column
from fedisora.fastload import by_ids, related
from fedisora.federation.media_proxy import proxied_poster, proxied_video
from fedisora.federation.provenance_check import public_reason
from fedisora.ids import id_for_time
from fedisora.models import (
    Account,
    AccountWarning,
    ActorType,
    Appeal,
    Block,
    Bookmark,
    Boost,
    Clip,
    ClipTag,
    Comment,
    Follow,
    FollowState,
    Like,
    MediaFile,
    Mention,
    Mute,
    Notification,
    NotificationType,
    QuoteState,
    Report,
    Rule,
    Tag,
    User,
    Visibility,
)
from fedisora.services import roles
from fedisora.services.remixes import quote_state
from fedisora.services.tags import counted_uses
from fedisora.services.text import clean_name, render_html
from fedisora.services.visibility import shown_sensitive

__all__ = [
    "Status",
    "account_entities",
    "account_warning_entity",
    "api_notification_type",
    "appeal_entity",
    "credential_account",
    "iso",
    "media_entity",
    "notification_entities",
    "reblog_entity",
    "relationships",
    "report_entity",
    "report_fields",
    "role_entity",
    "rule_entity",
    "status_entities",
    "tag_entities",
]

Status = Clip | Comment
Json = dict[str, Any]


def iso(value: datetime | None) -> str | None:
    """Mastodon's timestamp format: UTC with milliseconds and a ``Z``."""
    if value is None:
        return None
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _day(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).date().isoformat()


def _note_html(account: Account) -> str:
    if not account.local:
        return account.note
    u = urls.current()
    return render_html(account.note, tag_url=u.tag, mention_url=lambda _u, _d: None)


def _missing(kind: str) -> str:
    return f"{urls.current().base}/{kind}/original/missing.png"


def _account(account: Account, moved: Mapping[int, Account] | None = None) -> Json:
    """An Account entity. *moved*: the accounts moved ones moved to (:func:`moved_targets`),
    for ``moved``; that account is rendered without a ``moved`` of its own, as Mastodon's
    ``moved_and_not_nested?`` has it."""
    avatar = account.avatar_url or _missing("avatars")
    header = account.header_url or _missing("headers")
    entity: Json = {
        "id": str(account.pk),
        # (names are cleaned as they are stored; again here for rows stored before that)
        "username": clean_name(account.username),
        "acct": clean_name(account.acct),
        "display_name": clean_name(account.display_name),
        "locked": account.locked,
        "bot": account.actor_type in (ActorType.SERVICE, ActorType.APPLICATION),
        "discoverable": account.discoverable,
        "indexable": account.indexable,
        "group": account.actor_type == ActorType.GROUP,
        "created_at": iso(account.created_at),
        "note": _note_html(account),
        "url": account.url or account.uri,
        "uri": account.uri,
        "avatar": avatar,
        "avatar_static": avatar,
        "header": header,
        "header_static": header,
        "followers_count": account.followers_count,
        "following_count": account.following_count,
        "statuses_count": account.clips_count,
        "last_status_at": _day(account.last_clip_at),
        "hide_collections": False,
        "noindex": not account.indexable,
        "emojis": [],
        "roles": [],
        "fields": [],
    }
    target = moved.get(account.moved_to_id) if moved and account.moved_to_id else None
    if target is not None:
        entity["moved"] = _account(target)
    if account.silenced_at is not None:
        entity["limited"] = True  # Mastodon: only present on a silenced (limited) account
    return entity


def account_entities(
    accounts: Iterable[Account], moved: Mapping[int, Account] | None = None
) -> list[Json]:
    """Account entities (no queries: every field is on the row, and the accounts moved ones
    moved to come in *moved*, from :func:`moved_targets`); from the rendering cache when the
    rows say nothing shown changed (copies: callers may set keys)."""
    u = urls.current()
    return [dict(_cached_account(a, moved or {}, u)[1]) for a in accounts]


async def render_accounts(accounts: Sequence[Account]) -> list[Json]:
    """:func:`account_entities`, with what ``moved`` needs loaded (one query at most)."""
    return account_entities(accounts, await moved_targets(accounts))


async def moved_targets(accounts: Iterable[Account]) -> dict[int, Account]:
    """The accounts that those of *accounts* that moved (an accepted ``Move``) moved to, by
    id: what :func:`account_entities` needs for ``moved``. No query when none moved."""
    ids = {a.moved_to_id for a in accounts if a.moved_to_id is not None}
    if not ids:
        return {}
    return {a.pk: a for a in await by_ids(Account, ids) if not a.suspended}


async def credential_account(account: Account, user: User | None) -> Json:
    """The CredentialAccount of ``verify_credentials``: an Account plus ``source`` and ``role``."""
    data = _account(account)
    pending = await Follow.filter(target_id=account.pk, state=FollowState.PENDING).count()
    data["source"] = {
        "privacy": Visibility.PUBLIC.value,
        "sensitive": False,
        "language": None,
        "note": account.note,
        "fields": [],
        "follow_requests_count": pending,
        "hide_collections": False,
        "discoverable": account.discoverable,
        "indexable": account.indexable,
    }
    data["role"] = role_entity(user)
    return data


# Mastodon's seeded roles: everyone (-99), Moderator, Admin.
_ROLE_IDS = {roles.ADMIN: "3", roles.MODERATOR: "2", roles.USER: "-99"}
_ROLE_NAMES = {roles.ADMIN: "Admin", roles.MODERATOR: "Moderator", roles.USER: ""}


def role_entity(user: User | None) -> Json:
    """Mastodon's ``Role`` of *user* (``permissions``: :data:`fedisora.services.roles.PERMISSIONS`,
    Mastodon's bits, as a string)."""
    role = roles.role_of(user)
    return {
        "id": _ROLE_IDS[role],
        "name": _ROLE_NAMES[role],
        "color": "",
        "permissions": str(roles.PERMISSIONS[role]),
        "highlighted": role != roles.USER,
    }


async def relationships(viewer: Account, targets: Sequence[int]) -> list[Json]:
    """Relationship entities between *viewer* and each account id in *targets* (6 queries)."""
    ids = list(dict.fromkeys(targets))
    out_follows = {
        f.target_id: f for f in await Follow.filter(follower_id=viewer.pk, target_id__in=ids)
    }
    in_follows = {
        f.follower_id: f for f in await Follow.filter(target_id=viewer.pk, follower_id__in=ids)
    }
    blocking = set(await column(Block.filter(account_id=viewer.pk, target_id__in=ids), "target_id"))
    blocked_by = set(
        await column(Block.filter(target_id=viewer.pk, account_id__in=ids), "account_id")
    )
    muting = set(await column(Mute.filter(account_id=viewer.pk, target_id__in=ids), "target_id"))
    result = []
    for target in ids:
        out = out_follows.get(target)
        inc = in_follows.get(target)
        result.append(
            {
                "id": str(target),
                "following": out is not None and out.state == FollowState.ACCEPTED,
                "showing_reblogs": out is not None and out.state == FollowState.ACCEPTED,
                "notifying": False,
                "languages": None,
                "followed_by": inc is not None and inc.state == FollowState.ACCEPTED,
                "blocking": target in blocking,
                "blocked_by": target in blocked_by,
                "muting": target in muting,
                "muting_notifications": target in muting,
                "muting_expires_at": None,
                "requested": out is not None and out.state == FollowState.PENDING,
                "requested_by": inc is not None and inc.state == FollowState.PENDING,
                "domain_blocking": False,
                "endorsed": False,
                "note": "",
            }
        )
    return result


def _frame_rate(fps: float | None) -> str | None:
    if not fps:
        return None
    frac = Fraction(fps).limit_denominator(1001)
    return f"{frac.numerator}/{frac.denominator}"


def _length(seconds: float) -> str:
    whole = int(seconds)
    return (
        f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}.{int(seconds * 100) % 100:02d}"
    )


def media_entity(media: MediaFile) -> Json:
    """A MediaAttachment. Videos carry Mastodon's ``meta.original`` (incl. duration, frame rate)."""
    u = urls.current()
    # A remote file is served by the media proxy once its provenance check fetched it (null
    # until then, as Mastodon's url is while a file is processed); remote_url says where from.
    url = u.media(media.file) if media.file else proxied_video(media)
    preview = u.media(media.poster_file) if media.poster_file else proxied_poster(media)
    meta: Json = {}
    if media.width and media.height:
        original: Json = {
            "width": media.width,
            "height": media.height,
            "size": f"{media.width}x{media.height}",
            "aspect": media.width / media.height,
        }
        if media.kind == "video":
            original["frame_rate"] = _frame_rate(media.fps)
            original["duration"] = media.duration
            if media.size and media.duration:
                original["bitrate"] = int(media.size * 8 / media.duration)
        meta["original"] = original
        scale = min(1.0, 400 / max(media.width, media.height))
        small_w, small_h = round(media.width * scale), round(media.height * scale)
        meta["small"] = {
            "width": small_w,
            "height": small_h,
            "size": f"{small_w}x{small_h}",
            "aspect": media.width / media.height,
        }
    if media.kind == "video" and media.duration:
        meta["length"] = _length(media.duration)
        meta["duration"] = media.duration
        meta["fps"] = media.fps
    provenance = media.provenance or {}
    # "trusted" for clips rendered here; a remote clip's is its check's label: "verified",
    # "unverified" (no manifest, or not checked yet) or "invalid", with why and when.
    meta["fedisora"] = {
        "ai_generated": True,
        "provenance": provenance.get("state", "unverified"),
    }
    if media.kind == "video":
        # Whether it has sound, as its signed claim says (LTX-2 renders picture and sound);
        # null when unknown (another server's video): a player offers unmute unless false.
        meta["fedisora"]["audio"] = media.has_sound()
    if provenance.get("local") is False:
        reason = provenance.get("reason")
        meta["fedisora"]["provenance_reason"] = public_reason(reason) if reason else reason
        meta["fedisora"]["provenance_checked_at"] = provenance.get("checked_at")
    return {
        "id": str(media.pk),
        "type": media.kind.value if hasattr(media.kind, "value") else str(media.kind),
        "url": url,
        "preview_url": preview,
        "remote_url": None if media.file else media.remote_url,
        "preview_remote_url": None if media.poster_file else media.remote_poster_url,
        "text_url": None,
        "meta": meta,
        "description": media.description or None,
        "blurhash": media.blurhash,
    }


def _quote_approval(status: Status, viewer: Account | None) -> Json:
    if isinstance(status, Clip) and status.visibility in (Visibility.PUBLIC, Visibility.UNLISTED):
        return {"automatic": ["public"], "manual": [], "current_user": "automatic"}
    return {"automatic": [], "manual": [], "current_user": "denied"}


async def status_entities(
    viewer: Account | None,
    items: Sequence[Status],
    *,
    quotes: bool = True,
    authors: dict[int, Account] | None = None,
) -> list[Json]:
    """Status entities for clips and comments, in the order given.

    Visibility is the caller's business: pass only statuses *viewer* may see. A remix's source
    is included as its ``quote`` only when *viewer* may see it (same rules, checked in batch).
    The sources are rendered in the same pass as the page (one batch of queries for both),
    as shallow quotes (a quote inside a quote names only its id, as Mastodon does).

    *authors*: account rows this request read already (by id), as the visibility check
    (:func:`fedisora.api.visibility.visible_statuses`) leaves them: not read again. What
    every viewer sees comes from the rendering cache (:mod:`fedisora.api.entity_cache`).
    """
    if authors is None:
        authors = {}
    if not items:
        return []
    sources: list[Clip] = []
    deleted_sources: set[int] = set()
    source_ids = {c.remix_of_id for c in items if isinstance(c, Clip) and c.remix_of_id}
    if quotes and source_ids:
        from fedisora.api.visibility import visible_statuses
        from fedisora.federation.quote_check import refresh_if_stale

        # FEP-044f: a remote remix's accepted stamp is verified again when it is shown a
        # while after the last check (no query unless one is due).
        await refresh_if_stale([c for c in items if isinstance(c, Clip) and c.remix_of_id])
        # (the sources a page was read with are not read again: fastload.select)
        loaded = related([c for c in items if isinstance(c, Clip)], "remix_of")
        found = [loaded[i] for i in source_ids if i in loaded]
        unread = source_ids - loaded.keys()
        found += await by_ids(Clip, unread, related="account") if unread else []
        authors.update(related(found, "account"))
        deleted_sources = {c.pk for c in found if c.deleted_at is not None}
        sources = list(await visible_statuses(viewer, found, authors=authors))
    rendered = await _entities(
        viewer, [*items, *sources], full=len(items) if quotes else 0, authors=authors
    )
    page, nested = rendered[: len(items)], rendered[len(items) :]
    if quotes:
        quoted: dict[int, Json | None] = {s.pk: e for s, e in zip(sources, nested, strict=True)}
        for status, entity in zip(items, page, strict=True):
            if isinstance(status, Clip) and (status.remix_of_id is not None or status.remix_of_uri):
                entity["quote"] = _quote(status, quoted, deleted_sources, True)
    return page


async def _entities(
    viewer: Account | None, items: Sequence[Status], *, full: int, authors: dict[int, Account]
) -> list[Json]:
    """The entities of *items*; the first *full* get their quote from the caller
    (:func:`status_entities`), the others a shallow one here.

    What every viewer sees comes from the rendering cache when the rows read say nothing
    shown changed (:mod:`fedisora.api.entity_cache`): a page of cached statuses costs the
    query of their authors (whose rows the cache checks) and the viewer's own flags."""
    u = urls.current()
    unread = {s.account_id for s in items} - authors.keys()
    if unread:
        authors.update({a.pk: a for a in await by_ids(Account, unread)})
    accounts = {s.account_id: authors[s.account_id] for s in items}
    moved = await moved_targets(accounts.values())
    rendered_accounts = {pk: _cached_account(a, moved, u) for pk, a in accounts.items()}

    bases: list[Json | None] = []
    stamps: list[Any] = []
    misses: list[Status] = []
    cache = entity_cache.STATUSES
    for status in items:
        account_stamp, _ = rendered_accounts[status.account_id]
        if status._partial:  # (a row loaded with some columns only: not cached)
            stamps.append(None)
            bases.append(None)
            misses.append(status)
            continue
        stamp = (entity_cache.status_stamp(status), account_stamp, u)
        base = cache.get((type(status) is Clip, status.pk), stamp)
        stamps.append(stamp)
        bases.append(base)
        if base is None:
            misses.append(status)
    if misses:
        fresh = await _base_entities(misses, accounts, rendered_accounts)
        for index, status in enumerate(items):
            if bases[index] is None:
                bases[index] = base = fresh[(type(status) is Clip, status.pk)]
                if stamps[index] is not None:
                    cache.put((type(status) is Clip, status.pk), stamps[index], base)

    clip_ids = [s.pk for s in items if isinstance(s, Clip)]
    comment_ids = [s.pk for s in items if isinstance(s, Comment)]
    favourited: set[str] = set()
    reblogged: set[int] = set()
    bookmarked: set[int] = set()
    if viewer is not None:
        keys = [f"clip:{i}" for i in clip_ids] + [f"comment:{i}" for i in comment_ids]
        favourited = set(
            await column(Like.filter(account_id=viewer.pk, target_key__in=keys), "target_key")
        )
        if clip_ids:
            reblogged = set(
                await column(Boost.filter(account_id=viewer.pk, clip_id__in=clip_ids), "clip_id")
            )
        bookmarked = set(
            await column(
                Bookmark.filter(account_id=viewer.pk, status_id__in=clip_ids + comment_ids),
                "status_id",
            )
        )

    out: list[Json] = []
    for index, status in enumerate(items):
        entity = dict(bases[index] or {})  # (a copy: callers set keys)
        if isinstance(status, Clip):
            if index >= full and (status.remix_of_id is not None or status.remix_of_uri):
                entity["quote"] = _quote(status, {}, set(), False)
            if viewer is not None:
                entity["favourited"] = f"clip:{status.pk}" in favourited
                entity["reblogged"] = status.pk in reblogged
                entity["muted"] = False
                entity["bookmarked"] = status.pk in bookmarked
                if viewer.pk == status.account_id:
                    entity["pinned"] = status.pinned
        elif viewer is not None:
            entity["favourited"] = f"comment:{status.pk}" in favourited
            entity["reblogged"] = False
            entity["muted"] = False
            entity["bookmarked"] = status.pk in bookmarked
        out.append(entity)
    return out


def _cached_account(
    account: Account, moved: Mapping[int, Account], u: urls.Urls
) -> tuple[Any, Json]:
    """*account*'s stamp and entity, from the rendering cache when its row (and that of the
    account it moved to) says nothing shown changed."""
    target = moved.get(account.moved_to_id) if account.moved_to_id else None
    stamp = (
        entity_cache.account_stamp(account),
        None if target is None else entity_cache.account_stamp(target),
        u,
    )
    found = entity_cache.ACCOUNTS.get(account.pk, stamp)
    if found is None:
        found = _account(account, moved)
        entity_cache.ACCOUNTS.put(account.pk, stamp, found)
    return stamp, found


async def _base_entities(
    items: Sequence[Status],
    accounts: Mapping[int, Account],
    rendered_accounts: Mapping[int, tuple[Any, Json]],
) -> dict[tuple[bool, int], Json]:
    """What every viewer sees of *items* (no viewer flags, no quote), by (is a clip, id):
    their media, hashtags, mentions and reply targets loaded in a fixed number of queries."""
    clips = [s for s in items if isinstance(s, Clip)]
    comments = [s for s in items if isinstance(s, Comment)]
    clip_ids = [c.pk for c in clips]
    comment_ids = [c.pk for c in comments]

    # Targets of replies: parent comments and the clips comments belong to.
    parent_ids = {c.parent_id for c in comments if c.parent_id is not None}
    parents = {c.pk: c for c in await by_ids(Comment, parent_ids)}
    reply_clip_ids = {c.clip_id for c in comments} - set(clip_ids)
    reply_clips: dict[int, Clip] = {}
    if reply_clip_ids:
        reply_clips = {c.pk: c for c in await by_ids(Clip, reply_clip_ids)}
    reply_clips.update({c.pk: c for c in clips})

    media_ids = {c.media_id for c in clips if c.media_id is not None}
    media = {m.pk: m for m in await by_ids(MediaFile, media_ids)}

    tags_by_clip: dict[int, list[str]] = {}
    if clip_ids:
        for row in await ClipTag.filter(clip_id__in=clip_ids).values("clip_id", "tag__name"):
            tags_by_clip.setdefault(row["clip_id"], []).append(row["tag__name"])

    mention_q = Q(clip_id__in=clip_ids) | Q(comment_id__in=comment_ids)
    mention_rows = await Mention.filter(mention_q).values(
        "clip_id",
        "comment_id",
        "account_id",
        "account__username",
        "account__domain",
        "account__url",
        "account__uri",
    )
    mentions: dict[str, list[Json]] = {}
    for row in mention_rows:
        key = f"clip:{row['clip_id']}" if row["clip_id"] else f"comment:{row['comment_id']}"
        acct = row["account__username"]
        if row["account__domain"]:
            acct = f"{acct}@{row['account__domain']}"
        mentions.setdefault(key, []).append(
            {
                "id": str(row["account_id"]),
                "username": row["account__username"],
                "acct": acct,
                "url": row["account__url"] or row["account__uri"],
            }
        )

    u = urls.current()
    out: dict[tuple[bool, int], Json] = {}
    for status in items:
        account = accounts[status.account_id]
        key = f"{'clip' if isinstance(status, Clip) else 'comment'}:{status.pk}"
        entity: Json = {
            "id": str(status.pk),
            "created_at": iso(status.created_at),
            "edited_at": iso(status.edited_at),
            "in_reply_to_id": None,
            "in_reply_to_account_id": None,
            "sensitive": shown_sensitive(status, account),
            "spoiler_text": status.spoiler_text,
            "visibility": status.visibility.value
            if hasattr(status.visibility, "value")
            else str(status.visibility),
            "language": status.language,
            "uri": status.uri,
            "url": status.url or status.uri,
            "favourites_count": status.likes_count,
            "reblog": None,
            "application": None,
            "account": rendered_accounts[status.account_id][1],
            "media_attachments": [],
            "mentions": mentions.get(key, []),
            "tags": [],
            "emojis": [],
            "card": None,
            "poll": None,
            "quote": None,
            "quote_approval": _quote_approval(status, None),
            "quotes_count": 0,
            "filtered": [],
        }
        if isinstance(status, Clip):
            entity["content"] = status.content
            entity["replies_count"] = status.comments_count
            entity["reblogs_count"] = status.boosts_count
            entity["quotes_count"] = status.remixes_count
            if status.media_id is not None and status.media_id in media:
                entity["media_attachments"] = [media_entity(media[status.media_id])]
            entity["tags"] = [
                {"name": name, "url": u.tag(name)}
                for name in sorted(tags_by_clip.get(status.pk, []))
            ]
        else:
            entity["content"] = status.content
            entity["replies_count"] = status.replies_count
            entity["reblogs_count"] = 0
            if status.parent_id is not None and status.parent_id in parents:
                parent = parents[status.parent_id]
                entity["in_reply_to_id"] = str(parent.pk)
                entity["in_reply_to_account_id"] = str(parent.account_id)
            else:
                clip = reply_clips.get(status.clip_id)
                entity["in_reply_to_id"] = str(status.clip_id)
                if clip is not None:
                    entity["in_reply_to_account_id"] = str(clip.account_id)
        out[(isinstance(status, Clip), status.pk)] = entity
    return out


def _quote_state(clip: Clip) -> str:
    """The remix's quote state; whether its source is local is read off the source's URI
    (the row may not be at hand, or may be gone)."""
    source_is_local = (clip.remix_of_uri or "").startswith(urls.current().base + "/")
    return quote_state(clip, source_is_local)


def _quote(clip: Clip, quoted: dict[int, Json | None], deleted: set[int], full: bool) -> Json:
    """Mastodon 4.5's ``Quote`` (``ShallowQuote`` inside a quote). As Mastodon's serializer
    does, an accepted quote whose quoted clip is gone is ``deleted``, one the viewer may not
    see is ``unauthorized``; the quoted status is only given for an accepted quote."""
    state = _quote_state(clip)
    accepted = state == QuoteState.ACCEPTED
    if not full:  # a quote inside a quote is shallow, as Mastodon renders it
        if accepted and clip.remix_of_id is None:
            state = QuoteState.DELETED.value
        source_id = str(clip.remix_of_id) if accepted and clip.remix_of_id is not None else None
        return {"state": state, "quoted_status_id": source_id}
    if not accepted:
        return {"state": state, "quoted_status": None}
    if clip.remix_of_id is None or clip.remix_of_id in deleted:
        return {"state": QuoteState.DELETED.value, "quoted_status": None}
    entity = quoted.get(clip.remix_of_id)
    if entity is None:
        return {"state": "unauthorized", "quoted_status": None}
    return {"state": state, "quoted_status": entity}


def reblog_entity(boost: Boost, booster: Account, inner: Json) -> Json:
    """A reblog wrapper as home timelines show it. Its id is time-ordered like status ids."""
    created = boost.created_at
    wrapper_id = id_for_time(int(created.timestamp() * 1000), boost.pk)
    return {
        **{k: inner[k] for k in ("visibility", "sensitive", "spoiler_text", "language")},
        "id": str(wrapper_id),
        "created_at": iso(created),
        "edited_at": None,
        "in_reply_to_id": None,
        "in_reply_to_account_id": None,
        "uri": boost.uri,
        "url": None,
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 0,
        "quotes_count": 0,
        "favourited": False,
        "reblogged": inner.get("reblogged", False),
        "muted": False,
        "bookmarked": False,
        "content": "",
        "reblog": inner,
        "application": None,
        "account": _cached_account(booster, {}, urls.current())[1],
        "media_attachments": [],
        "mentions": [],
        "tags": [],
        "emojis": [],
        "card": None,
        "poll": None,
        "quote": None,
        "filtered": [],
    }


async def tag_entities(tags: Sequence[Tag], *, days: int = 7) -> list[Json]:
    """Tag entities with ``history``: clips and distinct authors per day, from real posts
    that anyone may see (:func:`fedisora.services.tags.counted_uses`)."""
    if not tags:
        return []
    today = datetime.now(UTC).date()
    since = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), UTC)
    rows = (
        await counted_uses()
        .filter(tag_id__in=[t.pk for t in tags], clip__created_at__gte=since)
        .values("tag_id", "clip__created_at", "clip__account_id")
    )
    uses: dict[tuple[int, date], int] = {}
    authors: dict[tuple[int, date], set[int]] = {}
    for row in rows:
        created: datetime = row["clip__created_at"]
        key = (row["tag_id"], created.astimezone(UTC).date())
        uses[key] = uses.get(key, 0) + 1
        authors.setdefault(key, set()).add(row["clip__account_id"])
    u = urls.current()
    out = []
    for tag in tags:
        history = []
        for offset in range(days):
            day = today - timedelta(days=offset)
            start = datetime.combine(day, datetime.min.time(), UTC)
            history.append(
                {
                    "day": str(int(start.timestamp())),
                    "uses": str(uses.get((tag.pk, day), 0)),
                    "accounts": str(len(authors.get((tag.pk, day), set()))),
                }
            )
        out.append(
            {
                "id": str(tag.pk),
                "name": tag.name,
                "url": u.tag(tag.name),
                "history": history,
                "following": False,
                "featuring": False,
            }
        )
    return out


async def notification_entities(viewer: Account, notes: Sequence[Notification]) -> list[Json]:
    """Notification entities. Ones whose status the viewer can no longer see are dropped
    (:func:`fedisora.services.notifications.visible_targets`)."""
    from fedisora.services.notifications import group_key, visible_targets

    warning_ids = {n.account_warning_id for n in notes if n.account_warning_id is not None}
    warnings = {w.pk: w for w in await AccountWarning.filter(pk__in=warning_ids)}
    account_ids = {n.from_account_id for n in notes if n.from_account_id is not None}
    account_ids |= {w.account_id for w in warnings.values()}  # whose warning (an appellant's)
    accounts = {a.pk: a for a in await Account.filter(pk__in=account_ids)}
    shown = await visible_targets(viewer, notes)
    targets = [t for t in dict.fromkeys(shown.values()) if t is not None]
    rendered = {
        f"{type(s).__name__}:{s.pk}": e
        for s, e in zip(targets, await status_entities(viewer, targets), strict=True)
    }
    moved = await moved_targets(accounts.values())
    appeals = {
        a.account_warning_id: a for a in await Appeal.filter(account_warning_id__in=warning_ids)
    }
    report_ids = {n.report_id for n in notes if n.report_id is not None}
    reports = {r.pk: r for r in await Report.filter(pk__in=report_ids)}
    report_targets = {
        a.pk: a
        for a in await Account.filter(pk__in={r.target_account_id for r in reports.values()})
    }
    out = []
    for note in notes:
        if note.pk not in shown:
            continue
        target = shown[note.pk]
        status_json = None if target is None else rendered[f"{type(target).__name__}:{target.pk}"]
        sender = accounts.get(note.from_account_id) if note.from_account_id else None
        entity: Json = {
            "id": str(note.pk),
            "type": api_notification_type(note.type),
            "group_key": group_key(note),
            "created_at": iso(note.created_at),
            "account": _account(sender or viewer, moved),
            "status": status_json,
        }
        if note.render_job_id is not None:
            entity["render_job_id"] = str(note.render_job_id)
        if note.account_warning_id is not None:
            warning = warnings.get(note.account_warning_id)
            if warning is None:
                continue
            entity["moderation_warning"] = account_warning_entity(
                warning, accounts.get(warning.account_id, viewer), moved, appeals.get(warning.pk)
            )
        if note.report_id is not None:
            report = reports.get(note.report_id)
            if report is None or report.target_account_id not in report_targets:
                continue
            entity["report"] = report_entity(report, report_targets[report.target_account_id])
        out.append(entity)
    return out


def account_warning_entity(
    warning: AccountWarning,
    account: Account,
    moved: Mapping[int, Account] | None = None,
    appeal: Appeal | None = None,
) -> Json:
    """Mastodon's ``AccountWarning`` (*account* is its target, *appeal* the one filed)."""
    return {
        "id": str(warning.pk),
        "action": warning.action,
        "text": warning.text,
        "status_ids": [str(i) for i in warning.status_ids] or None,
        "target_account": _account(account, moved),
        "appeal": None if appeal is None else appeal_entity(appeal),
        "created_at": iso(warning.created_at),
    }


def appeal_entity(appeal: Appeal) -> Json:
    """Mastodon's ``Appeal``."""
    return {"text": appeal.text, "state": str(getattr(appeal.state, "value", appeal.state))}


def report_fields(report: Report) -> Json:
    """The fields Mastodon's ``Report`` and ``Admin::Report`` share."""
    return {
        "id": str(report.pk),
        "action_taken": report.action_taken_at is not None,
        "action_taken_at": iso(report.action_taken_at),
        "category": str(getattr(report.category, "value", report.category)),
        "comment": report.comment,
        "forwarded": report.forwarded,
        "created_at": iso(report.created_at),
    }


def report_entity(report: Report, target: Account) -> Json:
    """Mastodon's ``Report``, as its reporter (or an ``admin.report`` notification) shows it."""
    return {
        **report_fields(report),
        "status_ids": [str(i) for i in report.status_ids],
        "rule_ids": [str(i) for i in report.rule_ids] or None,
        "collection_ids": [],
        "target_account": account_entities([target])[0],
    }


def rule_entity(rule: Rule) -> Json:
    """Mastodon's ``Rule``."""
    return {"id": str(rule.pk), "text": rule.text, "hint": rule.hint, "translations": {}}


def api_notification_type(kind: NotificationType | str) -> str:
    """The type clients see: a remix is Mastodon's ``quote``; others keep their names."""
    value = kind.value if isinstance(kind, NotificationType) else str(kind)
    return "quote" if value == NotificationType.REMIX.value else value
