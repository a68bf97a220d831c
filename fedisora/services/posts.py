"""Posting, remixing, editing and deleting clips."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F

from fedisora import urls
from fedisora.errors import Forbidden, Invalid, NotFound
from fedisora.for_you.signals import note_action
from fedisora.ids import new_id
from fedisora.models import (
    Account,
    Boost,
    Cameo,
    Clip,
    ClipTag,
    MediaFile,
    MediaKind,
    Mention,
    NotificationType,
    Tag,
    TimelineEntry,
    Visibility,
    utcnow,
)
from fedisora.services import events, fingerprints, idempotency
from fedisora.services.entity_versions import bump_clips
from fedisora.services.feeds import add_to_feeds, local_follower_ids
from fedisora.services.media_gc import attach_media, detach_media
from fedisora.services.notify import notify
from fedisora.services.remixes import recount_remixes
from fedisora.services.text import parse_text, render_html
from fedisora.services.visibility import can_see_clip

__all__ = [
    "MAX_CAPTION",
    "Within",
    "delete_clip",
    "edit_clip",
    "post_clip",
    "remix_clip",
    "store_clip",
]

MAX_CAPTION = 1000
MAX_SPOILER = 500

Within = Callable[[BaseDBAsyncClient, Clip], Awaitable[None]]
"""A step a caller of :func:`post_clip` adds to the clip's transaction."""


def provenance_allows_posting(media: MediaFile) -> bool:
    """The AI-only rule: only videos whose manifest this instance's render queue signed."""
    prov = media.provenance or {}
    return (
        media.kind == MediaKind.VIDEO and prov.get("state") == "trusted" and bool(prov.get("local"))
    )


def _check_text(caption: str, spoiler_text: str) -> None:
    if len(caption) > MAX_CAPTION:
        raise Invalid(f"caption is {len(caption)} characters; the limit is {MAX_CAPTION}")
    if len(spoiler_text) > MAX_SPOILER:
        raise Invalid(f"content warning is longer than {MAX_SPOILER} characters")


def _visibility(value: str | Visibility) -> Visibility:
    try:
        return Visibility(value)
    except ValueError:
        allowed = ", ".join(v.value for v in Visibility)
        raise Invalid(f"visibility must be one of {allowed}, not {value!r}") from None


async def resolve_mentions(
    mentions: Sequence[tuple[str, str | None]], local_domain: str
) -> list[Account]:
    """Known accounts for parsed mentions (remote ones are resolved by federation, later)."""
    found: list[Account] = []
    for username, domain in mentions:
        if domain == local_domain:
            domain = None
        account = await Account.get_or_none(username__iexact=username, domain=domain)
        if account is not None and not account.suspended:
            found.append(account)
    return found


async def _render_caption(text: str) -> tuple[str, list[Account], list[str]]:
    u = urls.current()
    parsed = parse_text(text)
    local_domain = u.base.split("://", 1)[1]
    mentioned = await resolve_mentions(parsed.mentions, local_domain)
    by_key = {(a.username.lower(), a.domain): a for a in mentioned}

    def mention_url(username: str, domain: str | None) -> str | None:
        if domain == local_domain:
            domain = None
        account = by_key.get((username, domain))
        return None if account is None else (account.url or account.uri)

    content = render_html(text, tag_url=u.tag, mention_url=mention_url)
    return content, mentioned, list(parsed.hashtags)


async def _attach_tags(clip: Clip, names: Sequence[str], conn: BaseDBAsyncClient) -> None:
    for name in names:
        tag, _ = await Tag.get_or_create(name=name, using_db=conn)
        await ClipTag.get_or_create(tag=tag, clip=clip, using_db=conn)


async def _fan_out(
    clip: Clip, author: Account, mentioned: Sequence[Account], conn: BaseDBAsyncClient
) -> None:
    """Write the clip into local home feeds: the author's, local followers', mentioned locals'."""
    owners: set[int] = {author.pk} if author.local else set()
    if clip.visibility != Visibility.DIRECT:
        owners.update(await local_follower_ids(author.pk, conn))
    owners.update(a.pk for a in mentioned if a.local)
    await add_to_feeds(owners, clip.pk, conn)


