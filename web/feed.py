"""The vertical feed (``/`` logged in, ``/explore`` for everyone) and its controls.

Tabs: For You (the viewer's ranked list, :func:`fedisora.for_you.feed.page`, each clip with
its reason in plain words, paged by the list's opaque ``cursor``), Following
(the home timeline's ``TimelineEntry`` rows, as the API's), Local and Federated (public clips
made here / everywhere this instance knows), and Trending on ``/explore``. Each page lists
:data:`FEED_PAGE` clips, newest first, with cursor pagination on ``max_id``: a plain link
without JavaScript, the same URL fetched as a fragment by ``web/static/app.js``.

Progressive enhancement (Takahē style): a request carrying :data:`PARTIAL_HEADER` gets an
HTML fragment (the next page's articles; a re-rendered button) instead of a page; a plain
form POST is answered with a 303 back where it came from (its ``next`` field, else the
``Referer`` path on this site). Like, boost and follow call the same services as the API
(:mod:`fedisora.services.interactions`, :mod:`fedisora.services.follows`) after the same
lookups (:func:`fedisora.api.lookup.get_status`, :func:`~fedisora.api.lookup.get_account`):
a clip the viewer may not see is a 404 exactly as a missing one.

"N new clips": the page's live region follows :func:`stream_new_clips` (``/feed/stream``,
server-sent events; ``web/static/app.js`` opens an ``EventSource``), which subscribes the
browser session to the tab's stream in the streaming hub (:mod:`fedisora.streaming`: the
streaming API's streams and visibility rules, through
:func:`fedisora.api.streaming.open_event_stream`; a browser session holds no OAuth token for
the API itself) and, whenever a clip arrives there, sends the notice of :func:`new_notice`:
the count of clips newer than ``since_id`` by the tab's own query (For You: the new clips
that would enter the viewer's list), so the streamed count and the polled one
(:func:`new_clips`, ``/feed/new``) are the same rule. The page polls every
30 s only where the stream is missing or refused (no ``EventSource``; no hub in the process,
answered 204; over the limit of open streams, 429).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from fedisora.api.lookup import column, get_account, get_status
from fedisora.api.streaming import HEARTBEAT, NotRunning, open_event_stream
from fedisora.api.timelines import trending_clips
from fedisora.api.visibility import public_timeline
from fedisora.boundary import read_form
from fedisora.errors import FedisoraError
from fedisora.fastload import by_ids
from fedisora.for_you import feed as for_you
from fedisora.for_you.candidates import new_candidates as new_for_you
from fedisora.ids import id_for_time, row_id
from fedisora.models import (
    Account,
    Boost,
    Clip,
    Follow,
    FollowState,
    Like,
    TimelineEntry,
    Visibility,
    WebSession,
)
from fedisora.services import follows, interactions
from fedisora.services.instance_settings import effective
from fedisora.services.visibility import without_limited
from fedisora.streaming.channels import Viewer, parse_stream
from fedisora.streaming.hub import Connection, TooManyStreams
from web.clips import ClipCard, clip_cards, max_id_param, session_account
from web.pages import render, templates
from web.sessions import CSRF_FIELD, csrf_matches, current_session

__all__ = [
    "FEED_PAGE",
    "PARTIAL_HEADER",
    "FeedItem",
    "action_form",
    "back_to",
    "feed_items",
    "follow_states",
    "is_partial",
    "routes",
]

FEED_PAGE = 10
"""Clips per page of the vertical feed (each is a full-screen video)."""
NEW_CAP = 20
"""The most "N new" counts ("20+ new clips")."""
PARTIAL_HEADER = "x-fedisora-partial"
"""Sent by app.js: answer with the fragment, not the page."""
CSRF_HEADER = "x-csrf-token"

HOME_TABS = {
    "foryou": "For You",
    "following": "Following",
    "local": "Local",
    "federated": "Federated",
}
EXPLORE_TABS = {"local": "Local", "federated": "Federated", "trending": "Trending"}


@dataclass(frozen=True)
class FeedItem:
    """One clip of the vertical feed (``_reel.html``) with the viewer's state."""

    card: ClipCard
    liked: bool = False
    boosted: bool = False
    follow: str | None = None
    """The viewer's follow of the author: "none", "following", "requested", "self"; None for
    a visitor."""
    reason: str | None = None
    """Why For You shows it, in plain words (None on other tabs)."""

    @property
    def shown_reason(self) -> str | None:
        """The reason as a sentence ("Because you liked 3 clips by @ann")."""
        return self.reason[:1].upper() + self.reason[1:] if self.reason else None

    @property
    def clip(self) -> Clip:
        return self.card.clip

    @property
    def author(self) -> Account:
        return self.card.author

    @property
    def href(self) -> str | None:
        """The clip's page (here for a local clip, on its instance for a remote one)."""
        return self.card.page_href or self.card.origin_href

    @property
    def boostable(self) -> bool:
        return self.clip.visibility in (Visibility.PUBLIC, Visibility.UNLISTED)

    @property
    def alt(self) -> str:
        """The video's text alternative: the author's description, else its caption."""
        described = (self.card.media.description or "") if self.card.media else ""
        text = described.strip() or self.clip.caption.strip()
        return f"AI-generated video: {text[:300]}" if text else "AI-generated video"


