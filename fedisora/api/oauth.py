"""OAuth 2 as Mastodon clients use it: apps, the consent page, tokens, revocation, metadata.

Grants: ``authorization_code`` (PKCE S256 or plain, RFC 7636), ``password`` (Mastodon removed it
in 4.4, but Mastodon.py and scripts still use it; limited per client IP and per account, as
every password check is: :func:`fedisora.services.passwords.verify_guarded`), ``client_credentials``
(an app-only token) and ``refresh_token`` (the old token is revoked on refresh). Tokens do not
expire unless revoked, as in Mastodon.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute
from tortoise.transactions import in_transaction

from activitypub.objects import web_url
from fedisora import urls
from fedisora.api import scopes as scope_rules
from fedisora.api.http import Ctx, api_route, client_ip, endpoint, json, with_cors
from fedisora.api.params import Params, read_params
from fedisora.errors import FedisoraError, Invalid
from fedisora.models import (
    Account,
    OAuthAccessToken,
    OAuthApplication,
    OAuthAuthorizationCode,
    utcnow,
)
from fedisora.services.accounts import LoginRefused, authenticate
from fedisora.services.email_confirmation import Unconfirmed
from fedisora.services.passwords import PasswordChecksBusy, TooManyAttempts, guard_for

__all__ = ["application_entity", "issue_token", "routes", "token_entity"]

OOB = "urn:ietf:wg:oauth:2.0:oob"
CODE_TTL = timedelta(minutes=10)


def _secret() -> str:
    return secrets.token_urlsafe(32)


def _redirect_uris(app: OAuthApplication) -> list[str]:
    return [u for u in app.redirect_uris.split("\n") if u]


def application_entity(app: OAuthApplication, *, credentials: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(app.pk),
        "name": app.name,
        "website": safe_website(app.website),
        "scopes": app.scopes.split(),
        "redirect_uri": app.redirect_uris,
        "redirect_uris": _redirect_uris(app),
        "vapid_key": "",
    }
    if credentials:
        data["client_id"] = app.client_id
        data["client_secret"] = app.client_secret
        data["client_secret_expires_at"] = 0
    return data


def token_entity(token: OAuthAccessToken) -> dict[str, Any]:
    data: dict[str, Any] = {
        "access_token": token.token,
        "token_type": "Bearer",
        "scope": token.scopes,
        "created_at": int(token.created_at.timestamp()),
    }
    if token.refresh_token:
        data["refresh_token"] = token.refresh_token
    return data


# Length caps of what an app may register (Mastodon's: 2,000 characters of redirect URIs in
# all, a website of 2,000); every other field is capped by its column.
NAME_MAX = 200
WEBSITE_MAX = 2000
REDIRECT_URIS_MAX = 2000
SCOPES_MAX = 1000

_SCHEME_RE = re.compile(r"[a-z][a-z0-9+.-]*")
FORBIDDEN_SCHEMES = frozenset(
    {
        "javascript",
        "vbscript",
        "data",
        "file",
        "blob",
        "filesystem",
        "about",
        "view-source",
        "jar",
        "mhtml",
        "ws",
        "wss",
    }
)
"""Schemes a browser would run, read locally or never navigate to for an app: never a
redirect URI (Mastodon forbids ``javascript``, ``vbscript`` and ``data``)."""


def _plain_ascii(value: str) -> bool:
    """Printable ASCII without spaces: what a URI is (an IRI's other characters must be
    percent-encoded); refuses controls, NULs and lone surrogates at once."""
    return value.isascii() and value.isprintable() and " " not in value


def redirect_uri_problem(uri: str) -> str | None:
    """Why *uri* cannot be a registered redirect URI, or None when it can.

    Allowed, as on Mastodon (Doorkeeper's validator and Mastodon's forbidden schemes):
    ``urn:ietf:wg:oauth:2.0:oob``; ``http(s)`` URLs with a host; custom app schemes with a
    hierarchical part (``com.example.app:/cb``, ``myapp://callback``). Never a scheme of
    :data:`FORBIDDEN_SCHEMES`, an opaque URI (``mailto:x``), a relative one or a fragment.
    """
    if uri == OOB:
        return None
    if len(uri) > REDIRECT_URIS_MAX:
        return f"is longer than {REDIRECT_URIS_MAX} characters"
    if not _plain_ascii(uri):
        return "must be printable ASCII without spaces (percent-encode other characters)"
    try:
        parts = urlsplit(uri)
        port = parts.port if parts.scheme.lower() in ("http", "https") else None
    except ValueError:
        return "is not a valid URI"
    del port  # parsed only to refuse an invalid one
    scheme = parts.scheme.lower()
    if not scheme or not _SCHEME_RE.fullmatch(scheme):
        return "must be absolute (start with a scheme such as https:)"
    if scheme in FORBIDDEN_SCHEMES:
        return f"may not use the {scheme}: scheme"
    if "#" in uri:
        return "may not contain a fragment (#)"
    if scheme in ("http", "https"):
        if not parts.hostname:
            return "must name a host"
    elif not uri[len(scheme) + 1 :].startswith("/"):
        return "must be hierarchical (com.example.app:/callback), not opaque"
    return None


def redirect_source(uri: str) -> str | None:
    """The CSP ``form-action`` source that lets the consent form's redirect reach *uri*
    (its origin, or its custom scheme), or None for the out-of-band URI (no redirect)."""
    if uri == OOB or redirect_uri_problem(uri) is not None:
        return None
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return f"{scheme}:"
    host = parts.hostname or ""
    if not re.fullmatch(r"[a-z0-9.-]+|[0-9a-f:.]+", host):
        return None  # a host a CSP source cannot name (a zone id, unusual characters)
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{parts.port}" if parts.port is not None else "")


def safe_website(value: str | None) -> str | None:
    """*value* if it is an ``http(s)`` URL with a host that fits :data:`WEBSITE_MAX`, else
    None: an app's website is shown as a link (the consent page, clients), so nothing else
    is ever kept or shown, rows stored before this check included."""
    if not value or len(value) > WEBSITE_MAX or not _plain_ascii(value):
        return None
    return web_url(value)


def _registered_uris(p: Params) -> list[str]:
    raw = p.texts("redirect_uris")
    if sum(len(u) for u in raw) > REDIRECT_URIS_MAX:
        raise Invalid(f"redirect_uris is longer than {REDIRECT_URIS_MAX} characters in all")
    # One string may hold several URIs separated by whitespace, as Mastodon reads it.
    lines = [uri for item in raw for uri in item.split()]
    if not lines:
        raise Invalid("redirect_uris is required")
    for uri in lines:
        problem = redirect_uri_problem(uri)
        if problem is not None:
            shown = uri if len(uri) <= 100 else uri[:100] + "…"
            raise Invalid(f"redirect_uris: {shown!r} {problem}")
    return list(dict.fromkeys(lines))


#: Registering an app stores a row: the ``apps`` limit (20 per 5 minutes) per client IP.
APP_RATE = "apps"


@endpoint(rate=APP_RATE)
async def create_app(ctx: Ctx) -> Response:
    """Register a client (Mastodon's ``POST /api/v1/apps``): every field is checked and
    capped before anything is stored (422 naming the field otherwise)."""
    p = ctx.params
    name = p.required_text("client_name", max_length=NAME_MAX).strip()
    if not name.isprintable():  # also refuses lone surrogates, which no column can hold
        raise Invalid("client_name may not contain control characters")
    lines = _registered_uris(p)
    raw_scopes = p.texts("scopes")
    if sum(len(s) for s in raw_scopes) > SCOPES_MAX:
        raise Invalid(f"scopes is longer than {SCOPES_MAX} characters")
    requested = scope_rules.normalize(raw_scopes or None)
    website = (p.text("website", max_length=WEBSITE_MAX) or "").strip() or None
    if website is not None and safe_website(website) is None:
        raise Invalid("website must be an http(s) URL with a host")
    app = await OAuthApplication.create(
        name=name,
        website=website,
        redirect_uris="\n".join(lines),
        scopes=" ".join(requested),
        client_id=_secret(),
        client_secret=_secret(),
    )
    return json(application_entity(app, credentials=True))


@endpoint(auth=True)
async def verify_app(ctx: Ctx) -> Response:
    assert ctx.token is not None
    app = await OAuthApplication.get(pk=ctx.token.application_id)
    return json(application_entity(app))


async def issue_token(
    app: OAuthApplication, account: Account | None, scopes: list[str]
) -> OAuthAccessToken:
    """A new token of *app* for *account* (None: the app's own). A suspended account gets
    none, by any grant (its web login is restricted to its suspension, and
    :func:`~fedisora.api.http.load_token` refuses its older tokens)."""
    if account is not None and account.suspended_at is not None:
        raise OAuthError("invalid_grant", _SUSPENDED_GRANT)
    return await OAuthAccessToken.create(
        token=_secret(),
        refresh_token=_secret() if account is not None else None,
        application=app,
        account=account,
        scopes=" ".join(scopes),
    )


_SUSPENDED_GRANT = (
    "Your account is suspended: apps cannot use it. Log in on the web to read why and to appeal."
)


class OAuthError(FedisoraError):
    """An RFC 6749 error: ``{"error": code, "error_description": message}``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"error": self.code, "error_description": self.message},
            self.status,
            headers={"Cache-Control": "no-store"},
        )


async def _client(request: Request, params: Params) -> OAuthApplication:
    client_id = params.text("client_id")
    client_secret = params.text("client_secret")
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip()).decode()
            client_id, _, client_secret = decoded.partition(":")
        except (ValueError, UnicodeDecodeError):
            raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
    if not client_id:
        raise OAuthError("invalid_client", "client_id is required", 401)
    app = await OAuthApplication.get_or_none(client_id=str(client_id))
    if app is None or not hmac.compare_digest(app.client_secret, str(client_secret or "")):
        raise OAuthError(
            "invalid_client",
            "Client authentication failed due to unknown client, no client authentication "
            "included, or unsupported authentication method.",
            401,
        )
    return app