async def post_clip(
    author: Account,
    media: MediaFile,
    *,
    caption: str = "",
    visibility: str | Visibility = Visibility.PUBLIC,
    sensitive: bool = False,
    spoiler_text: str = "",
    language: str | None = None,
    remix_of: Clip | None = None,
    cameos: Sequence[tuple[Account, str | None]] = (),
    once: idempotency.Key | None = None,
    within: Within | None = None,
) -> Clip:
    """Publish *media* (a finished render of *author*'s) as a clip.

    *once*, the client's ``Idempotency-Key``, is stored with the clip (see
    :mod:`~fedisora.services.idempotency`); *within* runs in the clip's transaction too, after
    the clip is stored (the render queue moves the render to ``published`` there): a raise in
    either rolls the clip back."""
    if not author.local:
        raise Forbidden("only local accounts post through this service")
    _check_text(caption, spoiler_text)
    vis = _visibility(visibility)
    if media.account_id != author.pk:
        raise Forbidden("that media belongs to another account")
    if not provenance_allows_posting(media):
        raise Invalid(
            "only videos rendered by this instance's render queue can be posted (AI-only rule): "
            "this media has no valid provenance manifest from it"
        )
    if await Clip.filter(media_id=media.pk, deleted_at=None).exists():
        raise Invalid("that media is already posted")
    if remix_of is not None:
        if remix_of.deleted_at is not None or not await can_see_clip(author, remix_of):
            raise NotFound("the remix source does not exist or is not visible to you")
        if remix_of.visibility not in (Visibility.PUBLIC, Visibility.UNLISTED) and (
            remix_of.account_id != author.pk
        ):
            raise Forbidden("only public or unlisted clips can be remixed")

    content, mentioned, tags = await _render_caption(caption)
    u = urls.current()
    clip = Clip(
        id=new_id(),
        account=author,
        caption=caption,
        content=content,
        language=language,
        visibility=vis,
        local=True,
        sensitive=sensitive or bool(spoiler_text),
        spoiler_text=spoiler_text,
        media=media,
        remix_of=remix_of,
        remix_of_uri=remix_of.uri if remix_of else None,
    )
    clip.uri = u.clip(author.username, clip.id)
    clip.url = u.clip_page(author.username, clip.id)

    async def fingerprinted(conn: BaseDBAsyncClient, stored: Clip) -> None:
        # Its fingerprint is computed by a worker after the commit (durable: the row).
        await fingerprints.request(conn, stored)
        if within is not None:
            await within(conn, stored)

    posted = await store_clip(
        clip,
        author,
        mentioned=mentioned,
        tags=tags,
        cameos=cameos,
        once=once,
        within=fingerprinted,
    )
    await fingerprints.wake(posted)
    return posted


async def store_clip(
    clip: Clip,
    author: Account,
    *,
    mentioned: Sequence[Account] = (),
    tags: Sequence[str] = (),
    cameos: Sequence[tuple[Account, str | None]] = (),
    once: idempotency.Key | None = None,
    within: Within | None = None,
) -> Clip:
    """Save a new clip, local or remote, with everything that comes with it, in one transaction.

    Callers check permissions and build the unsaved row (id, uri, text, media, remix source);
    this writes tags, mentions, cameos, home feeds and counters, the ``Idempotency-Key``
    *once*, emits ``clip.created``, notifies and runs *within*, all in that transaction. Used
    by :func:`post_clip` and by federation for remote clips.
    """
    remix_of = await Clip.get_or_none(pk=clip.remix_of_id) if clip.remix_of_id else None
    async with events.transaction() as conn:
        if clip.media_id is not None:
            await attach_media(clip.media_id, conn)  # the fence against its collection
        await clip.save(using_db=conn, force_create=True)
        if once is not None:
            await idempotency.record(conn, once, clip.pk)
        await _attach_tags(clip, tags, conn)
        for account in mentioned:
            await Mention.get_or_create(
                account=account, clip=clip, target_key=f"clip:{clip.pk}", using_db=conn
            )
        for account, consent_uri in cameos:
            await Cameo.create(clip=clip, account=account, consent_uri=consent_uri, using_db=conn)
        await _fan_out(clip, author, mentioned, conn)
        await (
            Account.filter(pk=author.pk)
            .using_db(conn)
            .update(clips_count=F("clips_count") + 1, last_clip_at=utcnow())
        )
        if remix_of is not None:
            await recount_remixes(remix_of.pk, conn)
        await events.emit(conn, "clip.created", author.pk, clip_id=clip.pk)

        notices: list[tuple[Account, NotificationType]] = [
            (account, NotificationType.MENTION) for account in mentioned
        ]
        if remix_of is not None and clip.local:
            # A remote remix notifies once it is approved (remixes.notify_approved).
            source_author = await Account.get(pk=remix_of.account_id, using_db=conn)
            notices.append((source_author, NotificationType.REMIX))
        notices.extend((account, NotificationType.LIKENESS_USE) for account, _ in cameos)
        for recipient, kind in notices:
            await notify(
                recipient, kind, dedupe_key=f"clip:{clip.pk}", from_account=author, clip=clip
            )
        if within is not None:
            await within(conn, clip)
    if remix_of is not None:  # For You learns from it (local authors only; the first one)
        await note_action(author, remix_of, "remix")
    return clip


