"""Local rows -> ActivityPub documents, through the pure shapes of :mod:`activitypub.objects`."""

from __future__ import annotations

from datetime import datetime

from activitypub import objects
from fedisora import urls
from fedisora.models import (
    Account,
    ActorType,
    Cameo,
    Clip,
    ClipTag,
    Comment,
    MediaFile,
    Mention,
    Visibility,
)
from fedisora.services.visibility import shown_sensitive

__all__ = [
    "actor_document",
    "clip_cameos",
    "clip_note",
    "clip_video",
    "comment_note",
    "ed25519_key_id",
    "iso",
    "note_for_uri",
]


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def ed25519_key_id(account: Account) -> str:
    return f"{account.uri}#ed25519-key"


def actor_document(account: Account) -> dict[str, object]:
    """A local account's actor. A suspended one (``suspended_at`` set, not deleted: deleted
    ones answer 410) gives Mastodon's minimal document with ``suspended: true``: ids, inboxes
    and keys stay, the profile is blanked (it is kept in the row for an unsuspension)."""
    u = urls.current()
    suspended = account.suspended_at is not None
    info = objects.ActorInfo(
        id=account.uri,
        type=account.actor_type.value,
        username=account.username
        if account.actor_type != ActorType.APPLICATION
        else u.base.split("://", 1)[1],
        name=account.username if suspended else (account.display_name or account.username),
        summary="" if suspended else account.note,
        url=account.url or account.uri,
        inbox=account.inbox_uri or u.inbox(account.username),
        outbox=account.outbox_uri or u.outbox(account.username),
        followers=account.followers_uri or u.followers(account.username),
        following=account.following_uri or u.following(account.username),
        featured=account.featured_uri or u.featured(account.username),
        shared_inbox=u.shared_inbox(),
        public_key_id=account.public_key_id or f"{account.uri}#main-key",
        public_key_pem=account.public_key_pem or "",
        published=iso(account.created_at) or "",
        ed25519_key_id=ed25519_key_id(account) if account.ed25519_public_multibase else None,
        ed25519_multibase=account.ed25519_public_multibase,
        icon_url=None if suspended else account.avatar_url,
        image_url=None if suspended else account.header_url,
        manually_approves_followers=account.locked and not suspended,
        discoverable=account.discoverable and not suspended,
        indexable=account.indexable and not suspended,
        suspended=suspended,
    )
    return objects.actor_document(info)


async def _fingerprint(clip: Clip) -> objects.FingerprintInfo | None:
    """A public or unlisted clip's fingerprint, once computed (the ``fingerprint`` term)."""
    from fedisora.services.fingerprints import federated

    return await federated(clip)


async def _mentions(**where: object) -> list[Account]:
    rows = await Mention.filter(**where).prefetch_related("account")
    return [m.account for m in rows]


def _video(
    media: MediaFile, fingerprint: objects.FingerprintInfo | None = None
) -> objects.VideoInfo:
    u = urls.current()
    url = u.media(media.file) if media.file else media.remote_url or ""
    poster = u.media(media.poster_file) if media.poster_file else media.remote_poster_url
    prov = media.provenance or {}
    return objects.VideoInfo(
        url=url,
        media_type=media.content_type or "video/mp4",
        name=media.description,
        width=media.width,
        height=media.height,
        blurhash=media.blurhash,
        poster_url=poster,
        size=media.size,
        duration=media.duration,
        sha256_hex=media.sha256,
        ai_generated=True,
        provenance=objects.ProvenanceInfo(
            manifest_digest=prov.get("manifest_digest"), state=str(prov.get("state", "unverified"))
        ),
        fps=media.fps,
        fingerprint=fingerprint,
    )


async def clip_note(clip: Clip, *, context: bool = True) -> dict[str, object]:
    """A clip as a ``Note`` with its video (a deleted clip has no video: use a Tombstone)."""
    return objects.note_document(await _clip_info(clip), context=context)


async def clip_video(clip: Clip, *, context: bool = True) -> dict[str, object] | None:
    """A clip as a PeerTube-style ``Video`` (None when it has no video file)."""
    info = await _clip_info(clip)
    if info.video is None:
        return None
    return objects.video_document(info, context=context)


def _acct_name(account: Account) -> str:
    return f"@{account.username}@{account.domain or urls.current().base.split('://', 1)[1]}"


