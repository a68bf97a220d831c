"""The OpenAPI 3.1 description of fedisora's own API, served at ``/api/fedisora/openapi.json``.

It covers what Mastodon's documentation does not: the render endpoints, the AI-only rules of
media uploads and fedisora's notification types. The Mastodon endpoints themselves follow
Mastodon's own description. ``tests/api/test_api_openapi.py`` validates this document and runs
schemathesis against a live instance with it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora.api.feedback import FEEDBACK, INTERESTS, SETTINGS
from fedisora.api.http import with_cors
from fedisora.api.likeness import LIKENESSES
from fedisora.api.likeness import PREFIX as LIKENESS
from fedisora.api.media import AI_ONLY_RULE, DESCRIPTION_LIMIT, MIN_IMAGE_SIDE
from fedisora.api.optouts import PREFIX as OPTOUTS
from fedisora.api.provenance import LOOKUP_PATH
from fedisora.api.renders import PREFIX
from fedisora.boundary.text import CONTROL_CHARS
from fedisora.models import NotificationType
from render.spec import MAX_CAMEOS, MAX_PROMPT_CHARS, MAX_SECONDS, MAX_SEED
from render.states import GRAPH

__all__ = ["OPENAPI_PATH", "document", "routes"]

OPENAPI_PATH = "/api/fedisora/openapi.json"
Json = dict[str, Any]

_FEDISORA_TYPES = [t.value for t in NotificationType if t.value.startswith("fedisora.")]


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> Json:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _ok(description: str, schema: Json, headers: Json | None = None) -> Json:
    out: Json = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


_ERRORS: dict[str, Json] = {
    "400": _error("The body could not be parsed (malformed JSON or form data)."),
    "401": _error("No valid access token (missing, unknown, expired or revoked)."),
    "403": _error("The token lacks the scope, or the login is disabled or not yet approved."),
    "404": _error("No such record, or it belongs to someone else."),
    "409": _error(
        "The render is already over (published, failed or cancelled), or the request or "
        "likeness is not in a state that allows it."
    ),
    "413": _error("The upload is larger than the instance's limit."),
    "422": _error("A parameter is invalid; the message names it and the allowed range."),
    "429": _error("Rate limit or render quota reached; the message names the quota."),
    "503": _error("The configured render model cannot be loaded."),
}


def _errors(*codes: str) -> Json:
    return {code: _ERRORS[code] for code in codes}


_RATE_HEADERS: Json = {
    name: {"schema": {"type": "string"}}
    for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
}
_NULLABLE_STRING: Json = {"type": ["string", "null"]}
# Parameters may be any text except NUL (PostgreSQL cannot store it: such requests are 400)
# and control characters (422): see fedisora.boundary.text.
_TEXT: Json = {"type": "string", "pattern": f"^[^\x00{CONTROL_CHARS}]*$"}
_UNIT = r"-?(0(\.[0-9]{1,6})?|1(\.0{1,6})?)"
_FOCUS: Json = {
    "type": "string",
    "pattern": f"^({_UNIT},{_UNIT})?$",
    "description": 'Focal point "x,y", each in [-1, 1]; empty to clear it.',
}
_UNKNOWN_PARAMS: Json = {
    "description": "Unknown parameters are ignored, as Mastodon does.",
    **_TEXT,
}
_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "A numeric id, as a string.",
    "schema": _TEXT,
}
_JOB_ID = {**_ID, "name": "job_id"}

_OBJ: Json = {"type": "object"}
_NULLABLE_ACCOUNT: Json = {"type": ["object", "null"], "description": "Mastodon Account."}
_AUDIENCES = ["nobody", "me", "approved", "mutuals", "everyone"]
_LIKENESS_SCHEMAS: dict[str, Json] = {
    "Likeness": {
        "type": "object",
        "description": (
            "Your likeness. Reference images and the verification sample are private: no "
            "endpoint serves them and they are never federated."
        ),
        "required": ["id", "state", "policy"],
        "properties": {
            "id": {"type": "string"},
            "state": {"type": "string", "enum": ["pending", "verified", "rejected", "revoked"]},
            "reference_images": {"type": "integer"},
            "verification": _OBJ,
            "policy": _ref("LikenessPolicy"),
            "created_at": {"type": ["string", "null"]},
            "updated_at": {"type": ["string", "null"]},
            "revoked_at": {"type": ["string", "null"]},
        },
    },
    "LikenessPolicy": {
        "type": "object",
        "description": (
            "Who may use your likeness. ``audience``: nobody (default; not even you), me, "
            "approved (accounts you approve one by one), mutuals, everyone; approved "
            "accounts count for approved, mutuals and everyone. ``approval_required``: every "
            "use waits for your approval (an approval serves one render). ``drafts_only``: "
            "others may render drafts, not publish. ``restrictions``: text a requester must "
            "accept before the first use; changing it asks everyone again. "
            "``default_expires_in``: seconds a grant lasts (null: until revoked)."
        ),
        "properties": {
            "audience": {"type": "string", "enum": _AUDIENCES},
            "approval_required": {"type": "boolean"},
            "drafts_only": {"type": "boolean"},
            "restrictions": {**_TEXT, "maxLength": 1000},
            "default_expires_in": {"type": ["integer", "null"], "minimum": 60},
        },
        "additionalProperties": _UNKNOWN_PARAMS,
        "propertyNames": _TEXT,
    },
    "LikenessRegistration": {
        "type": "object",
        "required": ["reference_images[]", "verification", "challenge"],
        "properties": {
            "reference_images[]": {
                "type": "array",
                "minItems": 1,
                "maxItems": 5,
                "items": {"type": "string", "format": "binary"},
                "description": "1-5 JPEG, PNG or WebP stills of your face (8 MB each).",
            },
            "verification": {
                "type": "string",
                "format": "binary",
                "description": "A still or short MP4 video showing you with the challenge code.",
            },
            "challenge": {**_TEXT, "maxLength": 32},
        },
    },
    "LikenessRequest": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "state": {"type": "string", "enum": ["pending", "approved", "rejected"]},
            "requester": _NULLABLE_ACCOUNT,
            "owner": _NULLABLE_ACCOUNT,
            "accepted_restrictions": {"type": "boolean"},
            "grant_id": _NULLABLE_STRING,
            "created_at": {"type": ["string", "null"]},
            "answered_at": {"type": ["string", "null"]},
        },
    },
    "LikenessRequestCreate": {
        "type": "object",
        "properties": {
            "account_id": {**_TEXT, "description": "The owner's account id."},
            "acct": {**_TEXT, "maxLength": 320, "description": "Or the owner's name[@domain]."},
            "accept_restrictions": {"type": "boolean"},
        },
        "additionalProperties": _UNKNOWN_PARAMS,
        "propertyNames": _TEXT,
    },
    "LikenessGrant": {
        "type": "object",
        "description": "A consent: owner, grantee, scope (drafts or publish), expiry.",
        "properties": {
            "id": {"type": "string"},
            "uri": _NULLABLE_STRING,
            "owner": _NULLABLE_ACCOUNT,
            "grantee": _NULLABLE_ACCOUNT,
            "basis": {"type": "string", "enum": ["approved", "policy"]},
            "scope": {"type": "string", "enum": ["drafts", "publish"]},
            "single_use": {"type": "boolean"},
            "restrictions_accepted": {"type": "boolean"},
            "expires_at": {"type": ["string", "null"]},
            "revoked_at": {"type": ["string", "null"]},
            "take_down": {"type": "boolean"},
            "signed": {"type": "boolean"},
            "created_at": {"type": ["string", "null"]},
        },
    },
    "LikenessGrantCreate": {
        "type": "object",
        "properties": {
            "account_id": _TEXT,
            "acct": {**_TEXT, "maxLength": 320},
            "expires_at": {**_TEXT, "description": "ISO 8601 with a time zone, in the future."},
        },
        "additionalProperties": _UNKNOWN_PARAMS,
        "propertyNames": _TEXT,
    },
    "LikenessUse": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "kind": {
                "type": "string",
                "enum": ["requested", "draft", "published", "remixed", "refused"],
            },
            "account": _NULLABLE_ACCOUNT,
            "grant_id": _NULLABLE_STRING,
            "render_id": _NULLABLE_STRING,
            "status_id": _NULLABLE_STRING,
            "status_uri": _NULLABLE_STRING,
            "reason": _NULLABLE_STRING,
            "remote": {"type": "boolean"},
            "removed_at": {"type": ["string", "null"]},
            "created_at": {"type": ["string", "null"]},
        },
    },
    "ConsentCheck": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "requester": _NULLABLE_ACCOUNT,
            "owner": _NULLABLE_ACCOUNT,
            "grant_id": _NULLABLE_STRING,
            "render_id": _NULLABLE_STRING,
            "stage": {"type": "string"},
            "publish": {"type": "boolean"},
            "allowed": {"type": "boolean"},
            "reason": {"type": "string"},
            "created_at": {"type": ["string", "null"]},
        },
    },
}

_SCHEMAS: dict[str, Json] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "description": "Why, in plain words."}},
    },
    "MediaAttachment": {
        "type": "object",
        "description": (
            "Mastodon's MediaAttachment. ``image``: an input still for image-to-video (never "
            "posted). ``video``: a clip rendered by a fedisora render queue. "
            "``meta.fedisora.provenance`` is the provenance state recorded on arrival."
        ),
        "required": ["id", "type", "url", "preview_url", "meta", "description", "blurhash"],
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string", "enum": ["image", "video"]},
            "url": _NULLABLE_STRING,
            "preview_url": _NULLABLE_STRING,
            "remote_url": _NULLABLE_STRING,
            "preview_remote_url": _NULLABLE_STRING,
            "text_url": _NULLABLE_STRING,
            "meta": {
                "type": "object",
                "properties": {
                    "original": {"type": "object"},
                    "small": {"type": "object"},
                    "focus": {
                        "type": "object",
                        "properties": {
                            "x": {"type": "number", "minimum": -1, "maximum": 1},
                            "y": {"type": "number", "minimum": -1, "maximum": 1},
                        },
                    },
                    "fedisora": {
                        "type": "object",
                        "required": ["ai_generated", "provenance"],
                        "properties": {
                            "ai_generated": {"type": "boolean"},
                            "provenance": {"type": "string"},
                            "audio": {
                                "type": ["boolean", "null"],
                                "description": (
                                    "Videos: whether the clip has a sound track, as its signed "
                                    "provenance claim says; null when unknown (another "
                                    "server's video): offer unmute unless false."
                                ),
                            },
                        },
                    },
                },
            },
            "description": _NULLABLE_STRING,
            "blurhash": _NULLABLE_STRING,
        },
    },
    "Render": {
        "type": "object",
        "description": "A render job and its progress. ``id`` is also the job's provenance id.",
        "required": [
            "id",
            "state",
            "step",
            "total",
            "percent",
            "queue_position",
            "cancel_requested",
            "error",
            "media_id",
            "done",
            "created_at",
            "finished_at",
            "prompt",
            "media_attachment",
            "status_id",
        ],
        "properties": {
            "id": {"type": "string"},
            "state": {"type": "string", "enum": [s.name for s in GRAPH.states]},
            "step": {"type": "integer", "minimum": 0, "description": "Denoising steps done."},
            "total": {"type": "integer", "minimum": 0, "description": "Denoising steps planned."},
            "percent": {"type": "integer", "minimum": 0, "maximum": 100},
            "queue_position": {
                "type": ["integer", "null"],
                "minimum": 1,
                "description": "1 for the queued render that starts next; null once started.",
            },
            "cancel_requested": {"type": "boolean"},
            "error": {"type": "string", "description": "Why it failed or was cancelled."},
            "media_id": _NULLABLE_STRING,
            "done": {"type": "boolean", "description": "ready, published, failed or cancelled."},
            "created_at": {"type": "string", "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
            "prompt": {"type": "string"},
            "negative_prompt": {"type": "string"},
            "seconds": {"type": ["number", "null"]},
            "aspect": _NULLABLE_STRING,
            "seed": {"type": ["integer", "null"]},
            "kind": _NULLABLE_STRING,
            "audio": {
                "type": "boolean",
                "description": "Whether the clip gets the sound the model renders with it.",
            },
            "remix_of_id": _NULLABLE_STRING,
            "cameo_ids": {"type": "array", "items": {"type": "string"}},
            "media_attachment": {
                "description": "The finished clip once the render is ready (type video).",
                "oneOf": [_ref("MediaAttachment"), {"type": "null"}],
            },
            "status_id": {
                "type": ["string", "null"],
                "description": "The status that posted this render, once posted.",
            },
        },
    },
    "RenderRequest": {
        "type": "object",
        "properties": {
            "prompt": {
                **_TEXT,
                "maxLength": MAX_PROMPT_CHARS,
                "description": "What to render. May be empty for a remix (the source's prompt).",
            },
            "negative_prompt": {**_TEXT, "maxLength": MAX_PROMPT_CHARS},
            "seconds": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": MAX_SECONDS,
                "description": "Clip length; the instance may allow less.",
            },
            "duration": {"type": "number", "description": "Alias of seconds."},
            "aspect": {"type": "string", "enum": ["9:16", "1:1", "16:9"], "default": "9:16"},
            "seed": {"type": "integer", "minimum": 0, "maximum": MAX_SEED},
            "media_id": {
                **_TEXT,
                "description": "An image you uploaded with POST /api/v2/media (image-to-video).",
            },
            "remix_of_id": {
                **_TEXT,
                "description": "A public or unlisted clip (status id) you can see, to remix.",
            },
            "cameo_ids": {
                "type": "array",
                "maxItems": MAX_CAMEOS,
                "items": _TEXT,
                "description": (
                    "Accounts whose likeness to use. Each needs their consent, checked before "
                    "rendering and again before publishing. A remote account's consent is a "
                    "grant of theirs received and verified here (ask with "
                    "POST /api/fedisora/v1/likeness/requests)."
                ),
            },
            "audio": {
                "type": "boolean",
                "description": (
                    "A synchronized sound track (AAC, loudness-normalised to -16 LUFS, never "
                    "longer than the clip), rendered with the picture by a model that has "
                    "sound (the LTX-2 family). Default: true where the model renders sound, "
                    "false elsewhere; true on a silent model is a 422 naming audio. "
                    "GET /api/v2/instance tells which: configuration.fedisora_renders.audio."
                ),
            },
        },
        "additionalProperties": _UNKNOWN_PARAMS,
        "propertyNames": _TEXT,
    },
    "MediaUpload": {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary"},
            "description": {**_TEXT, "maxLength": DESCRIPTION_LIMIT},
            "focus": _FOCUS,
        },
        "additionalProperties": _UNKNOWN_PARAMS,
        "propertyNames": _TEXT,
    },
    "MediaUpdate": {
        "type": "object",
        "properties": {
            "description": {**_TEXT, "maxLength": DESCRIPTION_LIMIT},
            "focus": _FOCUS,
        },
        "additionalProperties": _UNKNOWN_PARAMS,
        "propertyNames": _TEXT,
    },
    "FedisoraNotificationType": {
        "type": "string",
        "enum": _FEDISORA_TYPES,
        "description": (
            "fedisora's own notification types in GET /api/v1/notifications (clients ignore "
            "types they do not know). ``fedisora.likeness_use``: your likeness was requested, "
            "rendered into a draft, published, remixed or refused (``account`` is who, "
            "``status`` the clip once there is one, ``render_job_id`` the render). "
            "``fedisora.likeness_request``: someone asks to use your likeness (``account``). "
            "``fedisora.render_finished`` / "
            "``fedisora.render_failed``: your render ended (``account`` is you, "
            "``render_job_id`` names the render). ``fedisora.remix`` is sent to clients as "
            "Mastodon's ``quote`` type (``status`` is the remix); ``types[]=fedisora.remix`` "
            "filters for it. ``fedisora.appeal_approved`` / ``fedisora.appeal_rejected``: "
            "your appeal of a moderator's warning was decided (``moderation_warning`` is the "
            "warning, with its ``appeal``). ``fedisora.admin_appeal``, to staff who may "
            "decide it: a new appeal (``account`` is the appellant, ``moderation_warning`` "
            "the warning appealed, with its ``appeal``; decided at /admin/appeals)."
        ),
    },
    **_LIKENESS_SCHEMAS,
    "FedisoraNotification": {
        "type": "object",
        "description": "A Mastodon Notification with one of fedisora's own types.",
        "required": ["id", "type", "created_at", "account"],
        "properties": {
            "id": {"type": "string"},
            "type": _ref("FedisoraNotificationType"),
            "created_at": {"type": "string", "format": "date-time"},
            "account": {"type": "object", "description": "Mastodon Account."},
            "status": {"type": ["object", "null"], "description": "Mastodon Status."},
            "render_job_id": {"type": "string", "description": "For render_* types."},
            "moderation_warning": {
                "type": "object",
                "description": "Mastodon AccountWarning: for the appeal types.",
            },
        },
    },
}

_WRITE = ["write:media", "write:statuses", "write"]
_READ = ["read:statuses", "read"]


def _secured(scopes: list[str]) -> list[Json]:
    return [{"OAuth2": [scope]} for scope in scopes]


def _media_upload(version: str) -> Json:
    return {
        "post": {
            "operationId": f"uploadMedia{version}",
            "summary": "Upload an input still or a fedisora-rendered clip",
            "description": (
                f"Files are recognised by their bytes. JPEG, PNG or WebP images (decoded fully, "
                f"at least {MIN_IMAGE_SIDE} px a side) are kept as input stills for "
                f"image-to-video renders. A video is accepted only with a valid C2PA manifest "
                f"from a fedisora render queue whose root this instance trusts: {AI_ONLY_RULE}. "
                "Audio, documents and other files are refused with 422. Processing is "
                "synchronous: the answer is 200 with the finished attachment."
            ),
            "security": _secured(["write:media", "write"]),
            "requestBody": {
                "required": True,
                "content": {"multipart/form-data": {"schema": _ref("MediaUpload")}},
            },
            "responses": {
                "200": _ok("The stored attachment.", _ref("MediaAttachment"), _RATE_HEADERS),
                **_errors("400", "401", "403", "413", "422", "429"),
            },
        }
    }


_RENDER_EXAMPLE: Json = {"prompt": "a red kite over dunes at dusk", "seconds": 1, "seed": 7}


def _paths() -> Json:
    render = _ref("Render")
    return {
        "/api/v2/media": _media_upload("V2"),
        "/api/v1/media": _media_upload("V1"),
        "/api/v1/media/{id}": {
            "parameters": [_ID],
            "get": {
                "operationId": "getMedia",
                "summary": "One of your attachments",
                "security": _secured(["write:media", "write"]),
                "responses": {
                    "200": _ok("The attachment.", _ref("MediaAttachment")),
                    **_errors("401", "403", "404", "429"),
                },
            },
            "put": {
                "operationId": "updateMedia",
                "summary": "Change an attachment's description or focal point",
                "security": _secured(["write:media", "write"]),
                "requestBody": {
                    "content": {
                        "application/json": {"schema": _ref("MediaUpdate")},
                        "application/x-www-form-urlencoded": {"schema": _ref("MediaUpdate")},
                    }
                },
                "responses": {
                    "200": _ok("The updated attachment.", _ref("MediaAttachment")),
                    **_errors("400", "401", "403", "404", "422", "429"),
                },
            },
        },
        PREFIX: {
            "post": {
                "operationId": "createRender",
                "summary": "Queue a render (text-, image-to-video, remix, cameo)",
                "description": (
                    "Limits (prompt length, seconds, aspect, seed, the input still) and quotas "
                    "(concurrent renders, clips and GPU-seconds per day) are checked before "
                    "anything is queued: 422 names the limit and the allowed range, 429 the "
                    "quota. Once ``state`` is ``ready``, post ``media_attachment.id`` with "
                    "POST /api/v1/statuses ``media_ids[]``."
                ),
                "security": _secured(_WRITE),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _ref("RenderRequest"),
                            "examples": {
                                "text": {"value": _RENDER_EXAMPLE},
                                "square": {"value": {**_RENDER_EXAMPLE, "aspect": "1:1"}},
                            },
                        },
                        "application/x-www-form-urlencoded": {"schema": _ref("RenderRequest")},
                    },
                },
                "responses": {
                    "202": _ok("The queued render.", render),
                    **_errors("400", "401", "403", "404", "422", "429", "503"),
                },
            },
            "get": {
                "operationId": "listRenders",
                "summary": "Your renders, newest first",
                "security": _secured(_READ),
                "parameters": [
                    {"name": name, "in": "query", "schema": _TEXT}
                    for name in ("max_id", "since_id", "min_id")
                ]
                + [
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 40, "default": 20},
                    }
                ],
                "responses": {
                    "200": _ok(
                        "A page of renders; the Link header names the next and previous pages.",
                        {"type": "array", "items": render},
                        {"Link": {"schema": {"type": "string"}}},
                    ),
                    **_errors("401", "403", "422", "429"),
                },
            },
        },
        f"{PREFIX}/{{id}}": {
            "parameters": [_ID],
            "get": {
                "operationId": "getRender",
                "summary": "One of your renders: state, progress, queue position, result",
                "security": _secured(_READ),
                "responses": {
                    "200": _ok("The render.", render),
                    **_errors("401", "403", "404", "429"),
                },
            },
            "delete": {
                "operationId": "deleteRender",
                "summary": "Cancel a render (same as POST .../cancel)",
                "security": _secured(_WRITE),
                "responses": {
                    "200": _ok("The render as it now stands.", render),
                    **_errors("401", "403", "404", "409", "429"),
                },
            },
        },
        f"{PREFIX}/{{id}}/cancel": {
            "parameters": [_ID],
            "post": {
                "operationId": "cancelRender",
                "summary": "Cancel a render in any live state",
                "description": (
                    "A queued or ready render is cancelled at once; a running one stops at its "
                    "next denoising step (``cancel_requested`` is true until it does)."
                ),
                "security": _secured(_WRITE),
                "responses": {
                    "200": _ok("The render as it now stands.", render),
                    **_errors("401", "403", "404", "409", "429"),
                },
            },
        },
        f"{PREFIX}/{{job_id}}/events": {
            "parameters": [_JOB_ID],
            "get": {
                "operationId": "renderEvents",
                "summary": "Server-sent events of a render's progress",
                "description": (
                    "``event: progress`` (data: the progress fields of a Render) whenever it "
                    "changes, one for each denoising step (``step`` 1 to ``total``, in order, "
                    "also when several finished between two reads), a comment line every 15 s, "
                    "and ``event: end`` (data: id and final state) once the render is ready, "
                    "published, failed or cancelled."
                ),
                "security": _secured(_READ),
                "responses": {
                    "200": {
                        "description": "The event stream.",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_errors("401", "403", "404", "429"),
                },
            },
        },
        **_likeness_paths(),
        **_optout_paths(),
        **_provenance_paths(),
        **_for_you_paths(),
        **_for_you_timeline_paths(),
        OPENAPI_PATH: {
            "get": {
                "operationId": "getOpenAPI",
                "summary": "This document",
                "security": [],
                "responses": {"200": _ok("OpenAPI 3.1 document.", {"type": "object"})},
            }
        },
    }


def _for_you_paths() -> Json:
    """For You's feedback and controls (fedisora.api.feedback)."""
    from fedisora.for_you import signals

    event: Json = {
        "type": "object",
        "required": ["clip_id", "type"],
        "properties": {
            "clip_id": {**_TEXT, "description": "A clip's id."},
            "type": {"type": "string", "enum": list(signals.EVENT_TYPES)},
            "watch_ms": {
                "type": "integer",
                "minimum": 0,
                "maximum": signals.MAX_WATCH_MS,
                "description": "Milliseconds watched; counted up to a few loops of the clip.",
            },
        },
        "additionalProperties": _UNKNOWN_PARAMS,
        "propertyNames": _TEXT,
    }
    batch: Json = {
        "type": "object",
        "required": ["events"],
        "properties": {"events": {"type": "array", "maxItems": signals.MAX_EVENTS, "items": event}},
        "additionalProperties": _UNKNOWN_PARAMS,
        "propertyNames": _TEXT,
    }
    counts: Json = {
        "type": "object",
        "required": ["accepted", "ignored"],
        "properties": {"accepted": {"type": "integer"}, "ignored": {"type": "integer"}},
    }
    interest: Json = {
        "type": "object",
        "properties": {
            "key": {"type": "string"},
            "acct": {"type": "string"},
            "account_id": {"type": "string"},
            "name": {"type": "string"},
            "weight": {"type": "number"},
            "events": {"type": "integer"},
            "updated_at": {"type": ["string", "null"]},
        },
    }
    settings: Json = {
        "type": "object",
        "properties": {
            "personalised": {"type": "boolean"},
            "popular": {"type": "number", "minimum": 0, "maximum": 1},
            "discovery": {"type": "number", "minimum": 0, "maximum": 1},
            "include_unverified": {"type": "boolean"},
            "tags": {
                "type": "array",
                "maxItems": signals.MAX_SETTINGS_TAGS,
                "items": {"type": "string", "pattern": r"^#?\w{1,100}$"},
            },
        },
        "additionalProperties": _UNKNOWN_PARAMS,
        "propertyNames": _TEXT,
    }
    write, read = ["write:accounts", "write"], ["read:accounts", "read"]
    return {
        FEEDBACK: {
            "post": {
                "operationId": "sendFeedback",
                "summary": "Report what the player saw: impressions, watch time, skips",
                "description": (
                    "Events about clips that do not exist or that you cannot see are ignored "
                    "and counted. A viewer counts once per clip in its view, completion and "
                    "skip counts; what one clip's reports teach For You is capped a day. A "
                    "For You page counted its clips as shown already: the first impression "
                    "reported of such a clip is that one, not another. "
                    "Rate-limited per account (``feedback``)."
                ),
                "security": _secured(["write:statuses", "write"]),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": batch}},
                },
                "responses": {
                    "200": _ok("How many events were taken and ignored.", counts),
                    **_errors("400", "401", "403", "422", "429"),
                },
            }
        },
        INTERESTS: {
            "get": {
                "operationId": "forYouInterests",
                "summary": "What For You learned of you: creators and hashtags, strongest first",
                "security": _secured(read),
                "responses": {
                    "200": _ok(
                        "Decayed weights (negative: shown less).",
                        {
                            "type": "object",
                            "properties": {
                                "creators": {"type": "array", "items": interest},
                                "tags": {"type": "array", "items": interest},
                            },
                        },
                    ),
                    **_errors("401", "403", "429"),
                },
            },
            "delete": {
                "operationId": "resetForYouInterests",
                "summary": "Forget what For You learned: all, all of a kind, or one (key)",
                "security": _secured(write),
                "parameters": [
                    {
                        "name": "kind",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["creator", "tag"]},
                    },
                    {
                        "name": "key",
                        "in": "query",
                        "description": "An account id (creator) or a hashtag (tag); without "
                        "kind, either.",
                        "schema": {**_TEXT, "maxLength": 200},
                    },
                ],
                "responses": {
                    "200": _ok(
                        "How many were forgotten.",
                        {"type": "object", "properties": {"removed": {"type": "integer"}}},
                    ),
                    **_errors("401", "403", "422", "429"),
                },
            },
        },
        SETTINGS: {
            "get": {
                "operationId": "forYouSettings",
                "summary": "Your For You controls",
                "security": _secured(read),
                "responses": {
                    "200": _ok("The controls (defaults until changed).", settings),
                    **_errors("401", "403", "429"),
                },
            },
            "patch": {
                "operationId": "updateForYouSettings",
                "summary": "Change your For You controls (fields left out stay)",
                "security": _secured(write),
                "requestBody": {
                    "content": {
                        "application/json": {"schema": settings},
                        "application/x-www-form-urlencoded": {"schema": settings},
                    }
                },
                "responses": {
                    "200": _ok("The controls.", settings),
                    **_errors("400", "401", "403", "422", "429"),
                },
            },
        },
    }


