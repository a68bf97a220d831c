"""Instance information: ``/api/v1/instance``, ``/api/v2/instance``, peers, emojis, rules.

``version`` reads as a Mastodon version for clients that parse it (Mastodon.py, Tusky), with
fedisora's own version in parentheses; ``api_versions.mastodon`` is the capability number.
"""

from __future__ import annotations

from datetime import timedelta
from importlib import metadata
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from fedisora import usage
from fedisora.api.entities import account_entities, rule_entity
from fedisora.api.http import Ctx, api_route, endpoint, json
from fedisora.api.lookup import column
from fedisora.api.scopes import ALL_SCOPES
from fedisora.boundary.limits import IMAGE_SIZE_LIMIT as IMAGE_SIZE_LIMIT
from fedisora.boundary.limits import VIDEO_SIZE_LIMIT as VIDEO_SIZE_LIMIT
from fedisora.models import Account, Clip, User, utcnow
from fedisora.services import instance_settings, rules
from fedisora.services.accounts import INSTANCE_ACTOR
from fedisora.services.interactions import MAX_COMMENT
from fedisora.services.posts import MAX_CAPTION

__all__ = ["MASTODON_API_VERSION", "MASTODON_COMPAT", "routes", "version_string"]

MASTODON_COMPAT = "4.3.0"
MASTODON_API_VERSION = 2
# The upload size limits (IMAGE_SIZE_LIMIT, VIDEO_SIZE_LIMIT) are the input boundary's,
# enforced while a body is read (fedisora.boundary.limits); the instance shows them.
SUPPORTED_MIME_TYPES = ["video/mp4", "image/jpeg", "image/png", "image/webp"]
MAX_PEERS = 10_000
"""Domains ``/api/v1/instance/peers`` lists at most."""
VIDEO_MATRIX_LIMIT = 1920 * 1080
VIDEO_FRAME_RATE_LIMIT = 60
IMAGE_MATRIX_LIMIT = 4096 * 4096


def version_string() -> str:
    try:
        own = metadata.version("fedisora")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        own = "0.1.0"
    return f"{MASTODON_COMPAT} (compatible; fedisora {own})"


def _streaming_url(ctx: Ctx) -> str:
    """Where the streaming API lives: ``/api/v1/streaming`` (WebSocket, and server-sent events
    on its sub-paths) on this same host."""
    scheme = "ws" if ctx.settings.insecure_http else "wss"
    return f"{scheme}://{ctx.settings.domain}"


def _configuration(ctx: Ctx) -> dict[str, Any]:
    settings = ctx.settings
    return {
        "urls": {"streaming": _streaming_url(ctx), "status": None},
        "accounts": {
            "max_featured_tags": 0,
            "max_pinned_statuses": 5,
            "max_display_name_length": 100,
            "max_note_length": 500,
            "max_profile_fields": 0,
        },
        "statuses": {
            "max_characters": max(MAX_CAPTION, MAX_COMMENT),
            "max_media_attachments": 1,
            "characters_reserved_per_url": 23,
        },
        "media_attachments": {
            "supported_mime_types": SUPPORTED_MIME_TYPES,
            "description_limit": 1500,
            "image_size_limit": IMAGE_SIZE_LIMIT,
            "image_matrix_limit": IMAGE_MATRIX_LIMIT,
            "video_size_limit": VIDEO_SIZE_LIMIT,
            "video_frame_rate_limit": VIDEO_FRAME_RATE_LIMIT,
            "video_matrix_limit": VIDEO_MATRIX_LIMIT,
            "video_duration_limit": settings.max_clip_seconds,
            "fedisora_ai_only": True,
        },
        "polls": {
            "max_options": 0,
            "max_characters_per_option": 0,
            "min_expiration": 0,
            "max_expiration": 0,
        },
        "translation": {"enabled": False},
        "fedisora_renders": _render_capabilities(ctx),
        "vapid": {"public_key": ""},
        "oauth": {"scopes": list(ALL_SCOPES)},
    }


def _render_capabilities(ctx: Ctx) -> dict[str, Any] | None:
    """What the configured render model can make: what a client shows before it asks for a
    render (``audio``: whether it renders sound, the default of a request's ``audio``).
    ``None`` when the model cannot be read (the worker's log says why)."""
    from render.errors import ModelLoadError
    from render.service import render_limits

    try:
        limits = render_limits(ctx.settings)
    except ModelLoadError:
        return None
    return {
        "family": limits.family,
        "max_seconds": limits.max_seconds,
        "aspects": list(limits.aspects),
        "max_prompt_characters": limits.max_prompt_chars,
        "cameos": limits.cameos,
        "audio": limits.audio,
    }


async def _contact_account() -> Account | None:
    admin = await User.filter(is_admin=True).order_by("id").first()
    return None if admin is None else await Account.get_or_none(pk=admin.account_id)