async def clip_cameos(clip: Clip) -> list[objects.CameoInfo]:
    """The cameos of a local clip with the signed grants they were published under (a cameo
    whose grant has no signed document, e.g. the author's own likeness, is named without
    one: only the mention)."""
    from fedisora.models import LikenessGrant

    out: list[objects.CameoInfo] = []
    for cameo in await Cameo.filter(clip_id=clip.pk).prefetch_related("account").order_by("id"):
        if not cameo.consent_uri:
            continue
        grant = await LikenessGrant.get_or_none(uri=cameo.consent_uri)
        if grant is None or not grant.document:
            continue
        account = cameo.account
        out.append(
            objects.CameoInfo(
                actor=account.uri,
                name=_acct_name(account),
                consent=grant.document,
                url=account.url or account.uri,
            )
        )
    return out


async def _clip_info(clip: Clip) -> objects.NoteInfo:
    author = await Account.get(pk=clip.account_id)
    u = urls.current()
    mentioned = await _mentions(clip_id=clip.pk)
    tag_names = await ClipTag.filter(clip_id=clip.pk).values_list("tag__name", flat=True)
    cameos = await clip_cameos(clip)
    named = [a.uri for a in mentioned]
    to, cc = objects.addressing(
        clip.visibility.value,
        author.followers_uri or u.followers(author.username),
        named + [c.actor for c in cameos if c.actor not in named],
    )
    media = await MediaFile.get_or_none(pk=clip.media_id) if clip.media_id else None
    info = objects.NoteInfo(
        id=clip.uri,
        attributed_to=author.uri,
        content=clip.content,
        published=iso(clip.created_at) or "",
        updated=iso(clip.edited_at),
        to=to,
        cc=cc,
        url=clip.url,
        summary=clip.spoiler_text,
        sensitive=shown_sensitive(clip, author),
        language=clip.language,
        video=_video(media, await _fingerprint(clip)) if media is not None else None,
        hashtags=[(str(name), u.tag(str(name))) for name in tag_names],
        mentions=[
            (a.uri, f"@{a.username}@{a.domain or u.base.split('://', 1)[1]}") for a in mentioned
        ],
        quote=clip.remix_of_uri,
        replies=f"{clip.uri}/replies",
        likes=f"{clip.uri}/likes",
        shares=f"{clip.uri}/shares",
        extra=_clip_extra(clip, author),
        cameos=cameos,
    )
    return info


def _clip_extra(clip: Clip, author: Account) -> dict[str, object]:
    extra: dict[str, object] = {"interactionPolicy": _policy(clip, author)}
    if clip.quote_authorization_uri and clip.remix_of_uri:
        extra["quoteAuthorization"] = clip.quote_authorization_uri
    return extra


def _policy(clip: Clip, author: Account) -> dict[str, object]:
    """FEP-044f: public and unlisted clips may be remixed (quoted) by anyone."""
    if clip.visibility in (Visibility.PUBLIC, Visibility.UNLISTED):
        return {"canQuote": {"automaticApproval": [objects.PUBLIC]}}
    return {"canQuote": {"automaticApproval": [author.uri]}}


async def comment_note(comment: Comment, *, context: bool = True) -> dict[str, object]:
    author = await Account.get(pk=comment.account_id)
    u = urls.current()
    clip = await Clip.get(pk=comment.clip_id)
    parent = await Comment.get_or_none(pk=comment.parent_id) if comment.parent_id else None
    mentioned = await _mentions(comment_id=comment.pk)
    reply_to_author = await Account.get(pk=(parent or clip).account_id)
    audience = [a.uri for a in mentioned]
    if reply_to_author.pk != author.pk:
        audience.insert(0, reply_to_author.uri)
    to, cc = objects.addressing(
        comment.visibility.value, author.followers_uri or u.followers(author.username), audience
    )
    info = objects.NoteInfo(
        id=comment.uri,
        attributed_to=author.uri,
        content=comment.content,
        published=iso(comment.created_at) or "",
        updated=iso(comment.edited_at),
        to=to,
        cc=cc,
        url=comment.url,
        summary=comment.spoiler_text,
        sensitive=shown_sensitive(comment, author),
        language=comment.language,
        in_reply_to=(parent or clip).uri,
        mentions=[
            (a.uri, f"@{a.username}@{a.domain or u.base.split('://', 1)[1]}") for a in mentioned
        ],
    )
    return objects.note_document(info, context=context)


async def note_for_uri(uri: str) -> dict[str, object] | None:
    """The Note of a local clip or comment by its URI (None if unknown or deleted)."""
    clip = await Clip.get_or_none(uri=uri, local=True)
    if clip is not None:
        return None if clip.deleted_at else await clip_note(clip)
    comment = await Comment.get_or_none(uri=uri, local=True)
    if comment is not None and comment.deleted_at is None:
        return await comment_note(comment)
    return None