def _for_you_timeline_paths() -> Json:
    """For You's page (:mod:`fedisora.for_you.feed`)."""
    status: Json = {
        "type": "object",
        "description": (
            "A Mastodon Status whose ``fedisora`` object carries ``reason``: why it is in "
            "your For You list, in plain words."
        ),
        "required": ["id", "fedisora"],
        "properties": {
            "id": {"type": "string"},
            "fedisora": {
                "type": "object",
                "required": ["reason"],
                "properties": {"reason": {"type": "string"}},
            },
        },
    }
    return {
        "/api/fedisora/v1/timelines/for_you": {
            "get": {
                "operationId": "forYouTimeline",
                "summary": "A page of your For You list",
                "description": (
                    "Your precomputed, personal ranking of local and federated clips, with "
                    "the timelines' visibility rules. The ``Link`` header's next page carries "
                    "an opaque cursor in ``max_id`` (``cursor`` is read too), valid for your "
                    "account only: another account's or an altered one is a 400. The clips "
                    "served count as shown to you (an impression): the next first page goes "
                    "on with clips not served yet."
                ),
                "security": _secured(_READ),
                "parameters": [
                    {"name": "limit", "in": "query", "schema": _QUERY_SCHEMAS["limit"]},
                    {"name": "max_id", "in": "query", "schema": {**_TEXT, "maxLength": 200}},
                    {"name": "cursor", "in": "query", "schema": {**_TEXT, "maxLength": 200}},
                ],
                "responses": {
                    "200": _ok("Statuses, best first.", {"type": "array", "items": status}),
                    **_errors("400", "401", "403", "422", "429"),
                },
            }
        }
    }