def _requested_scopes(params: Params, app: OAuthApplication) -> list[str]:
    raw = params.text("scope") or params.text("scopes")
    try:
        requested = scope_rules.normalize(raw, default=app.scopes)
    except Invalid as exc:
        raise OAuthError("invalid_scope", exc.message) from None
    if not scope_rules.within(requested, app.scopes.split()):
        raise OAuthError("invalid_scope", "The requested scope is invalid, unknown, or malformed.")
    return requested


def _pkce_ok(code: OAuthAuthorizationCode, verifier: str | None) -> bool:
    if code.code_challenge is None:
        return True
    if not verifier:
        return False
    if code.code_challenge_method == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        computed = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    else:
        computed = verifier
    return hmac.compare_digest(computed, code.code_challenge)


async def _grant_code(params: Params, app: OAuthApplication) -> OAuthAccessToken:
    raw = params.text("code")
    if not raw:
        raise OAuthError("invalid_request", "code is required")
    async with in_transaction():
        code = await OAuthAuthorizationCode.get_or_none(code=raw, application_id=app.pk)
        invalid = OAuthError(
            "invalid_grant",
            "The provided authorization grant is invalid, expired, revoked, does not match "
            "the redirection URI used in the authorization request, or was issued to "
            "another client.",
        )
        if code is None or code.used_at is not None or code.expires_at <= utcnow():
            raise invalid
        if (params.text("redirect_uri") or code.redirect_uri) != code.redirect_uri:
            raise invalid
        if not _pkce_ok(code, params.text("code_verifier")):
            raise invalid
        used = await OAuthAuthorizationCode.filter(pk=code.pk, used_at=None).update(
            used_at=utcnow()
        )
        if not used:
            raise invalid
    account = await Account.get(pk=code.account_id)
    return await issue_token(app, account, code.scopes.split())


