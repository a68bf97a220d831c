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
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from activitypub import federation
from fedisora import urls
from fedisora.config import Settings, load_settings
from fedisora.db import close_db, init_db
from fedisora.errors import FedisoraError
from fedisora.health import health
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
        return JSONResponse({"error": exc.message}, exc.status)
    from web.pages import error_page

    return error_page(request, exc.status, exc.message)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal server error"}, 500)


async def healthz(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    report = await health(settings)
    return JSONResponse(report, 200 if report["status"] == "ok" else 503)


def create_app(
    settings: Settings | None = None,
    *,
    run_work: bool = True,
    manage_db: bool = True,
) -> Starlette:
    """Build the app. *run_work* starts the in-process runner when there is no Redis."""
    settings = settings or load_settings()
    urls.configure(settings)

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
            if manage_db:
                await close_db()

    from activitypub.federation.inbox_shortcut import InboxShortcut
    from activitypub.federation.routes import routes as federation_routes
    from fedisora.api.media import media_files
    from fedisora.api.routes import routes as api_routes
    from fedisora.boundary.middleware import InputBoundary
    from web.routes import routes as web_routes

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            *api_routes(),
            *federation_routes(),
            Mount("/media", app=media_files(settings), name="media"),
            *web_routes(),
        ],
        middleware=[
            Middleware(InputBoundary, trusted_proxies=settings.trusted_proxies),
            Middleware(InboxShortcut),
            Middleware(
                SessionMiddleware,
                secret_key=settings.secret_key or "unset",
                session_cookie="fedisora_session",
                https_only=not settings.insecure_http,
                same_site="lax",
            ),
        ],
        exception_handlers={
            HTTPException: _http_error,
            FedisoraError: _service_error,
            Exception: _server_error,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    return app


# Used by uvicorn's --factory in `fedisora serve`.
def app_from_env() -> Starlette:
    return create_app()