async def feed_items(
    viewer: Account | None, cards: Sequence[ClipCard], reasons: dict[int, str] | None = None
) -> list[FeedItem]:
    """*cards* with whether *viewer* liked and boosted each clip and follows each author (and
    For You's *reasons*, by clip id)."""
    why = reasons or {}
    if viewer is None or not cards:
        return [FeedItem(card, reason=why.get(card.clip.pk)) for card in cards]
    ids = [c.clip.pk for c in cards]
    follow = await follow_states(viewer, [c.author.pk for c in cards])
    liked = set(
        await column(
            Like.filter(account_id=viewer.pk, target_key__in=[f"clip:{i}" for i in ids]),
            "clip_id",
        )
    )
    boosted = set(await column(Boost.filter(account_id=viewer.pk, clip_id__in=ids), "clip_id"))
    return [
        FeedItem(
            card,
            card.clip.pk in liked,
            card.clip.pk in boosted,
            follow[card.author.pk],
            why.get(card.clip.pk),
        )
        for card in cards
    ]


async def follow_states(viewer: Account | None, account_ids: Sequence[int]) -> dict[int, str]:
    """The viewer's follow of each account: "self", "none", "following" or "requested" (what
    ``_follow.html`` shows); empty for a visitor."""
    if viewer is None:
        return {}
    states = {
        f.target_id: f.state
        for f in await Follow.filter(follower_id=viewer.pk, target_id__in=list(set(account_ids)))
    }
    found = {}
    for account_id in account_ids:
        if account_id == viewer.pk:
            found[account_id] = "self"
        elif account_id not in states:
            found[account_id] = "none"
        else:
            accepted = states[account_id] == FollowState.ACCEPTED
            found[account_id] = "following" if accepted else "requested"
    return found


def is_partial(request: Request) -> bool:
    return request.headers.get(PARTIAL_HEADER) == "1"


# --- the tabs -------------------------------------------------------------------------------


@dataclass
class _Page:
    clips: list[Clip]
    boosters: list[int | None]
    older: int | None
    cursor: str | None = None
    """For You: where its next page starts (its list has no ``max_id``)."""
    reasons: dict[int, str] = field(default_factory=dict)
    checked_with: frozenset[int] | None = None
    """For You: who-may-see was asked of the clips with these hidden accounts (not again)."""
    authors: dict[int, Account] = field(default_factory=dict)
    """Account rows read already, by id."""


async def _public(
    viewer: Account | None, max_id: int | None, *, local: bool, since_id: int | None = None
) -> _Page:
    query = Clip.filter(visibility=Visibility.PUBLIC, deleted_at=None)
    if local:
        query = query.filter(local=True)
    else:
        query = await public_timeline(query)  # silenced and suspended domains left out
    query = await without_limited(query, viewer)  # silenced accounts: followers only
    if max_id is not None:
        query = query.filter(id__lt=max_id)
    if since_id is not None:
        query = query.filter(id__gt=since_id)
    rows = await query.order_by("-id").limit(FEED_PAGE)
    return _Page(rows, [None] * len(rows), rows[-1].pk if len(rows) == FEED_PAGE else None)


async def _following(me: Account, max_id: int | None, since_id: int | None = None) -> _Page:
    query = TimelineEntry.filter(owner_id=me.pk)
    if max_id is not None:
        query = query.filter(clip_id__lt=max_id)
    if since_id is not None:
        query = query.filter(clip_id__gt=since_id)
    entries = await query.order_by("-clip_id").limit(FEED_PAGE)
    clips = {c.pk: c for c in await by_ids(Clip, [e.clip_id for e in entries])}
    kept = [e for e in entries if e.clip_id in clips]
    older = entries[-1].clip_id if len(entries) == FEED_PAGE else None
    return _Page([clips[e.clip_id] for e in kept], [e.boosted_by_id for e in kept], older)


