"""Public profile pages of local accounts.

A browser gets the profile at the actor's URL ``/users/<name>`` (ActivityPub clients get the
actor there: :mod:`fedisora.federation.routes` hands the browser branch to
:func:`profile_page`) and at ``/@<name>``, the profile URL the actor and WebFinger publish.

The profile shows the clips as a grid of posters (each linking to its clip page, where the
video plays), with tabs for the account's remixes (``/@<name>/remixes``: its clips that remix
another clip), followers and following (``/@<name>/followers``, ``/@<name>/following``:
accepted follows only, as :func:`fedisora.services.follows.network_page` lists them for the
API too; nothing to a viewer blocked either way).

The clips listed are those the viewer (the session's account, anonymous when logged out) may
see, as Mastodon's profiles list them: public and unlisted for everyone, followers-only for
accepted followers, direct and followers-only ones for those they mention, all for the author;
nothing for an account blocked either way. The query narrows by those rules and
:func:`web.clips.clip_cards` (the API's batch rules) decides.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from tortoise.queryset import QuerySet

from fedisora import urls
from fedisora.fastload import prepared_one
from fedisora.ids import row_id
from fedisora.models import Account, Block, Clip, Mute
from fedisora.negotiation import wants_activity
from fedisora.services.account_deletion import is_deleted
from fedisora.services.accounts import INSTANCE_ACTOR, could_name_local
from fedisora.services.follows import network_page
from fedisora.services.text import render_html
from fedisora.services.visibility import account_clips_visible_to
from web.clips import PAGE, author_href, clip_cards, max_id_param, profile_path, session_account
from web.feed import follow_states
from web.opengraph import handle, profile_meta
from web.pages import html_errors, own_url, render

__all__ = [
    "NETWORK_PAGE",
    "find_local",
    "instance_actor_page",
    "profile_page",
    "profile_page_with",
    "refuse_unavailable",
    "routes",
]


def _local_named(username: str) -> QuerySet[Account]:
    return Account.filter(username__iexact=username, domain=None)


async def find_local(username: str) -> Account:
    """The local account named *username* (any case), suspended and deleted ones included;
    a 404 when there is none (the instance actor has its page at ``/actor``)."""
    if not could_name_local(username):
        raise HTTPException(404, "There is no such account here.")
    account = None
    if username.lower() != INSTANCE_ACTOR:
        account = await prepared_one("find_local", Account, _local_named, username)
    if account is None:
        raise HTTPException(404, f"There is no account @{username} here.")
    return account


async def refuse_unavailable(account: Account) -> None:
    """410 for a deleted account (its name stays taken), 403 for a suspended one: as
    Mastodon answers browsers (ActivityPub clients get the tombstone or suspended actor)."""
    if account.suspended_at is None:
        return
    if await is_deleted(account):
        raise HTTPException(410, f"@{account.username} was deleted.")
    raise HTTPException(403, f"@{account.username} is suspended by this instance's moderators.")


NETWORK_PAGE = 40
"""Accounts a followers or following page lists (the API's default page)."""


def _profile_context(request: Request, account: Account, tab: str) -> dict[str, Any]:
    """What every tab of a profile shows above its list: the card, the tabs."""
    settings = request.app.state.settings
    u = urls.current()
    bio = render_html(account.note, tag_url=u.tag, mention_url=lambda _u, _d: None)
    return {
        "account": account,
        "handle": handle(account, settings),
        "bio_html": Markup(bio),
        "avatar": own_url(account.avatar_url),  # an upload here (a remote one would not load)
        "base_path": profile_path(account),
        "tab": tab,
        "meta": profile_meta(account, settings),
    }


async def _relation(viewer: Account | None, account: Account) -> dict[str, Any]:
    """The viewer's follow, block and mute of the profile's *account* (its card's buttons),
    and asking for their likeness (:func:`web.likeness_settings.cameo_context`)."""
    from web.likeness_settings import cameo_context  # it imports this module's find_local

    cameo = await cameo_context(viewer, account)
    if viewer is None or viewer.pk == account.pk:
        return {"follow": None, "blocking": False, "muting": False, **cameo}
    return {
        "follow": (await follow_states(viewer, [account.pk]))[account.pk],
        "blocking": await Block.filter(account_id=viewer.pk, target_id=account.pk).exists(),
        "muting": await Mute.filter(account_id=viewer.pk, target_id=account.pk).exists(),
        **cameo,
    }


async def profile_page_with(
    request: Request, username: str, *, status: int = 200, **extra: Any
) -> Response:
    """The profile's clips tab with *extra* context (the answer of a cameo request sent
    from it: :func:`web.likeness_settings.request_cameo`), as a page of its own."""
    return await _clip_tab(request, username, remixes=False, status=status, extra=extra)


async def _clip_tab(
    request: Request,
    username: str,
    *,
    remixes: bool,
    status: int = 200,
    extra: dict[str, Any] | None = None,
) -> Response:
    account = await find_local(username)
    await refuse_unavailable(account)
    max_id = max_id_param(request)
    viewer = await session_account(request)
    rows: list[Clip] = []
    query = await account_clips_visible_to(viewer, account)
    if query is not None:
        if remixes:
            query = query.filter(remix_of_id__isnull=False)
        if max_id is not None:
            query = query.filter(id__lt=max_id)
        rows = await query.order_by("-id").limit(PAGE)
    context = _profile_context(request, account, "remixes" if remixes else "clips")
    context.update(await _relation(viewer, account))
    here = context["base_path"] + ("/remixes" if remixes else "")
    return render(
        request,
        "profile.html",
        status=status,
        **context,
        **(extra or {}),
        cards=await clip_cards(viewer, rows, mutes=False),
        here=here,
        max_id=max_id,
        older=rows[-1].pk if len(rows) == PAGE else None,
    )


@html_errors
async def profile_page(request: Request, username: str) -> Response:
    return await _clip_tab(request, username, remixes=False)


@html_errors
async def remixes_page(request: Request) -> Response:
    return await _clip_tab(request, str(request.path_params["username"]), remixes=True)


def _follow_cursor(request: Request) -> int | None:
    raw = request.query_params.get("max_id", "")
    if raw == "":
        return None
    found = row_id(raw)
    if found is None:
        raise HTTPException(400, "max_id must be a whole number (the page's cursor).")
    return found


async def _network(request: Request, *, followers: bool) -> Response:
    tab = "followers" if followers else "following"
    username = str(request.path_params["username"])
    if wants_activity(request) and could_name_local(username):  # the collection, for servers
        return RedirectResponse(
            f"{urls.current().actor(username)}/{tab}", status_code=302, headers={"Vary": "Accept"}
        )
    account = await find_local(username)
    await refuse_unavailable(account)
    max_id = _follow_cursor(request)
    viewer = await session_account(request)
    found = await network_page(
        viewer, account, followers=followers, limit=NETWORK_PAGE, max_id=max_id
    )
    context = _profile_context(request, account, tab)
    context.update(await _relation(viewer, account))
    return render(
        request,
        "profile_network.html",
        **context,
        follows=await follow_states(viewer, [a.pk for a in found.accounts]),
        here=f"{context['base_path']}/{tab}",
        people=[
            (a, author_href(a), own_url(a.avatar_url) if a.local else None) for a in found.accounts
        ],
        hidden=found.hidden,
        max_id=max_id,
        older=found.rows[-1].pk if len(found.rows) == NETWORK_PAGE else None,
    )


@html_errors
async def followers_page(request: Request) -> Response:
    return await _network(request, followers=True)


@html_errors
async def following_page(request: Request) -> Response:
    return await _network(request, followers=False)


def instance_actor_page(request: Request, account: Account) -> Response:
    """What a browser gets at ``/actor``: the instance actor signs this server's requests."""
    response = render(request, "instance_actor.html", account=account)
    response.headers["Vary"] = "Accept"
    return response


async def profile_at(request: Request) -> Response:
    """``/@<name>``: the profile page; ActivityPub clients are sent to the actor."""
    username = str(request.path_params["username"])
    if wants_activity(request):
        if not could_name_local(username):
            return JSONResponse({"error": "no such actor"}, 404, headers={"Vary": "Accept"})
        return RedirectResponse(
            urls.current().actor(username), status_code=302, headers={"Vary": "Accept"}
        )
    return await profile_page(request, username)


def routes() -> list[BaseRoute]:
    return [
        Route("/@{username}", profile_at),
        # before the clip pages' /@{username}/{clip_id} (web.clip_pages)
        Route("/@{username}/followers", followers_page),
        Route("/@{username}/following", following_page),
        Route("/@{username}/remixes", remixes_page),
    ]
