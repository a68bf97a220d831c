"""Domain blocks in Mastodon's API: the admin's (``/api/v1/admin/domain_blocks`` and
``/api/v1/admin/domain_allows``), the public list (``/api/v1/instance/domain_blocks``) and a
user's own (``/api/v1/domain_blocks``).

The admin endpoints need a token with an ``admin:`` scope (``admin:read:domain_blocks``,
``admin:write:domain_blocks``; the allows take ``admin:*:domain_allows`` too) whose user is an
admin; others get 403 ``This action is not allowed``. The rules and the audit log are
:mod:`fedisora.services.domain_blocks`'.
"""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from fedisora.api.entities import iso
from fedisora.api.http import Ctx, api_route, endpoint, json
from fedisora.api.pagination import Page, link_header, page_of
from fedisora.errors import Invalid, NotFound
from fedisora.models import DomainAllow, DomainBlock
from fedisora.services import domain_blocks as service
from fedisora.services import roles

__all__ = ["admin_block_entity", "routes"]

Json = dict[str, Any]


def admin_block_entity(block: DomainBlock) -> Json:
    """Mastodon's ``Admin::DomainBlock``."""
    return {
        "id": str(block.pk),
        "domain": block.domain,
        "digest": hashlib.sha256(block.domain.encode()).hexdigest(),
        "created_at": iso(block.created_at),
        "severity": block.severity.value,
        "reject_media": block.reject_media,
        "reject_reports": block.reject_reports,
        "private_comment": block.private_comment or None,
        "public_comment": block.public_comment or None,
        "obfuscate": block.obfuscate,
    }


def _allow_entity(allow: DomainAllow) -> Json:
    return {"id": str(allow.pk), "domain": allow.domain, "created_at": iso(allow.created_at)}


def _admin(ctx: Ctx) -> None:
    """Domain blocks are the instance's settings: admins only, not moderators."""
    roles.require(ctx.user, "admin")


def _options(ctx: Ctx) -> dict[str, Any]:
    """The fields a POST or PUT sets (absent ones: None, left as they are by an update)."""
    p = ctx.params
    out: dict[str, Any] = {}
    for name in ("reject_media", "reject_reports", "obfuscate"):
        out[name] = p.flag(name) if name in p else None
    for name in ("severity", "private_comment", "public_comment"):
        out[name] = p.text(name, max_length=service.MAX_COMMENT + 1) if name in p else None
    return out


async def _block(ctx: Ctx) -> DomainBlock:
    _admin(ctx)
    return await service.get_block(ctx.path_id())


# --- admin: blocks -----------------------------------------------------------------------------


@endpoint("admin:read:domain_blocks", user=True)
async def list_blocks(ctx: Ctx) -> Response:
    _admin(ctx)
    page = Page.from_params(ctx.params, default=100, maximum=200)
    rows = await page_of(DomainBlock.all(), page)
    headers = link_header(ctx.request, rows[0].pk, rows[-1].pk) if rows else {}
    return json([admin_block_entity(b) for b in rows], headers=headers)


@endpoint("admin:read:domain_blocks", user=True)
async def get_block(ctx: Ctx) -> Response:
    return json(admin_block_entity(await _block(ctx)))


@endpoint("admin:write:domain_blocks", user=True)
async def create_block(ctx: Ctx) -> Response:
    _admin(ctx)
    domain = ctx.params.text("domain", max_length=2048) or ""
    options = {k: v for k, v in _options(ctx).items() if v is not None}
    existing = None
    try:
        name = service.normalize_domain(domain, ctx.settings)
        existing = await DomainBlock.get_or_none(domain=name)
    except Invalid:
        pass  # create_block says why
    if existing is not None:  # Mastodon: 422 with the existing block
        return json(
            {
                "error": f"{existing.domain} is already blocked",
                "existing_domain_block": admin_block_entity(existing),
            },
            422,
        )
    block = await service.create_block(ctx.me, domain, ctx.settings, **options)
    return json(admin_block_entity(block))


