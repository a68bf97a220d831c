"""The ASGI application factory.

The web process answers HTTP and runs light durable work (deliveries, inbox) in-process when
there is no Redis. It never imports torch: rendering always happens in a worker process
(``fedisora worker``, which ``serve`` starts itself on embedded defaults).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from fedisora import fastload, federation, ratelimits, urls
from fedisora.api import entity_cache, replay_cache
from fedisora.config import Settings, load_settings
from fedisora.db import close_db, init_db
from fedisora.errors import FedisoraError
from fedisora.health import health, public_report
from fedisora.routing import index_router
from fedisora.work.machines import build_engine
from fedisora.work.runner import InProcessRunner

__all__ = ["create_app"]

log = logging.getLogger("fedisora.app")


def _wants_json(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/oauth/", "/healthz", "/.well-known/", "/users/", "/inbox")):
        return True
    accept = request.headers.get("accept", "")
    return "json" in accept and "html" not in accept


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if _wants_json(request) or exc.status_code < 400:
        return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)
    from web.pages import error_page

    return error_page(request, exc.status_code, str(exc.detail))


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FedisoraError)
    if _wants_json(request):
        return JSONResponse({"error": exc.message}, exc.status, headers=exc.headers())
    from web.pages import error_page

    response = error_page(request, exc.status, exc.message)
    response.headers.update(exc.headers())
    return response


def _outage(request: Request, exc: Exception) -> Response | None:
    """507 for a full disk, 503 with ``Retry-After`` for a database that cannot be reached
    (:mod:`fedisora.outages`), as JSON or a page like every error; None for anything else."""
    from fedisora import outages

    if outages.disk_full(exc):
        status, message, headers = 507, outages.DISK_FULL, {}
    elif outages.backend_down(exc):
        status, message = 503, outages.BACKEND_DOWN
        headers = {"Retry-After": str(outages.RETRY_AFTER)}
    else:
        return None
    log.warning("%s %s: %d: %s", request.method, request.url.path, status, exc)
    if _wants_json(request):
        from fedisora.api.http import with_cors

        return with_cors(JSONResponse({"error": message}, status, headers=headers))
    from web.pages import error_page

    request.scope.setdefault("session", {})  # raised before the session was looked up
    response = error_page(request, status, message)
    response.headers.update(headers)
    return response


async def _outage_error(request: Request, exc: Exception) -> Response:
    response = _outage(request, exc) if request.scope["type"] == "http" else None
    if response is None:
        raise exc  # not an outage (a server error), or a WebSocket's (closed by the server)
    return response


def _outage_types() -> tuple[type[Exception], ...]:
    """What an outage is raised as (:func:`_outage` looks closer), so that it is answered
    inside the middleware (security headers, cookies) as other errors are."""
    import asyncpg
    import redis.exceptions
    from tortoise.exceptions import BaseORMException

    return (
        OSError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        BaseORMException,
        redis.exceptions.RedisError,
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    response = _outage(request, exc)  # an outage met by a middleware, outside the routes
    if response is not None:
        return response
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal server error"}, 500)


async def _admin_caller(request: Request) -> bool:
    """Whether the request comes from an admin: a token of an admin user with an
    ``admin:read`` scope, or an admin's web session. A bad token is just not an admin's."""
    from fedisora.api.http import bearer_token, load_token
    from fedisora.api.scopes import allows
    from fedisora.models import User
    from web.clips import session_account

    raw = bearer_token(request)
    if raw is not None:
        try:
            token, _, user = await load_token(raw)
        except FedisoraError:
            return False
        return user is not None and user.is_admin and allows(token.scopes.split(), "admin:read")
    account = await session_account(request)
    if account is None:
        return False
    return await User.filter(account_id=account.pk, is_admin=True, disabled=False).exists()


async def healthz(request: Request) -> Response:
    """The instance's health: the full report for admins, :func:`public_report` for anyone
    else (the status code is the same for both: 503 when degraded)."""
    settings: Settings = request.app.state.settings
    report = await health(settings)
    status = 200 if report["status"] == "ok" else 503
    if not await _admin_caller(request):
        report = public_report(report)
    return JSONResponse(report, status, headers={"Cache-Control": "no-store"})


class InstanceSettingsRefresh:
    """Loads the instance settings saved by admins (:mod:`fedisora.services.instance_settings`,
    cached for a few seconds) as each request starts: templates read them synchronously, and
    the rate-limit store takes changed limits from them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            from fedisora.services.instance_settings import refresh_for_app

            await refresh_for_app(scope["app"])
        await self.app(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    run_work: bool = True,
    manage_db: bool = True,
) -> Starlette:
    """Build the app. *run_work* starts the in-process runner when there is no Redis."""
    settings = settings or load_settings()
    urls.configure(settings)
    entity_cache.configure(settings.entity_cache_size)
    fastload.configure(settings.entity_cache_size)  # (the rows those are rendered from)
    replay_cache.install()  # (visitors' pages: fedisora.api.replay_cache)
    # The rate limits' store (Redis or memory), for the API frame and the services alike.
    rate_limits = ratelimits.configure(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_db:
            await init_db(settings)
        engine = build_engine(settings)
        app.state.engine = engine
        federation.install(engine)
        runner: InProcessRunner | None = None
        waker_pool = None
        if settings.redis_url:
            from fedisora.work.arq_worker import ArqWaker

            waker = await ArqWaker.connect(settings.redis_url)
            waker_pool = waker.pool
            engine.add_waker(waker)
        elif run_work:
            runner = InProcessRunner(engine, queues=("default",))
            runner.start()
        app.state.runner = runner
        from fedisora.streaming.broker import start_streaming

        app.state.streaming = await start_streaming(settings.redis_url)
        try:
            yield
        finally:
            await app.state.streaming.stop()
            if runner is not None:
                await runner.stop()
            if waker_pool is not None:
                await waker_pool.aclose()
            await federation.uninstall()
            await rate_limits.aclose()
            if manage_db:
                await close_db()

    from fedisora.api.media import media_files
    from fedisora.api.routes import routes as api_routes
    from fedisora.boundary.middleware import InputBoundary
    from fedisora.federation.inbox_shortcut import InboxShortcut
    from fedisora.federation.routes import routes as federation_routes
    from fedisora.metrics import RequestMetrics, metrics_endpoint
    from web.routes import object_pages
    from web.routes import routes as web_routes
    from web.security import SecurityHeaders
    from web.sessions import SessionMiddleware

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/metrics", metrics_endpoint),
            *api_routes(),
            *federation_routes(),
            Mount("/media", app=media_files(settings), name="media"),
            *web_routes(),
        ],
        middleware=[
            Middleware(RequestMetrics),
            Middleware(SecurityHeaders),
            Middleware(InstanceSettingsRefresh),
            Middleware(InputBoundary, trusted_proxies=settings.trusted_proxies),
            Middleware(InboxShortcut),
            Middleware(SessionMiddleware, https_only=not settings.insecure_http),
        ],
        exception_handlers={
            HTTPException: _http_error,
            FedisoraError: _service_error,
            **dict.fromkeys(_outage_types(), _outage_error),
            Exception: _server_error,
        },
        lifespan=lifespan,
    )
    index_router(app)  # (trying only the routes a path can match)
    app.state.settings = settings
    app.state.object_pages = object_pages()  # fedisora.negotiation: a browser gets pages
    app.state.rate_limits = rate_limits
    app.state.instance_limits = dict(rate_limits.limits)  # as the environment sets them
    from fedisora.services import instance_settings

    instance_settings.reset()  # a new app (a test's) reads the saved values afresh
    return app


# Used by uvicorn's --factory in `fedisora serve`.
def app_from_env() -> Starlette:
    return create_app()
