"""The domain model (tortoise-orm). Migrations in ``migrations/`` are generated from this module.

Clips and comments share one id sequence (:mod:`fedisora.ids`) because both are statuses to
Mastodon clients. Indexes are chosen so that every timeline page is an index range scan whose
cost does not grow with the table (``tests/fedisora/test_indexes.py`` checks the query plans).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

import tortoise.models
from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from fedisora.ids import new_id
from fedisora.logs import REQUEST_ID

_source_comments = tortoise.models._get_comments


def _no_source_comments(cls: type[Model]) -> dict[str, str]:
    """No ``#:`` field comments here: fedisora documents fields with docstrings.

    tortoise's ModelMeta looks for ``#:`` comments in each model's source, and reading it
    (``inspect.getsource``) parses this whole module with ``ast`` once per model: about 3 s
    of CPU in every process that imports the models (each CLI command, web process and
    worker). Models defined elsewhere are read as tortoise does.
    """
    return {} if cls.__module__ == __name__ else _source_comments(cls)


tortoise.models._get_comments = _no_source_comments

__all__ = [
    "Account",
    "ActorType",
    "Block",
    "Boost",
    "Cameo",
    "Clip",
    "ClipTag",
    "Comment",
    "Delivery",
    "Follow",
    "FollowState",
    "InboxItem",
    "Like",
    "MediaFile",
    "MediaKind",
    "Mention",
    "Mute",
    "Notification",
    "NotificationType",
    "OutboxEvent",
    "QuoteCheck",
    "QuoteState",
    "RemoteMediaCheck",
    "RenderJob",
    "Tag",
    "TimelineEntry",
    "User",
    "Visibility",
    "WorkRow",
    "WorkerHeartbeat",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _saved_columns(model: type[Model]) -> list[str]:
    """Every column of *model* a plain ``save()`` of a loaded row writes: all but the id and
    ``version``, which only :mod:`fedisora.services.entity_versions` raises (in SQL): a row
    loaded before a bump and saved after it must not set the version back."""
    return [f for f in model._meta.fields_db_projection if f not in ("id", "version")]


class _VersionedSave:
    """The ``save()`` of the rows with a ``version`` (:class:`Clip`, :class:`Comment`): a new
    row gets its time-ordered id; a loaded one writes every column but ``version``."""

    async def save(
        self,
        using_db: Any = None,
        update_fields: Any = None,
        force_create: bool = False,
        force_update: bool = False,
    ) -> None:
        row = cast("Clip | Comment", self)
        if row.id is None:
            row.id = new_id()
        if update_fields is None and not force_create and row._saved_in_db:
            update_fields = _saved_columns(type(row))
        await Model.save(row, using_db, update_fields, force_create, force_update)


class Visibility(StrEnum):
    PUBLIC = "public"
    UNLISTED = "unlisted"
    FOLLOWERS = "private"  # Mastodon's API name for followers-only
    DIRECT = "direct"


class ActorType(StrEnum):
    PERSON = "Person"
    SERVICE = "Service"
    GROUP = "Group"
    APPLICATION = "Application"
    ORGANIZATION = "Organization"


class FollowState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"


class QuoteState(StrEnum):
    """Where a remix's FEP-044f approval stands: the states of Mastodon's ``Quote`` model."""

    PENDING = "pending"  # not (yet) shown to be approved: no stamp, or not verified yet
    ACCEPTED = "accepted"  # approved: a valid stamp of the quoted clip's author
    REJECTED = "rejected"  # refused, or its stamp cannot be dereferenced
    REVOKED = "revoked"  # was accepted; the stamp was deleted since
    DELETED = "deleted"  # the quoted clip is gone


class MediaKind(StrEnum):
    VIDEO = "video"
    IMAGE = "image"


class NotificationType(StrEnum):
    MENTION = "mention"
    FAVOURITE = "favourite"
    REBLOG = "reblog"
    FOLLOW = "follow"
    FOLLOW_REQUEST = "follow_request"
    STATUS = "status"
    UPDATE = "update"
    REMIX = "fedisora.remix"
    LIKENESS_USE = "fedisora.likeness_use"
    LIKENESS_REQUEST = "fedisora.likeness_request"
    RENDER_FINISHED = "fedisora.render_finished"
    RENDER_FAILED = "fedisora.render_failed"
    MODERATION_WARNING = "moderation_warning"
    """A moderator acted on your account or posts (Mastodon 4.3's type; the notification's
    ``account_warning`` says what was done)."""
    ADMIN_SIGN_UP = "admin.sign_up"
    """To each admin: someone signed up and waits for approval (Mastodon's type)."""
    ADMIN_REPORT = "admin.report"
    """To each admin: a new report, filed here or received from another instance
    (Mastodon's type; the notification's ``report`` is it)."""
    APPEAL_APPROVED = "fedisora.appeal_approved"
    """Your appeal of a moderator's warning was approved (its ``account_warning`` is the
    warning; Mastodon tells this by e-mail only)."""
    APPEAL_REJECTED = "fedisora.appeal_rejected"
    """Your appeal of a moderator's warning was rejected."""
    ADMIN_APPEAL = "fedisora.admin_appeal"
    """To each staff member who may decide it: a new appeal of a moderator's warning (its
    ``account_warning`` is the warning appealed, its ``from_account`` the appellant; Mastodon
    has no such type)."""


class Account(Model):
    """A local or remote actor. Local ones (``domain`` is null) hold their private keys."""

    id = fields.BigIntField(primary_key=True)
    username = fields.CharField(max_length=64)
    domain = fields.CharField(max_length=255, null=True)
    actor_type = fields.CharEnumField(ActorType, max_length=16, default=ActorType.PERSON)
    display_name = fields.CharField(max_length=100, default="")
    note = fields.TextField(default="")
    uri = fields.CharField(max_length=2048, unique=True)
    url = fields.CharField(max_length=2048, null=True)
    inbox_uri = fields.CharField(max_length=2048, null=True)
    shared_inbox_uri = fields.CharField(max_length=2048, null=True)
    outbox_uri = fields.CharField(max_length=2048, null=True)
    followers_uri = fields.CharField(max_length=2048, null=True)
    following_uri = fields.CharField(max_length=2048, null=True)
    featured_uri = fields.CharField(max_length=2048, null=True)
    avatar_url = fields.CharField(max_length=2048, null=True)
    header_url = fields.CharField(max_length=2048, null=True)
    public_key_id = fields.CharField(max_length=2048, null=True)
    public_key_pem = fields.TextField(null=True)
    private_key_pem = fields.TextField(null=True)
    ed25519_public_multibase = fields.CharField(max_length=128, null=True)
    ed25519_private_pem = fields.TextField(null=True)
    locked = fields.BooleanField(default=False)
    discoverable = fields.BooleanField(default=True)
    indexable = fields.BooleanField(default=True)
    suspended_at = fields.DatetimeField(null=True)
    """Suspended by a moderator of this instance (or, for a remote account, deleted by its
    server). See :mod:`fedisora.services.account_deletion`."""
    origin_suspended_at = fields.DatetimeField(null=True)
    """Remote accounts only: suspended by their own server (its actor says ``suspended``).
    Kept apart from :attr:`suspended_at` so that the origin lifting its suspension never
    lifts a local moderator's."""
    silenced_at = fields.DatetimeField(null=True)
    """Silenced (Mastodon's "limited") by a moderator of this instance: its clips are left out
    of public timelines, trends, tags and search for non-followers, and its notifications to
    non-followers are dropped (:mod:`fedisora.services.visibility`)."""
    sensitized_at = fields.DatetimeField(null=True)
    """Marked sensitive by a moderator of this instance: all its clips are served as
    sensitive (:func:`fedisora.services.visibility.shown_sensitive`)."""
    origin_deleted_at = fields.DatetimeField(null=True)
    """Remote accounts only: deleted by their own server (a ``Delete`` of the actor). Both
    suspensions are set with it; unlike them it is never lifted. See
    :func:`fedisora.services.account_deletion.is_remote_deleted`."""
    moved_to: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="moved_from", null=True, on_delete=fields.SET_NULL
    )
    """Remote accounts only: the account it moved to, set by an accepted ``Move`` (see
    :mod:`fedisora.federation.moves`); cleared when its actor names no ``movedTo`` any more."""
    moved_to_id: int | None
    also_known_as: list[str] | None = fields.JSONField(null=True)
    """Remote accounts only: the actor's ``alsoKnownAs``, the accounts it says it also is
    (None: not read yet). A ``Move`` to this account is only accepted from one of them."""
    followers_count = fields.IntField(default=0)
    following_count = fields.IntField(default=0)
    clips_count = fields.IntField(default=0)
    last_clip_at = fields.DatetimeField(null=True)
    fetched_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "accounts"
        unique_together = (("username", "domain"),)
        # silenced_at: every public list and For You page reads the silenced accounts, a few
        # rows among every account this instance has seen (migrations/0041_silenced_index.py).
        indexes = (Index(fields=("domain", "username")), Index(fields=("silenced_at",)))

    def __str__(self) -> str:
        return self.acct

    @property
    def local(self) -> bool:
        return self.domain is None

    @property
    def acct(self) -> str:
        return self.username if self.domain is None else f"{self.username}@{self.domain}"

    @property
    def suspended(self) -> bool:
        """Hidden here: suspended by this instance's moderators or by the account's server."""
        return self.suspended_at is not None or self.origin_suspended_at is not None