def _optout_paths() -> Json:
    """The opt-out registry: no token needed (a token, when given, must be valid: 401)."""
    from fedisora.services import optouts

    entry: Json = {
        "type": "object",
        "required": ["id", "who", "kind", "terms"],
        "properties": {
            "id": {"type": "string"},
            "who": {"type": "string"},
            "kind": {"type": "string", "enum": list(optouts.KINDS)},
            "terms": {"type": "array", "items": {"type": "string"}},
        },
    }
    request: Json = {
        "type": "object",
        "required": ["who", "kind", "contact"],
        "properties": {
            "who": {**_TEXT, "minLength": 1, "maxLength": optouts.MAX_WHO},
            "kind": {"type": "string", "enum": list(optouts.KINDS)},
            "terms": {
                "type": "array",
                "maxItems": optouts.MAX_TERMS,
                "items": {**_TEXT, "maxLength": 200},
                "description": "The names and terms to protect (also one per line); the "
                "rights holder's name when none is given.",
            },
            "evidence": {**_TEXT, "maxLength": optouts.MAX_EVIDENCE},
            "contact": {
                **_TEXT,
                "minLength": 1,
                "maxLength": optouts.MAX_CONTACT,
                "description": "Required: an e-mail address or an http(s) URL.",
            },
        },
    }
    body = {
        "required": True,
        "content": {
            "application/json": {"schema": request},
            "application/x-www-form-urlencoded": {"schema": request},
        },
    }
    return {
        OPTOUTS: {
            "post": {
                "operationId": "requestOptOut",
                "summary": "Ask that renders never name a rights holder or their work",
                "description": (
                    "Kept for review by the admins (an approved opt-out's terms are refused in "
                    "prompts and published in the signed list). Rate-limited per address."
                ),
                "security": [{}],
                "requestBody": body,
                "responses": {
                    "202": _ok(
                        "The request, pending review.",
                        {
                            "type": "object",
                            "properties": {
                                "id": {"type": "string"},
                                "state": {"type": "string", "enum": ["pending"]},
                            },
                        },
                    ),
                    **_errors("400", "401", "422", "429"),
                },
            }
        },
        f"{OPTOUTS}/list": {
            "get": {
                "operationId": "optOutList",
                "summary": "The approved opt-outs, signed by the instance actor",
                "description": (
                    "``version`` grows with each approval and removal; ``issuer`` is the "
                    "instance actor, whose Ed25519 assertionMethod key signs the list with an "
                    "FEP-8b32 proof (eddsa-jcs-2022). Public fields only."
                ),
                "security": [{}],
                "responses": {
                    "200": _ok(
                        "The signed list.",
                        {
                            "type": "object",
                            "required": ["type", "version", "issued_at", "issuer", "entries"],
                            "properties": {
                                "type": {"type": "string", "enum": ["OptOutList"]},
                                "version": {"type": "integer", "minimum": 0},
                                "issued_at": {"type": "string", "format": "date-time"},
                                "issuer": {"type": "string"},
                                "entries": {"type": "array", "items": entry},
                                "proof": {"type": "object"},
                            },
                        },
                    ),
                    **_errors("401", "429"),
                },
            }
        },
    }