async def _for_you(viewer: Account, cursor: str | None, secret: str) -> _Page:
    """A page of the viewer's For You list; a bad cursor is a 400 page."""
    try:
        found = await for_you.page(viewer, cursor, FEED_PAGE, secret=secret)
    except for_you.BadCursor as exc:
        raise HTTPException(400, exc.message) from None
    clips = [item.clip for item in found.items]
    reasons = {item.clip.pk: item.reason for item in found.items}
    return _Page(
        clips, [None] * len(clips), None, found.next_cursor, reasons, found.hidden, found.authors
    )


async def _tab_page(
    tab: str,
    viewer: Account | None,
    max_id: int | None,
    since_id: int | None = None,
    *,
    cursor: str | None = None,
    secret: str = "",
) -> _Page:
    if tab == "foryou" and viewer is not None and since_id is None:
        return await _for_you(viewer, cursor, secret)
    if tab == "following" and viewer is not None:
        return await _following(viewer, max_id, since_id)
    if tab == "federated":
        return await _public(viewer, max_id, local=False, since_id=since_id)
    if tab == "trending":
        if max_id is not None or since_id is not None:
            return _Page([], [], None)  # one ranked page: it has no cursor
        rows = await trending_clips(viewer, 0, FEED_PAGE)
        return _Page(rows, [None] * len(rows), None)
    return await _public(viewer, max_id, local=True, since_id=since_id)


def _tab(request: Request, tabs: dict[str, str], default: str) -> str:
    tab = request.query_params.get("tab") or default
    if tab not in tabs:
        raise HTTPException(404, f"There is no feed tab {tab!r}; try {', '.join(tabs)}.")
    return tab


def _since_param(request: Request) -> int | None:
    raw = request.query_params.get("since_id", "")
    if raw == "":
        return None
    found = row_id(raw)
    if found is None:
        raise HTTPException(400, "since_id must be the id of a clip (a whole number).")
    return found


async def _feed_response(
    request: Request, *, base: str, tabs: dict[str, str], tab: str, viewer: Account | None
) -> Response:
    max_id = max_id_param(request)
    cursor = request.query_params.get("cursor") or None
    secret = request.app.state.settings.secret_key
    page = await _tab_page(tab, viewer, max_id, cursor=cursor, secret=secret)
    cards = await clip_cards(
        viewer, page.clips, page.boosters, authors=page.authors, checked_with=page.checked_with
    )
    items = await feed_items(viewer, cards, page.reasons)
    older_href = None
    if page.older is not None:
        older_href = f"{base}?{urlencode({'tab': tab, 'max_id': page.older})}"
    elif page.cursor is not None and page.clips:
        older_href = f"{base}?{urlencode({'tab': tab, 'cursor': page.cursor})}"
    newest = max((c.pk for c in page.clips), default=None)
    if tab == "foryou" and viewer is not None:
        newest = id_for_time(int(time.time() * 1000))  # (new: arrived after this page)
    context: dict[str, Any] = {
        "items": items,
        "older_href": older_href,
        "tab": tab,
        "base": base,
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    }
    if is_partial(request):
        response: Response = render(request, "_reel_page.html", **context)
    else:
        poll = stream = None
        if max_id is None and cursor is None and tab != "trending":
            since = urlencode({"tab": tab, "since_id": newest or 0})
            poll, stream = f"/feed/new?{since}", f"/feed/stream?{since}"
        response = render(
            request,
            "timeline.html",
            tabs=[(key, label, f"{base}?{urlencode({'tab': key})}") for key, label in tabs.items()],
            tab_label=tabs[tab],
            max_id=max_id,
            poll_href=poll,
            stream_href=stream,
            first_href=f"{base}?{urlencode({'tab': tab})}",
            **context,
        )
    response.headers["Vary"] = "Accept, X-Fedisora-Partial"
    return response


async def home(request: Request) -> Response:
    """``/``: the logged-in user's feed (For You first); a visitor's is :func:`explore`."""
    viewer = await session_account(request)
    if viewer is None:
        return await _feed_response(
            request,
            base="/explore",
            tabs=EXPLORE_TABS,
            tab=_tab(request, EXPLORE_TABS, "local"),
            viewer=None,
        )
    return await _feed_response(
        request, base="/", tabs=HOME_TABS, tab=_tab(request, HOME_TABS, "foryou"), viewer=viewer
    )


