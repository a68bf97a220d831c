"""``/admin/models``: the render models, what each needs, which are installed and which is
in use; pulling one and putting one in use (admins only).

One service behind it and ``fedisora model``: :mod:`render.models`. A pull is queued as a
durable ``ModelPull`` row that a render worker runs (:mod:`render.model_pulls`), never inside
the request: the page shows its phase and bytes as the worker writes them. Putting a model
in use checks its directory first and is saved at once; workers load it for their next render.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora.errors import FedisoraError
from render import model_pulls, models
from render.catalogue import CATALOGUE, TINY_MODELS
from render.spec import FAMILIES
from web.pages import render
from web.routes import _admin_user, _size, staff_form
from web.sessions import csrf_token

__all__ = ["routes"]


def _pull_view(row: Any) -> dict[str, Any]:
    percent = 100 * row.done_bytes // row.total_bytes if row.total_bytes else 0
    return {
        "id": row.pk,
        "name": row.name,
        "state": row.state,
        "phase": row.phase or "waiting for a render worker",
        "progress": f"{_size(row.done_bytes)} of {_size(row.total_bytes)} ({percent} %)"
        if row.total_bytes
        else "",
        "error": row.last_error,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
        "use_after": row.use_after,
    }


async def _page(
    request: Request, *, status: int = 200, error: str = "", notice: str = ""
) -> Response:
    settings = request.app.state.settings
    in_effect = await models.effective(settings)
    in_use = models.in_use(settings)
    here = models.installed(settings)
    pulls = [_pull_view(row) for row in await model_pulls.recent()]
    pulling = {p["name"] for p in pulls if p["state"] == "pending"}
    catalogue = []
    for entry in CATALOGUE.values():
        fam = FAMILIES.get(entry.family)
        fps = fam.fps if fam is not None else 24
        catalogue.append(
            {
                "entry": entry,
                "supported": fam is not None,
                "installed": entry.name in here,
                "in_use": entry.name == in_use,
                "pulling": entry.name in pulling,
                "gpus": [g.describe(fps) for g in (entry.gpu24, entry.gpu80) if g is not None],
            }
        )
    return render(
        request,
        "admin/models.html",
        status=status,
        error=error,
        notice=notice,
        in_use=in_use,
        models_dir=str(settings.models_dir),
        environment_model=settings.render_model,
        chosen=in_effect.render_model != settings.render_model,
        tiny=list(TINY_MODELS.values()),
        catalogue=catalogue,
        others=[m for name, m in here.items() if name not in CATALOGUE],
        pulls=pulls,
        csrf=csrf_token(request),
    )


async def admin_models(request: Request) -> Response:
    await _admin_user(request)
    notice = ""
    if request.query_params.get("queued"):
        notice = (
            f"The pull of {request.query_params['queued']} is queued: a render worker runs it "
            "and this page shows how far it got."
        )
    elif request.query_params.get("in_use"):
        notice = (
            f"{request.query_params['in_use']} is in use: render workers load it for their "
            "next render."
        )
    return await _page(request, notice=notice)


async def pull(request: Request) -> Response:
    form, me = await staff_form(request, await _admin_user(request))
    name = str(form.get("name", ""))
    try:
        await model_pulls.request_pull(
            request.app.state.settings, name, me, use_after=form.get("use_after") == "yes"
        )
    except FedisoraError as exc:  # not in the catalogue (422), being pulled already (409)
        return await _page(request, status=exc.status, error=f"Nothing was queued: {exc}")
    return RedirectResponse(f"/admin/models?queued={name}", status_code=303)


async def use(request: Request) -> Response:
    form, me = await staff_form(request, await _admin_user(request))
    name = str(form.get("name", ""))
    try:
        value = await models.use(request.app.state.settings, name, me)
    except models.ModelError as exc:
        return await _page(request, status=exc.status, error=f"Nothing was changed: {exc}")
    return RedirectResponse(f"/admin/models?in_use={value}", status_code=303)


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/models", admin_models),
        Route("/admin/models/pull", pull, methods=["POST"]),
        Route("/admin/models/use", use, methods=["POST"]),
    ]
