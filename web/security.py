"""The security headers of every response, set in one middleware.

Every HTML response gets a strict Content-Security-Policy (scripts and styles only from this
site's files, no inline script or style, no plugins, no ``<base>``, never framed, forms post
only here), ``X-Frame-Options: DENY`` for browsers without ``frame-ancestors``,
``Referrer-Policy: same-origin`` (links to other sites carry no referrer) and
``X-Content-Type-Options: nosniff``, which every other response gets too.

Pages only widen the policy in one declared way: the OAuth consent page lets its form's
redirect reach the app's registered redirect URI (:func:`allow_form_action`), since browsers
apply ``form-action`` to the redirect after a form is submitted. Images and media come from
this site only: remote clips' videos and posters are served through the media proxy
(:mod:`fedisora.federation.media_proxy`), and no page embeds another remote URL (avatars
shown are local accounts' own uploads; OpenGraph images are metadata, never loaded by the
page). Nothing needs ``data:`` or ``blob:``.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeaders", "allow_form_action", "content_security_policy"]

_FORM_ACTION_KEY = "csp_form_action"


def content_security_policy(form_action: Iterable[str] = ()) -> str:
    """The policy of an HTML page; *form_action* adds sources its forms may lead to."""
    extra = "".join(f" {source}" for source in dict.fromkeys(form_action))
    directives = [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "media-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "frame-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        f"form-action 'self'{extra}",
    ]
    return "; ".join(directives)


def allow_form_action(request: Request, source: str) -> None:
    """Let this response's forms lead to *source* (a CSP source expression: an origin such
    as ``https://app.example`` or a scheme such as ``com.example.app:``)."""
    if any(c in source for c in " ;,'\"") or not source.isprintable():
        raise ValueError(f"not a CSP source expression: {source!r}")
    sources: list[str] = request.scope.setdefault("state", {}).setdefault(_FORM_ACTION_KEY, [])
    sources.append(source)


class SecurityHeaders:
    """Pure ASGI middleware (streamed responses pass through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.policy = content_security_policy()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                if headers.get("content-type", "").lower().startswith("text/html"):
                    extra = scope.get("state", {}).get(_FORM_ACTION_KEY) or ()
                    headers["Content-Security-Policy"] = (
                        content_security_policy(extra) if extra else self.policy
                    )
                    headers["X-Frame-Options"] = "DENY"
                    headers["Referrer-Policy"] = "same-origin"
            await send(message)

        await self.app(scope, receive, send_with_headers)
