"""``POST /api/fedisora/v1/provenance/lookup``: which clip is this copy? (fedisora's own; a thin
handler over :func:`fedisora.services.fingerprints.lookup_upload`, which the ``/provenance``
page and ``fedisora lookup`` use too).

No token needed; rate limit ``lookup`` per address. The copy is sent as the multipart field
``file`` (at most :data:`~fedisora.services.fingerprints.LOOKUP_SIZE_LIMIT` bytes: 413 over
it). 200 ``{"matches": [{"url", "uri", "status_id", "instance", "author", "provenance",
"score", "via"}]}``, best first, empty when the clip is known neither here nor by the peers
asked (``via`` names the peer that named a clip; ``status_id`` is null for a clip not received
here); 422 ``{"error"}`` when the file is missing or not a video; 503 on a server installed
without the render extra.

Another instance asks with a JSON body ``{"fingerprint": {...}}`` instead
(:func:`render.fingerprint.query_to_json`; :mod:`fedisora.federation.peer_lookup`): the
answer is the same, from this instance's clips only (it asks no peer in turn); 422 for a
malformed fingerprint.
"""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.responses import Response
from starlette.routing import BaseRoute

from fedisora.api.http import Ctx, api_route, endpoint, json
from fedisora.errors import Invalid
from fedisora.services import fingerprints

__all__ = ["LOOKUP_PATH", "routes"]

LOOKUP_PATH = "/api/fedisora/v1/provenance/lookup"


@endpoint(rate="lookup")
async def lookup(ctx: Ctx) -> Response:
    if "fingerprint" in ctx.params:  # another instance asks (fedisora.federation.peer_lookup)
        matches = await fingerprints.lookup_fingerprint(ctx.params.raw("fingerprint"))
        return json({"matches": [m.to_json() for m in matches]})
    upload = ctx.params.raw("file")
    if not isinstance(upload, UploadFile):
        raise Invalid("file is required: send the video as multipart/form-data field 'file'")
    matches = await fingerprints.lookup_upload(upload, ctx.settings)
    return json({"matches": [m.to_json() for m in matches]})


def routes() -> list[BaseRoute]:
    return api_route(LOOKUP_PATH, lookup, ["POST"])