def _provenance_paths() -> Json:
    """The lookup of a copy's origin: no token needed (a token, when given, must be valid)."""
    from fedisora.services.fingerprints import LOOKUP_SIZE_LIMIT

    match: Json = {
        "type": "object",
        "required": ["url", "uri", "status_id", "instance", "author", "provenance", "score"],
        "properties": {
            "url": {"type": "string", "description": "The clip's page."},
            "uri": {"type": "string", "description": "The clip's ActivityPub id."},
            "status_id": {
                "type": ["string", "null"],
                "description": "The clip's status id here; null for a clip a peer named "
                "that this instance has not received.",
            },
            "instance": {"type": "string", "description": "The domain it was made on."},
            "author": {"type": "string", "description": "Its author's acct (user@domain)."},
            "provenance": {
                "type": "string",
                "description": "The state of the original's C2PA provenance as checked here: "
                "trusted (made here), verified, unverified or invalid.",
            },
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "via": {
                "type": ["string", "null"],
                "description": "The peer instance that named this clip, when none was known "
                "here (the peers this instance holds fingerprints from are asked); null for "
                "a match found here.",
            },
        },
    }
    fingerprint: Json = {
        "type": "object",
        "description": "A copy's fingerprint, as one instance asks another: PDQ hashes (hex) "
        "of its frames at 16 a second, as they are, mirrored, and of their top three "
        "quarters; at most 192 hashes each.",
        "required": [
            "type",
            "frameRate",
            "phases",
            "pdqHashes",
            "mirrored",
            "upper",
            "upperMirrored",
        ],
        "properties": {
            "type": {"type": "string", "enum": ["VideoQueryFingerprint"]},
            "frameRate": {"type": "number"},
            "phases": {"type": "integer"},
            "pdqHashes": {"type": "string"},
            "mirrored": {"type": "string"},
            "upper": {"type": "string"},
            "upperMirrored": {"type": "string"},
        },
    }
    return {
        LOOKUP_PATH: {
            "post": {
                "operationId": "lookUpProvenance",
                "summary": "Which clip is this video a copy of?",
                "description": (
                    "The copy (re-encoded, resized, cropped a little, trimmed, mirrored, "
                    "stripped of its metadata, with a caption burned in) is compared with "
                    "the perceptual fingerprints of the clips this instance knows, its own "
                    "and those federated to it (PDQ hashes of frames at 8 per second, "
                    "aligned in time), and with the invisible watermark of its own clips. "
                    "When none matches, the instances it holds fingerprints from are asked "
                    "(at most 4, 5 s each) and their matches say which answered (via). "
                    "Another instance asks with the copy's fingerprint as JSON instead of "
                    "the file; that answer is local only. "
                    f"At most {LOOKUP_SIZE_LIMIT // (1024 * 1024)} MB. Rate-limited per address."
                ),
                "security": [{}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file"],
                                "properties": {"file": {"type": "string", "format": "binary"}},
                            }
                        },
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["fingerprint"],
                                "properties": {"fingerprint": fingerprint},
                            }
                        },
                    },
                },
                "responses": {
                    "200": _ok(
                        "The clips it is a copy of, best first; empty when none is known.",
                        {
                            "type": "object",
                            "required": ["matches"],
                            "properties": {"matches": {"type": "array", "items": match}},
                        },
                    ),
                    **_errors("400", "401", "413", "422", "429"),
                    "503": _error("This server is installed without the render extra."),
                },
            }
        },
    }


