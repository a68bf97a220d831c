"""``/admin/provenance``: the instance's C2PA signing root, its retired roots, downloads of
both, and replacing the root (admins only).

Replacing calls :func:`fedisora.services.provenance.provision`, as ``fedisora init
--new-provenance-root`` does (CSRF-checked, confirmed with a checkbox, audited). The render
queue reads the credentials for every clip it signs, so the next render on a worker sharing
this data directory signs under the new root without a restart.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora.services import provenance
from web.pages import render
from web.routes import _admin_user, staff_form
from web.sessions import csrf_token

__all__ = ["PEM_TYPE", "routes"]

PEM_TYPE = "application/x-pem-file"


async def _page(
    request: Request, *, status: int = 200, error: str | None = None, replaced: bool = False
) -> Response:
    settings = request.app.state.settings
    return render(
        request,
        "admin/provenance.html",
        status=status,
        roots=await provenance.roots(settings),
        error=error,
        replaced=replaced,
        csrf=csrf_token(request),
    )


async def admin_provenance(request: Request) -> Response:
    await _admin_user(request)
    return await _page(request, replaced=request.query_params.get("replaced") == "1")


async def replace_root(request: Request) -> Response:
    form, me = await staff_form(request, await _admin_user(request))
    if form.get("confirm") != "yes":
        return await _page(
            request,
            status=400,
            error="Nothing was replaced: tick the box to confirm you want a new root.",
        )
    try:
        await provenance.provision(request.app.state.settings, by=me, replace=True)
    except OSError as exc:  # a read-only or full data directory
        return await _page(
            request,
            status=503,
            error=f"The root could not be replaced: the data directory refused the files ({exc}).",
        )
    return RedirectResponse("/admin/provenance?replaced=1", status_code=303)


def _pem_download(text: str, filename: str) -> Response:
    return Response(
        text,
        media_type=PEM_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def _file_stem(request: Request) -> str:
    host = str(request.app.state.settings.domain).split(":", 1)[0]
    safe = "".join(c if c.isalnum() or c in ".-" else "-" for c in host)
    return f"{safe}-provenance"


async def download_root(request: Request) -> Response:
    await _admin_user(request)
    roots = await provenance.roots(request.app.state.settings)
    if not roots.current:
        return Response("This instance has no signing root yet.", status_code=404)
    current = "".join(r.pem for r in roots.current)
    return _pem_download(current, f"{_file_stem(request)}-root.pem")


async def download_bundle(request: Request) -> Response:
    await _admin_user(request)
    roots = await provenance.roots(request.app.state.settings)
    if not roots.current and not roots.retired:
        return Response("This instance has no signing root yet.", status_code=404)
    return _pem_download(roots.bundle(), f"{_file_stem(request)}-roots.pem")


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/provenance", admin_provenance),
        Route("/admin/provenance/replace", replace_root, methods=["POST"]),
        Route("/admin/provenance/root.pem", download_root),
        Route("/admin/provenance/roots.pem", download_bundle),
    ]
