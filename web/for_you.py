"""For You in the browser: the player's reports, "Not interested" and "Show less like this"
on a clip, and ``/settings/for-you`` (what the feed learned, and the controls). Thin pages
over :mod:`fedisora.for_you.signals`, as the API's :mod:`fedisora.api.feedback`.

- ``POST /feedback``: the feed player's batches (``web/static/app.js``), a JSON body
  ``{"events": [...]}`` as the API's ``POST /api/fedisora/v1/feedback``, authenticated by the
  browser session and its CSRF token (the ``X-CSRF-Token`` header, or a ``csrf`` member of
  the body). JSON answers: ``{"accepted", "ignored"}``, or ``{"error"}`` with 401 (logged
  out), 403 (CSRF), 400 (not JSON), 422 (a malformed batch) or 429 (the ``feedback`` limit).
- ``POST /clips/<id>/not_interested`` and ``/clips/<id>/show_less``: plain forms (they work
  without JavaScript: a 303 back where they came from), enhanced by app.js like the Like
  button (the answer is the fragment that replaces the form).
- ``GET /settings/for-you`` shows the learned creators and hashtags, each with a button
  forgetting it, a button forgetting everything, and the settings form (personalisation,
  the "Fresh ↔ Popular" and "Following ↔ Discovery" sliders, unverified remote clips, the
  cold-start hashtags); ``POST /settings/for-you`` saves the form,
  ``POST /settings/for-you/forget`` forgets one interest (``kind``, ``key``) or all.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora import ratelimits
from fedisora.api.lookup import get_status
from fedisora.boundary import MAX_CLIENT_DEPTH, InputRefused, parse_json, read_form
from fedisora.errors import FedisoraError
from fedisora.for_you import signals
from fedisora.models import Clip
from web.clip_pages import clip_id_or_404
from web.clips import session_account
from web.feed import CSRF_HEADER, action_form, back_to, is_partial
from web.pages import render
from web.sessions import CSRF_FIELD, check_csrf, csrf_matches
from web.settings import _logged_in

__all__ = ["routes"]

HERE = "/settings/for-you"


# --------------------------------------------------------------------------- the player


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status, headers=headers)


async def feedback(request: Request) -> Response:
    me = await session_account(request)
    if me is None:
        return _error(401, "Log in first.")
    try:
        body = parse_json(await request.body(), max_depth=MAX_CLIENT_DEPTH)
    except InputRefused as exc:
        return _error(400, str(exc))
    if not isinstance(body, dict):
        return _error(422, 'the body must be a JSON object {"events": [...]}')
    if not csrf_matches(request, request.headers.get(CSRF_HEADER) or body.get(CSRF_FIELD)):
        return _error(403, "The page expired or did not come from this site; reload it.")
    try:
        counts = await signals.record_feedback(
            me, body.get("events"), limits=ratelimits.for_app(request.app)
        )
    except FedisoraError as exc:
        return _error(exc.status, exc.message, exc.headers())
    return JSONResponse(counts)


# --------------------------------------------------------------------------- choices on a clip

_CHOICES = {
    "not_interested": (
        signals.not_interested,
        "Not interested: you will not see this clip in For You again.",
    ),
    "show_less": (signals.show_less, "Got it: For You will show less like this."),
}


async def _choice(request: Request, kind: str) -> Response:
    me, form, refused = await action_form(request)
    if refused is not None:
        return refused
    assert me is not None
    record, done = _CHOICES[kind]
    try:
        found = clip_id_or_404(request.path_params["clip_id"])
        status = await get_status(me, found)
        if not isinstance(status, Clip):
            raise HTTPException(404, "Only clips can be shown less.")
        await record(me, status, limits=ratelimits.for_app(request.app))
    except FedisoraError as exc:
        return _refused(request, exc.status, exc.message)
    except HTTPException as exc:
        return _refused(request, exc.status_code, str(exc.detail))
    if is_partial(request):
        return render(request, "_for_you_done.html", message=done, kind=kind)
    return RedirectResponse(back_to(request, form, f"#clip-{status.pk}"), status_code=303)


def _refused(request: Request, status: int, message: str) -> Response:
    if is_partial(request):
        return render(request, "_flash.html", status=status, message=message)
    return render(request, "error.html", status=status, status_code=status, message=message)


# --------------------------------------------------------------------------- settings


def _percent(value: float) -> int:
    return round(value * 100)


async def settings_page(request: Request) -> Response:
    live = _logged_in(request, HERE)
    if isinstance(live, Response):
        return live
    error, status, saved = None, 200, request.query_params.get("saved") == "1"
    values: dict[str, Any] | None = None
    if request.method == "POST":
        form = await read_form(request)
        check_csrf(request, form)
        values = {
            "personalised": form.get("personalised") == "on",
            "include_unverified": form.get("include_unverified") == "on",
            "popular": _slider(form.get("popular")),
            "discovery": _slider(form.get("discovery")),
            "tags": str(form.get("tags", "")).replace(",", " ").split(),
        }
        try:
            await signals.update_settings(live.account, **values)
        except FedisoraError as exc:
            error, status = exc.message, exc.status
        else:
            return RedirectResponse(f"{HERE}?saved=1", status_code=303)
    current = await signals.settings_of(live.account)
    learned = await signals.interests_of(live.account)
    return render(
        request,
        "settings/for_you.html",
        status=status,
        error=error,
        saved=saved,
        settings=current,
        popular=_percent(current.popular),
        discovery=_percent(current.discovery),
        tags_text=" ".join(f"#{t}" for t in current.tags or []),
        creators=[e for e in learned if e.kind == "creator"],
        tags=[e for e in learned if e.kind == "tag"],
        max_tags=signals.MAX_SETTINGS_TAGS,
    )


def _slider(raw: object) -> object:
    """A range input's value (0 to 100) as the service's fraction; anything else is passed
    on as it came, for the service to name it."""
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip()) / 100
    return raw if raw not in (None, "") else None


async def forget(request: Request) -> Response:
    live = _logged_in(request, HERE)
    if isinstance(live, Response):
        return live
    form = await read_form(request)
    check_csrf(request, form)
    kind = str(form.get("kind", "")) or None
    key = str(form.get("key", "")) or None
    try:
        await signals.reset_interests(live.account, kind=kind, key=key)
    except FedisoraError as exc:
        raise HTTPException(exc.status, exc.message) from None
    return RedirectResponse(HERE, status_code=303)


def routes() -> list[BaseRoute]:
    async def not_interested(request: Request) -> Response:
        return await _choice(request, "not_interested")

    async def show_less(request: Request) -> Response:
        return await _choice(request, "show_less")

    return [
        Route("/feedback", feedback, methods=["POST"]),
        Route("/clips/{clip_id}/not_interested", not_interested, methods=["POST"]),
        Route("/clips/{clip_id}/show_less", show_less, methods=["POST"]),
        Route(HERE, settings_page, methods=["GET", "POST"]),
        Route(f"{HERE}/forget", forget, methods=["POST"]),
    ]