_LREAD = ["read:accounts", "read"]
_LWRITE = ["write:accounts", "write"]


def _op(
    op_id: str,
    summary: str,
    ok: Json,
    codes: tuple[str, ...],
    *,
    write: bool = False,
    body: Json | None = None,
    description: str = "",
    status: str = "200",
    query: tuple[str, ...] = (),
) -> Json:
    out: Json = {
        "operationId": op_id,
        "summary": summary,
        "security": _secured(_LWRITE if write else _LREAD),
        "responses": {status: ok, **_errors("401", "403", "429", *codes)},
    }
    if description:
        out["description"] = description
    if body is not None:
        out["requestBody"] = body
    if query:
        out["parameters"] = [
            {"name": q, "in": "query", "schema": _QUERY_SCHEMAS.get(q, _TEXT)} for q in query
        ]
    return out


_QUERY_SCHEMAS: dict[str, Json] = {
    "take_down": {"type": "boolean", "default": False},
    "all": {"type": "boolean", "default": False},
    "limit": {"type": "integer", "minimum": 1, "maximum": 40},
    "q": {**_TEXT, "maxLength": 100},
    "expires_at": {
        "type": "string",
        "format": "date-time",
        "description": "ISO 8601 with a time zone, in the future.",
    },
}


def _form_body(schema: str) -> Json:
    return {
        "content": {
            "application/json": {"schema": _ref(schema)},
            "application/x-www-form-urlencoded": {"schema": _ref(schema)},
        }
    }


