"""Reading a form body (URL-encoded or multipart) through the boundary: the one reader of
forms for the API's parameters, the OAuth endpoints and the web pages.

Starlette's parser is given small bounds (a few files, a few hundred fields, a non-file part of
at most :data:`MAX_FIELD_BYTES`); file parts are spooled to a temporary file, which the body
limit of the route (:mod:`fedisora.boundary.limits`) keeps to the size of an upload. A form
with a NUL or an unpaired surrogate in any name or value is refused whole
(:func:`fedisora.boundary.text.check_storable`).
"""

from __future__ import annotations

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from fedisora.boundary.limits import BodyTooLarge, body_class
from fedisora.boundary.text import InputRefused, check_storable
from fedisora.errors import FedisoraError

__all__ = ["MAX_FIELDS", "MAX_FIELD_BYTES", "MAX_FILES", "read_form"]

MAX_FILES = 4  # a media upload's file and thumbnail; a profile's avatar and header (most routes)
MAX_FIELDS = 256
MAX_FIELD_BYTES = 64 * 1024


async def read_form(request: Request) -> FormData:
    """The form of *request*; :class:`InputRefused` (400) for one that cannot be parsed, has
    too many parts or holds a NUL or an unpaired surrogate; :class:`BodyTooLarge` (413)
    propagates."""
    # MAX_FILES on most routes; the route's own bound where it takes more (a likeness).
    files = body_class(request.method, request.scope.get("path", "")).files
    try:
        form = await request.form(
            max_files=files, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES
        )
    except BodyTooLarge:
        raise
    except HTTPException as exc:  # Starlette's own refusals (too many parts, malformed)
        raise InputRefused(f"the form body could not be parsed: {exc.detail}") from None
    except Exception as exc:  # python-multipart's errors have no common base class
        raise InputRefused(f"the form body could not be parsed: {exc}") from None
    values: dict[str, list[str]] = {}
    for key, value in form.multi_items():  # a file's name is never stored: not looked at
        values.setdefault(key, []).append("" if isinstance(value, UploadFile) else value)
    try:
        check_storable(values)
    except FedisoraError:
        await form.close()  # its spooled files, at once
        raise
    return form