async def _counts(ctx: Ctx) -> tuple[int, int, int]:
    """Local accounts, those who posted in 30 days and local clips (:mod:`fedisora.usage`:
    made at most every few minutes)."""
    return await usage.kept(ctx.request.app.state, "instance", _make_counts)


async def _make_counts() -> tuple[int, int, int]:
    users = await Account.filter(domain=None).exclude(username=INSTANCE_ACTOR).count()
    active = await column(
        Clip.filter(local=True, created_at__gte=utcnow() - timedelta(days=30)).distinct(),
        "account_id",
    )
    statuses = await Clip.filter(local=True, deleted_at=None).count()
    return users, len(set(active)), statuses


async def _domain_count() -> int:
    """The domains of the remote accounts this instance knows (v1's ``domain_count``)."""
    return len(set(await column(Account.exclude(domain=None).distinct(), "domain")))


@endpoint()
async def instance_v2(ctx: Ctx) -> Response:
    settings = ctx.settings
    contact = await _contact_account()
    _users, active, _statuses = await _counts(ctx)
    values = await instance_settings.effective(settings)
    mode = values.registrations
    return json(
        {
            "domain": settings.domain,
            "title": values.instance_name,
            "version": version_string(),
            "source_url": settings.source_url,
            "description": values.short_description,
            "usage": {"users": {"active_month": active}},
            "thumbnail": {"url": f"{settings.base_url}/favicon.ico"},
            "icon": [],
            "languages": ["en"],
            "configuration": _configuration(ctx),
            "registrations": {
                "enabled": mode != "closed",
                "approval_required": mode == "approval",
                "message": values.registrations_message or None,
                "url": None,
                "min_age": None,
                "reason_required": mode == "approval",
            },
            "api_versions": {"mastodon": MASTODON_API_VERSION, "fedisora": 1},
            "contact": {
                "email": values.contact_email,
                "account": account_entities([contact])[0] if contact else None,
            },
            "rules": await _rules(),
        }
    )


@endpoint()
async def instance_v1(ctx: Ctx) -> Response:
    settings = ctx.settings
    contact = await _contact_account()
    users, _active, statuses = await _counts(ctx)
    domains = await usage.kept(ctx.request.app.state, "domains", _domain_count)
    config = _configuration(ctx)
    values = await instance_settings.effective(settings)
    mode = values.registrations
    return json(
        {
            "uri": settings.domain,
            "title": values.instance_name,
            "short_description": values.short_description,
            "description": values.description,
            "email": values.contact_email,
            "version": version_string(),
            "urls": {"streaming_api": _streaming_url(ctx)},
            "stats": {
                "user_count": users,
                "status_count": statuses,
                "domain_count": domains,
            },
            "thumbnail": None,
            "languages": ["en"],
            "registrations": mode != "closed",
            "approval_required": mode == "approval",
            "invites_enabled": settings.invites == "users",
            "configuration": {
                "accounts": {"max_featured_tags": 0},
                "statuses": config["statuses"],
                "media_attachments": config["media_attachments"],
                "polls": config["polls"],
            },
            "contact_account": account_entities([contact])[0] if contact else None,
            "rules": await _rules(),
        }
    )


@endpoint()
async def peers(ctx: Ctx) -> Response:
    """The domains of the remote accounts known here, in order, at most :data:`MAX_PEERS`
    (Mastodon's list has no pages: a bound, not the whole table, each time)."""
    query = Account.exclude(domain=None).distinct().order_by("domain").limit(MAX_PEERS)
    domains = await column(query, "domain")
    return json(sorted({str(d) for d in domains}))


@endpoint()
async def extended_description(ctx: Ctx) -> Response:
    """The long description (Mastodon's ``/api/v1/instance/extended_description``), as HTML
    paragraphs of the admins' plain text."""
    from html import escape

    values = await instance_settings.effective(ctx.settings)
    paragraphs = [p.strip() for p in values.description.split("\n\n") if p.strip()]
    content = "".join(
        "<p>" + "<br>".join(escape(line) for line in p.split("\n")) + "</p>" for p in paragraphs
    )
    return json({"updated_at": None, "content": content})


@endpoint()
async def empty_list(ctx: Ctx) -> Response:
    """Custom emojis: fedisora has none."""
    return json([])


async def _rules() -> list[dict[str, Any]]:
    return [rule_entity(r) for r in await rules.rules()]


@endpoint()
async def instance_rules(ctx: Ctx) -> Response:
    """The instance's rules, in order (:mod:`fedisora.services.rules`)."""
    return json(await _rules())


def routes() -> list[BaseRoute]:
    return [
        *api_route("/api/v1/instance", instance_v1, ["GET"]),
        *api_route("/api/v2/instance", instance_v2, ["GET"]),
        *api_route("/api/v1/instance/peers", peers, ["GET"]),
        *api_route("/api/v1/instance/extended_description", extended_description, ["GET"]),
        *api_route("/api/v1/custom_emojis", empty_list, ["GET"]),
        *api_route("/api/v1/instance/rules", instance_rules, ["GET"]),
    ]
