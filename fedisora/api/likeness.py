"""Likeness consent endpoints under ``/api/fedisora/v1/likeness`` (cameos): thin handlers over
:mod:`fedisora.services.likeness`.

- ``GET .../likeness/challenge``: a one-time code to show in the verification sample.
- ``POST .../likeness`` (multipart ``reference_images[]`` 1-5, ``verification``,
  ``challenge``): register or replace your likeness (``pending`` until verified).
- ``GET .../likeness``: yours, with its state and policy; ``DELETE .../likeness``: revoke it
  all (``take_down=true`` also deletes the clips published with it).
- ``PUT .../likeness/policy``: ``audience``, ``approval_required``, ``drafts_only``,
  ``restrictions``, ``default_expires_in``.
- ``POST .../likeness/requests`` (``account_id`` or ``acct``, ``accept_restrictions``),
  ``GET .../likeness/requests`` (incoming and outgoing), ``POST .../requests/:id/approve``
  and ``.../reject``.
- ``GET``/``POST .../likeness/grants``, ``DELETE .../likeness/grants/:id`` (``take_down``).
- ``GET .../likeness/uses``, ``POST .../likeness/uses/:id/remove``.
- ``GET .../likeness/checks``: the audit of consent checks of your likeness (``all=true``:
  every check, admins only).
- ``GET /api/fedisora/v1/likenesses?q=``: whose likeness you may use (the cameo picker).

Reference images and verification samples are never served by any endpoint.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora.api.entities import iso, render_accounts
from fedisora.api.http import Ctx, api_route, endpoint, json
from fedisora.api.media import TooLarge
from fedisora.errors import Invalid, NotFound
from fedisora.models import (
    Account,
    ConsentCheck,
    Likeness,
    LikenessGrant,
    LikenessRequest,
    LikenessUse,
)
from fedisora.services import likeness as svc
from fedisora.services import roles

__all__ = ["LIKENESSES", "PREFIX", "routes"]

PREFIX = "/api/fedisora/v1/likeness"
LIKENESSES = "/api/fedisora/v1/likenesses"
_READ = ("read", "read:accounts")
_WRITE = ("write", "write:accounts")


def _engine(ctx: Ctx) -> Any:
    return getattr(ctx.request.app.state, "engine", None)


def likeness_entity(likeness: Likeness) -> dict[str, Any]:
    return {
        "id": str(likeness.pk),
        "state": likeness.state.value,
        "reference_images": len(likeness.reference_files),
        "verification": {
            "type": likeness.verification_type or None,
            "method": likeness.verification_method or None,
            "verified_at": iso(likeness.verified_at),
            "reason": likeness.reason or None,
        },
        "policy": {
            "audience": likeness.audience.value,
            "approval_required": likeness.approval_required,
            "drafts_only": likeness.drafts_only,
            "restrictions": likeness.restrictions,
            "default_expires_in": likeness.default_expires_in,
        },
        "created_at": iso(likeness.created_at),
        "updated_at": iso(likeness.updated_at),
        "revoked_at": iso(likeness.revoked_at),
    }


async def _accounts(ids: set[int]) -> dict[int, dict[str, Any]]:
    rows = list(await Account.filter(pk__in=list(ids))) if ids else []
    return {a.pk: e for a, e in zip(rows, await render_accounts(rows), strict=True)}


async def _request_entities(rows: list[LikenessRequest]) -> list[dict[str, Any]]:
    accounts = await _accounts({r.owner_id for r in rows} | {r.requester_id for r in rows})
    return [
        {
            "id": str(r.pk),
            "state": r.state,
            "requester": accounts.get(r.requester_id),
            "owner": accounts.get(r.owner_id),
            "accepted_restrictions": bool(r.accepted_restrictions),
            "grant_id": None if r.grant_id is None else str(r.grant_id),
            "created_at": iso(r.created_at),
            "answered_at": iso(r.answered_at),
        }
        for r in rows
    ]


async def _grant_entities(rows: list[LikenessGrant]) -> list[dict[str, Any]]:
    accounts = await _accounts({g.owner_id for g in rows} | {g.grantee_id for g in rows})
    return [
        {
            "id": str(g.pk),
            "uri": g.uri,
            "owner": accounts.get(g.owner_id),
            "grantee": accounts.get(g.grantee_id),
            "basis": g.basis,
            "scope": g.scope,
            "single_use": g.single_use,
            "restrictions_accepted": bool(g.restrictions_digest),
            "expires_at": iso(g.expires_at),
            "revoked_at": iso(g.revoked_at),
            "take_down": g.take_down,
            "signed": g.document is not None,
            "created_at": iso(g.created_at),
        }
        for g in rows
    ]


async def _use_entities(rows: list[LikenessUse]) -> list[dict[str, Any]]:
    accounts = await _accounts({u.user_id for u in rows})
    return [
        {
            "id": str(u.pk),
            "kind": u.kind,
            "account": accounts.get(u.user_id),
            "grant_id": None if u.grant_id is None else str(u.grant_id),
            "render_id": None if u.render_job_id is None else str(u.render_job_id),
            "status_id": None if u.clip_id is None else str(u.clip_id),
            "status_uri": u.clip_uri,
            "reason": u.reason or None,
            "remote": u.remote,
            "removed_at": iso(u.removed_at),
            "created_at": iso(u.created_at),
        }
        for u in rows
    ]


def _when(ctx: Ctx, name: str) -> datetime | None:
    raw = ctx.params.text(name, max_length=64)
    if raw is None or not raw.strip():
        return None
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{name} must be an ISO 8601 date and time") from None
    if value.tzinfo is None:
        raise Invalid(f"{name} must name its time zone (e.g. 2026-01-01T00:00:00Z)")
    return value


def _flag(ctx: Ctx, name: str) -> bool | None:
    return ctx.params.flag(name) if name in ctx.params else None


# --------------------------------------------------------------------------- my likeness


@endpoint(*_WRITE, user=True)
async def challenge(ctx: Ctx) -> Response:
    row = await svc.new_challenge(ctx.me)
    return json({"challenge": row.code, "expires_at": iso(row.expires_at)})


async def _read_upload(value: Any, name: str, cap: int) -> bytes:
    if not isinstance(value, UploadFile):
        raise Invalid(f"{name} must be a file (multipart/form-data)")
    data = await value.read(cap + 1)
    if len(data) > cap:
        raise TooLarge(f"{name} is larger than {cap // (1024 * 1024)} MB, the limit")
    return data


@endpoint(*_WRITE, user=True)
async def register(ctx: Ctx) -> Response:
    p = ctx.params
    images = p.items("reference_images")
    if not images:
        raise Invalid("reference_images[] is required: 1 to 5 images of your face")
    if len(images) > svc.MAX_REFERENCE_IMAGES:
        raise Invalid(f"reference_images: at most {svc.MAX_REFERENCE_IMAGES} images")
    references = [
        await _read_upload(v, f"reference_images[{i}]", svc.MAX_REFERENCE_BYTES)
        for i, v in enumerate(images)
    ]
    sample = p.raw("verification")
    if sample is None:
        raise Invalid("verification is required: a still or short video showing the challenge")
    verification = await _read_upload(sample, "verification", svc.MAX_VERIFICATION_BYTES)
    code = p.required_text("challenge", max_length=32)
    likeness = await svc.register(
        ctx.me,
        references=references,
        verification=verification,
        challenge=code,
        settings=ctx.settings,
        engine=_engine(ctx),
    )
    return json(likeness_entity(likeness), 201)


async def _mine(ctx: Ctx) -> Likeness:
    likeness = await svc.get_likeness(ctx.me)
    if likeness is None:
        raise NotFound("you have no likeness registered")
    return likeness


@endpoint(*_READ, user=True)
async def show(ctx: Ctx) -> Response:
    return json(likeness_entity(await _mine(ctx)))


@endpoint(*_WRITE, user=True)
async def revoke(ctx: Ctx) -> Response:
    likeness = await svc.revoke_likeness(
        ctx.me,
        settings=ctx.settings,
        take_down=ctx.params.flag("take_down"),
        engine=_engine(ctx),
    )
    return json(likeness_entity(likeness))


@endpoint(*_WRITE, user=True)
async def policy(ctx: Ctx) -> Response:
    p = ctx.params
    kwargs: dict[str, Any] = {
        "audience": p.text("audience", max_length=16),
        "approval_required": _flag(ctx, "approval_required"),
        "drafts_only": _flag(ctx, "drafts_only"),
        "restrictions": p.text("restrictions", max_length=svc.MAX_RESTRICTIONS),
    }
    if "default_expires_in" in p:
        kwargs["default_expires_in"] = p.integer("default_expires_in", low=0, high=2**31 - 1)
    return json(likeness_entity(await svc.update_policy(ctx.me, **kwargs)))


# --------------------------------------------------------------------------- requests, grants


async def _named_account(ctx: Ctx) -> Account:
    return await svc.named_account(
        account_id=ctx.params.id("account_id"),
        acct=ctx.params.text("acct", max_length=320),
        settings=ctx.settings,
    )


@endpoint(*_WRITE, user=True)
async def create_request(ctx: Ctx) -> Response:
    owner = await _named_account(ctx)
    request = await svc.request_use(
        ctx.me, owner, accept_restrictions=ctx.params.flag("accept_restrictions")
    )
    return json((await _request_entities([request]))[0])


@endpoint(*_READ, user=True)
async def list_requests(ctx: Ctx) -> Response:
    incoming, outgoing = await svc.requests_of(ctx.me)
    return json(
        {
            "incoming": await _request_entities(incoming),
            "outgoing": await _request_entities(outgoing),
        }
    )


@endpoint(*_WRITE, user=True)
async def approve_request(ctx: Ctx) -> Response:
    request = await svc.approve_request(ctx.me, ctx.path_id(), expires_at=_when(ctx, "expires_at"))
    return json((await _request_entities([request]))[0])


@endpoint(*_WRITE, user=True)
async def reject_request(ctx: Ctx) -> Response:
    request = await svc.reject_request(ctx.me, ctx.path_id())
    return json((await _request_entities([request]))[0])


@endpoint(*_READ, user=True)
async def list_grants(ctx: Ctx) -> Response:
    given, held = await svc.grants_of(ctx.me)
    return json({"given": await _grant_entities(given), "held": await _grant_entities(held)})


@endpoint(*_WRITE, user=True)
async def create_grant(ctx: Ctx) -> Response:
    grantee = await _named_account(ctx)
    row = await svc.grant(ctx.me, grantee, expires_at=_when(ctx, "expires_at"))
    return json((await _grant_entities([row]))[0])


@endpoint(*_WRITE, user=True)
async def revoke_grant(ctx: Ctx) -> Response:
    row = await svc.revoke_grant(
        ctx.me, ctx.path_id(), take_down=ctx.params.flag("take_down"), engine=_engine(ctx)
    )
    return json((await _grant_entities([row]))[0])


# --------------------------------------------------------------------------- uses, audit, picker


@endpoint(*_READ, user=True)
async def list_uses(ctx: Ctx) -> Response:
    rows = await svc.uses_of(
        ctx.me,
        limit=ctx.params.number("limit", 40, low=1, high=80),
        max_id=ctx.params.id("max_id"),
    )
    return json(await _use_entities(rows))


@endpoint(*_WRITE, user=True)
async def remove_use(ctx: Ctx) -> Response:
    use = await svc.remove_from_clip(ctx.me, ctx.path_id(), engine=_engine(ctx))
    return json((await _use_entities([use]))[0])


@endpoint(*_READ, user=True)
async def list_checks(ctx: Ctx) -> Response:
    every = ctx.params.flag("all")
    if every:
        roles.require(ctx.user, "staff", "only moderators and admins see every consent check")
    rows: list[ConsentCheck] = await svc.consent_checks(
        ctx.me,
        admin=every,
        limit=ctx.params.number("limit", 40, low=1, high=80),
        max_id=ctx.params.id("max_id"),
    )
    accounts = await _accounts({c.requester_id for c in rows} | {c.owner_id for c in rows})
    return json(
        [
            {
                "id": str(c.pk),
                "requester": accounts.get(c.requester_id),
                "owner": accounts.get(c.owner_id),
                "grant_id": None if c.grant_id is None else str(c.grant_id),
                "render_id": None if c.render_job_id is None else str(c.render_job_id),
                "stage": c.stage,
                "publish": c.publish,
                "allowed": c.allowed,
                "reason": c.reason,
                "created_at": iso(c.created_at),
            }
            for c in rows
        ]
    )


@endpoint(*_READ, user=True)
async def picker(ctx: Ctx) -> Response:
    q = ctx.params.text("q", "", max_length=100) or ""
    limit = ctx.params.number("limit", 20, low=1, high=40)
    return json(await render_accounts(await svc.usable_likenesses(ctx.me, q, limit=limit)))


class _ActivityResponse(JSONResponse):
    media_type = "application/activity+json"


async def grant_document(request: Request) -> Response:
    """``GET /likeness/grants/:id`` (public): a grant's signed consent object, for any
    server to verify by itself; a revoked one answers 410 with its signed revocation."""
    from fedisora.api.params import parse_id

    grant_id = parse_id(request.path_params.get("id", ""))
    row = await LikenessGrant.get_or_none(pk=grant_id, remote=False) if grant_id >= 0 else None
    from fedisora.negotiation import wants_page

    if row is None or row.document is None:
        if wants_page(request):
            from web.pages import error_page

            return error_page(request, 404, "There is no such consent here.")
        return JSONResponse({"error": "Record not found"}, 404)
    if wants_page(request):
        from web.consent_page import consent_page  # a browser gets the consent in words

        response = await consent_page(request, row)
        response.headers["Vary"] = "Accept"
        return response
    if row.revoked_at is not None:
        if row.revocation is not None:
            return _ActivityResponse(row.revocation, 410, headers={"Vary": "Accept"})
        return JSONResponse({"error": "this consent was revoked"}, 410)
    return _ActivityResponse(row.document, headers={"Vary": "Accept"})


def routes() -> list[BaseRoute]:
    return [
        Route("/likeness/grants/{id}", grant_document, methods=["GET"], name="likeness_grant"),
        *api_route(f"{PREFIX}/challenge", challenge, ["GET"]),
        *api_route(PREFIX, register, ["POST"]),
        *api_route(PREFIX, show, ["GET"]),
        *api_route(PREFIX, revoke, ["DELETE"]),
        *api_route(f"{PREFIX}/policy", policy, ["PUT"]),
        *api_route(f"{PREFIX}/requests", create_request, ["POST"]),
        *api_route(f"{PREFIX}/requests", list_requests, ["GET"]),
        *api_route(f"{PREFIX}/requests/{{id}}/approve", approve_request, ["POST"]),
        *api_route(f"{PREFIX}/requests/{{id}}/reject", reject_request, ["POST"]),
        *api_route(f"{PREFIX}/grants", list_grants, ["GET"]),
        *api_route(f"{PREFIX}/grants", create_grant, ["POST"]),
        *api_route(f"{PREFIX}/grants/{{id}}", revoke_grant, ["DELETE"]),
        *api_route(f"{PREFIX}/uses", list_uses, ["GET"]),
        *api_route(f"{PREFIX}/uses/{{id}}/remove", remove_use, ["POST"]),
        *api_route(f"{PREFIX}/checks", list_checks, ["GET"]),
        *api_route(LIKENESSES, picker, ["GET"]),
    ]
