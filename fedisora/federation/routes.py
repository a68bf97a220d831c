"""HTTP endpoints of federation: discovery, actors, objects, collections and inboxes.

Inbox POSTs are checked in this order, each failure answered at once with nothing stored:
a domain block (403: the host of the signature's ``keyId`` is suspended by this instance, or
not allowed in limited federation; checked before the body is read or any signature work,
and counted, :func:`fedisora.services.domain_blocks.count_refusal`), size (413), a signature
at all (401), JSON shape (400), the actor's host blocked (403, as the key's), signature
(400 malformed / 401 bad),
an object integrity proof when the activity carries one (FEP-8b32 ``eddsa-jcs-2022``, by a
key of the actor: 401 with the reason when it does not hold, whoever signed the request),
signer is the activity's actor or the activity is proven by it (a forwarded activity: 401
otherwise; proven by an FEP-8b32 proof, or by Mastodon's ``RsaSignature2017`` Linked Data
signature of the actor, 401 with the reason when it does not hold; a forwarded ``Create``
without either is taken by its object's id alone, fetched from the actor's host), the
actor's and its host's held activities under their caps (429,
:mod:`fedisora.federation.inbox_limits`). A passing activity is stored as an
:class:`~fedisora.models.InboxItem` (unique by activity id, so a redelivery has no second
effect) and answered 202; the InboxItem machine (:mod:`fedisora.federation.inbox`)
processes it later. One exception: from an actor suspended here only what removes or updates
its own things is stored (:func:`~fedisora.federation.ingest.kept_while_suspended`); the
rest is answered 202 too and dropped, so that its server does not retry it for days.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from importlib import metadata
from typing import Any
from urllib.parse import quote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from activitypub import objects
from activitypub.errors import ProofError, SignatureError, UnknownKey
from activitypub.signatures.request import Headers
from fedisora import ratelimits, urls, usage
from fedisora.boundary import MAX_PEER_DEPTH, InputRefused, parse_json
from fedisora.boundary.limits import INBOX_BODY_LIMIT
from fedisora.config import Settings
from fedisora.federation import likeness, media_proxy
from fedisora.federation import provenance_root as root
from fedisora.federation.actors import ActorError, domain_of, fetch_actor
from fedisora.federation.context import Federation, get_federation
from fedisora.federation.http import FetchError
from fedisora.federation.inbox import INBOX_GRAPH
from fedisora.federation.inbox_limits import RETRY_AFTER, limits_for
from fedisora.federation.ingest import kept_while_suspended
from fedisora.federation.quote_stamps import quote_stamp, quoting_uri_of
from fedisora.federation.render import (
    actor_document,
    clip_note,
    clip_video,
    comment_note,
    iso,
)
from fedisora.federation.rows import insert_grouped
from fedisora.federation.verify import (
    UNKNOWN_KEY,
    signed_request,
    verify_ld_signature_of,
    verify_proof_of,
    verify_signer,
)
from fedisora.ids import row_id
from fedisora.models import (
    Account,
    Clip,
    Comment,
    InboxItem,
    User,
    Visibility,
    utcnow,
)
from fedisora.negotiation import object_pages, wants_activity, wants_page
from fedisora.services import domain_blocks
from fedisora.services.account_deletion import is_deleted
from fedisora.services.accounts import INSTANCE_ACTOR, could_name_local
from fedisora.services.bookmarks import MAX_PINNED
from fedisora.services.visibility import can_see_clip, can_see_comment

__all__ = ["MAX_INBOX_BYTES", "routes"]

log = logging.getLogger("fedisora.federation")

MAX_INBOX_BYTES = INBOX_BODY_LIMIT
PAGE_SIZE = 20
ACTIVITY_TYPE = "application/activity+json; charset=utf-8"
JRD_TYPE = "application/jrd+json; charset=utf-8"


class ActivityResponse(JSONResponse):
    media_type = "application/activity+json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _activity(doc: Any, status: int = 200) -> Response:
    return ActivityResponse(doc, status, headers={"Vary": "Accept"})


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _fed(request: Request) -> Federation:
    return get_federation(_settings(request))


Endpoint = Callable[[Request], Awaitable[Response]]


def _for_browsers(page: Callable[[Request], str]) -> Callable[[Endpoint], Endpoint]:
    """Send a browser that opens an ActivityPub URL with no page of its own (a collection,
    a clip's ``Video`` or stamp) to the page that shows it: every id here that a person may
    click opens a page, never raw JSON. The page applies its own visibility rules."""

    def wrap(handler: Endpoint) -> Endpoint:
        @functools.wraps(handler)
        async def for_browsers(request: Request) -> Response:
            params = request.path_params
            if (
                not wants_page(request)
                or ("username" in params and not could_name_local(str(params["username"])))
                or ("clip_id" in params and row_id(str(params["clip_id"])) is None)
            ):
                return await handler(request)  # its JSON, or its 404 for a name of nobody
            return RedirectResponse(page(request), status_code=303, headers={"Vary": "Accept"})

        return for_browsers

    return wrap


def _profile_page(request: Request) -> str:
    return "/@" + quote(str(request.path_params["username"]), safe="")


def _network_page(request: Request) -> str:
    """A followers or following collection's page: the profile's list of them."""
    kind = str(request.path_params.get("kind", ""))
    base = _profile_page(request)
    return f"{base}/{kind}" if kind in ("followers", "following") else base


def _clip_page(request: Request, fragment: str = "") -> str:
    return (
        f"{_profile_page(request)}/{quote(str(request.path_params['clip_id']), safe='')}{fragment}"
    )


def _clip_collection_page(request: Request) -> str:
    return _clip_page(request, "#comments" if request.path_params.get("kind") == "replies" else "")


# --- discovery -------------------------------------------------------------------------------


def _version() -> str:
    try:
        return metadata.version("fedisora")
    except metadata.PackageNotFoundError:
        return "0.1.0"


async def _account_for_resource(settings: Settings, resource: str) -> Account | None:
    if resource.startswith("acct:") or ("@" in resource and "://" not in resource):
        acct = resource.removeprefix("acct:").lstrip("@")
        username, _, domain = acct.rpartition("@")
        if not username or domain.lower() != settings.domain:
            return None
        if username.lower() in (settings.domain, settings.domain.split(":", 1)[0]):
            username = INSTANCE_ACTOR  # FEP-d556: acct:domain@domain is the instance actor
        if not could_name_local(username):
            return None
        account = await Account.get_or_none(username__iexact=username, domain=None)
    elif resource.startswith(("https://", "http://")):
        if objects.id_of(resource) is None:  # over-long, or holding a NUL: names nobody
            return None
        account = await Account.get_or_none(uri=resource, domain=None)
        if account is None:
            account = await Account.get_or_none(url=resource, domain=None)
    else:
        return None
    return account


async def webfinger(request: Request) -> Response:
    settings = _settings(request)
    resource = request.query_params.get("resource", "").strip()
    if not resource:
        return _error(400, "the resource parameter is required")
    if len(resource) > 2048:
        return _error(400, "resource is too long")
    account = await _account_for_resource(settings, resource)
    # As Mastodon: 410 for a deleted account; a suspended one still resolves, so that peers
    # can fetch its actor (which says ``suspended``).
    if account is not None and account.suspended_at is not None and await is_deleted(account):
        return _error(410, f"{resource} was deleted")
    if account is None:
        return _error(404, f"no account for {resource}")
    username = account.username
    jrd = {
        "subject": f"acct:{username}@{settings.domain}",
        "aliases": [account.uri] + ([account.url] if account.url else []),
        "links": [
            {"rel": "self", "type": "application/activity+json", "href": account.uri},
            {
                "rel": "http://webfinger.net/rel/profile-page",
                "type": "text/html",
                "href": account.url or account.uri,
            },
        ],
    }
    if username == INSTANCE_ACTOR:
        jrd["links"].append(  # type: ignore[attr-defined]
            {"rel": "https://www.w3.org/ns/activitystreams#Application", "href": account.uri}
        )
    return JSONResponse(jrd, headers={"Content-Type": JRD_TYPE, "Access-Control-Allow-Origin": "*"})


async def host_meta(request: Request) -> Response:
    base = _settings(request).base_url
    template = html.escape(f"{base}/.well-known/webfinger?resource={{uri}}", quote=True)
    xrd = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" template="{template}"/>\n'
        "</XRD>\n"
    )
    return Response(xrd, media_type="application/xrd+xml; charset=utf-8")


async def nodeinfo_links(request: Request) -> Response:
    base = _settings(request).base_url
    return JSONResponse(
        {
            "links": [
                {
                    "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
                    "href": f"{base}/nodeinfo/2.0",
                },
                {
                    "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                    "href": f"{base}/nodeinfo/2.1",
                },
                {
                    "rel": "https://www.w3.org/ns/activitystreams#Application",
                    "href": f"{base}/actor",
                },
            ]
        }
    )


async def _nodeinfo_usage() -> dict[str, Any]:
    now = utcnow()
    users = User.filter(disabled=False, approved=True)
    return {
        "users": {
            "total": await users.count(),
            "activeMonth": await users.filter(last_login_at__gte=now - timedelta(days=30)).count(),
            "activeHalfyear": await users.filter(
                last_login_at__gte=now - timedelta(days=180)
            ).count(),
        },
        "localPosts": await Clip.filter(local=True, deleted_at=None).count(),
        "localComments": await Comment.filter(local=True, deleted_at=None).count(),
    }


async def nodeinfo(request: Request) -> Response:
    from fedisora.federation.provenance_root import own_root, root_url

    settings = _settings(request)
    version = request.path_params["version"]
    if version not in ("2.0", "2.1"):
        return _error(404, "unknown NodeInfo version")
    from fedisora.services.instance_settings import effective

    values = await effective(settings)
    software: dict[str, Any] = {"name": "fedisora", "version": _version()}
    if version == "2.1":
        software["repository"] = settings.source_url
        software["homepage"] = "https://fedisora.org"
    doc = {
        "version": version,
        "software": software,
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": values.registrations == "open",
        "usage": await usage.kept(request.app.state, "nodeinfo", _nodeinfo_usage),
        "metadata": {
            "nodeName": values.instance_name,
            "nodeDescription": values.short_description,
            "aiGeneratedMedia": True,
        },
    }
    if own_root(settings) is not None:  # where peers fetch the root that verifies our clips
        doc["metadata"]["provenanceRoot"] = root_url(settings.base_url)
    profile = f"http://nodeinfo.diaspora.software/ns/schema/{version}#"
    return JSONResponse(
        doc,
        headers={
            "Content-Type": f'application/json; profile="{profile}"',
            "Access-Control-Allow-Origin": "*",
        },
    )


# --- actors ----------------------------------------------------------------------------------


async def _local(username: str) -> Account | None:
    if username.lower() == INSTANCE_ACTOR or not could_name_local(username):
        return None  # the instance actor is served at /actor
    account = await Account.get_or_none(username__iexact=username, domain=None)
    if account is None or account.suspended_at is not None:
        return None
    return account


def _actor_or_page(request: Request, account: Account) -> Response:
    pages = object_pages(request)
    if wants_activity(request) or pages is None:
        return _activity(actor_document(account))
    return pages.instance_actor(request, account)  # browsers get web pages


async def _deleted_local(username: str) -> Account | None:
    """The deleted local account that held *username* (the name stays reserved)."""
    if username.lower() == INSTANCE_ACTOR or not could_name_local(username):
        return None
    gone = await Account.get_or_none(username__iexact=username, domain=None)
    return gone if gone is not None and await is_deleted(gone) else None


async def _owner(username: str) -> tuple[Account | None, Account | None]:
    """(the local account named *username*, or its deleted account: whose objects are gone
    (410) even before its clean-up has reached them; that deleted account, or None)."""
    account = await _local(username)
    if account is not None:
        return account, None
    gone = await _deleted_local(username)
    return gone, gone


async def actor(request: Request) -> Response:
    """The actor. A deleted one is a 410 Tombstone; a suspended one answers ActivityPub
    clients with its minimal document saying ``suspended`` (as Mastodon does, so that peers
    can refresh it). Browsers get the profile page (web.profiles: 403 suspended, 410 gone)."""
    username = request.path_params["username"]
    pages = object_pages(request)
    if not wants_activity(request) and pages is not None:
        return await pages.profile(request, username)
    account = None
    if username.lower() != INSTANCE_ACTOR and could_name_local(username):  # see /actor
        account = await Account.get_or_none(username__iexact=username, domain=None)
    if account is None:
        return _error(404, "no such actor")
    if account.suspended_at is not None:
        if await is_deleted(account):
            # The name stays reserved and answers 410 for good (Mastodon does the same).
            tombstone = objects.tombstone(
                account.uri, account.actor_type.value, iso(account.suspended_at)
            )
            return _activity(objects.with_context(tombstone), 410)
    return _actor_or_page(request, account)


async def instance_actor(request: Request) -> Response:
    account = await get_federation(_settings(request)).instance_actor()
    return _actor_or_page(request, account)


# --- objects and collections -----------------------------------------------------------------


async def _fetcher(request: Request) -> Account | None:
    """The verified signer of a GET (authorized fetch), or None when unsigned or invalid."""
    if "signature" not in request.headers:
        return None
    fed = _fed(request)
    try:
        return await verify_signer(fed, signed_request(fed, request, b""))
    except SignatureError as exc:
        log.info("refused signature on GET %s: %s", request.url.path, exc)
        return None


async def _clip(request: Request) -> tuple[Clip | None, Response | None]:
    owner, gone = await _owner(request.path_params["username"])
    clip = None
    pk = row_id(request.path_params["clip_id"])
    if owner is not None and pk is not None:
        clip = await Clip.get_or_none(pk=pk, account_id=owner.pk, local=True)
    if clip is None:
        return None, _error(404, "no such clip")
    deleted_at = clip.deleted_at or (gone.suspended_at if gone is not None else None)
    if deleted_at is not None:
        return None, _activity(
            objects.with_context(objects.tombstone(clip.uri, "Note", iso(deleted_at))), 410
        )
    if clip.visibility not in (Visibility.PUBLIC, Visibility.UNLISTED):
        if not await can_see_clip(await _fetcher(request), clip):
            return None, _error(404, "no such clip")
    return clip, None


async def clip_object(request: Request) -> Response:
    pages = object_pages(request)
    if not wants_activity(request) and pages is not None:
        return await pages.clip(request)  # browsers get the clip's page
    clip, refused = await _clip(request)
    if clip is None:
        assert refused is not None
        return refused
    response = None
    if is_peertube(request):
        video = await clip_video(clip)
        if video is not None:
            response = _activity(video)
    response = response or _activity(await clip_note(clip))
    response.headers["Vary"] = "Accept, User-Agent"  # the Video is for PeerTube fetchers
    return response


def is_peertube(request: Request) -> bool:
    """Whether the requester is a PeerTube server (its fetcher's User-Agent is
    ``PeerTube/<version> (+https://host)``): it is served the ``Video`` representation."""
    return request.headers.get("user-agent", "").lower().startswith("peertube/")


async def clip_video_object(request: Request) -> Response:
    """The ``Video`` representation of a clip at its alternate URL ``<clip>/video``."""
    clip, refused = await _clip(request)
    if clip is None:
        assert refused is not None
        return refused
    video = await clip_video(clip)
    if video is None:
        return _error(404, "this clip has no video")
    return _activity(video)


async def clip_collection(request: Request) -> Response:
    clip, refused = await _clip(request)
    if clip is None:
        assert refused is not None
        return refused
    kind = request.path_params["kind"]
    total = {"likes": clip.likes_count, "shares": clip.boosts_count}.get(kind)
    if total is None:
        total = clip.comments_count
    return _activity(objects.collection(f"{clip.uri}/{kind}", total, ordered=False))


@_for_browsers(_clip_page)
async def quote_authorization(request: Request) -> Response:
    """FEP-044f stamp: dereferenceable while the clip exists and may be quoted."""
    clip, refused = await _clip(request)
    if clip is None:
        assert refused is not None
        return refused
    quoting = quoting_uri_of(request.path_params["token"])
    if quoting is None or clip.visibility not in (Visibility.PUBLIC, Visibility.UNLISTED):
        return _error(404, "no such authorization")
    author = await Account.get(pk=clip.account_id)
    stamp = quote_stamp(clip, quoting)
    return _activity(objects.quote_authorization(stamp, author.uri, quoting, clip.uri))


async def comment_object(request: Request) -> Response:
    pages = object_pages(request)
    if wants_page(request) and pages is not None:
        return await pages.comment(request)  # browsers get the comment's page
    owner, gone = await _owner(request.path_params["username"])
    comment = None
    pk = row_id(request.path_params["comment_id"])
    if owner is not None and pk is not None:
        comment = await Comment.get_or_none(pk=pk, account_id=owner.pk, local=True)
    if comment is None:
        return _error(404, "no such comment")
    if comment.deleted_at is not None or gone is not None:
        return _activity(objects.with_context(objects.tombstone(comment.uri)), 410)
    if comment.visibility not in (Visibility.PUBLIC, Visibility.UNLISTED):
        if not await can_see_comment(await _fetcher(request), comment):
            return _error(404, "no such comment")
    return _activity(await comment_note(comment))


@_for_browsers(_profile_page)
async def outbox(request: Request) -> Response:
    account = await _local(request.path_params["username"])
    if account is None:
        return _error(404, "no such actor")
    base = account.outbox_uri or urls.current().outbox(account.username)
    public = Clip.filter(account_id=account.pk, deleted_at=None, visibility=Visibility.PUBLIC)
    total = await public.count()
    if request.query_params.get("page") != "true":
        return _activity(objects.collection(base, total, first=f"{base}?page=true"))
    query = public
    raw_max_id = request.query_params.get("max_id", "")
    max_id = row_id(raw_max_id)
    if raw_max_id and max_id is None:
        return _error(400, "max_id must be the id of a clip (a whole number)")
    if max_id is not None:
        query = query.filter(id__lt=max_id)
    clips = await query.order_by("-id").limit(PAGE_SIZE)
    items = []
    for clip in clips:
        note = await clip_note(clip, context=False)
        items.append(
            objects.activity(
                "Create",
                f"{clip.uri}/activity",
                account.uri,
                note,
                to=note["to"],  # type: ignore[arg-type]
                cc=note["cc"],  # type: ignore[arg-type]
                context=False,
                published=note["published"],
            )
        )
    page_id = f"{base}?page=true" + (f"&max_id={max_id}" if max_id is not None else "")
    next_page = f"{base}?page=true&max_id={clips[-1].pk}" if len(clips) == PAGE_SIZE else None
    doc = objects.collection(page_id, total, items=items, part_of=base, next_page=next_page)
    doc["@context"] = objects.OBJECT_CONTEXT
    return _activity(doc)


async def follow_collection(request: Request) -> Response:
    """Followers/following: counts only (who follows whom is not published)."""
    account = await _local(request.path_params["username"])
    if account is None:
        return _error(404, "no such actor")
    kind = request.path_params["kind"]
    total = account.followers_count if kind == "followers" else account.following_count
    uri = account.followers_uri if kind == "followers" else account.following_uri
    return _activity(objects.collection(uri or f"{account.uri}/{kind}", total))


@_for_browsers(_profile_page)
async def featured(request: Request) -> Response:
    account = await _local(request.path_params["username"])
    if account is None:
        return _error(404, "no such actor")
    clips = (
        await Clip.filter(
            account_id=account.pk, pinned=True, deleted_at=None, visibility=Visibility.PUBLIC
        )
        .order_by("-id")
        .limit(MAX_PINNED)  # what pinning allows; bounded even if a race let more through
    )
    items = [await clip_note(c, context=False) for c in clips]
    doc = objects.collection(
        account.featured_uri or urls.current().featured(account.username), len(items), items=items
    )
    doc["@context"] = objects.OBJECT_CONTEXT
    return _activity(doc)


@_for_browsers(lambda _request: "/actor")
async def empty_outbox(request: Request) -> Response:
    return _activity(objects.collection(f"{_settings(request).base_url}/actor/outbox", 0))


# --- inboxes ---------------------------------------------------------------------------------


async def _read_body(request: Request) -> bytes:
    """The request body, read from the ASGI channel directly (Starlette's stream generator
    cost more than the reading). The input boundary holds it to :data:`MAX_INBOX_BYTES`:
    past that, reading raises :class:`~fedisora.boundary.BodyTooLarge` (413)."""
    chunks: list[bytes] = []
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _refuse(request: Request, status: int, reason: str, detail: str = "") -> JSONResponse:
    """The inbox's refusal: *reason* (about the request as sent) is the answer's body;
    *detail* (what this server found out while checking it: fetched documents, addresses,
    peers' errors) is only logged, so the inbox is no oracle of this server's lookups."""
    log.warning(
        "inbox %s refused (%s) from %s: %s%s",
        request.url.path,
        status,
        request.client.host if request.client else "?",
        reason,
        f" ({detail})" if detail else "",
    )
    return _error(status, reason)


def _signature_refusal(exc: SignatureError) -> str:
    """The body's text for a refused signature. The checks of :mod:`activitypub.signatures`
    read the request alone, so their text may be sent back; a key lookup's failure is the
    fixed :data:`~fedisora.federation.verify.UNKNOWN_KEY`, whatever it carried."""
    if isinstance(exc, UnknownKey):
        return f"signature: {UNKNOWN_KEY}"
    return f"signature: {exc}"


async def _has_inbox(fed: Federation, username: str) -> bool:
    """Whether *username* is a local actor with an inbox. A yes is remembered for a while
    (an account suspended or deleted meanwhile has its items ignored when they are
    processed); a no is not, so a new account's inbox works at once."""
    if fed.local_inboxes.get(username):
        return True
    found = await _local(username) is not None
    if found:
        fed.local_inboxes.put(username, True)
    return found


_KEY_ID = re.compile(r'keyid\s*=\s*"([^"]{1,2048})"', re.IGNORECASE)


def inbox_rate_key(request: Request, host: str | None) -> str:
    """What the ``inbox`` rate limit counts a POST against, read before any signature work:
    *host*, the signature's ``keyId`` host (:func:`_key_host`), else the client's address.
    Unverified on purpose: a sender naming another host's key is refused by the
    verification after, a cheap request flood is counted here first."""
    if host:
        return f"host:{host}"
    return f"ip:{request.client.host if request.client else 'unknown'}"


def _key_host(headers: Headers) -> str | None:
    """The host of the signature's ``keyId`` (draft-cavage or RFC 9421), read from the
    headers as sent: nothing is verified, decoded or fetched."""
    for name in ("signature-input", "signature", "authorization"):
        value = headers.get(name)
        found = _KEY_ID.search(value) if value else None
        if found is not None:
            try:
                return domain_of(found.group(1).strip()) or None
            except ValueError:  # a port that is no port: no host to name
                return None
    return None


async def _blocked(fed: Federation, request: Request, host: str | None) -> Response | None:
    """403 for a *host* this instance does not federate with (counted), else None."""
    if host is None or not await domain_blocks.is_blocked(host, fed.settings):
        return None
    await domain_blocks.count_refusal(host)
    log.info("inbox %s refused: %s is blocked", request.url.path, host)
    return _error(403, "this instance does not accept activities from your domain")


async def inbox(request: Request) -> Response:
    # Counted per remote host first: a flood costs neither a signature check nor a lookup.
    headers = Headers.from_wire(request.scope["headers"])
    key_host = _key_host(headers)
    rate_key = inbox_rate_key(request, key_host)
    decision = await ratelimits.for_app(request.app).hit("inbox", rate_key)
    if not decision.allowed:
        log.debug("inbox %s: rate limited (%s)", request.url.path, rate_key)
        return JSONResponse(
            {"error": "too many requests from this host; retry later"},
            429,
            headers=decision.headers(),
        )
    fed = _fed(request)
    username = request.path_params.get("username")
    if username is not None and not await _has_inbox(fed, username):
        return _error(404, "no such actor")
    blocked = await _blocked(fed, request, key_host)
    if blocked is not None:  # before the body is read, and before any signature work
        return blocked
    body = await _read_body(request)
    if not _has_signature(headers):
        return _refuse(request, 401, "the request is not signed")
    try:
        # Refused here, on every database, for what no column stores (a NUL, an unpaired
        # surrogate) and for nesting no activity has.
        payload = parse_json(body, max_depth=MAX_PEER_DEPTH)
    except InputRefused as exc:
        return _refuse(request, 400, exc.message)
    if not isinstance(payload, dict):
        return _refuse(request, 400, "an activity must be a JSON object")
    activity_id = payload.get("id")
    actor_id = objects.id_of(payload.get("actor"))
    if not isinstance(payload.get("type"), str) or not actor_id:
        return _refuse(request, 400, "an activity needs a type and an actor")
    if not isinstance(activity_id, str) or not activity_id or len(activity_id) > 2048:
        return _refuse(request, 400, "an activity needs an id")
    blocked = await _blocked(fed, request, domain_of(actor_id))
    if blocked is not None:  # an actor of a blocked host, whatever key signed it
        return blocked
    try:
        signer = await verify_signer(fed, signed_request(fed, request, body, headers))
    except SignatureError as exc:
        if _is_gone_actor_delete(payload, actor_id):
            return Response(status_code=202)  # a deleted actor's key cannot be fetched any more
        return _refuse(request, exc.http_status, _signature_refusal(exc))  # verify logs why
    proven: Account | None = None
    if "proof" in payload:  # FEP-8b32: verified whoever signed the request; a bad one refused
        try:
            proven = await verify_proof_of(fed, payload, actor_id)
        except ProofError as exc:
            return _refuse(request, 401, f"the activity's proof does not hold: {exc.reason}")
    if signer.uri != actor_id and proven is None and "signature" in payload:
        # Mastodon's forwarded activities: an RsaSignature2017 Linked Data signature by the
        # actor vouches for it as a proof does; what it does not cover is left out.
        try:
            proven, payload = await verify_ld_signature_of(fed, payload, actor_id)
        except ProofError as exc:
            return _refuse(request, 401, f"the activity's signature does not hold: {exc.reason}")
    if signer.uri != actor_id:
        by_reference = _origin_fetchable(payload, actor_id) if proven is None else None
        if by_reference is not None:
            # A Create forwarded with no proof (Mastodon forwards replies with a Linked Data
            # signature only where it has one): nothing the forwarder sent is believed but
            # the object's id, on the actor's own host; ingest fetches the object from there
            # (a 404 or 410 there ends it, stored as ignored with that reason).
            try:
                proven = await fetch_actor(fed, actor_id)
            except (ActorError, FetchError) as exc:
                return _refuse(request, 401, f"the activity's actor cannot be fetched: {exc}")
            payload = by_reference
        if proven is None:
            return _refuse(
                request,
                401,
                "the signing key is not the actor's, and no proof of the actor's is attached",
                f"signed by {signer.uri}, not by the actor {actor_id}",
            )
        # A forwarded activity (a relay, a reply forwarded by the thread's server): the
        # actor's own proof vouches for it (or its object comes from its origin); the HTTP
        # signer only carried it.
        signer = proven
    if not objects.same_origin(activity_id, actor_id):
        return _refuse(request, 400, "the activity id is not on the actor's host")
    if signer.suspended_at is not None:
        if not await kept_while_suspended(signer, payload["type"]):
            # Answered 202 and dropped, as Mastodon does: a 403 (or any error) would have the
            # peer deliver it again, for days, to no end. What undoes or deletes is kept.
            log.debug("dropped %s %s: %s is suspended here", payload["type"], activity_id, actor_id)
            return Response(status_code=202)
    host = domain_of(actor_id)
    over = await limits_for(fed, fed.settings).admit(host, actor_id, len(body))
    if over is not None:  # retried by the peer later (see inbox_limits)
        refused = _refuse(request, 429, over)
        refused.headers["Retry-After"] = str(RETRY_AFTER)
        return refused
    # Stored (or found there already: a redelivery) before the 202; committed together
    # with concurrent POSTs' rows.
    await insert_grouped(
        InboxItem,
        INBOX_GRAPH.initial,
        "activity_id",
        activity_id=activity_id,
        actor_uri=actor_id,
        payload=payload,
        host=host,
        size=len(body),
    )
    return Response(status_code=202)


def _origin_fetchable(payload: dict[str, Any], actor_id: str) -> dict[str, Any] | None:
    """A forwarded ``Create`` reduced to what can be checked at its origin: the object by
    its id (on the actor's host, as the activity's own id), the forwarder's copy and any
    signature dropped; None for any other activity."""
    if payload.get("type") != "Create":
        return None
    object_id = objects.id_of(payload.get("object"))
    activity_id = payload.get("id")
    if not isinstance(object_id, str) or not isinstance(activity_id, str):
        return None
    if not (
        objects.same_origin(object_id, actor_id) and objects.same_origin(activity_id, actor_id)
    ):
        return None
    kept = {k: v for k, v in payload.items() if k not in ("object", "signature", "proof")}
    return {**kept, "object": object_id}


def _has_signature(headers: Headers) -> bool:
    return (
        "signature" in headers
        or "signature-input" in headers
        or (headers.get("authorization") or "").lower().startswith("signature ")
    )


def _is_gone_actor_delete(payload: dict[str, Any], actor_id: str) -> bool:
    return payload.get("type") == "Delete" and objects.id_of(payload.get("object")) == actor_id


def routes() -> list[BaseRoute]:
    return [
        *media_proxy.routes(),
        *likeness.routes(),
        Route(root.PROVENANCE_ROOT_PATH, root.provenance_root),
        Route("/.well-known/webfinger", webfinger),
        Route("/.well-known/host-meta", host_meta),
        Route("/.well-known/nodeinfo", nodeinfo_links),
        Route("/nodeinfo/{version}", nodeinfo),
        Route("/actor", instance_actor),
        Route("/actor/inbox", inbox, methods=["POST"]),
        Route("/actor/outbox", empty_outbox),
        Route("/inbox", inbox, methods=["POST"]),
        Route("/users/{username}", actor),
        Route("/users/{username}/inbox", inbox, methods=["POST"]),
        Route("/users/{username}/outbox", outbox),
        Route("/users/{username}/{kind:str}", follow_collection_or_404),
        Route("/users/{username}/collections/featured", featured),
        Route("/users/{username}/clips/{clip_id}", clip_object),
        Route("/users/{username}/clips/{clip_id}/{kind}", clip_collection_or_404),
        Route(
            "/users/{username}/clips/{clip_id}/quote_authorizations/{token}",
            quote_authorization,
        ),
        Route("/users/{username}/comments/{comment_id}", comment_object),
    ]


@_for_browsers(_network_page)
async def follow_collection_or_404(request: Request) -> Response:
    if request.path_params["kind"] not in ("followers", "following"):
        return _error(404, "not found")
    return await follow_collection(request)


@_for_browsers(_clip_collection_page)
async def clip_collection_or_404(request: Request) -> Response:
    if request.path_params["kind"] == "video":
        return await clip_video_object(request)
    if request.path_params["kind"] not in ("likes", "shares", "replies"):
        return _error(404, "not found")
    return await clip_collection(request)
