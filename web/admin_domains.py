"""``/admin/domains``: an admin's domain blocks and allows, with Mastodon's CSV import and export.

Every change is a POST carrying the session's CSRF token, and is made (and audited) by
:mod:`fedisora.services.domain_blocks`; a refusal (a bad domain, our own, a malformed CSV
line) is shown on the page with a 4xx, nothing half-applied. The import takes a CSV file and
the admin's choice for malformed lines: import the other lines, or nothing at all.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora.errors import Invalid
from fedisora.ids import row_id
from fedisora.models import DomainAllow, DomainBlock
from fedisora.services import domain_blocks as service
from web.pages import render
from web.routes import _admin_user, staff_form
from web.sessions import csrf_token

__all__ = ["routes"]

PAGE = "/admin/domains"


async def _page(request: Request, status: int = 200, **context: Any) -> Response:
    context.setdefault("error", None)
    context.setdefault("result", None)
    context.setdefault("form", {})
    return render(
        request,
        "admin/domains.html",
        status=status,
        blocks=await DomainBlock.all().order_by("domain"),
        allows=await DomainAllow.all().order_by("domain"),
        refusals=await service.refusals(),
        limited=request.app.state.settings.limited_federation,
        severities=service.SEVERITIES,
        csrf=csrf_token(request),
        **context,
    )


def _options(form: FormData) -> dict[str, Any]:
    return {
        "severity": str(form.get("severity", "silence")),
        "reject_media": form.get("reject_media") is not None,
        "reject_reports": form.get("reject_reports") is not None,
        "obfuscate": form.get("obfuscate") is not None,
        "private_comment": str(form.get("private_comment", "")),
        "public_comment": str(form.get("public_comment", "")),
    }


async def admin_domains(request: Request) -> Response:
    await _admin_user(request)
    return await _page(request)


async def add_block(request: Request) -> Response:
    form, me = await staff_form(request, await _admin_user(request))
    domain = str(form.get("domain", ""))
    try:
        await service.create_block(me, domain, request.app.state.settings, **_options(form))
    except Invalid as exc:
        return await _page(
            request, 422, error=exc.message, form={"domain": domain, **_options(form)}
        )
    return RedirectResponse(PAGE, status_code=303)


async def _block(request: Request) -> DomainBlock:
    pk = row_id(str(request.path_params["block_id"]))
    block = await DomainBlock.get_or_none(pk=pk) if pk is not None else None
    if block is None:
        raise HTTPException(404, "no such domain block")
    return block


async def edit_block(request: Request) -> Response:
    admin = await _admin_user(request)
    block = await _block(request)
    if request.method == "GET":
        return render(
            request,
            "admin/domain_block.html",
            block=block,
            severities=service.SEVERITIES,
            csrf=csrf_token(request),
            error=None,
        )
    form, me = await staff_form(request, admin)
    try:
        await service.update_block(me, block, **_options(form))
    except Invalid as exc:
        return render(
            request,
            "admin/domain_block.html",
            status=422,
            block=block,
            severities=service.SEVERITIES,
            csrf=csrf_token(request),
            error=exc.message,
        )
    return RedirectResponse(PAGE, status_code=303)


async def remove_block(request: Request) -> Response:
    admin = await _admin_user(request)
    block = await _block(request)
    _, me = await staff_form(request, admin)
    await service.delete_block(me, block)
    return RedirectResponse(PAGE, status_code=303)


async def add_allow(request: Request) -> Response:
    form, me = await staff_form(request, await _admin_user(request))
    domain = str(form.get("domain", ""))
    try:
        await service.create_allow(me, domain, request.app.state.settings)
    except Invalid as exc:
        return await _page(request, 422, error=exc.message, allow_domain=domain)
    return RedirectResponse(PAGE, status_code=303)


async def remove_allow(request: Request) -> Response:
    admin = await _admin_user(request)
    pk = row_id(str(request.path_params["allow_id"]))
    allow = await DomainAllow.get_or_none(pk=pk) if pk is not None else None
    if allow is None:
        raise HTTPException(404, "no such allowed domain")
    _, me = await staff_form(request, admin)
    await service.delete_allow(me, allow)
    return RedirectResponse(PAGE, status_code=303)


async def import_blocks(request: Request) -> Response:
    form, me = await staff_form(request, await _admin_user(request))
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise Invalid("Choose a CSV file to import.")
        mode = str(form.get("mode", ""))
        if mode not in ("rest", "all"):
            raise Invalid("Choose what to do with malformed lines.")
        raw = await upload.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise Invalid("The file is not UTF-8 text (a CSV export of domain blocks).") from None
        result = await service.import_csv(
            me, text, request.app.state.settings, all_or_nothing=mode == "all"
        )
    except Invalid as exc:
        return await _page(request, 422, error=exc.message)
    finally:
        await form.close()
    status = 422 if result.errors and not result.applied else 200
    return await _page(request, status, result=result)


async def export_blocks(request: Request) -> Response:
    await _admin_user(request)
    text = service.export_csv(await DomainBlock.all().order_by("domain"))
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="domain_blocks.csv"'},
    )


def routes() -> list[BaseRoute]:
    return [
        Route(PAGE, admin_domains),
        Route(f"{PAGE}/blocks", add_block, methods=["POST"]),
        Route(f"{PAGE}/blocks/{{block_id}}", edit_block, methods=["GET", "POST"]),
        Route(f"{PAGE}/blocks/{{block_id}}/delete", remove_block, methods=["POST"]),
        Route(f"{PAGE}/allows", add_allow, methods=["POST"]),
        Route(f"{PAGE}/allows/{{allow_id}}/delete", remove_allow, methods=["POST"]),
        Route(f"{PAGE}/import", import_blocks, methods=["POST"]),
        Route(f"{PAGE}/export", export_blocks),
    ]