def _likeness_paths() -> Json:
    likeness = _ok("Your likeness.", _ref("Likeness"))
    request = _ok("The request.", _ref("LikenessRequest"))
    grant = _ok("The grant.", _ref("LikenessGrant"))
    use = _ok("The use.", _ref("LikenessUse"))
    return {
        f"{LIKENESS}/challenge": {
            "get": _op(
                "likenessChallenge",
                "A one-time code (valid 30 minutes) to show in your verification sample",
                _ok(
                    "The code.",
                    {
                        "type": "object",
                        "properties": {
                            "challenge": {"type": "string"},
                            "expires_at": {"type": "string", "format": "date-time"},
                        },
                    },
                ),
                (),
                write=True,
            )
        },
        LIKENESS: {
            "post": _op(
                "registerLikeness",
                "Register (or replace, until verified) your likeness",
                _ok("Your likeness, pending verification.", _ref("Likeness")),
                ("400", "409", "413", "422"),
                write=True,
                status="201",
                description=(
                    "Reference images are decoded fully, cropped to a square around the "
                    "largest face found in each (422 'no face found in reference image N' "
                    "when there is none) and normalised; the challenge must be yours, unused "
                    "and unexpired. Anything refused stores nothing. An admin, or the check "
                    "the admin configured, verifies it."
                ),
                body={
                    "required": True,
                    "content": {"multipart/form-data": {"schema": _ref("LikenessRegistration")}},
                },
            ),
            "get": _op("getLikeness", "Your likeness: state and policy", likeness, ("404",)),
            "delete": _op(
                "revokeLikeness",
                "Revoke your likeness: every grant revoked, jobs using it cancelled",
                likeness,
                ("404", "422"),
                write=True,
                query=("take_down",),
                description="``take_down=true`` also deletes the clips published with it.",
            ),
        },
        f"{LIKENESS}/policy": {
            "put": _op(
                "updateLikenessPolicy",
                "Change who may use your likeness",
                likeness,
                ("400", "404", "422"),
                write=True,
                body=_form_body("LikenessPolicy"),
            )
        },
        f"{LIKENESS}/requests": {
            "post": _op(
                "requestLikeness",
                "Ask to use someone's likeness",
                request,
                ("400", "404", "422"),
                write=True,
                body=_form_body("LikenessRequestCreate"),
                description=(
                    "Answered at once by the owner's policy (approved, or 403), or pending "
                    "for the owner. Restrictions must be accepted (422 shows them). An owner "
                    "on another instance (``acct`` user@domain, looked up if unknown) is asked "
                    "there: the request stays pending until their instance answers (approved "
                    "with a signed grant this instance verified, or rejected)."
                ),
            ),
            "get": _op(
                "listLikenessRequests",
                "Requests to you (incoming) and yours (outgoing)",
                _ok(
                    "Both lists.",
                    {
                        "type": "object",
                        "properties": {
                            "incoming": {"type": "array", "items": _ref("LikenessRequest")},
                            "outgoing": {"type": "array", "items": _ref("LikenessRequest")},
                        },
                    },
                ),
                (),
            ),
        },
        f"{LIKENESS}/requests/{{id}}/approve": {
            "parameters": [_ID],
            "post": _op(
                "approveLikenessRequest",
                "Approve a request to use your likeness",
                request,
                ("400", "404", "409", "422"),
                write=True,
                query=("expires_at",),
            ),
        },
        f"{LIKENESS}/requests/{{id}}/reject": {
            "parameters": [_ID],
            "post": _op(
                "rejectLikenessRequest",
                "Reject a request to use your likeness",
                request,
                ("404", "409"),
                write=True,
            ),
        },
        f"{LIKENESS}/grants": {
            "get": _op(
                "listLikenessGrants",
                "Grants you gave and grants you hold",
                _ok(
                    "Both lists.",
                    {
                        "type": "object",
                        "properties": {
                            "given": {"type": "array", "items": _ref("LikenessGrant")},
                            "held": {"type": "array", "items": _ref("LikenessGrant")},
                        },
                    },
                ),
                (),
            ),
            "post": _op(
                "createLikenessGrant",
                "Approve an account ahead of any request (a remote account's instance is sent the "
                "signed grant; for one use when the owner approves every use)",
                grant,
                ("400", "404", "422"),
                write=True,
                body=_form_body("LikenessGrantCreate"),
            ),
        },
        f"{LIKENESS}/grants/{{id}}": {
            "parameters": [_ID],
            "delete": _op(
                "revokeLikenessGrant",
                "Revoke one grant (take_down=true also deletes the clips made with it)",
                grant,
                ("404", "422"),
                write=True,
                query=("take_down",),
            ),
        },
        f"{LIKENESS}/uses": {
            "get": _op(
                "listLikenessUses",
                "Every use of your likeness, drafts and refusals included",
                _ok("Newest first.", {"type": "array", "items": _ref("LikenessUse")}),
                ("422",),
                query=("max_id", "limit"),
            )
        },
        f"{LIKENESS}/uses/{{id}}/remove": {
            "parameters": [_ID],
            "post": _op(
                "removeFromClip",
                "Remove yourself from a clip: it is deleted (or its render cancelled)",
                use,
                ("404",),
                write=True,
            ),
        },
        f"{LIKENESS}/checks": {
            "get": _op(
                "listConsentChecks",
                "The audit of consent checks of your likeness (all=true: every one, admins)",
                _ok("Newest first.", {"type": "array", "items": _ref("ConsentCheck")}),
                ("422",),
                query=("all", "max_id", "limit"),
            )
        },
        LIKENESSES: {
            "get": _op(
                "listUsableLikenesses",
                "Whose likeness you may use now (the cameo picker)",
                _ok("Mastodon Accounts.", {"type": "array", "items": _OBJ}),
                ("422",),
                query=("q", "limit"),
            )
        },
    }