async def explore(request: Request) -> Response:
    """``/explore``: public clips, for visitors and logged-in users alike."""
    viewer = await session_account(request)
    tab = _tab(request, EXPLORE_TABS, "local")
    return await _feed_response(request, base="/explore", tabs=EXPLORE_TABS, tab=tab, viewer=viewer)


def _new_tab(request: Request, viewer: Account | None) -> str:
    """The tab whose new clips are counted: one of the viewer's tabs (a visitor asking for
    a logged-in tab gets Local); an unknown tab is a 404."""
    tab = _tab(request, {**HOME_TABS, **EXPLORE_TABS}, "local")
    tabs = HOME_TABS if viewer is not None else EXPLORE_TABS
    return tab if tab in tabs else "local"


async def new_notice(viewer: Account | None, tab: str, since: int | None) -> str:
    """The "N new clips" fragment: how many clips newer than *since* *viewer* may see on
    *tab* (the tab's own query and card rules), empty when none. The one count of both
    :func:`new_clips` (polled) and :func:`stream_new_clips` (streamed). For You counts the
    clips that would enter the viewer's list
    (:func:`fedisora.for_you.candidates.new_candidates`); its page's *since* is the id of
    the time it was made (its clips are ranked, not the newest)."""
    if tab == "foryou" and viewer is not None:
        # The clips that would enter the viewer's list (its candidate sources and rules).
        found = await new_for_you(viewer, since or 0, NEW_CAP + 1)
        more = len(found) > NEW_CAP
        page = _Page(found[:NEW_CAP], [None] * min(len(found), NEW_CAP), 1 if more else None)
    else:
        page = await _tab_page(tab, viewer, None, since or 0)
    cards = await clip_cards(viewer, page.clips[:NEW_CAP], page.boosters[:NEW_CAP])
    base = "/" if viewer is not None else "/explore"
    count = len(cards)
    return templates.get_template("_new_clips.html").render(
        count=count,
        label=f"{count}{'+' if page.older is not None else ''}",
        href=f"{base}?{urlencode({'tab': tab})}",
    )


async def new_clips(request: Request) -> Response:
    """``/feed/new?tab=&since_id=``: how many clips newer than *since_id* the viewer may see
    on that tab, as the fragment of the page's "N new" live region (empty when none)."""
    viewer = await session_account(request)
    tab = _new_tab(request, viewer)
    since = _since_param(request)
    response = HTMLResponse(await new_notice(viewer, tab, since))
    response.headers["Cache-Control"] = "no-store"
    return response


# --- "N new" streamed ---------------------------------------------------------------------

TAB_STREAMS = {
    "following": "user",
    "foryou": "public",  # (For You lists local and remote clips)
    "local": "public:local",
    "federated": "public",
}
"""The streaming API's stream whose messages may change a tab's "N new" count (Trending is
one ranked page: nothing is ever new there)."""
SESSION_SCOPES = ("read",)
"""What a browser session reads through the hub (its own pages show all it may read)."""
STREAM_LIFETIME = 600.0
"""Seconds a "N new" stream stays open; then it ends and the browser's EventSource opens a
new one (a bound on what a stream holds: its viewer, read when it opened)."""
STREAMS_PER_SESSION = 4
"""Open "N new" streams per browser session and web process: each holds one of the
browser's few connections to this site (six over HTTP/1.1); a tab over the limit polls."""
RETRY_MS = 5000
"""How long the browser waits before reopening a stream that ended."""
RECOUNT_ON = frozenset({"update", "delete"})
"""Stream messages that may change the count (a new clip or boost, a deleted clip)."""
RECOUNT_EVERY = 3.0
"""Seconds at least between two counts of one stream: a count is a page's queries (For You's:
its candidate sources), and a busy federated timeline brings a message every moment; the
messages of the wait are counted together, at most this late."""

_session_streams: Counter[int] = Counter()


def _sse(event: str, html: str) -> str:
    """One server-sent event whose data is *html* (one ``data:`` line per line of it)."""
    lines = html.split("\n") if html else [""]
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