class User(Model):
    """Login credentials and roles of a local account."""

    id = fields.BigIntField(primary_key=True)
    account: fields.OneToOneRelation[Account] = fields.OneToOneField(
        "fedisora.Account", related_name="user", on_delete=fields.CASCADE
    )
    account_id: int
    email = fields.CharField(max_length=254, unique=True)
    password_hash = fields.CharField(max_length=255)
    is_admin = fields.BooleanField(default=False)
    is_moderator = fields.BooleanField(default=False, db_default=False)
    """Acts on reports, accounts and the likeness queue, not on the instance's settings (an
    admin can do everything; see :mod:`fedisora.services.roles`)."""
    approved = fields.BooleanField(default=True)
    disabled = fields.BooleanField(default=False)
    signup_reason = fields.TextField(default="", db_default="")
    """Why they want to join, given at sign-up when sign-ups need approval (for the admins)."""
    email_confirmed = fields.BooleanField(default=True, db_default=True)
    """False from a sign-up on an instance that sends mail (``FEDISORA_SMTP_URL``) until the
    link of the confirmation mail is followed (:mod:`fedisora.services.email_confirmation`);
    accounts made otherwise (the CLI, an admin, before mail was configured) are confirmed."""
    created_at = fields.DatetimeField(auto_now_add=True)
    last_login_at = fields.DatetimeField(null=True)

    class Meta:
        table = "users"


class Tag(Model):
    id = fields.BigIntField(primary_key=True)
    name = fields.CharField(max_length=100, unique=True)  # lower-cased, without '#'
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "tags"