@endpoint("admin:write:domain_blocks", user=True)
async def update_block(ctx: Ctx) -> Response:
    block = await _block(ctx)
    block = await service.update_block(ctx.me, block, **_options(ctx))
    return json(admin_block_entity(block))


@endpoint("admin:write:domain_blocks", user=True)
async def delete_block(ctx: Ctx) -> Response:
    block = await _block(ctx)
    await service.delete_block(ctx.me, block)
    return json({})


# --- admin: allows -----------------------------------------------------------------------------


async def _allow(ctx: Ctx) -> DomainAllow:
    _admin(ctx)
    allow = await DomainAllow.get_or_none(pk=ctx.path_id())
    if allow is None:
        raise NotFound("Record not found")
    return allow


@endpoint("admin:read:domain_allows", "admin:read:domain_blocks", user=True)
async def list_allows(ctx: Ctx) -> Response:
    _admin(ctx)
    page = Page.from_params(ctx.params, default=100, maximum=200)
    rows = await page_of(DomainAllow.all(), page)
    headers = link_header(ctx.request, rows[0].pk, rows[-1].pk) if rows else {}
    return json([_allow_entity(a) for a in rows], headers=headers)


@endpoint("admin:read:domain_allows", "admin:read:domain_blocks", user=True)
async def get_allow(ctx: Ctx) -> Response:
    return json(_allow_entity(await _allow(ctx)))


@endpoint("admin:write:domain_allows", "admin:write:domain_blocks", user=True)
async def create_allow(ctx: Ctx) -> Response:
    _admin(ctx)
    domain = ctx.params.text("domain", max_length=2048) or ""
    return json(_allow_entity(await service.create_allow(ctx.me, domain, ctx.settings)))


@endpoint("admin:write:domain_allows", "admin:write:domain_blocks", user=True)
async def delete_allow(ctx: Ctx) -> Response:
    await service.delete_allow(ctx.me, await _allow(ctx))
    return json({})


# --- public and per user -------------------------------------------------------------------


@endpoint()
async def instance_blocks(ctx: Ctx) -> Response:
    """The blocks, as Mastodon publishes them: an obfuscated domain has asterisks, and every
    entry the SHA-256 of its domain (so that a peer can check whether it is blocked)."""
    return json(await service.public_blocks())


@endpoint("read", "read:blocks", user=True)
async def user_blocks(ctx: Ctx) -> Response:
    return json(await service.user_blocked_domains(ctx.me))


@endpoint("write", "write:blocks", user=True)
async def user_block(ctx: Ctx) -> Response:
    await service.block_domain(
        ctx.me, ctx.params.required_text("domain", max_length=2048), ctx.settings
    )
    return json({})


@endpoint("write", "write:blocks", user=True)
async def user_unblock(ctx: Ctx) -> Response:
    await service.unblock_domain(ctx.me, ctx.params.required_text("domain", max_length=2048))
    return json({})


def routes() -> list[BaseRoute]:
    b = "/api/v1/admin/domain_blocks"
    a = "/api/v1/admin/domain_allows"
    return [
        *api_route(b, list_blocks, ["GET"]),
        *api_route(b, create_block, ["POST"]),
        *api_route(f"{b}/{{id}}", get_block, ["GET"]),
        *api_route(f"{b}/{{id}}", update_block, ["PUT"]),
        *api_route(f"{b}/{{id}}", delete_block, ["DELETE"]),
        *api_route(a, list_allows, ["GET"]),
        *api_route(a, create_allow, ["POST"]),
        *api_route(f"{a}/{{id}}", get_allow, ["GET"]),
        *api_route(f"{a}/{{id}}", delete_allow, ["DELETE"]),
        *api_route("/api/v1/instance/domain_blocks", instance_blocks, ["GET"]),
        *api_route("/api/v1/domain_blocks", user_blocks, ["GET"]),
        *api_route("/api/v1/domain_blocks", user_block, ["POST"]),
        *api_route("/api/v1/domain_blocks", user_unblock, ["DELETE"]),
    ]