async def _new_clip_events(
    conn: Connection, viewer: Account | None, session_id: int | None, tab: str, since: int | None
) -> AsyncIterator[str]:
    """The "N new" stream's text: the notice when the stream opens if it is not empty, then
    again whenever a message of the tab's stream changes it; a comment every
    :data:`HEARTBEAT` seconds; the end after :data:`STREAM_LIFETIME` seconds, when the hub
    closes the connection, or when the session is over (it logged out). Counts are at least
    :data:`RECOUNT_EVERY` seconds apart."""
    yield f"retry: {RETRY_MS}\n\n"
    deadline = time.monotonic() + STREAM_LIFETIME
    shown = ""
    recount = True
    counted = -math.inf  # when the last count began
    while True:
        now = time.monotonic()
        if recount and now - counted >= RECOUNT_EVERY:
            recount, counted = False, now
            if session_id is not None and not await WebSession.filter(pk=session_id).exists():
                return
            notice = await new_notice(viewer, tab, since)
            if notice != shown:
                shown = notice
                yield _sse("new", notice)
        now = time.monotonic()
        left = deadline - now
        if left <= 0:
            return
        heartbeat = min(HEARTBEAT, left)
        wait = min(heartbeat, counted + RECOUNT_EVERY - now) if recount else heartbeat
        batch = await conn.receive(max(wait, 0.0))
        if batch is None:
            return
        if not batch and wait >= heartbeat:
            yield ":thump\n\n"
        recount = recount or any(m.event in RECOUNT_ON for m in batch)


async def stream_new_clips(request: Request) -> Response:
    """``/feed/stream?tab=&since_id=``: the "N new" notice of :func:`new_clips` as
    server-sent events (``event: new``, its data the fragment), recounted when the tab's
    stream in the streaming hub (:data:`TAB_STREAMS`, subscribed with the streaming API's
    rules) has a new clip for the viewer. 204 (the browser's EventSource then stops, and
    app.js polls :func:`new_clips`) when there is nothing to stream: the Trending tab, or no
    hub in this process; 429 over the limits of open streams (per address, as the streaming
    API's, and :data:`STREAMS_PER_SESSION`)."""
    live = current_session(request)
    viewer = live.account if live is not None else None
    tab = _new_tab(request, viewer)
    since = _since_param(request)
    if tab not in TAB_STREAMS:
        return Response(status_code=204, headers={"Cache-Control": "no-store"})
    session_id = live.session.pk if live is not None else None
    if session_id is not None and _session_streams[session_id] >= STREAMS_PER_SESSION:
        return _too_many(request, "Too many open streams for this session")
    who = Viewer(viewer, SESSION_SCOPES if viewer is not None else ())
    stream = parse_stream(who, TAB_STREAMS[tab])

    def content(conn: Connection) -> AsyncIterator[str]:
        return _new_clip_events(conn, viewer, session_id, tab, since)

    def release() -> None:
        if session_id is not None:
            _session_streams[session_id] -= 1
            if _session_streams[session_id] <= 0:
                del _session_streams[session_id]

    try:
        response = open_event_stream(request, who, [stream], content, on_close=release)
    except NotRunning:
        return Response(status_code=204, headers={"Cache-Control": "no-store"})
    except TooManyStreams as exc:
        return _too_many(request, exc.message)
    if session_id is not None:
        _session_streams[session_id] += 1
    return response


def _too_many(request: Request, message: str) -> Response:
    response = render(request, "error.html", status=429, status_code=429, message=message)
    response.headers["Retry-After"] = "60"
    return response


# --- like, boost, follow ----------------------------------------------------------------------


def back_to(request: Request, form: FormData, anchor: str = "") -> str:
    """Where a plain form POST returns: its ``next`` field, else the Referer's path when it
    is this site, else the home page; *anchor* is added (the clip the form was on)."""
    from web.routes import _local_target

    target = form.get("next")
    if not isinstance(target, str) or not target:
        referer = request.headers.get("referer", "")
        parts = urlsplit(referer)
        here = request.url
        if referer and parts.netloc == here.netloc and parts.scheme == here.scheme:
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        else:
            target = "/"
    target = _local_target(target).split("#", 1)[0]
    return target + anchor


def _refusal(request: Request, status: int, message: str) -> Response:
    """A refused action: the message as a fragment (app.js shows it) or as the error page."""
    if is_partial(request):
        return render(request, "_flash.html", status=status, message=message)
    return render(request, "error.html", status=status, status_code=status, message=message)


async def action_form(request: Request) -> tuple[Account | None, FormData, Response | None]:
    """The acting account and the form, or the response that refuses the action."""
    form = await read_form(request)
    sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    me = await session_account(request)
    if me is None:
        target = back_to(request, form)
        login = f"/login?{urlencode({'next': target})}"
        return None, form, RedirectResponse(login, status_code=303)
    if not csrf_matches(request, sent):
        message = "The form expired or did not come from this site; reload the page and try again."
        return me, form, _refusal(request, 403, message)
    return me, form, None