class MediaFile(Model):
    """A video (clip output) or image (render input still), local or remote."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="media", null=True, on_delete=fields.CASCADE
    )
    account_id: int | None
    kind = fields.CharEnumField(MediaKind, max_length=8)
    file = fields.CharField(max_length=512, null=True)  # relative to MEDIA_ROOT
    remote_url = fields.CharField(max_length=2048, null=True)
    poster_file = fields.CharField(max_length=512, null=True)
    remote_poster_url = fields.CharField(max_length=2048, null=True)
    content_type = fields.CharField(max_length=100)
    width = fields.IntField(null=True)
    height = fields.IntField(null=True)
    duration = fields.FloatField(null=True)
    fps = fields.FloatField(null=True)
    frames = fields.IntField(null=True)
    size = fields.BigIntField(null=True)
    sha256 = fields.CharField(max_length=64, null=True)
    blurhash = fields.CharField(max_length=100, null=True)
    description = fields.TextField(default="")
    # Provenance as checked when the file entered the instance: {"state": "trusted" (rendered
    # or uploaded here) | "verified" | "unverified" | "invalid" (remote, see
    # fedisora.federation.media_check), "manifest_digest": ..., "claim": {...}, "reason",
    # "checked_at"}.
    provenance: dict[str, Any] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)
    attached_at = fields.DatetimeField(null=True)
    """When a clip took this media (null: none holds it, or its clip was deleted). Set in the
    clip's transaction by a conditional update that is the fence against the collection of
    unattached media (see :mod:`fedisora.services.media_gc`)."""
    doomed_at = fields.DatetimeField(null=True)
    """Set by the collection of unattached media once it has decided to remove the row: no
    clip can take it from then on, its files are deleted, then the row."""

    class Meta:
        table = "media_files"
        # account_id: an account's media, read when it is deleted
        # (migrations/0042_foreign_key_indexes.py).
        indexes = (Index(fields=("attached_at", "id")), Index(fields=("account_id",)))

    def has_sound(self) -> bool | None:
        """Whether the video has sound, as its signed render claim says (LTX-2 renders
        picture and sound); False for one rendered here without a claim of sound; None when
        nobody knows (another server's video without a fedisora claim, or not checked):
        players offer the unmute control unless it is False."""
        provenance = self.provenance or {}
        claim = provenance.get("claim")
        if isinstance(claim, dict):
            return claim.get("audio") is True
        return False if provenance.get("local") is True else None


class Clip(_VersionedSave, Model):
    """A video post: one rendered clip with its caption. Always exactly one video."""

    id = fields.BigIntField(primary_key=True, generated=False)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="clips", on_delete=fields.CASCADE
    )
    account_id: int
    uri = fields.CharField(max_length=2048, unique=True)
    url = fields.CharField(max_length=2048, null=True)
    caption = fields.TextField(default="")  # source text as the author typed it
    content = fields.TextField(default="")  # rendered HTML
    language = fields.CharField(max_length=16, null=True)
    visibility = fields.CharEnumField(Visibility, max_length=10, default=Visibility.PUBLIC)
    local = fields.BooleanField(default=True)
    sensitive = fields.BooleanField(default=False)
    spoiler_text = fields.CharField(max_length=500, default="")
    media: fields.ForeignKeyNullableRelation[MediaFile] = fields.ForeignKeyField(
        "fedisora.MediaFile", related_name="clips", null=True, on_delete=fields.SET_NULL
    )
    media_id: int | None
    remix_of: fields.ForeignKeyNullableRelation[Clip] = fields.ForeignKeyField(
        "fedisora.Clip", related_name="remixes", null=True, on_delete=fields.SET_NULL
    )
    remix_of_id: int | None
    remix_of_uri = fields.CharField(max_length=2048, null=True)
    render_job: fields.ForeignKeyNullableRelation[RenderJob] = fields.ForeignKeyField(
        "fedisora.RenderJob", related_name="clips", null=True, on_delete=fields.SET_NULL
    )
    render_job_id: int | None
    likes_count = fields.IntField(default=0)
    comments_count = fields.IntField(default=0)
    boosts_count = fields.IntField(default=0)
    remixes_count = fields.IntField(default=0)
    # What viewers' players reported (fedisora.for_you.signals): each viewer counts once per
    # clip for views, completions and skips, so no one account can inflate them.
    views_count = fields.IntField(default=0, db_default=0)
    completions_count = fields.IntField(default=0, db_default=0)
    skips_count = fields.IntField(default=0, db_default=0)
    pinned = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(default=utcnow)
    edited_at = fields.DatetimeField(null=True)
    deleted_at = fields.DatetimeField(null=True)
    quote_authorization_uri = fields.CharField(max_length=2048, null=True)
    """FEP-044f: the source author's QuoteAuthorization stamp for this remix. A local remix's
    once approved (sent in the Note as ``quoteAuthorization``; cleared when the stamp is
    deleted); a remote remix's as its Note presents it, verified or not (see
    :attr:`quote_state`)."""
    quote_state = fields.CharField(max_length=16, null=True)
    """A :class:`QuoteState` for a remix (null: not tracked, see ``fedisora.api.entities``).
    Remote remixes are ``pending`` until their stamp is verified
    (:mod:`fedisora.federation.quote_check`)."""
    quote_checked_at = fields.DatetimeField(null=True)
    """When a remote remix's stamp was last verified or queued for it: re-verified when the
    remix is shown and this is old (FEP-044f opportunistic re-verification)."""
    version = fields.IntField(default=0, db_default=0)
    """Raised (atomically, in the writing transaction) whenever what the clip's Status entity
    shows from other rows changes: its hashtags, its mentions (or a mentioned account's name
    or address), its media row. Its own columns need no bump: the rendering cache
    (:mod:`fedisora.api.entity_cache`) compares them as read. See
    :mod:`fedisora.services.entity_versions`."""

    class Meta:
        table = "clips"
        indexes = (
            Index(fields=("account_id", "id")),
            Index(fields=("visibility", "id")),
            Index(fields=("local", "visibility", "id")),
            Index(fields=("media_id",)),
            Index(fields=("remix_of_id", "id")),  # a clip's remixes (For You's remix source)
        )


class ClipTag(Model):
    id = fields.BigIntField(primary_key=True)
    tag: fields.ForeignKeyRelation[Tag] = fields.ForeignKeyField(
        "fedisora.Tag", related_name="clip_tags", on_delete=fields.CASCADE
    )
    tag_id: int
    clip: fields.ForeignKeyRelation[Clip] = fields.ForeignKeyField(
        "fedisora.Clip", related_name="clip_tags", on_delete=fields.CASCADE
    )
    clip_id: int

    class Meta:
        table = "clip_tags"
        unique_together = (("tag", "clip"),)
        # A page's hashtags by clip (every timeline's entities, For You's refresh): without
        # it, a scan of the whole join table (bench/for_you_cost.py: 5x slower at 1 M clips).
        indexes = (Index(fields=("clip_id",)),)


class Comment(_VersionedSave, Model):
    """A threaded reply under a clip (``parent`` is another comment, or null for top level)."""

    id = fields.BigIntField(primary_key=True, generated=False)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="comments", on_delete=fields.CASCADE
    )
    account_id: int
    clip: fields.ForeignKeyRelation[Clip] = fields.ForeignKeyField(
        "fedisora.Clip", related_name="comments", on_delete=fields.CASCADE
    )
    clip_id: int
    parent: fields.ForeignKeyNullableRelation[Comment] = fields.ForeignKeyField(
        "fedisora.Comment", related_name="replies", null=True, on_delete=fields.SET_NULL
    )
    parent_id: int | None
    uri = fields.CharField(max_length=2048, unique=True)
    url = fields.CharField(max_length=2048, null=True)
    text = fields.TextField(default="")
    content = fields.TextField(default="")
    language = fields.CharField(max_length=16, null=True)
    visibility = fields.CharEnumField(Visibility, max_length=10, default=Visibility.PUBLIC)
    local = fields.BooleanField(default=True)
    sensitive = fields.BooleanField(default=False)
    spoiler_text = fields.CharField(max_length=500, default="")
    likes_count = fields.IntField(default=0)
    replies_count = fields.IntField(default=0)
    created_at = fields.DatetimeField(default=utcnow)
    edited_at = fields.DatetimeField(null=True)
    deleted_at = fields.DatetimeField(null=True)
    version = fields.IntField(default=0, db_default=0)
    """As :attr:`Clip.version`: raised when the comment's mentions (or a mentioned account's
    name or address) change."""

    class Meta:
        table = "comments"
        indexes = (Index(fields=("clip_id", "id")), Index(fields=("account_id", "id")))


class Mention(Model):
    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="mentioned_in", on_delete=fields.CASCADE
    )
    account_id: int
    clip: fields.ForeignKeyNullableRelation[Clip] = fields.ForeignKeyField(
        "fedisora.Clip", related_name="mentions", null=True, on_delete=fields.CASCADE
    )
    clip_id: int | None
    comment: fields.ForeignKeyNullableRelation[Comment] = fields.ForeignKeyField(
        "fedisora.Comment", related_name="mentions", null=True, on_delete=fields.CASCADE
    )
    comment_id: int | None
    # "clip:<id>" or "comment:<id>": NULLs never collide in a unique index, so the target is
    # spelled out once for the uniqueness constraint.
    target_key = fields.CharField(max_length=40)

    class Meta:
        table = "mentions"
        unique_together = (("account", "target_key"),)
        # A status's mentions are read by its clip or comment (entities, pages, deletion's
        # cascade): migrations/0042_foreign_key_indexes.py.
        indexes = (Index(fields=("clip_id",)), Index(fields=("comment_id",)))


class Cameo(Model):
    """A likeness used in a clip, with the consent object that allowed it."""

    id = fields.BigIntField(primary_key=True)
    clip: fields.ForeignKeyRelation[Clip] = fields.ForeignKeyField(
        "fedisora.Clip", related_name="cameos", on_delete=fields.CASCADE
    )
    clip_id: int
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="cameo_uses", on_delete=fields.CASCADE
    )
    account_id: int
    consent_uri = fields.CharField(max_length=2048, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    checked_at = fields.DatetimeField(null=True)
    """A remote clip's: when its consent was last verified at the owner's server (the
    ``cameo_recheck`` chore asks again after ``cameo_recheck_hours``)."""

    class Meta:
        table = "cameos"
        unique_together = (("clip", "account"),)
        indexes = (Index(fields=("checked_at",)),)


class Like(Model):
    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="likes", on_delete=fields.CASCADE
    )
    account_id: int
    clip: fields.ForeignKeyNullableRelation[Clip] = fields.ForeignKeyField(
        "fedisora.Clip", related_name="likes", null=True, on_delete=fields.CASCADE
    )
    clip_id: int | None
    comment: fields.ForeignKeyNullableRelation[Comment] = fields.ForeignKeyField(
        "fedisora.Comment", related_name="likes", null=True, on_delete=fields.CASCADE
    )
    comment_id: int | None
    target_key = fields.CharField(max_length=40)  # "clip:<id>" or "comment:<id>"
    uri = fields.CharField(max_length=2048, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "likes"
        unique_together = (("account", "target_key"),)
        # (target_key, id): who liked a clip or a comment, newest first ("favourited by"):
        # migrations/0042_foreign_key_indexes.py.
        indexes = (
            Index(fields=("clip_id", "id")),
            Index(fields=("account_id", "id")),
            Index(fields=("target_key", "id")),
        )


class Boost(Model):
    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="boosts", on_delete=fields.CASCADE
    )
    account_id: int
    clip: fields.ForeignKeyRelation[Clip] = fields.ForeignKeyField(
        "fedisora.Clip", related_name="boosts", on_delete=fields.CASCADE
    )
    clip_id: int
    uri = fields.CharField(max_length=2048, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "boosts"
        unique_together = (("account", "clip"),)
        indexes = (Index(fields=("clip_id", "id")),)


class Follow(Model):
    id = fields.BigIntField(primary_key=True)
    follower: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="following_rel", on_delete=fields.CASCADE
    )
    follower_id: int
    target: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="followers_rel", on_delete=fields.CASCADE
    )
    target_id: int
    state = fields.CharEnumField(FollowState, max_length=10, default=FollowState.PENDING)
    uri = fields.CharField(max_length=2048, unique=True)
    previous_uri = fields.CharField(max_length=2048, null=True)
    """The id of the follower's Follow before its latest one (a repeated Follow takes the
    ``uri``): an Undo of either ends the follow."""
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "follows"
        unique_together = (("follower", "target"),)
        indexes = (Index(fields=("target_id", "state", "id")),)


class Block(Model):
    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="blocks", on_delete=fields.CASCADE
    )
    account_id: int
    target: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="blocked_by", on_delete=fields.CASCADE
    )
    target_id: int
    uri = fields.CharField(max_length=2048, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "blocks"
        unique_together = (("account", "target"),)
        indexes = (Index(fields=("target_id",)),)  # who blocked the viewer, on every page


class Mute(Model):
    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="mutes", on_delete=fields.CASCADE
    )
    account_id: int
    target: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="muted_by", on_delete=fields.CASCADE
    )
    target_id: int
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "mutes"
        unique_together = (("account", "target"),)
        # target_id: who muted an account (streams; its deletion):
        # migrations/0042_foreign_key_indexes.py.
        indexes = (Index(fields=("target_id",)),)


class TimelineEntry(Model):
    """A clip in a local account's home feed, written at post time (fan-out on write).

    A home page is then a range scan on ``(owner_id, clip_id)``: its cost depends on the page
    size, not on how many clips or follows exist.
    """

    id = fields.BigIntField(primary_key=True)
    owner: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="timeline", on_delete=fields.CASCADE
    )
    owner_id: int
    clip: fields.ForeignKeyRelation[Clip] = fields.ForeignKeyField(
        "fedisora.Clip", related_name="timeline_entries", on_delete=fields.CASCADE
    )
    clip_id: int
    boosted_by: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account",
        related_name="boosted_timeline_entries",
        null=True,
        on_delete=fields.CASCADE,
    )
    boosted_by_id: int | None

    class Meta:
        table = "timeline_entries"
        # The unique constraint's index serves the home feed's range scan on (owner_id,
        # clip_id); clip_id: a clip's entries, removed when it is deleted or unboosted
        # (migrations/0042_foreign_key_indexes.py, which also dropped an index on (owner_id,
        # clip_id) that repeated the constraint's).
        unique_together = (("owner", "clip"),)
        indexes = (Index(fields=("clip_id",)),)


class Notification(Model):
    id = fields.BigIntField(primary_key=True)
    recipient: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="notifications", on_delete=fields.CASCADE
    )
    recipient_id: int
    type = fields.CharEnumField(NotificationType, max_length=32)
    from_account: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="sent_notifications", null=True, on_delete=fields.CASCADE
    )
    from_account_id: int | None
    clip: fields.ForeignKeyNullableRelation[Clip] = fields.ForeignKeyField(
        "fedisora.Clip", related_name="notifications", null=True, on_delete=fields.CASCADE
    )
    clip_id: int | None
    comment: fields.ForeignKeyNullableRelation[Comment] = fields.ForeignKeyField(
        "fedisora.Comment", related_name="notifications", null=True, on_delete=fields.CASCADE
    )
    comment_id: int | None
    render_job: fields.ForeignKeyNullableRelation[RenderJob] = fields.ForeignKeyField(
        "fedisora.RenderJob",
        related_name="notifications",
        null=True,
        on_delete=fields.CASCADE,
    )
    render_job_id: int | None
    account_warning: fields.ForeignKeyNullableRelation[AccountWarning] = fields.ForeignKeyField(
        "fedisora.AccountWarning",
        related_name="notifications",
        null=True,
        on_delete=fields.CASCADE,
    )
    account_warning_id: int | None
    report: fields.ForeignKeyNullableRelation[Report] = fields.ForeignKeyField(
        "fedisora.Report", related_name="notifications", null=True, on_delete=fields.CASCADE
    )
    """The report an ``admin.report`` notification is about."""
    report_id: int | None
    # Idempotency: the same event never notifies twice (e.g. a Like delivered twice).
    dedupe_key = fields.CharField(max_length=300, unique=True)
    dismissed = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "notifications"
        # from_account_id: an account's notifications to others, removed when it is deleted
        # (migrations/0042_foreign_key_indexes.py).
        indexes = (Index(fields=("recipient_id", "id")), Index(fields=("from_account_id",)))


def current_request_id() -> str | None:
    """The request id the current request (or work step) runs under (:mod:`fedisora.logs`)."""
    return REQUEST_ID.get()


class WorkRow(Model):
    """Columns every durable state-machine row carries (see :mod:`fedisora.work`)."""

    state = fields.CharField(max_length=32)
    state_changed_at = fields.DatetimeField(default=utcnow)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(null=True)
    locked_until = fields.DatetimeField(null=True)
    lock_token = fields.CharField(max_length=36, null=True)
    last_error = fields.TextField(default="")
    created_at = fields.DatetimeField(default=utcnow)
    request_id = fields.CharField(max_length=64, null=True, default=current_request_id)
    """The ``X-Request-Id`` of the request that caused this work (the one running when the
    row was made: a request, or a step of a row that carries one), None for work nothing
    asked for (sweeps, chores). A worker runs each step under it, so its log lines name it
    (:meth:`fedisora.work.engine.Engine.advance_claimed`)."""

    class Meta:
        abstract = True


class RenderJob(WorkRow):
    """A render request. The state graph lives in ``render/queue.py``."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="render_jobs", on_delete=fields.CASCADE
    )
    account_id: int
    spec: dict[str, Any] = fields.JSONField(default=dict)
    priority = fields.IntField(default=0)
    progress_step = fields.IntField(default=0)
    progress_total = fields.IntField(default=0)
    gpu_seconds = fields.FloatField(default=0.0)
    cancel_requested = fields.BooleanField(default=False)
    output: fields.ForeignKeyNullableRelation[MediaFile] = fields.ForeignKeyField(
        "fedisora.MediaFile", related_name="render_jobs", null=True, on_delete=fields.SET_NULL
    )
    output_id: int | None
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "render_jobs"
        indexes = (
            Index(fields=("state", "next_attempt_at")),
            Index(fields=("account_id", "id")),
            Index(fields=("state", "state_changed_at")),
            Index(fields=("output_id",)),
        )


