"""fedisora.routing: the indexed router finds the route starlette's loop would find."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Match, Mount, Route, Router

from fedisora.app import create_app
from fedisora.config import load_settings
from fedisora.routing import IndexedRouter, RouteTree, index_router


def _answer(name: str) -> Callable[[Request], Awaitable[PlainTextResponse]]:
    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{name} {dict(request.path_params)}")

    return endpoint


ROUTES = [
    Route("/a/b", _answer("ab"), methods=["POST"]),
    Route("/a/{x}", _answer("ax")),
    Route("/a/b", _answer("ab-get")),
    Route("/@{name}", _answer("profile")),
    Route("/@{name}/{id:int}", _answer("clip")),
    Route("/", _answer("root")),
    Route("/api/v1/things", _answer("things")),
    Route("/api/v1/things/{id}", _answer("thing")),
    Route("/api/v1/things/{id}/", _answer("thing-slash")),
    Route("/{anything:path}/edit", _answer("edit")),
    Mount("/media", routes=[Route("/{file}", _answer("media"))]),
]
PATHS = [
    ("GET", "/a/b"),
    ("POST", "/a/b"),
    ("PUT", "/a/b"),
    ("GET", "/a/zz"),
    ("GET", "/a"),
    ("GET", "/a/"),
    ("GET", "/@ann"),
    ("GET", "/@ann/12"),
    ("GET", "/@ann/x"),
    ("GET", "/"),
    ("GET", "/api/v1/things"),
    ("GET", "/api/v1/things/"),
    ("GET", "/api/v1/things/7"),
    ("GET", "/api/v1/things/7/"),
    ("GET", "/api/v2/things"),
    ("GET", "/media/x.mp4"),
    ("GET", "/media"),
    ("GET", "/x/y/edit"),
    ("GET", "/api/v1/things/7/edit"),
    ("GET", "/nothing/here"),
]


async def test_the_same_answers_as_starlettes_router() -> None:
    plain = Starlette(routes=ROUTES)
    indexed = Starlette(routes=ROUTES)
    index_router(indexed)
    assert isinstance(indexed.router, IndexedRouter)
    answers = []
    for app in (plain, indexed):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t.test") as http:
            got = []
            for method, path in PATHS:
                r = await http.request(method, path, follow_redirects=False)
                got.append((method, path, r.status_code, r.text, r.headers.get("location")))
            answers.append(got)
    assert answers[0] == answers[1]
    found = {(m, p): (status, text) for m, p, status, text, _ in answers[1]}
    assert found["POST", "/a/b"] == (200, "ab {}")
    assert found["GET", "/a/b"] == (200, "ax {'x': 'b'}")  # (the first full match)
    assert found["PUT", "/a/b"][0] == 405
    # (a route filed at the root, for a path under a literal segment)
    assert found["GET", "/api/v1/things/7/edit"] == (200, "edit {'anything': 'api/v1/things/7'}")
    assert found["GET", "/api/v1/things/"][0] == 307  # (starlette's slash redirect, kept)


def test_a_path_is_given_only_routes_that_could_match_it() -> None:
    tree = RouteTree(list(ROUTES))
    for method, path in PATHS:
        candidates = tree.candidates(path)
        scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        matching = [r for r in ROUTES if r.matches(scope)[0] is not Match.NONE]
        assert [r for r in candidates if r in matching] == matching, path
    # (the three under api/v1/things, and the three filed at the root)
    assert len(tree.candidates("/api/v1/things/7")) == 6 < len(ROUTES)


def test_fedisoras_app_tries_a_few_routes_for_an_api_path() -> None:
    settings = load_settings({"FEDISORA_DOMAIN": "fedisora.test", "FEDISORA_DATA_DIR": "/x"})
    app = create_app(settings, run_work=False, manage_db=False)
    assert isinstance(app.router, IndexedRouter)
    routes = app.router.routes
    tree = RouteTree(routes)
    for path in ("/api/v1/timelines/public", "/api/v1/accounts/3/statuses", "/@ann/12"):
        scope = {"type": "http", "method": "GET", "path": path, "root_path": ""}
        first = next(r for r in routes if r.matches(scope)[0] is Match.FULL)
        candidates = tree.candidates(path)
        assert next(r for r in candidates if r.matches(scope)[0] is Match.FULL) is first
        assert len(candidates) < 60 < len(routes)


def test_a_router_with_middleware_of_its_own_is_not_replaced() -> None:
    app = Starlette(routes=ROUTES)
    app.router = Router(routes=ROUTES, middleware=[])
    app.router.middleware_stack = lambda *a: None  # type: ignore[assignment]
    try:
        index_router(app)
    except RuntimeError as e:
        assert "middleware" in str(e)
    else:
        raise AssertionError("replaced a router with middleware of its own")