async def remix_clip(author: Account, source: Clip, media: MediaFile, **kwargs: object) -> Clip:
    """Post *media* as a remix of *source* (the render used the source's prompt or frames)."""
    return await post_clip(author, media, remix_of=source, **kwargs)  # type: ignore[arg-type]


async def edit_clip(
    editor: Account,
    clip: Clip,
    *,
    caption: str | None = None,
    sensitive: bool | None = None,
    spoiler_text: str | None = None,
    language: str | None = None,
) -> Clip:
    """Edit a clip's text and flags. The video itself never changes."""
    if clip.account_id != editor.pk:
        raise Forbidden("only the author can edit a clip")
    if clip.deleted_at is not None:
        raise NotFound("that clip was deleted")
    new_caption = clip.caption if caption is None else caption
    new_spoiler = clip.spoiler_text if spoiler_text is None else spoiler_text
    _check_text(new_caption, new_spoiler)
    content, mentioned, tags = await _render_caption(new_caption)
    async with events.transaction() as conn:
        clip.caption = new_caption
        clip.content = content
        clip.spoiler_text = new_spoiler
        if sensitive is not None:
            clip.sensitive = sensitive
        clip.sensitive = clip.sensitive or bool(new_spoiler)
        if language is not None:
            clip.language = language
        clip.edited_at = utcnow()
        await clip.save(using_db=conn)
        await ClipTag.filter(clip_id=clip.pk).using_db(conn).delete()
        await _attach_tags(clip, tags, conn)
        for account in mentioned:
            await Mention.get_or_create(
                account=account, clip=clip, target_key=f"clip:{clip.pk}", using_db=conn
            )
        await bump_clips([clip.pk], conn)  # its hashtags and mentions: cached entities go
        versions: list[Any] = list(
            await Clip.filter(pk=clip.pk).using_db(conn).values_list("version", flat=True)
        )
        clip.version = int(versions[0])
        await events.emit(conn, "clip.updated", editor.pk, clip_id=clip.pk)
        boosters = await Boost.filter(clip_id=clip.pk).using_db(conn).prefetch_related("account")
        stamp = int(clip.edited_at.timestamp())
        for boost in boosters:
            await notify(
                boost.account,
                NotificationType.UPDATE,
                dedupe_key=f"clip:{clip.pk}:{stamp}",
                from_account=editor,
                clip=clip,
            )
    return clip


async def delete_clip(actor: Account, clip: Clip, *, as_admin: bool = False) -> None:
    """Delete a clip: a tombstone stays (its URI answers 410), everything else goes."""
    if clip.account_id != actor.pk and not as_admin:
        raise Forbidden("only the author or an admin can delete a clip")
    if clip.deleted_at is not None:
        return
    async with events.transaction() as conn:
        updated = (
            await Clip.filter(pk=clip.pk, deleted_at=None)
            .using_db(conn)
            .update(deleted_at=utcnow(), caption="", content="", media_id=None)
        )
        if not updated:
            return
        await detach_media(clip.media_id, conn)  # collected with its files from now on
        await TimelineEntry.filter(clip_id=clip.pk).using_db(conn).delete()
        await ClipTag.filter(clip_id=clip.pk).using_db(conn).delete()
        await bump_clips([clip.pk], conn)
        await (
            Account.filter(pk=clip.account_id, clips_count__gt=0)
            .using_db(conn)
            .update(clips_count=F("clips_count") - 1)
        )
        await recount_remixes(clip.remix_of_id, conn)
        await events.emit(conn, "clip.deleted", clip.account_id, clip_id=clip.pk, uri=clip.uri)