class Delivery(WorkRow):
    """One activity to one inbox (a shared inbox where the peer has one)."""

    id = fields.BigIntField(primary_key=True)
    sender: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="deliveries", on_delete=fields.CASCADE
    )
    sender_id: int
    inbox_url = fields.CharField(max_length=2048)
    host = fields.CharField(max_length=255)
    activity_id = fields.CharField(max_length=2048)
    payload: dict[str, Any] = fields.JSONField()
    delivered_at = fields.DatetimeField(null=True)

    class Meta:
        table = "deliveries"
        indexes = (
            Index(fields=("state", "next_attempt_at")),
            Index(fields=("host", "state")),
            Index(fields=("state", "state_changed_at")),
        )


class InboxItem(WorkRow):
    """A verified incoming activity, stored before the 202 and processed later.

    Once it is over, its payload is dropped after a while and the row, which then only
    recognises a redelivery of the same activity id, deleted later still (see
    :mod:`fedisora.services.retention`).
    """

    id = fields.BigIntField(primary_key=True)
    activity_id = fields.CharField(max_length=2048, unique=True)
    actor_uri = fields.CharField(max_length=2048)
    payload: dict[str, Any] = fields.JSONField()
    """The activity; ``{}`` once retention dropped it (then :attr:`size` is 0)."""
    received_at = fields.DatetimeField(default=utcnow)
    host = fields.CharField(max_length=255, default="", db_default="")
    """The actor's host[:port], for the per-host inbox limits."""
    size = fields.IntField(default=0, db_default=0)
    """Bytes of the payload held (the request body's length), 0 once it was dropped: what the
    per-actor and per-host inbox limits count (:mod:`fedisora.federation.inbox_limits`)."""

    class Meta:
        table = "inbox_items"
        indexes = (
            Index(fields=("state", "next_attempt_at")),
            Index(fields=("state", "state_changed_at")),
            Index(fields=("host", "size")),
        )


class RemoteMediaCheck(WorkRow):
    """A remote clip's video to fetch once and check for C2PA provenance.

    The outcome is the label in the media's ``provenance`` (verified, unverified or invalid).
    The state graph lives in ``fedisora/federation/media_check.py``. The file is not kept.
    """

    id = fields.BigIntField(primary_key=True)
    media: fields.ForeignKeyRelation[MediaFile] = fields.ForeignKeyField(
        "fedisora.MediaFile", related_name="provenance_checks", on_delete=fields.CASCADE
    )
    media_id: int
    clip_uri = fields.CharField(max_length=2048)
    url = fields.CharField(max_length=2048)
    origin = fields.CharField(max_length=255)  # the clip's instance: host[:port] of its author

    class Meta:
        table = "remote_media_checks"
        indexes = (
            Index(fields=("state", "next_attempt_at")),
            Index(fields=("origin", "state")),
            Index(fields=("state", "state_changed_at")),
        )


class QuoteCheck(WorkRow):
    """A remote remix's FEP-044f stamp to verify, or to verify again.

    The stamp is dereferenced from the quoted clip's origin, the quoted clip fetched first
    when it is not known. Keyed by the remix's URI rather than a foreign key, so that it can
    be written before the remix (see ``ingest._store_clip``).

    The outcome is the remix's ``quote_state``. The state graph lives in
    ``fedisora/federation/quote_check.py``.
    """

    id = fields.BigIntField(primary_key=True)
    remix_uri = fields.CharField(max_length=2048)
    quoted_uri = fields.CharField(max_length=2048)
    stamp_uri = fields.CharField(max_length=2048, null=True)
    withdrawn = fields.BooleanField(default=False)
    """The remix no longer presents this (accepted) stamp: it is fetched again to tell a
    revocation (gone: ``revoked``) from the quoting server dropping it (``pending``)."""
    depth = fields.IntField(default=0)  # quote of a quote of...: unknown sources not fetched deep
    origin = fields.CharField(max_length=255)  # the quoted clip's host[:port]
    outcome = fields.CharField(max_length=16, default="")  # the quote state it decided
    reason = fields.TextField(default="")

    class Meta:
        table = "quote_checks"
        indexes = (
            Index(fields=("state", "next_attempt_at")),
            Index(fields=("remix_uri",)),
            Index(fields=("state", "state_changed_at")),
        )


class OutboxEvent(WorkRow):
    """A domain event written in the same transaction as the change it describes.

    This is the transactional outbox (:mod:`fedisora.services.events`). The outbox machine
    (:mod:`fedisora.services.outbox`) turns each row into its effects: the Delivery rows
    federation makes of it, written in the same transaction as the row's move to ``done`` (so
    exactly once), then its stream message (best effort: once in the normal case). A kill
    between the change's commit and those effects loses nothing: the row waits for the next
    runner. ``actor_id`` names the account whose action it is (for ``notification.created``,
    the recipient); one actor's events are processed in ``id`` order.
    """

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=64)
    actor_id = fields.BigIntField()  # no foreign key: an event is a log entry, kept as written
    data: dict[str, Any] = fields.JSONField(default=dict)
    deliveries = fields.IntField(default=0)  # the Delivery rows it made

    class Meta:
        table = "outbox_events"
        indexes = (
            Index(fields=("state", "next_attempt_at")),
            Index(fields=("actor_id", "state", "id")),
            Index(fields=("state", "state_changed_at")),  # retention's scans
        )


class WorkerHeartbeat(Model):
    """Written by every runner every few seconds and read by the health check."""

    name = fields.CharField(max_length=200, primary_key=True)
    kind = fields.CharField(max_length=32)
    pid = fields.IntField()
    queues = fields.CharField(max_length=200, default="")
    started_at = fields.DatetimeField(default=utcnow)
    last_seen = fields.DatetimeField(default=utcnow)
    # What the runner says of itself (fedisora.work.runner.worker_report): a render worker's
    # model and device (render.worker_report). NULL for runners with nothing to report.
    report: dict[str, Any] | None = fields.JSONField(null=True)

    class Meta:
        table = "worker_heartbeats"


# --- Client API (Mastodon-compatible): OAuth applications and tokens, idempotency, bookmarks ---


class OAuthApplication(Model):
    """A client registered with ``POST /api/v1/apps``."""

    id = fields.BigIntField(primary_key=True)
    name = fields.CharField(max_length=200)
    website = fields.CharField(max_length=2048, null=True)
    redirect_uris = fields.TextField(default="")  # newline-separated
    scopes = fields.CharField(max_length=1000, default="read")  # space-separated
    client_id = fields.CharField(max_length=64, unique=True)
    client_secret = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "oauth_applications"


class OAuthAuthorizationCode(Model):
    """A one-time code from the consent page, with its PKCE challenge (RFC 7636)."""

    id = fields.BigIntField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    application: fields.ForeignKeyRelation[OAuthApplication] = fields.ForeignKeyField(
        "fedisora.OAuthApplication", related_name="codes", on_delete=fields.CASCADE
    )
    application_id: int
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="oauth_codes", on_delete=fields.CASCADE
    )
    account_id: int
    redirect_uri = fields.CharField(max_length=2048)
    scopes = fields.CharField(max_length=1000)
    code_challenge = fields.CharField(max_length=128, null=True)
    code_challenge_method = fields.CharField(max_length=8, null=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "oauth_authorization_codes"
        indexes = (Index(fields=("account_id",)),)  # (its deletion: migrations/0042)


class OAuthAccessToken(Model):
    """A bearer token. ``account`` is null for client_credentials (app-only) tokens."""

    id = fields.BigIntField(primary_key=True)
    token = fields.CharField(max_length=64, unique=True)
    refresh_token = fields.CharField(max_length=64, unique=True, null=True)
    application: fields.ForeignKeyRelation[OAuthApplication] = fields.ForeignKeyField(
        "fedisora.OAuthApplication", related_name="tokens", on_delete=fields.CASCADE
    )
    application_id: int
    account: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="oauth_tokens", null=True, on_delete=fields.CASCADE
    )
    account_id: int | None
    scopes = fields.CharField(max_length=1000)
    expires_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    last_used_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "oauth_access_tokens"
        # An account's tokens: its authorised apps, revoked with a new password or deletion
        # (migrations/0042_foreign_key_indexes.py).
        indexes = (Index(fields=("account_id",)),)


