"""``/provenance``: anyone may upload a copy of a clip and learn which clip it is.

No login is needed; the form carries the browser's CSRF token and is rate-limited per address
(``lookup``, as ``POST /api/fedisora/v1/provenance/lookup``, which calls the same service:
:func:`fedisora.services.fingerprints.lookup_upload`). The answer is said in words: the clip
(with its author, instance and provenance) or that no clip known here matches.
"""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from fedisora import ratelimits
from fedisora.api.http import client_ip
from fedisora.boundary import read_form
from fedisora.errors import FedisoraError
from fedisora.services import fingerprints
from web.pages import render
from web.sessions import csrf_matches, csrf_token

__all__ = ["routes"]

_PROVENANCE_WORDS = {
    "trusted": "made and signed by the render queue of this server (C2PA manifest)",
    "verified": "its C2PA manifest was verified against its server's root",
    "unverified": "its C2PA manifest could not be verified (yet)",
    "invalid": "its C2PA manifest did not verify",
}
_PEER_PROVENANCE_WORDS = {
    **_PROVENANCE_WORDS,
    "trusted": "made and signed by the render queue of that server (C2PA manifest)",
    "verified": "its C2PA manifest was verified there against its server's root",
    "unverified": "its C2PA manifest could not be verified there (yet)",
    "invalid": "its C2PA manifest did not verify there",
    "unknown": "not said",
}


def _page(
    request: Request,
    *,
    status: int = 200,
    error: str = "",
    matches: list[fingerprints.Match] | None = None,
    name: str = "",
) -> Response:
    return render(
        request,
        "provenance_lookup.html",
        status=status,
        error=error,
        matches=matches,
        file_name=name,
        words=_PROVENANCE_WORDS,
        peer_words=_PEER_PROVENANCE_WORDS,
        csrf=csrf_token(request),
        limit_mb=fingerprints.LOOKUP_SIZE_LIMIT // (1024 * 1024),
    )


async def provenance(request: Request) -> Response:
    if request.method == "GET":
        return _page(request)
    form = await read_form(request)
    if not csrf_matches(request, form.get("csrf")):
        return _page(request, status=403, error="The form expired; please try again.")
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _page(request, status=422, error="Choose a video file to look up.")
    name = upload.filename[:200]
    decision = await ratelimits.for_app(request.app).hit("lookup", f"ip:{client_ip(request)}")
    if not decision.allowed:
        response = _page(
            request, status=429, error="Too many lookups from your network: try again later."
        )
        response.headers.update(decision.headers())
        return response
    try:
        matches = await fingerprints.lookup_upload(upload, request.app.state.settings)
    except FedisoraError as exc:
        message = exc.message[:1].upper() + exc.message[1:] + "."
        return _page(request, status=exc.status, error=message, name=name)
    return _page(request, matches=matches, name=name)


def routes() -> list[BaseRoute]:
    return [Route("/provenance", provenance, methods=["GET", "POST"])]