async def _grant_password(request: Request, params: Params, app: OAuthApplication) -> Any:
    username = params.text("username")
    password = params.text("password")
    if not username or not password:
        raise OAuthError("invalid_request", "username and password are required")
    scopes = _requested_scopes(params, app)
    try:
        account = await authenticate(
            str(username), str(password), guard=guard_for(request.app.state), ip=client_ip(request)
        )
    except (TooManyAttempts, PasswordChecksBusy) as exc:
        return JSONResponse(
            {"error": "Too many requests", "error_description": exc.message},
            exc.status,
            headers={"Retry-After": str(exc.retry_after), "Cache-Control": "no-store"},
        )
    except LoginRefused as exc:
        message = str(exc)
        if isinstance(exc, Unconfirmed):  # where to ask for the mail again
            message += f" A new mail: {urls.current().base}/auth/confirm"
        raise OAuthError("invalid_grant", message) from None
    if account is None:
        raise OAuthError(
            "invalid_grant", "The user credentials were incorrect or the account is not usable."
        )
    return await issue_token(app, account, scopes)


async def _grant_refresh(params: Params, app: OAuthApplication) -> OAuthAccessToken:
    raw = params.text("refresh_token")
    if not raw:
        raise OAuthError("invalid_request", "refresh_token is required")
    old = await OAuthAccessToken.get_or_none(refresh_token=raw, application_id=app.pk)
    if old is None or old.revoked_at is not None or old.account_id is None:
        raise OAuthError("invalid_grant", "The refresh token is invalid or was revoked.")
    requested = old.scopes.split()
    raw_scope = params.text("scope")
    if raw_scope:
        try:
            requested = scope_rules.normalize(raw_scope)
        except Invalid as exc:
            raise OAuthError("invalid_scope", exc.message) from None
        if not scope_rules.within(requested, old.scopes.split()):
            raise OAuthError("invalid_scope", "A refresh cannot widen the token's scopes.")
    revoked = await OAuthAccessToken.filter(pk=old.pk, revoked_at=None).update(revoked_at=utcnow())
    if not revoked:
        raise OAuthError("invalid_grant", "The refresh token is invalid or was revoked.")
    account = await Account.get(pk=old.account_id)
    return await issue_token(app, account, requested)