class IdempotencyKey(Model):
    """An ``Idempotency-Key`` a client sent with ``POST /api/v1/statuses`` and its result."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="idempotency_keys", on_delete=fields.CASCADE
    )
    account_id: int
    key = fields.CharField(max_length=200)
    status_id = fields.BigIntField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "idempotency_keys"
        unique_together = (("account", "key"),)


class Bookmark(Model):
    """A status (clip or comment) an account bookmarked, private to that account."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="bookmarks", on_delete=fields.CASCADE
    )
    account_id: int
    status_id = fields.BigIntField()  # a Clip or Comment id (one id space)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "bookmarks"
        unique_together = (("account", "status_id"),)
        indexes = (Index(fields=("account_id", "id")),)


__all__ += [
    "Bookmark",
    "IdempotencyKey",
    "OAuthAccessToken",
    "OAuthApplication",
    "OAuthAuthorizationCode",
]


class RenderQuotaGuard(Model):
    """One row per account that has asked for a render: the serialisation point of quotas.

    ``submit_render`` first increments ``submits`` in the transaction that then counts the
    owner's jobs and inserts the new one. The update holds the row lock (PostgreSQL) or the
    database's write lock (SQLite) until commit, so two simultaneous submits by one account
    check their quotas one after the other, and the second sees the first's job.
    """

    id = fields.BigIntField(primary_key=True)
    account: fields.OneToOneRelation[Account] = fields.OneToOneField(
        "fedisora.Account", related_name="render_quota_guard", on_delete=fields.CASCADE
    )
    account_id: int
    submits = fields.BigIntField(default=0)
    """Render requests accepted under quota so far."""
    concurrent_jobs = fields.IntField(null=True)
    """An admin's override of ``FEDISORA_RENDER_CONCURRENT_JOBS`` for this account (None: the
    instance's setting). Read by the quota check with the guard row it locks; set by
    :func:`render.service.set_quota_override`."""
    clips_per_day = fields.IntField(null=True)
    """An admin's override of ``FEDISORA_RENDER_CLIPS_PER_DAY`` for this account (None: the
    instance's setting)."""
    gpu_seconds_per_day = fields.FloatField(null=True)
    """An admin's override of ``FEDISORA_RENDER_GPU_SECONDS_PER_DAY`` for this account (None:
    the instance's setting)."""

    class Meta:
        table = "render_quota_guards"


__all__ += ["RenderQuotaGuard"]


class PeerSignatureScheme(Model):
    """The HTTP signature scheme a peer host accepted last.

    ``rfc9421`` or ``cavage``: kept so the double-knock is not repeated after a restart."""

    id = fields.BigIntField(primary_key=True)
    host = fields.CharField(max_length=255, unique=True)
    scheme = fields.CharField(max_length=16)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "peer_signature_schemes"


__all__ += ["PeerSignatureScheme"]


class Chore(WorkRow):
    """A periodic housekeeping task, one row per chore (see :mod:`fedisora.work.housekeeping`).

    Its one automatic state never ends: each run does a bounded batch of work and schedules
    the next. ``progress`` holds what a chore carries from one run to the next (cursors, the
    last run's counts).
    """

    id = fields.BigIntField(primary_key=True)
    name = fields.CharField(max_length=64, unique=True)
    progress: dict[str, Any] = fields.JSONField(default=dict)

    class Meta:
        table = "chores"
        indexes = (Index(fields=("state", "next_attempt_at")),)


class WorkTally(Model):
    """How many rows of a durable-work table retention deleted, per state (and per group,
    such as a delivery's host), so that counts shown stay whole after the rows are gone."""

    id = fields.BigIntField(primary_key=True)
    table_name = fields.CharField(max_length=64)
    state = fields.CharField(max_length=32)
    group_key = fields.CharField(max_length=255, default="")
    count = fields.BigIntField(default=0)

    class Meta:
        table = "work_tallies"
        unique_together = (("table_name", "state", "group_key"),)


__all__ += ["Chore", "WorkTally"]


class WebSession(Model):
    """A browser's login, one row per login (Mastodon's session activations).

    It ends when the user logs out or ends it from /settings, on a password change, and with
    the account's suspension, disabling or deletion.

    The cookie carries a random token; only its SHA-256 is stored here, so the table alone
    logs no one in. ``last_seen_at`` is refreshed at most every few minutes; a session idle
    longer than :data:`fedisora.services.sessions.IDLE_LIMIT` is over.
    """

    id = fields.BigIntField(primary_key=True)
    key_hash = fields.CharField(max_length=64, unique=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "fedisora.User", related_name="web_sessions", on_delete=fields.CASCADE
    )
    user_id: int
    created_at = fields.DatetimeField(auto_now_add=True)
    last_seen_at = fields.DatetimeField()
    user_agent = fields.CharField(max_length=255, default="")
    ip = fields.CharField(max_length=64, default="")

    class Meta:
        table = "web_sessions"
        indexes = (Index(fields=("user_id", "last_seen_at")), Index(fields=("last_seen_at",)))


__all__ += ["WebSession"]


class PasswordReset(Model):
    """A one-time link an admin made for a user to set a new password.

    There is no e-mail here: the admin passes the link on. Only the token's SHA-256 is
    stored; it is good once, until ``expires_at`` (:mod:`fedisora.services.password_resets`).
    """

    id = fields.BigIntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "fedisora.User", related_name="password_resets", on_delete=fields.CASCADE
    )
    user_id: int
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "password_resets"


__all__ += ["PasswordReset"]


# --- Likeness consent (cameos): see fedisora.services.likeness --------------------------------


class LikenessState(StrEnum):
    PENDING = "pending"  # registered, waiting for verification
    VERIFIED = "verified"  # usable in cameos (as its policy allows)
    REJECTED = "rejected"  # verification refused (``reason`` says why)
    REVOKED = "revoked"  # the owner took it back: reference files deleted, every grant revoked


class Audience(StrEnum):
    NOBODY = "nobody"
    ME = "me"
    APPROVED = "approved"
    MUTUALS = "mutuals"
    EVERYONE = "everyone"


class Likeness(Model):
    """An account's likeness: its private reference images and who may use them.

    At most one per account. A local likeness's files live under the private likeness
    directory of the data dir (never the public media root), named relative to it; they are
    never served publicly nor federated. A remote owner's likeness (``account`` remote,
    ``uri`` the owner instance's id for it) holds no files and no policy of ours: its
    consent is the owner's signed grants.
    """

    id = fields.BigIntField(primary_key=True)
    account: fields.OneToOneRelation[Account] = fields.OneToOneField(
        "fedisora.Account", related_name="likeness", on_delete=fields.CASCADE
    )
    account_id: int
    uri = fields.CharField(max_length=2048, null=True)
    state = fields.CharEnumField(LikenessState, max_length=16, default=LikenessState.PENDING)
    reference_files: list[str] = fields.JSONField(default=list)
    """Paths relative to the private likeness directory: 1 to 5 normalised PNG stills."""
    verification_file = fields.CharField(max_length=512, null=True)
    verification_type = fields.CharField(max_length=100, default="")
    challenge_code = fields.CharField(max_length=32, default="")
    verified_by: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="likenesses_verified", null=True, on_delete=fields.SET_NULL
    )
    verified_by_id: int | None
    verified_at = fields.DatetimeField(null=True)
    verification_method = fields.CharField(max_length=64, default="")
    reason = fields.CharField(max_length=500, default="")
    audience = fields.CharEnumField(Audience, max_length=16, default=Audience.NOBODY)
    approval_required = fields.BooleanField(default=False)
    drafts_only = fields.BooleanField(default=False)
    restrictions = fields.CharField(max_length=1000, default="")
    default_expires_in = fields.IntField(null=True)  # seconds; a grant's default lifetime
    created_at = fields.DatetimeField(default=utcnow)
    updated_at = fields.DatetimeField(default=utcnow)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "likenesses"
        indexes = (Index(fields=("state", "id")),)


class LikenessChallenge(Model):
    """A one-time code to show in a likeness's verification sample."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="likeness_challenges", on_delete=fields.CASCADE
    )
    account_id: int
    code = fields.CharField(max_length=32, unique=True)
    expires_at = fields.DatetimeField()
    consumed_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "likeness_challenges"
        indexes = (Index(fields=("account_id", "id")),)


class LikenessRequest(Model):
    """Someone asks to use an owner's likeness (local or remote, either side)."""

    id = fields.BigIntField(primary_key=True)
    requester: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="likeness_requests_sent", on_delete=fields.CASCADE
    )
    requester_id: int
    owner: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="likeness_requests_received", on_delete=fields.CASCADE
    )
    owner_id: int
    state = fields.CharField(max_length=16, default="pending")  # pending|approved|rejected
    accepted_restrictions = fields.CharField(max_length=64, default="")
    """SHA-256 (hex) of the owner's restrictions the requester accepted ("" for none)."""
    uri = fields.CharField(max_length=2048, null=True)  # the activity of a federated request
    grant_id = fields.BigIntField(null=True)  # the grant its approval made
    created_at = fields.DatetimeField(default=utcnow)
    answered_at = fields.DatetimeField(null=True)

    class Meta:
        table = "likeness_requests"
        indexes = (Index(fields=("owner_id", "id")), Index(fields=("requester_id", "id")))


