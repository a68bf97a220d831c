"""A router that tries only the routes whose literal path a request's path can match.

Starlette's router tries each route in order with its regular expression; fedisora has over
two hundred routes, and a request for one near the end (every API call) paid for two
hundred matches: about a tenth of a timeline page's CPU (issue 20, point 6).

A route's expression starts with the literal part of its path (up to its first ``{``), so a
route whose literal part holds whole segments (``/api/v1/timelines/...``) can only match
paths that start with those segments. :class:`IndexedRouter` files each route under its
whole literal segments in a tree (``api`` > ``v1`` > ``timelines``), walks a request's
segments down that tree, and tries the routes filed on the way, in their order: routes
without a whole literal segment (``/@{name}``, ``/{path}``) are filed at the root and so
tried for every path. The first full match among them is the first full match among all
routes, since no other route can match: what starlette would run. A request none of them
fully matches (a 404, a 405, a slash redirect) goes through starlette's own loop.

Hand-rolled: starlette has no indexed router, and regrouping the routes under ``Mount``
would rename every route and change ``root_path`` for their handlers.
"""

from __future__ import annotations

from starlette._utils import get_route_path
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Match, Mount, Route, Router, WebSocketRoute
from starlette.types import Receive, Scope, Send

__all__ = ["IndexedRouter", "RouteTree", "index_router", "literal_prefix"]


def literal_prefix(route: BaseRoute) -> str:
    """The part every path *route* matches starts with ('' when it could be anything)."""
    if not isinstance(route, Route | Mount | WebSocketRoute):
        return ""
    path_format = route.path_format
    if not path_format.startswith("/"):
        return ""
    return path_format.split("{", 1)[0]


def _whole_segments(route: BaseRoute) -> list[str]:
    """The segments every path *route* matches starts with, whole: all of a path without
    parameters (``/api/v1/apps``), those before the first parameter's segment otherwise
    (``api``, ``v1`` and ``accounts`` of ``/api/v1/accounts/{id}``)."""
    prefix = literal_prefix(route)
    if not prefix:
        return []
    segments = prefix[1:].split("/")
    if isinstance(route, Route | WebSocketRoute) and "{" not in route.path_format:
        return segments
    return segments[:-1]


class RouteTree:
    """Routes filed under their whole literal segments; :meth:`candidates` gives, for a
    path, the routes it can match, in their order."""

    def __init__(self, routes: list[BaseRoute]) -> None:
        self.size = len(routes)
        # A node: (children by segment, positions of the routes filed here).
        root: tuple[dict[str, object], list[int]] = ({}, [])
        for position, route in enumerate(routes):
            node = root
            for segment in _whole_segments(route):
                children = node[0]
                node = children.setdefault(segment, ({}, []))  # type: ignore[assignment]
            node[1].append(position)
        self._root = root
        self._routes = routes
        self._lists: dict[int, list[BaseRoute]] = {}

    def candidates(self, path: str) -> list[BaseRoute]:
        node = self._root
        trail = [node]
        for segment in path[1:].split("/"):
            child = node[0].get(segment)
            if child is None:
                break
            node = child  # type: ignore[assignment]
            trail.append(node)
        found = self._lists.get(id(node))
        if found is None:  # (one list per node of the tree: bounded by the routes)
            positions = sorted(p for step in trail for p in step[1])
            found = self._lists[id(node)] = [self._routes[p] for p in positions]
        return found


class IndexedRouter(Router):
    """starlette's :class:`~starlette.routing.Router`, trying only the routes a path can
    match (see the module's docstring)."""

    _tree: RouteTree | None = None

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            tree = self._tree
            if tree is None or tree.size != len(self.routes):
                tree = self._tree = RouteTree(self.routes)
            for route in tree.candidates(get_route_path(scope)):
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    if "router" not in scope:
                        scope["router"] = self
                    scope["route"] = route
                    scope.update(child_scope)
                    await route.handle(scope, receive, send)
                    return
        await super().app(scope, receive, send)  # (the rest: starlette's own loop)


def index_router(app: Starlette) -> None:
    """Make *app*'s router an :class:`IndexedRouter` (the same object and routes: only how
    it finds a route changes). Starlette's ``Router`` keeps its own ``app`` method as its
    innermost handler when made; that is replaced too."""
    router = app.router
    if router.middleware_stack != router.app:  # (router middleware: nothing to replace)
        raise RuntimeError("the router has middleware of its own; it cannot be indexed")
    router.__class__ = IndexedRouter
    router.middleware_stack = router.app