def _path_id(request: Request, name: str) -> int:
    found = row_id(str(request.path_params[name]))
    if found is None:
        raise HTTPException(404, "There is no such clip or account here.")
    return found


_CLIP_SERVICES: dict[str, Callable[[Account, Clip], Awaitable[object]]] = {
    "like": interactions.like,
    "unlike": interactions.unlike,
    "boost": interactions.boost,
    "unboost": interactions.unboost,
}
_ACCOUNT_SERVICES: dict[str, Callable[[Account, Account], Awaitable[object]]] = {
    "follow": follows.follow,
    "unfollow": follows.unfollow,
    "block": follows.block,
    "unblock": follows.unblock,
    "mute": follows.mute,
    "unmute": follows.unmute,
}


async def _clip_action(request: Request, action: str) -> Response:
    me, form, refused = await action_form(request)
    if refused is not None:
        return refused
    assert me is not None
    try:
        status = await get_status(me, _path_id(request, "clip_id"))
        if not isinstance(status, Clip):
            raise HTTPException(404, "Only clips can be liked or boosted here.")
        await _CLIP_SERVICES[action](me, status)
    except FedisoraError as exc:
        return _refusal(request, exc.status, exc.message)
    except HTTPException as exc:
        return _refusal(request, exc.status_code, str(exc.detail))
    if not is_partial(request):
        return RedirectResponse(back_to(request, form, f"#clip-{status.pk}"), status_code=303)
    fresh = await Clip.get(pk=status.pk)
    cards = await clip_cards(me, [fresh], mutes=False)
    if not cards:  # pragma: no cover - it was visible a moment ago
        return _refusal(request, 404, "That clip is no longer visible.")
    item = (await feed_items(me, cards))[0]
    template = "_like.html" if action in ("like", "unlike") else "_boost.html"
    return render(request, template, item=item, here=back_to(request, form))


async def _account_action(request: Request, action: str) -> Response:
    """Follow, block or mute an account, or undo it. A fetched follow form gets the
    re-rendered button; everything else goes back where it came from."""
    me, form, refused = await action_form(request)
    if refused is not None:
        return refused
    assert me is not None
    try:
        target = await get_account(_path_id(request, "account_id"))
        await _ACCOUNT_SERVICES[action](me, target)
    except FedisoraError as exc:
        return _refusal(request, exc.status, exc.message)
    if action not in FOLLOW_ACTIONS or not is_partial(request):
        return RedirectResponse(back_to(request, form), status_code=303)
    state = (await follow_states(me, [target.pk]))[target.pk]
    return render(request, "_follow.html", author=target, follow=state, here=back_to(request, form))


Action = Callable[[Request, str], Awaitable[Response]]

CLIP_ACTIONS = tuple(_CLIP_SERVICES)
ACCOUNT_ACTIONS = tuple(_ACCOUNT_SERVICES)
FOLLOW_ACTIONS = ("follow", "unfollow")


def _action_route(path: str, handler: Action, action: str) -> Route:
    """``POST path/<action>``, answered by *handler* for *action*."""

    async def endpoint(request: Request) -> Response:
        return await handler(request, action)

    endpoint.__name__ = action
    return Route(f"{path}/{action}", endpoint, methods=["POST"])


# --- the installable app ------------------------------------------------------------------


async def manifest(request: Request) -> Response:
    """The PWA manifest: the instance as an installable app."""
    settings = request.app.state.settings
    name = (await effective(settings)).instance_name
    body = {
        "name": name,
        "short_name": name[:12],
        "description": f"AI short videos on {settings.domain}, part of the fediverse",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#0b0b0f",
        "theme_color": "#0b0b0f",
        "icons": [
            {"src": "/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png"},
            {
                "src": "/static/icons/icon-maskable-512.png",
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "maskable",
            },
            {"src": "/static/icons/icon.svg", "sizes": "any", "type": "image/svg+xml"},
        ],
    }
    return JSONResponse(body, media_type="application/manifest+json")


def routes() -> list[BaseRoute]:
    return [
        Route("/explore", explore),
        Route("/feed/new", new_clips),
        Route("/feed/stream", stream_new_clips),
        *(_action_route("/clips/{clip_id}", _clip_action, a) for a in CLIP_ACTIONS),
        *(_action_route("/accounts/{account_id}", _account_action, a) for a in ACCOUNT_ACTIONS),
        Route("/manifest.webmanifest", manifest),
    ]