class LikenessGrant(Model):
    """Consent of an owner for one grantee: the signed consent object's row.

    ``basis`` is ``approved`` (the owner approved this grantee) or ``policy`` (the owner's
    audience allowed it; valid only while it still does). A ``single_use`` grant (the owner
    asks to approve every use) serves one render job, ``job_id``. ``document`` is the signed
    JSON-LD consent object once signed; ``uri`` its id.
    """

    id = fields.BigIntField(primary_key=True)
    owner: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="likeness_grants_given", on_delete=fields.CASCADE
    )
    owner_id: int
    grantee: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="likeness_grants_held", on_delete=fields.CASCADE
    )
    grantee_id: int
    basis = fields.CharField(max_length=16, default="approved")  # approved|policy
    scope = fields.CharField(max_length=16, default="publish")  # drafts|publish
    restrictions_digest = fields.CharField(max_length=64, default="")
    single_use = fields.BooleanField(default=False)
    job_id = fields.BigIntField(null=True)  # the render job a single-use grant serves
    expires_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    take_down = fields.BooleanField(default=False)
    uri = fields.CharField(max_length=2048, null=True, unique=True)
    document: dict[str, Any] | None = fields.JSONField(null=True)
    revocation_uri = fields.CharField(max_length=2048, null=True)
    revocation: dict[str, Any] | None = fields.JSONField(null=True)
    remote = fields.BooleanField(default=False)  # the owner is remote: a grant we received
    created_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "likeness_grants"
        indexes = (
            Index(fields=("owner_id", "grantee_id")),
            Index(fields=("grantee_id", "id")),
        )


class LikenessUse(Model):
    """One use of a likeness (a request, a draft, a published clip, a remix, a refusal)."""

    id = fields.BigIntField(primary_key=True)
    owner: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="likeness_uses", on_delete=fields.CASCADE
    )
    owner_id: int
    user: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="likeness_uses_made", on_delete=fields.CASCADE
    )
    user_id: int
    grant: fields.ForeignKeyNullableRelation[LikenessGrant] = fields.ForeignKeyField(
        "fedisora.LikenessGrant", related_name="uses", null=True, on_delete=fields.SET_NULL
    )
    grant_id: int | None
    render_job: fields.ForeignKeyNullableRelation[RenderJob] = fields.ForeignKeyField(
        "fedisora.RenderJob", related_name="likeness_uses", null=True, on_delete=fields.SET_NULL
    )
    render_job_id: int | None
    clip: fields.ForeignKeyNullableRelation[Clip] = fields.ForeignKeyField(
        "fedisora.Clip", related_name="likeness_uses", null=True, on_delete=fields.SET_NULL
    )
    clip_id: int | None
    clip_uri = fields.CharField(max_length=2048, null=True)  # a remote clip's, later
    kind = fields.CharField(max_length=16)  # requested|draft|published|remixed|refused
    reason = fields.CharField(max_length=500, default="")
    remote = fields.BooleanField(default=False)  # reported by another instance
    uri = fields.CharField(max_length=2048, null=True, unique=True)
    """The ``LikenessUse`` activity's id: ours, sent to a remote owner; theirs, received."""
    removed_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "likeness_uses"
        indexes = (Index(fields=("owner_id", "id")), Index(fields=("render_job_id",)))


class ConsentCheck(Model):
    """The audit trail: every consent check, allowed or refused, with its reason."""

    id = fields.BigIntField(primary_key=True)
    requester: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="consent_checks_made", on_delete=fields.CASCADE
    )
    requester_id: int
    owner: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="consent_checks", on_delete=fields.CASCADE
    )
    owner_id: int
    likeness_id = fields.BigIntField(null=True)
    grant_id = fields.BigIntField(null=True)
    render_job_id = fields.BigIntField(null=True)
    stage = fields.CharField(max_length=16, default="")  # request|render|publish
    publish = fields.BooleanField(default=False)
    allowed = fields.BooleanField()
    reason = fields.CharField(max_length=500, default="")
    created_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "consent_checks"
        indexes = (Index(fields=("owner_id", "id")), Index(fields=("render_job_id",)))


__all__ += [
    "Audience",
    "ConsentCheck",
    "Likeness",
    "LikenessChallenge",
    "LikenessGrant",
    "LikenessRequest",
    "LikenessState",
    "LikenessUse",
]


class CameoCheck(WorkRow):
    """The consents of a remote clip with cameos, verified before the clip is shown.

    A clip whose consents all verify is stored (``outcome`` ``shown``); one that fails is
    not stored at all (``refused``; the reason is kept here, for the admin) and a clip
    already shown whose consent is revoked with a take-down is hidden (``hidden``). A check
    that cannot be made now (the owner's actor cannot be fetched) stays ``pending`` with the
    Note, retried like the other federation work. The state graph lives in
    ``fedisora/federation/cameo_clips.py``.
    """

    id = fields.BigIntField(primary_key=True)
    clip_uri = fields.CharField(max_length=2048)
    author_uri = fields.CharField(max_length=2048)
    note: dict[str, Any] | None = fields.JSONField(null=True)  # kept while pending
    consent_uris: list[str] = fields.JSONField(default=list)
    depth = fields.IntField(default=0)
    outcome = fields.CharField(max_length=16, default="")  # shown|refused|hidden
    reason = fields.TextField(default="")

    class Meta:
        table = "cameo_checks"
        indexes = (
            Index(fields=("state", "next_attempt_at")),
            Index(fields=("clip_uri",)),
        )


class ReceivedRevocation(Model):
    """A LikenessRevocation by a remote owner, verified and applied once.

    Its id is what tells a replay."""

    id = fields.BigIntField(primary_key=True)
    uri = fields.CharField(max_length=2048, unique=True)
    owner_uri = fields.CharField(max_length=2048)
    object_uri = fields.CharField(max_length=2048)
    published = fields.DatetimeField()
    take_down = fields.BooleanField(default=False)
    document: dict[str, Any] = fields.JSONField()
    created_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "likeness_revocations_received"
        indexes = (Index(fields=("owner_uri",)), Index(fields=("object_uri",)))


__all__ += ["CameoCheck", "ReceivedRevocation"]


# --- Moderation: the audit log (see fedisora.services.audit) ---------------------------------


class AuditEntry(Model):
    """One moderation or administration action: who did what to what, and when.

    Rows are only ever added. ``actor`` is the account of the admin or moderator (kept when
    the account is deleted: ``actor_label`` says who it was); an action from the command line
    has no actor and ``actor_label`` ``"cli"``. ``target_label`` is a readable name of the
    target as it was (an ``@acct``, a domain, a report's number)."""

    id = fields.BigIntField(primary_key=True)
    actor: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    actor_id: int | None
    actor_label = fields.CharField(max_length=320)
    action = fields.CharField(max_length=64)
    target_type = fields.CharField(max_length=32, default="")
    target_id = fields.CharField(max_length=64, default="")
    target_label = fields.CharField(max_length=2048, default="")
    detail = fields.TextField(default="")
    created_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "audit_log"
        indexes = (
            Index(fields=("action", "id")),
            Index(fields=("actor_id", "id")),
            Index(fields=("target_type", "target_id")),
        )


__all__ += ["AuditEntry"]


# --- Read positions (Mastodon's markers) ------------------------------------------------------