async def token(request: Request) -> Response:
    try:
        params = await read_params(request)
        grant = params.text("grant_type")
        app = await _client(request, params)
        if grant == "authorization_code":
            result: Any = await _grant_code(params, app)
        elif grant == "password":
            result = await _grant_password(request, params, app)
        elif grant == "client_credentials":
            result = await issue_token(app, None, _requested_scopes(params, app))
        elif grant == "refresh_token":
            result = await _grant_refresh(params, app)
        else:
            raise OAuthError(
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            )
    except OAuthError as exc:
        return with_cors(exc.response())
    except FedisoraError as exc:
        return with_cors(
            JSONResponse({"error": "invalid_request", "error_description": exc.message}, exc.status)
        )
    if isinstance(result, Response):
        return with_cors(result)
    return with_cors(JSONResponse(token_entity(result), headers={"Cache-Control": "no-store"}))


async def revoke(request: Request) -> Response:
    try:
        params = await read_params(request)
        app = await _client(request, params)
    except OAuthError as exc:
        return with_cors(exc.response())
    except FedisoraError as exc:
        return with_cors(JSONResponse({"error": exc.message}, exc.status))
    raw = params.text("token")
    if raw:  # RFC 7009: an unknown token is not an error
        await OAuthAccessToken.filter(
            application_id=app.pk, revoked_at=None, token=str(raw)
        ).update(revoked_at=utcnow())
        await OAuthAccessToken.filter(
            application_id=app.pk, revoked_at=None, refresh_token=str(raw)
        ).update(revoked_at=utcnow())
    return with_cors(JSONResponse({}))


async def metadata(request: Request) -> Response:
    base = request.app.state.settings.base_url
    return with_cors(
        JSONResponse(
            {
                "issuer": f"{base}/",
                "service_documentation": "https://docs.joinmastodon.org/",
                "authorization_endpoint": f"{base}/oauth/authorize",
                "token_endpoint": f"{base}/oauth/token",
                "revocation_endpoint": f"{base}/oauth/revoke",
                "app_registration_endpoint": f"{base}/api/v1/apps",
                "scopes_supported": list(scope_rules.ALL_SCOPES),
                "response_types_supported": ["code"],
                "response_modes_supported": ["query", "fragment", "form_post"],
                "code_challenge_methods_supported": ["S256", "plain"],
                "grant_types_supported": [
                    "authorization_code",
                    "password",
                    "client_credentials",
                    "refresh_token",
                ],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
            }
        )
    )


# --- the consent page -------------------------------------------------------------------------


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    from web.pages import render

    return render(request, f"oauth/{name}", status=status, **context)