def document(base_url: str | None = None) -> Json:
    """The OpenAPI document; *base_url* becomes its only server."""
    scopes = {
        "read": "Read everything",
        "read:statuses": "Read statuses and your renders",
        "read:accounts": "Read your likeness, its requests, grants, uses and checks",
        "write:accounts": "Register your likeness and decide who may use it",
        "write": "Write everything",
        "write:media": "Upload media and make renders",
        "write:statuses": "Post statuses and make renders",
    }
    doc: Json = {
        "openapi": "3.1.0",
        "info": {
            "title": "fedisora API (fedisora-specific endpoints)",
            "version": "1.0.0",
            "description": (
                "fedisora speaks Mastodon's client API; this document describes what it adds: "
                "renders, the AI-only rules of media uploads and its notification types "
                f"({', '.join(_FEDISORA_TYPES)}; see FedisoraNotificationType). Errors are "
                'Mastodon\'s {"error": "..."}.'
            ),
            "license": {"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
        },
        "paths": _paths(),
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "OAuth2": {
                    "type": "oauth2",
                    "description": "Mastodon-compatible OAuth 2 bearer tokens.",
                    "flows": {
                        "authorizationCode": {
                            "authorizationUrl": "/oauth/authorize",
                            "tokenUrl": "/oauth/token",
                            "scopes": scopes,
                        },
                        "password": {"tokenUrl": "/oauth/token", "scopes": scopes},
                    },
                }
            },
        },
    }
    if base_url:
        doc["servers"] = [{"url": base_url}]
    return doc


async def openapi_json(request: Request) -> Response:
    settings = request.app.state.settings
    return with_cors(JSONResponse(document(settings.base_url)))


def routes() -> list[BaseRoute]:
    return [Route(OPENAPI_PATH, openapi_json, methods=["GET"], name="fedisora_openapi")]