class Marker(Model):
    """Where a user stopped reading a timeline (``home`` or ``notifications``), shared by
    their apps and the web pages (see fedisora.services.markers). ``version`` grows with each
    save: Mastodon's optimistic lock."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name=False, on_delete=fields.CASCADE
    )
    account_id: int
    timeline = fields.CharField(max_length=16)
    last_read_id = fields.BigIntField()
    version = fields.IntField(default=0)
    updated_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "markers"
        unique_together = (("account_id", "timeline"),)


__all__ += ["Marker"]


# --- Prompt policy: protected names (see fedisora.services.prompt_policy) --------------------


class PolicyList(StrEnum):
    PUBLIC_FIGURE = "public_figure"
    PROTECTED_WORK = "protected_work"


class PolicySource(StrEnum):
    ADMIN = "admin"  # added by an admin (the web page, the CLI)
    OPTOUT = "optout"  # a rights holder's approved opt-out (``source_ref`` names it)


class PolicyTerm(Model):
    """A name the prompt policy protects: a public figure, a character or a work.

    Renders whose texts name one are refused (:mod:`fedisora.policy.matcher` says how names
    are matched). ``key`` is the term's folded spelling, so one list holds a name once
    whatever its case or punctuation. ``source`` says where the term came from: an admin, or
    an approved opt-out (``source_ref``: the opt-out's id or URI, for the registry to find
    and withdraw its terms)."""

    id = fields.BigIntField(primary_key=True)
    list_name = fields.CharEnumField(PolicyList, max_length=32)
    term = fields.CharField(max_length=200)
    key = fields.CharField(max_length=400)
    note = fields.CharField(max_length=1000, default="")
    source = fields.CharEnumField(PolicySource, max_length=16, default=PolicySource.ADMIN)
    source_ref = fields.CharField(max_length=1024, default="")
    created_by: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    created_by_id: int | None
    created_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "policy_terms"
        indexes = (Index(fields=("list_name", "key")), Index(fields=("source", "source_ref")))


__all__ += ["PolicyList", "PolicySource", "PolicyTerm"]


# --- The rights holders' opt-out registry (fedisora.services.optouts) -------------------------


class OptOutState(StrEnum):
    PENDING = "pending"  # waiting for an admin
    APPROVED = "approved"  # its terms are in the prompt policy (PolicyTerm, source optout)
    REJECTED = "rejected"  # refused, or withdrawn after approval (``reason`` says why)


class OptOut(Model):
    """A rights holder's request that renders never name them or their work.

    ``who`` is the rights holder, ``kind`` the policy list its ``terms`` join once approved
    (as :class:`PolicyTerm` rows of source ``optout``, ``source_ref`` ``optout:<id>``).
    ``evidence`` is kept as text (a URL in it is never fetched). ``source`` is ``local`` for
    a request made here, else the URL of the subscribed list it came from (``remote_id``:
    the entry's id in that list); ``contact`` is required of local requests only (a list
    publishes none)."""

    id = fields.BigIntField(primary_key=True)
    who = fields.CharField(max_length=200)
    kind = fields.CharEnumField(PolicyList, max_length=32)
    terms: list[str] = fields.JSONField(default=list)
    evidence = fields.TextField(default="")
    contact = fields.CharField(max_length=500, default="")
    state = fields.CharEnumField(OptOutState, max_length=16, default=OptOutState.PENDING)
    reviewed_by: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    reviewed_by_id: int | None
    reviewed_at = fields.DatetimeField(null=True)
    reason = fields.CharField(max_length=1000, default="")
    source = fields.CharField(max_length=1024, default="local")
    remote_id = fields.CharField(max_length=1024, default="")
    created_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "optouts"
        indexes = (Index(fields=("state", "id")), Index(fields=("source", "remote_id")))


class OptOutMode(StrEnum):
    REVIEW = "review"  # a new version's changes wait for an admin (Apply / Discard)
    AUTO = "auto"  # applied as fetched


class RelayState(StrEnum):
    PENDING = "pending"  # our Follow sent, no answer yet
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Relay(Model):
    """An ActivityPub relay this instance subscribes to.

    The Mastodon/LitePub protocol: the instance actor's ``Follow`` of ``as:Public`` went to
    ``inbox_url``; once accepted, public clips are sent there and what the relay announces is
    taken in (fetched from its origin)."""

    id = fields.BigIntField(primary_key=True)
    inbox_url = fields.CharField(max_length=2048, unique=True)
    actor_uri = fields.CharField(max_length=2048, null=True)  # known when the relay serves one
    follow_uri = fields.CharField(max_length=2048, unique=True)
    state = fields.CharEnumField(RelayState, max_length=16, default=RelayState.PENDING)
    created_by: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    created_by_id: int | None
    created_at = fields.DatetimeField(default=utcnow)
    answered_at = fields.DatetimeField(null=True)

    class Meta:
        table = "relays"


class OptOutSubscription(Model):
    """Another instance's signed opt-out list, fetched by the ``optout_lists`` chore.

    ``applied_version`` is the last version applied (older or equal ones are ignored);
    ``pending`` holds a newer version's changes waiting for review (``{"version",
    "issued_at", "added": [...], "removed": [...]}``), ``last_error`` why the last fetch was
    refused (a bad signature, a malformed list, the peer down)."""

    id = fields.BigIntField(primary_key=True)
    url = fields.CharField(max_length=1024, unique=True)
    mode = fields.CharEnumField(OptOutMode, max_length=16, default=OptOutMode.REVIEW)
    issuer = fields.CharField(max_length=1024, default="")
    applied_version = fields.BigIntField(default=0)
    pending: dict[str, Any] | None = fields.JSONField(null=True)
    last_fetched_at = fields.DatetimeField(null=True)
    last_error = fields.CharField(max_length=2000, default="")
    created_by: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    created_by_id: int | None
    created_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "optout_subscriptions"


class OptOutPublication(Model):
    """The version of this instance's published opt-out list (one row, id 1): bumped on
    each approval and removal of a local opt-out."""

    id = fields.BigIntField(primary_key=True)
    version = fields.BigIntField(default=0)
    updated_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "optout_publication"


__all__ += ["OptOut", "OptOutMode", "OptOutPublication", "OptOutState", "OptOutSubscription"]


# --- Moderation: reports and the warnings sent to moderated accounts (services.reports) -------


class ReportCategory(StrEnum):
    """Mastodon's report categories."""

    SPAM = "spam"
    LEGAL = "legal"
    VIOLATION = "violation"  # of the instance's rules (``rule_ids``)
    OTHER = "other"


class Report(Model):
    """A report about an account (and some of its clips or comments), Mastodon's ``Report``.

    ``account`` filed it: a local user, or for a report received from another instance (a
    ``Flag``) that instance's actor. ``status_ids`` are ids of the target's clips and comments
    (one id space) as they were reported; they may be deleted since. ``uri`` is the ``Flag``'s
    id: the one received, or the one sent when the report was forwarded. A report is open
    until ``action_taken_at`` is set (resolved), and a moderator can reopen it.
    """

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="reports_filed", on_delete=fields.CASCADE
    )
    account_id: int
    target_account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="reports_received", on_delete=fields.CASCADE
    )
    target_account_id: int
    status_ids: list[int] = fields.JSONField(default=list)
    category = fields.CharEnumField(ReportCategory, max_length=16, default=ReportCategory.OTHER)
    rule_ids: list[str] = fields.JSONField(default=list)
    comment = fields.TextField(default="")
    forwarded = fields.BooleanField(default=False)
    uri = fields.CharField(max_length=2048, null=True)
    assigned_account: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    assigned_account_id: int | None
    action_taken_at = fields.DatetimeField(null=True)
    action_taken_by_account: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    action_taken_by_account_id: int | None
    created_at = fields.DatetimeField(default=utcnow)
    updated_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "reports"
        indexes = (
            Index(fields=("action_taken_at", "id")),
            Index(fields=("target_account_id", "id")),
            Index(fields=("account_id", "id")),
            Index(fields=("uri",)),
        )


class AccountWarning(Model):
    """What a moderator did to an account, as its owner is told (Mastodon's
    ``AccountWarning``): the action, the report it answered, the clips and comments it
    touched, and the moderator's words."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="warnings", on_delete=fields.CASCADE
    )
    account_id: int
    report: fields.ForeignKeyNullableRelation[Report] = fields.ForeignKeyField(
        "fedisora.Report", related_name="warnings", null=True, on_delete=fields.SET_NULL
    )
    report_id: int | None
    action = fields.CharField(max_length=32)
    """Mastodon's ``AccountWarning`` actions: ``none``, ``disable``, ``delete_statuses``,
    ``mark_statuses_as_sensitive``, ``sensitive``, ``silence``, ``suspend``."""
    text = fields.TextField(default="")
    status_ids: list[int] = fields.JSONField(default=list)
    created_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "account_warnings"
        indexes = (Index(fields=("account_id", "id")),)


class AppealState(StrEnum):
    """Mastodon's ``Appeal`` states."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Appeal(Model):
    """The moderated account's appeal of a warning (Mastodon's ``Appeal``): one per warning,
    decided by a moderator (:mod:`fedisora.services.moderation`)."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="appeals", on_delete=fields.CASCADE
    )
    account_id: int
    account_warning: fields.OneToOneRelation[AccountWarning] = fields.OneToOneField(
        "fedisora.AccountWarning", related_name="appeal", on_delete=fields.CASCADE
    )
    account_warning_id: int
    text = fields.TextField()
    state = fields.CharEnumField(AppealState, max_length=16, default=AppealState.PENDING)
    decided_by: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    decided_by_id: int | None
    decided_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "appeals"
        indexes = (Index(fields=("state", "id")),)


class Rule(Model):
    """One of the instance's rules (Mastodon's ``Rule``), in ``position`` order: listed at
    ``/api/v1/instance/rules``, shown at sign-up and cited by reports (``rule_ids``)."""

    id = fields.BigIntField(primary_key=True)
    text = fields.TextField()
    hint = fields.TextField(default="")
    position = fields.IntField(default=0)
    created_at = fields.DatetimeField(default=utcnow)
    updated_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "rules"


__all__ += ["AccountWarning", "Appeal", "AppealState", "Report", "ReportCategory", "Rule"]


# --- Registrations: invites (see fedisora.services.invites) ----------------------------------


class Invite(Model):
    """An invite link (``/invite/<code>``) to sign up with, whatever the registration mode.

    Whoever follows it may sign up even when sign-ups are closed or need approval, as long as
    it is not revoked, expired or used up.

    ``uses`` only grows, in one conditional UPDATE per sign-up (never past ``max_uses``);
    ``max_uses`` None means no limit, ``expires_at`` None never. ``autofollow``: the new
    account follows the invite's creator."""

    id = fields.BigIntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    creator: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="invites", on_delete=fields.CASCADE
    )
    creator_id: int
    max_uses = fields.IntField(null=True)
    uses = fields.IntField(default=0)
    expires_at = fields.DatetimeField(null=True)
    autofollow = fields.BooleanField(default=False)
    revoked_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "invites"
        indexes = (Index(fields=("creator_id", "id")),)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


__all__ += ["Invite"]


# --- Moderation: domain blocks and allows (see fedisora.services.domain_blocks) ------------


class DomainSeverity(StrEnum):
    SILENCE = "silence"
    SUSPEND = "suspend"
    NOOP = "noop"


class DomainBlock(Model):
    """An instance-wide block of a remote domain and its subdomains.

    Mastodon's ``DomainBlock``; ``domain`` is normalised: lower case, IDNA, no port."""

    id = fields.BigIntField(primary_key=True)
    domain = fields.CharField(max_length=255, unique=True)
    severity = fields.CharEnumField(DomainSeverity, max_length=16, default=DomainSeverity.SILENCE)
    reject_media = fields.BooleanField(default=False)
    reject_reports = fields.BooleanField(default=False)
    private_comment = fields.TextField(default="")
    public_comment = fields.TextField(default="")
    obfuscate = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(default=utcnow)
    updated_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "domain_blocks"