async def _authorize_request(
    request: Request, params: Params
) -> tuple[OAuthApplication, str, list[str], str | None, str | None]:
    """Validate an authorization request; errors here are shown, never redirected (RFC 6749)."""
    if (params.text("response_type") or "code") != "code":
        raise Invalid("response_type must be code")
    app = await OAuthApplication.get_or_none(client_id=str(params.text("client_id") or ""))
    if app is None:
        raise Invalid("unknown client_id: this application is not registered here")
    redirect_uri = params.text("redirect_uri") or _redirect_uris(app)[0]
    if redirect_uri not in _redirect_uris(app):
        raise Invalid("redirect_uri is not one of this application's registered redirect URIs")
    if redirect_uri_problem(redirect_uri) is not None:  # stored before the rules were checked
        raise Invalid("this application's redirect URI is not allowed: register it again")
    raw_scope = params.text("scope") or params.text("scopes")
    requested = scope_rules.normalize(raw_scope, default=app.scopes)
    if not scope_rules.within(requested, app.scopes.split()):
        raise Invalid("the requested scopes exceed those the application registered")
    challenge = params.text("code_challenge") or None
    method = params.text("code_challenge_method") or None
    if challenge is not None:
        method = method or "plain"
        if method not in ("S256", "plain"):
            raise Invalid("code_challenge_method must be S256 or plain")
        if not 43 <= len(challenge) <= 128:
            raise Invalid("code_challenge must be 43 to 128 characters long")
    return app, redirect_uri, requested, challenge, method


async def authorize(request: Request) -> Response:
    try:
        params = await read_params(request)
        app, redirect_uri, requested, challenge, method = await _authorize_request(request, params)
    except FedisoraError as exc:
        return _page(request, "error.html", status=exc.status, message=exc.message)
    from web.sessions import current_session, end_browser_session

    live = current_session(request)
    if live is None or params.flag("force_login"):
        if request.method == "GET":
            if live is not None:  # force_login: the user picks the account again (Mastodon)
                await end_browser_session(request)
            query = urlencode(
                [(k, v) for k, v in request.query_params.multi_items() if k != "force_login"]
            )
            return RedirectResponse(
                "/login?" + urlencode({"next": f"/oauth/authorize?{query}"}), status_code=303
            )
        return _page(request, "error.html", status=401, message="Log in first.")
    account = live.account
    state = params.text("state")
    if request.method == "GET":
        from web.security import allow_form_action
        from web.sessions import csrf_token

        csrf = csrf_token(request)
        source = redirect_source(redirect_uri)
        if source is not None:  # the approval's redirect must pass the page's form-action
            allow_form_action(request, source)
        return _page(
            request,
            "authorize.html",
            app=app,
            account=account,
            scopes=requested,
            hidden={
                "client_id": app.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(requested),
                "state": state or "",
                "code_challenge": challenge or "",
                "code_challenge_method": method or "",
                "response_type": "code",
                "csrf": csrf,
            },
        )
    from web.sessions import csrf_matches

    if not csrf_matches(request, params.text("csrf")):
        return _page(request, "error.html", status=403, message="The form expired; try again.")
    if params.text("decision") != "approve":
        if redirect_uri == OOB:
            return _page(request, "error.html", status=403, message="Access denied.")
        denied = {"error": "access_denied"}
        if state:
            denied["state"] = state
        return _redirect(redirect_uri, denied)
    code = await OAuthAuthorizationCode.create(
        code=_secret(),
        application=app,
        account=account,
        redirect_uri=redirect_uri,
        scopes=" ".join(requested),
        code_challenge=challenge,
        code_challenge_method=method if challenge else None,
        expires_at=utcnow() + CODE_TTL,
    )
    if redirect_uri == OOB:
        return _page(request, "code.html", app=app, code=code.code)
    granted = {"code": code.code}
    if state:
        granted["state"] = state
    return _redirect(redirect_uri, granted)


def _redirect(uri: str, query: dict[str, str]) -> Response:
    sep = "&" if urlsplit(uri).query else "?"
    return RedirectResponse(f"{uri}{sep}{urlencode(query)}", status_code=303)


def routes() -> list[BaseRoute]:
    return [
        *api_route("/api/v1/apps", create_app, ["POST"]),
        *api_route("/api/v1/apps/verify_credentials", verify_app, ["GET"]),
        *api_route("/oauth/authorize", authorize, ["GET", "POST"]),
        *api_route("/oauth/token", token, ["POST"]),
        *api_route("/oauth/revoke", revoke, ["POST"]),
        *api_route("/.well-known/oauth-authorization-server", metadata, ["GET"]),
    ]
