"""How large a request body may be, by the class of route it is sent to.

The limit is enforced while the body is read, before any handler (or authentication) sees it,
by :class:`fedisora.boundary.middleware.InputBoundary`: a ``Content-Length`` over the limit is
answered 413 before a byte is read, and a body without one (chunked) is cut off with 413 as
soon as it grows past the limit. So no request costs more memory, or temporary disk for a
multipart upload, than its route's limit.

======================  ===============================================================
route class             limit
======================  ===============================================================
inbox POSTs             :data:`INBOX_BODY_LIMIT` (an activity; Mastodon takes about 1 MB)
media uploads           the video size limit Mastodon clients are told, and the parts
                        beside the file
profile updates         an avatar and a header image, and the fields beside them
likeness registration   5 reference images and a verification sample (a short video),
                        by the API or the settings page
provenance lookups      a copy of a clip (:data:`LOOKUP_VIDEO_LIMIT`), API and web page
domain blocks' CSV      :data:`DOMAIN_CSV_LIMIT` (``/admin/domains/import``)
the web's create form   an input still (:data:`IMAGE_SIZE_LIMIT`) and the fields beside it
anything else           :data:`FORM_BODY_LIMIT`: the API's JSON and form bodies, the OAuth
                        and web forms (the longest text field takes a few kilobytes)
======================  ===============================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.exceptions import HTTPException

__all__ = [
    "DOMAIN_CSV_LIMIT",
    "FORM_BODY_LIMIT",
    "IMAGE_SIZE_LIMIT",
    "INBOX_BODY_LIMIT",
    "INBOX_PATH",
    "LIKENESS_BODY_LIMIT",
    "LOOKUP_BODY_LIMIT",
    "LOOKUP_VIDEO_LIMIT",
    "MEDIA_BODY_LIMIT",
    "PROFILE_BODY_LIMIT",
    "VIDEO_SIZE_LIMIT",
    "BodyClass",
    "BodyTooLarge",
    "body_class",
]

VIDEO_SIZE_LIMIT = 99 * 1024 * 1024  # what Mastodon accepts from peers
IMAGE_SIZE_LIMIT = 16 * 1024 * 1024
INBOX_BODY_LIMIT = 1024 * 1024
FORM_BODY_LIMIT = 64 * 1024
# Multipart boundaries, part headers and the small fields sent beside the files.
_UPLOAD_SLACK = 64 * 1024
MEDIA_BODY_LIMIT = VIDEO_SIZE_LIMIT + _UPLOAD_SLACK
PROFILE_BODY_LIMIT = 2 * IMAGE_SIZE_LIMIT + _UPLOAD_SLACK
# fedisora.services.likeness: MAX_REFERENCE_IMAGES x MAX_REFERENCE_BYTES + MAX_VERIFICATION_BYTES
#: A CSV of domain blocks imported at /admin/domains (Mastodon's lists run to a few thousand).
DOMAIN_CSV_LIMIT = 4 * 1024 * 1024
LIKENESS_BODY_LIMIT = 5 * 8 * 1024 * 1024 + 24 * 1024 * 1024 + _UPLOAD_SLACK
#: fedisora.services.fingerprints.LOOKUP_SIZE_LIMIT (a copy looked up; Loops' video limit).
LOOKUP_VIDEO_LIMIT = 100 * 1024 * 1024
LOOKUP_BODY_LIMIT = LOOKUP_VIDEO_LIMIT + _UPLOAD_SLACK

#: The inbox paths: the shared inbox, the instance actor's and each account's.
INBOX_PATH = re.compile(r"/(?:inbox|actor/inbox|users/(?P<username>[^/]+)/inbox)")


@dataclass(frozen=True)
class BodyClass:
    """A class of routes and the most bytes a request body to one of them may have."""

    name: str
    limit: int
    files: int = 4
    """The most file parts a multipart body may have (see :mod:`fedisora.boundary.forms`)."""


_INBOX = BodyClass("an inbox POST", INBOX_BODY_LIMIT)
_MEDIA = BodyClass("a media upload", MEDIA_BODY_LIMIT)
_PROFILE = BodyClass("a profile update", PROFILE_BODY_LIMIT)
_FORM = BodyClass("a form or JSON body", FORM_BODY_LIMIT)
_LIKENESS = BodyClass("a likeness registration", LIKENESS_BODY_LIMIT, files=6)
# The settings page's form: a person choosing too many stills is told so in the page (the
# service counts them), not refused for the parts alone; the bytes are bounded the same.
_LIKENESS_PAGE = BodyClass("a likeness registration", LIKENESS_BODY_LIMIT, files=12)
_LOOKUP = BodyClass("a provenance lookup", LOOKUP_BODY_LIMIT, files=1)
_LOOKUP_PATH = re.compile(r"/api/fedisora/v1/provenance/lookup/?|/provenance/?")
_CREATE = BodyClass("a render request with its still", IMAGE_SIZE_LIMIT + _UPLOAD_SLACK)
_DOMAIN_CSV = BodyClass("a CSV of domain blocks", DOMAIN_CSV_LIMIT + _UPLOAD_SLACK, files=1)
_DOMAIN_CSV_PATH = "/admin/domains/import"
_CREATE_PATH = "/create"
_LIKENESS_PATH = re.compile(r"/api/fedisora/v1/likeness/?")
_MEDIA_PATH = re.compile(r"/api/v[12]/media/?")
_PROFILE_PATH = re.compile(r"/api/v1/accounts/update_credentials/?")
_PROFILE_PAGE = re.compile(r"/settings/profile/?")  # the settings page's form (web.settings)
_LIKENESS_PAGE_PATH = "/settings/likeness/register"  # web.likeness_settings


def body_class(method: str, path: str) -> BodyClass:
    """The class of the route *method* *path* is sent to."""
    if method == "POST":
        if INBOX_PATH.fullmatch(path):
            return _INBOX
        if _MEDIA_PATH.fullmatch(path):
            return _MEDIA
        if _LIKENESS_PATH.fullmatch(path):
            return _LIKENESS
        if path == _LIKENESS_PAGE_PATH:
            return _LIKENESS_PAGE
        if _LOOKUP_PATH.fullmatch(path):
            return _LOOKUP
        if _PROFILE_PAGE.fullmatch(path):
            return _PROFILE
        if path == _CREATE_PATH:
            return _CREATE
        if path == _DOMAIN_CSV_PATH:
            return _DOMAIN_CSV
    elif method == "PATCH" and _PROFILE_PATH.fullmatch(path):
        return _PROFILE
    return _FORM


class BodyTooLarge(HTTPException):
    """Raised by the receive channel once a body grows past its route's limit. Handlers let it
    through; the app's error handling (or the boundary itself) answers 413."""

    def __init__(self, body: BodyClass) -> None:
        super().__init__(413, too_large_message(body))


def too_large_message(body: BodyClass) -> str:
    return f"the request body is larger than {body.limit} bytes, the limit for {body.name}"