class DomainAllow(Model):
    """A domain that federates in limited-federation mode (``FEDISORA_LIMITED_FEDERATION``)."""

    id = fields.BigIntField(primary_key=True)
    domain = fields.CharField(max_length=255, unique=True)
    created_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "domain_allows"


class AccountDomainBlock(Model):
    """A user's own block of a domain: its accounts are hidden from that user."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name="domain_blocks", on_delete=fields.CASCADE
    )
    account_id: int
    domain = fields.CharField(max_length=255)
    created_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "account_domain_blocks"
        unique_together = (("account", "domain"),)


__all__ += ["AccountDomainBlock", "DomainAllow", "DomainBlock", "DomainSeverity"]


class InstanceSetting(Model):
    """A saved instance setting, overriding its ``FEDISORA_*`` default.

    Saved on the admin settings page (:mod:`fedisora.services.instance_settings`); no row:
    the default applies."""

    key = fields.CharField(max_length=64, primary_key=True)
    value = fields.TextField()
    updated_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "instance_settings"


class EmailConfirmation(Model):
    """A link that confirms a user's e-mail address, sent by mail.

    Only the SHA-256 of its token is kept; it expires after a day and works once."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "fedisora.User", related_name="email_confirmations", on_delete=fields.CASCADE
    )
    user_id: int
    token_hash = fields.CharField(max_length=64, unique=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "email_confirmations"


class OutgoingMail(WorkRow):
    """A mail to send (a durable work row: :mod:`fedisora.services.mail`).

    Its body is made when it is sent (a confirmation link's token is never stored in the
    clear); a crash sends again at most the mail not yet marked ``sent``."""

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=32)
    to_address = fields.CharField(max_length=254)
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "fedisora.User", related_name="mails", null=True, on_delete=fields.CASCADE
    )
    user_id: int | None
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outgoing_mails"
        indexes = (
            Index(fields=("state", "next_attempt_at")),
            Index(fields=("state", "state_changed_at")),
        )


__all__ += ["EmailConfirmation", "InstanceSetting", "OutgoingMail"]


# --- For You (fedisora.for_you) --------------------------------------------------------------


class InterestKind(StrEnum):
    CREATOR = "creator"  # key: the account's id
    TAG = "tag"  # key: the hashtag's name, lower-cased, without '#'


class ClipView(Model):
    """What one account's player reported of one clip (fedisora.for_you.signals): one row per
    viewer and clip, aggregated (so a flood of reports costs one row), aged out after a while.
    A row also marks the clip as seen for For You; ``hidden`` is "not interested"."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name=False, on_delete=fields.CASCADE
    )
    account_id: int
    clip: fields.ForeignKeyRelation[Clip] = fields.ForeignKeyField(
        "fedisora.Clip", related_name=False, on_delete=fields.CASCADE
    )
    clip_id: int
    impressions = fields.IntField(default=0)
    watch_ms = fields.BigIntField(default=0)
    completions = fields.IntField(default=0)
    replays = fields.IntField(default=0)
    skips = fields.IntField(default=0)
    hidden = fields.BooleanField(default=False)
    served = fields.BooleanField(default=False, db_default=False)
    """One of ``impressions`` was counted when a page served the clip (a Mastodon client
    reports nothing); the player's first impression report of it is that one, not another."""
    first_seen_at = fields.DatetimeField(default=utcnow)
    last_seen_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "clip_views"
        unique_together = (("account", "clip"),)
        indexes = (Index(fields=("account_id", "last_seen_at")), Index(fields=("last_seen_at",)))


class Interest(Model):
    """An account's learned affinity for a creator or a hashtag. ``weight`` is as of
    ``updated_at`` and decays from there (fedisora.for_you.rank): a signal adds to the
    decayed value, so no sweep is needed to age it. People can see and reset these."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name=False, on_delete=fields.CASCADE
    )
    account_id: int
    kind = fields.CharEnumField(InterestKind, max_length=8)
    key = fields.CharField(max_length=255)
    weight = fields.FloatField(default=0.0)
    events = fields.IntField(default=0)
    updated_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "interests"
        unique_together = (("account", "kind", "key"),)


class ForYouSettings(Model):
    """One account's For You controls. Without a row, the defaults below apply."""

    id = fields.BigIntField(primary_key=True)
    account: fields.OneToOneRelation[Account] = fields.OneToOneField(
        "fedisora.Account", related_name=False, on_delete=fields.CASCADE
    )
    account_id: int
    personalised = fields.BooleanField(default=True)
    popular = fields.FloatField(default=0.5)  # slider: 0 fresh ... 1 popular
    discovery = fields.FloatField(default=0.3)  # slider: 0 following ... 1 discovery
    include_unverified = fields.BooleanField(default=False)  # remote clips without provenance
    tags: list[str] = fields.JSONField(default=list)  # hashtags picked at sign-up (cold start)
    updated_at = fields.DatetimeField(default=utcnow)

    class Meta:
        table = "for_you_settings"


class ForYouCandidate(Model):
    """One clip of an account's precomputed For You list, in the order it is served
    (``position``), with the plain-words ``reason`` shown beside it. A refresh writes a new
    ``generation`` and drops the older ones; a page is an index range scan."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name=False, on_delete=fields.CASCADE
    )
    account_id: int
    clip: fields.ForeignKeyRelation[Clip] = fields.ForeignKeyField(
        "fedisora.Clip", related_name=False, on_delete=fields.CASCADE
    )
    clip_id: int
    generation = fields.IntField()
    position = fields.IntField()
    score = fields.FloatField()
    source = fields.CharField(max_length=16)
    reason = fields.CharField(max_length=300)

    class Meta:
        table = "for_you_candidates"
        unique_together = (("account", "generation", "position"),)


class ForYouRefresh(WorkRow):
    """The durable work of recomputing one account's For You candidates (one row per
    account, made due again when its list runs low or its signals changed much)."""

    id = fields.BigIntField(primary_key=True)
    account: fields.OneToOneRelation[Account] = fields.OneToOneField(
        "fedisora.Account", related_name=False, on_delete=fields.CASCADE
    )
    account_id: int
    generation = fields.IntField(default=0)  # the generation of the list now served
    requested_at = fields.DatetimeField(default=utcnow)
    refreshed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "for_you_refreshes"
        indexes = (Index(fields=("state", "next_attempt_at")),)


__all__ += [
    "ClipView",
    "ForYouCandidate",
    "ForYouRefresh",
    "ForYouSettings",
    "Interest",
    "InterestKind",
]


class ModelPull(WorkRow):
    """A render model an admin asked to pull (a durable work row: :mod:`render.model_pulls`).

    A render worker runs it: downloads take minutes to hours, never a request's time.
    ``phase``, ``done_bytes`` and ``total_bytes`` say how far it got."""

    id = fields.BigIntField(primary_key=True)
    name = fields.CharField(max_length=64)  # a render.catalogue name
    source = fields.TextField(default="")  # a hub cache on the worker's host; "" the hub
    use_after = fields.BooleanField(default=False)  # put it in use once pulled
    requested_by: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "fedisora.Account", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    requested_by_id: int | None
    phase = fields.CharField(max_length=16, default="")
    done_bytes = fields.BigIntField(default=0)
    total_bytes = fields.BigIntField(default=0)
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "model_pulls"
        indexes = (Index(fields=("state", "next_attempt_at")),)


__all__ += ["ModelPull"]


class Fingerprint(WorkRow):
    """A clip's perceptual fingerprint (:mod:`render.fingerprint`) and the durable work of
    computing it (:mod:`fedisora.services.fingerprints`): ``pending`` until a worker has
    hashed the clip's video (a local clip) or ``done`` at once (received with a remote clip,
    or hashed while publishing). One row per clip."""

    id = fields.BigIntField(primary_key=True)
    clip: fields.OneToOneRelation[Clip] = fields.OneToOneField(
        "fedisora.Clip", related_name=False, on_delete=fields.CASCADE
    )
    clip_id: int
    rate = fields.FloatField(default=8.0)
    hashes = fields.TextField(default="")
    """Hex of the packed PDQ hashes, in time order (render.fingerprint.hashes_to_hex)."""
    watermark_id = fields.BigIntField(null=True)
    origin = fields.CharField(max_length=8, default="local")  # local | remote
    computed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "fingerprints"
        indexes = (Index(fields=("state", "next_attempt_at")),)


class FingerprintChunk(Model):
    """Multi-index hashing over indexed PDQ hashes: one row per (32-bit chunk at its position,
    fingerprint). ``key`` is position << 32 | chunk (see :mod:`fedisora.services.fingerprints`)."""

    id = fields.BigIntField(primary_key=True)
    key = fields.BigIntField()
    fingerprint: fields.ForeignKeyRelation[Fingerprint] = fields.ForeignKeyField(
        "fedisora.Fingerprint", related_name=False, on_delete=fields.CASCADE
    )
    fingerprint_id: int

    class Meta:
        table = "fingerprint_chunks"
        indexes = (Index(fields=("key", "fingerprint_id")), Index(fields=("fingerprint_id",)))


__all__ += ["Fingerprint", "FingerprintChunk"]
