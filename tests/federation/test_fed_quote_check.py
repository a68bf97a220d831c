"""FEP-044f on a third party's side: remote remixes' stamps verified on receipt.

One database, scripted peers (``Peer`` over ``httpx.MockTransport``). bob on
``quoting.example`` remixes rita's clip on ``remote.example``; we are neither. Remixes arrive
through :func:`handle_activity` (what the inbox machine runs); their QuoteCheck rows are
advanced by an engine running the real machine. Hostile stamps never make a remix accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from factories import local_account, rendered_video
from fedhelpers import REMOTE, Peer, RemoteActor, make_remote, stamp_doc

from activitypub import objects
from activitypub.objects import stamp_mismatch
from fedisora.api.entities import status_entities
from fedisora.config import Settings
from fedisora.federation import http as peer_http
from fedisora.federation import quote_check, quote_verify
from fedisora.federation.context import Federation, set_federation
from fedisora.federation.http import PeerClient
from fedisora.federation.ingest import handle_activity, quote_stamp
from fedisora.federation.quote_check import REFRESH_INTERVAL, refresh_if_stale
from fedisora.models import (
    Account,
    Clip,
    Notification,
    NotificationType,
    QuoteCheck,
    RemoteMediaCheck,
    utcnow,
)
from fedisora.services import follows, posts
from fedisora.work import AdvanceResult, Engine

QUOTER = "quoting.example"
TABLE = "quote_checks"


@dataclass
class FlakyPeer(Peer):
    """A :class:`Peer` whose hosts in ``down`` do not answer at all."""

    down: set[str] = field(default_factory=set)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return super().__call__(request)


@pytest.fixture
def peer() -> FlakyPeer:
    return FlakyPeer()


def note(author: RemoteActor, n: int, **extra: Any) -> dict[str, Any]:
    host = author.account.domain
    return {
        "id": f"{author.uri}/clips/{n}",
        "type": "Note",
        "attributedTo": author.uri,
        "content": f"<p>clip {n}</p>",
        "to": [objects.PUBLIC],
        "cc": [f"{author.uri}/followers"],
        "attachment": [
            {"type": "Document", "mediaType": "video/mp4", "url": f"https://{host}/{n}.mp4"}
        ],
        **extra,
    }


def create(author: RemoteActor, obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"{obj['id']}/activity", "type": "Create", "actor": author.uri, "object": obj}


def later(delta: timedelta) -> Callable[[], datetime]:
    return lambda: utcnow() + delta


async def run_checks(
    settings: Settings, clock: Callable[[], datetime] = utcnow
) -> list[AdvanceResult]:
    engine = Engine(quote_verify.machines(settings), context={"settings": settings}, clock=clock)
    return [
        await engine.advance(TABLE, row.pk)
        for row in await QuoteCheck.filter(state="pending").order_by("id")
    ]


@dataclass
class World:
    rita: RemoteActor  # the quoted author, on remote.example
    bob: RemoteActor  # the remixer, on quoting.example
    clip_uri: str
    remix_uri: str
    stamp: str


@pytest.fixture
async def world(federation: Federation, peer: FlakyPeer) -> World:
    """rita's clip, served by her server but not known here; her stamp for bob's remix."""
    rita = await make_remote("rita")
    bob = await make_remote("bob", QUOTER)
    clip = note(rita, 1)
    peer.documents[clip["id"]] = clip
    remix_uri = f"{bob.uri}/clips/7"
    stamp = f"{rita.uri}/quote_authorizations/1"
    peer.documents[stamp] = stamp_doc(stamp, rita.uri, remix_uri, clip["id"])
    return World(rita, bob, clip["id"], remix_uri, stamp)


async def receive_remix(fed: Federation, w: World, **extra: Any) -> Clip:
    extra.setdefault("quoteAuthorization", w.stamp)
    remix = note(w.bob, 7, quote=w.clip_uri, **extra)
    await handle_activity(fed, create(w.bob, remix))
    return await Clip.get(uri=w.remix_uri)


def fetched(peer: Peer, url: str) -> list[httpx.Request]:
    return [r for r in peer.requests if str(r.url) == url]


async def quote_of(clip: Clip) -> dict[str, Any]:
    [entity] = await status_entities(None, [await Clip.get(pk=clip.pk)])
    quote: dict[str, Any] = entity["quote"]
    return quote


async def quotes_count(world: World) -> int:
    """The quoted clip's ``remixes_count`` (the API's ``quotes_count``)."""
    return (await Clip.get(uri=world.clip_uri)).remixes_count


async def test_a_remix_is_stored_pending_then_accepted_from_the_quoted_clips_origin(
    settings: Settings, federation: Federation, peer: FlakyPeer, world: World
) -> None:
    remix = await receive_remix(federation, world)
    # Stored at once, not approved yet, the check queued with it; nothing fetched so far.
    assert (remix.quote_state, remix.remix_of_id) == ("pending", None)
    assert remix.quote_authorization_uri == world.stamp
    [row] = await QuoteCheck.all()
    assert (row.remix_uri, row.stamp_uri, row.origin) == (remix.uri, world.stamp, REMOTE)
    assert peer.requests == []
    assert await quote_of(remix) == {"state": "pending", "quoted_status": None}

    assert await run_checks(settings) == [AdvanceResult.MOVED]
    remix = await Clip.get(pk=remix.pk)
    source = await Clip.get(uri=world.clip_uri)
    assert remix.quote_state == "accepted" and remix.remix_of_id == source.pk
    assert remix.quote_checked_at is not None
    assert (source.local, source.remixes_count) == (False, 1)
    # The quoted clip went through the remote-clip path: its provenance check is queued.
    assert await RemoteMediaCheck.filter(clip_uri=world.clip_uri).exists()
    [stamp_get] = fetched(peer, world.stamp)
    assert "signature-input" in stamp_get.headers  # a signed GET, from the stamp's origin
    row = await QuoteCheck.get(pk=row.pk)
    assert (row.state, row.outcome) == ("checked", "accepted")
    quote = await quote_of(remix)
    assert quote["state"] == "accepted" and quote["quoted_status"]["id"] == str(source.pk)


async def test_an_embedded_stamp_is_not_believed(
    settings: Settings, federation: Federation, peer: FlakyPeer, world: World
) -> None:
    """The sender's copy of the stamp counts for nothing: it is dereferenced, and rita's
    server does not know it."""
    del peer.documents[world.stamp]
    embedded = stamp_doc(world.stamp, world.rita.uri, world.remix_uri, world.clip_uri)
    remix = await receive_remix(federation, world, quoteAuthorization=embedded)
    assert remix.quote_authorization_uri == world.stamp
    await run_checks(settings)
    assert fetched(peer, world.stamp)
    assert (await Clip.get(pk=remix.pk)).quote_state == "rejected"
    assert await quote_of(remix) == {"state": "rejected", "quoted_status": None}


@pytest.mark.parametrize(
    "case", ["other_host", "private_address", "other_remix", "other_target", "other_author"]
)
async def test_hostile_stamps_are_never_accepted(
    settings: Settings, federation: Federation, peer: FlakyPeer, world: World, case: str
) -> None:
    otto = await make_remote("otto")  # on rita's server, but not the quoted clip's author
    stamp = {
        "other_host": "https://evil.example/users/rita/quote_authorizations/1",
        "private_address": "http://127.0.0.1:9/users/rita/quote_authorizations/1",
    }.get(case, f"{world.rita.uri}/quote_authorizations/{case}")
    doc = stamp_doc(stamp, world.rita.uri, world.remix_uri, world.clip_uri)
    if case == "other_remix":
        doc["interactingObject"] = f"{world.bob.uri}/clips/8"
    elif case == "other_target":
        doc["interactionTarget"] = f"{world.rita.uri}/clips/2"
    elif case == "other_author":
        doc["attributedTo"] = otto.uri
    peer.documents[stamp] = doc
    remix = await receive_remix(federation, world, quoteAuthorization=stamp)
    assert await run_checks(settings) == [AdvanceResult.MOVED]
    remix = await Clip.get(pk=remix.pk)
    assert remix.quote_state == "pending"  # not approved (Mastodon leaves it so too)
    [row] = await QuoteCheck.all()
    if case in ("other_host", "private_address"):
        assert fetched(peer, stamp) == []  # never asked: only the quoted clip's server may say
        assert "not on the quoted clip's server" in row.reason
    else:
        assert fetched(peer, stamp)
        key = {"other_remix": "interactingObject", "other_target": "interactionTarget"}
        assert key.get(case, "attributedTo") in row.reason
    assert (await quote_of(remix))["quoted_status"] is None


async def test_a_stamp_on_a_private_address_is_refused_by_the_guard(
    settings: Settings,
    federation: Federation,
    peer: FlakyPeer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A quoted clip whose server is a private address (the stamp on the same origin): the
    guarded client refuses the stamp's URL before any connection."""

    async def no_dns(host: str, port: int) -> list[str]:
        raise OSError(f"no name resolution in tests ({host})")

    monkeypatch.setattr(peer_http, "system_resolve", no_dns)
    inside = await make_remote("rita", "10.9.8.7")
    bob = await make_remote("bob", QUOTER)
    await handle_activity(federation, create(inside, note(inside, 1)))
    stamp = f"{inside.uri}/quote_authorizations/1"
    remix_doc = note(bob, 7, quote=f"{inside.uri}/clips/1", quoteAuthorization=stamp)
    peer.documents[stamp] = stamp_doc(stamp, inside.uri, remix_doc["id"], remix_doc["quote"])
    await handle_activity(federation, create(bob, remix_doc))

    strict = Federation(settings, PeerClient(insecure=False, transport=httpx.MockTransport(peer)))
    set_federation(strict)
    try:
        assert await run_checks(settings) == [AdvanceResult.MOVED]
    finally:
        set_federation(federation)
        await strict.aclose()
    assert peer.requests == []
    [row] = await QuoteCheck.all()
    assert row.outcome == "rejected" and "non-public address" in row.reason
    assert (await Clip.get(uri=remix_doc["id"])).quote_state == "rejected"


async def test_the_quoted_server_down_leaves_the_remix_pending_until_it_is_back(
    settings: Settings, federation: Federation, peer: FlakyPeer, world: World
) -> None:
    peer.down.add(REMOTE)
    remix = await receive_remix(federation, world)
    assert await run_checks(settings) == [AdvanceResult.RETRY]
    [row] = await QuoteCheck.all()
    assert (row.state, row.attempts) == ("pending", 1) and "ConnectError" in row.last_error
    assert (await Clip.get(pk=remix.pk)).quote_state == "pending"  # shown, not approved
    assert await run_checks(settings) == [AdvanceResult.SKIPPED]  # not due yet

    peer.down.clear()
    assert await run_checks(settings, later(timedelta(minutes=5))) == [AdvanceResult.MOVED]
    assert (await Clip.get(pk=remix.pk)).quote_state == "accepted"


async def test_a_check_written_before_its_remix_waits_for_it(
    settings: Settings, federation: Federation, world: World
) -> None:
    """The check is written before the remix (a crash in between must not lose it): it
    waits for the remix without using attempts, and gives up on one never stored."""
    await quote_check.request_verification(world.remix_uri, world.clip_uri, world.stamp)
    assert await run_checks(settings) == [AdvanceResult.RETRY]
    [row] = await QuoteCheck.all()
    assert (row.state, row.attempts) == ("pending", 0)
    assert await run_checks(settings, later(timedelta(minutes=11))) == [AdvanceResult.MOVED]
    assert (await QuoteCheck.get(pk=row.pk)).state == "skipped"


async def test_revocation_by_the_quoted_author_and_by_the_quoting_servers_update(
    settings: Settings, federation: Federation, peer: FlakyPeer, world: World
) -> None:
    remix = await receive_remix(federation, world)
    await run_checks(settings)
    assert (await Clip.get(pk=remix.pk)).quote_state == "accepted"
    assert await quotes_count(world) == 1

    # otto (rita's server, not the stamp's author) deletes it: only makes us look again.
    otto = await make_remote("otto")
    forged = {"id": f"{otto.uri}#d", "type": "Delete", "actor": otto.uri, "object": world.stamp}
    await handle_activity(federation, forged)
    assert (await Clip.get(pk=remix.pk)).quote_state == "accepted"
    assert await run_checks(settings) == [AdvanceResult.MOVED]  # still served: still accepted
    assert (await Clip.get(pk=remix.pk)).quote_state == "accepted"

    # bob's server drops the stamp (an Update of the remix): fetched again; rita deleted it.
    del peer.documents[world.stamp]
    without = note(world.bob, 7, quote=world.clip_uri)
    update = {
        "id": f"{world.remix_uri}/updates/1",
        "type": "Update",
        "actor": world.bob.uri,
        "object": without,
    }
    await handle_activity(federation, update)
    remix = await Clip.get(pk=remix.pk)
    assert (remix.quote_state, remix.quote_authorization_uri) == ("pending", None)
    assert await quotes_count(world) == 0  # only approved remixes count (Mastodon's quotes)
    [row] = await QuoteCheck.filter(state="pending")
    assert (row.stamp_uri, row.withdrawn) == (world.stamp, True)
    before = len(fetched(peer, world.stamp))
    await run_checks(settings)
    assert len(fetched(peer, world.stamp)) == before + 1
    assert (await Clip.get(pk=remix.pk)).quote_state == "revoked"
    assert await quote_of(remix) == {"state": "revoked", "quoted_status": None}


async def test_the_quoted_authors_delete_revokes_at_once(
    settings: Settings, federation: Federation, world: World
) -> None:
    remix = await receive_remix(federation, world)
    await run_checks(settings)
    revoke = {
        "id": f"{world.stamp}#delete",
        "type": "Delete",
        "actor": world.rita.uri,
        "object": {"id": world.stamp, "type": "QuoteAuthorization"},
    }
    assert await quotes_count(world) == 1
    await handle_activity(federation, revoke)
    assert (await Clip.get(pk=remix.pk)).quote_state == "revoked"
    assert await quotes_count(world) == 0
    # Checked again while rita's server still serves it: a revoked stamp stays revoked.
    await quote_check.request_verification(world.remix_uri, world.clip_uri, world.stamp)
    await run_checks(settings)
    assert (await Clip.get(pk=remix.pk)).quote_state == "revoked"
    assert await quotes_count(world) == 0


async def test_a_deleted_approved_remix_is_not_counted(
    settings: Settings, federation: Federation, world: World
) -> None:
    remix = await receive_remix(federation, world)
    await run_checks(settings)
    assert await quotes_count(world) == 1
    await handle_activity(
        federation,
        {
            "id": f"{world.remix_uri}#delete",
            "type": "Delete",
            "actor": world.bob.uri,
            "object": world.remix_uri,
        },
    )
    assert (await Clip.get(pk=remix.pk)).deleted_at is not None
    assert await quotes_count(world) == 0


async def test_an_old_accepted_stamp_is_verified_again_when_shown(
    settings: Settings, federation: Federation, peer: FlakyPeer, world: World
) -> None:
    remix = await receive_remix(federation, world)
    await run_checks(settings)
    remix = await Clip.get(pk=remix.pk)
    assert await refresh_if_stale([remix]) == 0  # just checked

    old = utcnow() - REFRESH_INTERVAL - timedelta(hours=1)
    await Clip.filter(pk=remix.pk).update(quote_checked_at=old)
    await status_entities(None, [await Clip.get(pk=remix.pk)])  # shown: queued, once
    await status_entities(None, [await Clip.get(pk=remix.pk)])
    [row] = await QuoteCheck.filter(state="pending")
    assert row.next_attempt_at is not None
    assert row.next_attempt_at <= utcnow() + quote_check.REFRESH_SPREAD  # spread, not at once
    del peer.documents[world.stamp]  # rita revoked it, and nobody told us
    assert await run_checks(settings, later(timedelta(hours=7))) == [AdvanceResult.MOVED]
    assert (await Clip.get(pk=remix.pk)).quote_state == "revoked"


async def test_quoting_ones_own_clip_needs_no_stamp(
    settings: Settings, federation: Federation, peer: FlakyPeer, world: World
) -> None:
    own = note(world.bob, 1)
    peer.documents[own["id"]] = own
    remix_doc = note(world.bob, 2, quote=own["id"])
    await handle_activity(federation, create(world.bob, remix_doc))
    await run_checks(settings)
    assert (await Clip.get(uri=remix_doc["id"])).quote_state == "accepted"


async def test_a_quoted_clip_that_is_gone_or_not_a_clip(
    settings: Settings, federation: Federation, peer: FlakyPeer, world: World
) -> None:
    del peer.documents[world.clip_uri]  # 404 at its origin
    remix = await receive_remix(federation, world)
    await run_checks(settings)
    assert (await Clip.get(pk=remix.pk)).quote_state == "deleted"
    assert await quote_of(remix) == {"state": "deleted", "quoted_status": None}


async def test_quotes_of_quotes_are_not_fetched_without_end(
    settings: Settings, federation: Federation, peer: FlakyPeer, world: World
) -> None:
    """rita's clip is itself a remix of a third clip: fetching it as a quoted clip queues its
    own check one level deeper, which does not fetch its unknown source."""
    peer.documents[world.clip_uri]["quote"] = f"{world.rita.uri}/clips/0"
    await receive_remix(federation, world)
    await run_checks(settings)  # bob's remix: fetches rita's clip (depth 1 check queued)
    [deeper] = await QuoteCheck.filter(state="pending")
    assert (deeper.remix_uri, deeper.depth) == (world.clip_uri, 1)
    quote_check_depth = quote_check.MAX_DEPTH
    await QuoteCheck.filter(pk=deeper.pk).update(depth=quote_check_depth)
    await run_checks(settings)
    assert not fetched(peer, f"{world.rita.uri}/clips/0")
    assert (await QuoteCheck.get(pk=deeper.pk)).reason.startswith("the quoted clip is not known")


async def test_our_own_stamp_is_checked_without_a_request(
    settings: Settings, federation: Federation, peer: FlakyPeer
) -> None:
    """We are the quoted clip's server: a remote remix presenting our stamp is accepted by
    what our stamp route would answer; our Accept of its QuoteRequest approves it too."""
    ann = await local_account("ann")
    bob = await make_remote("bob", QUOTER)
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="source")
    first = note(bob, 1, quote=clip.uri, quoteAuthorization=quote_stamp(clip, f"{bob.uri}/clips/1"))
    forged = note(bob, 2, quote=clip.uri, quoteAuthorization=quote_stamp(clip, first["id"]))
    for doc in (first, forged):
        await handle_activity(federation, create(bob, doc))
    assert await remix_notices(ann) == []  # pending remixes notify no one
    await run_checks(settings)
    assert (await Clip.get(uri=first["id"])).quote_state == "accepted"
    assert (await Clip.get(uri=forged["id"])).quote_state == "pending"  # another remix's stamp
    assert peer.requests == []
    assert await remix_notices(ann) == [first["id"]]  # approved: ann is told, once
    await quote_check.request_verification(first["id"], clip.uri, first["quoteAuthorization"])
    await run_checks(settings)
    assert await remix_notices(ann) == [first["id"]]

    asked = note(bob, 3, quote=clip.uri)  # its Create comes before its QuoteRequest
    await handle_activity(federation, create(bob, asked))
    request = {
        "id": f"{asked['id']}#quote_request",
        "type": "QuoteRequest",
        "actor": bob.uri,
        "object": clip.uri,
        "instrument": asked,
    }
    await handle_activity(federation, request)
    approved = await Clip.get(uri=asked["id"])
    assert approved.quote_state == "accepted"
    assert approved.quote_authorization_uri == quote_stamp(clip, asked["id"])
    assert await remix_notices(ann) == [first["id"], asked["id"]]

    # ann blocks bob: the stamps of his remixes are no longer valid (checked again).
    await follows.block(ann, bob.account)
    await Clip.filter(uri=first["id"]).update(quote_authorization_uri=None)
    await quote_check.remix_changed(
        await Clip.get(uri=first["id"]), clip.uri, quote_stamp(clip, first["id"])
    )
    await run_checks(settings)
    assert (await Clip.get(uri=first["id"])).quote_state == "rejected"


async def remix_notices(account: Account) -> list[str]:
    """The URIs of the remixes *account* was notified of, oldest first."""
    notes = await Notification.filter(
        recipient_id=account.pk, type=NotificationType.REMIX
    ).order_by("id")
    return [(await Clip.get(pk=n.clip_id)).uri for n in notes if n.clip_id is not None]


def test_stamp_mismatch_names_what_is_wrong() -> None:
    stamp, author, quoting, quoted = "https://a/s/1", "https://a/u", "https://b/n/1", "https://a/n"
    good = stamp_doc(stamp, author, quoting, quoted)
    kwargs = {"stamp": stamp, "author": author, "quoting": quoting, "quoted": quoted}
    assert stamp_mismatch(good, **kwargs) is None
    assert stamp_mismatch({**good, "interactionTarget": {"id": quoted}}, **kwargs) is None
    assert stamp_mismatch({**good, "type": ["QuoteAuthorization"]}, **kwargs) is None
    assert "id" in (stamp_mismatch({**good, "id": "https://a/s/2"}, **kwargs) or "")
    assert "QuoteAuthorization" in (stamp_mismatch({**good, "type": "Note"}, **kwargs) or "")
    assert stamp_mismatch([good], **kwargs) == "the stamp is not a JSON object"
    for key in ("attributedTo", "interactingObject", "interactionTarget"):
        assert key in (stamp_mismatch({**good, key: "https://x/y"}, **kwargs) or "")


async def test_an_update_that_quotes_another_clip_or_none(
    settings: Settings, federation: Federation, peer: FlakyPeer, world: World
) -> None:
    remix = await receive_remix(federation, world)
    await run_checks(settings)
    first = await Clip.get(uri=world.clip_uri)
    other = note(world.rita, 2)
    peer.documents[other["id"]] = other

    async def update(n: int, **extra: Any) -> Clip:
        doc = note(world.bob, 7, **extra)
        activity = {"id": f"{doc['id']}/u/{n}", "type": "Update", "actor": world.bob.uri}
        await handle_activity(federation, {**activity, "object": doc})
        return await Clip.get(pk=remix.pk)

    remix = await update(1, quote=other["id"])  # another clip, no stamp
    assert (remix.remix_of_uri, remix.quote_state, remix.remix_of_id) == (
        other["id"],
        "pending",
        None,
    )
    assert (await Clip.get(pk=first.pk)).remixes_count == 0
    await run_checks(settings)  # fetches the newly quoted clip; still no approval
    remix = await Clip.get(pk=remix.pk)
    second = await Clip.get(uri=other["id"])
    assert (remix.remix_of_id, remix.quote_state, second.remixes_count) == (second.pk, "pending", 0)

    remix = await update(2)  # quotes nothing any more
    assert (remix.remix_of_id, remix.remix_of_uri, remix.quote_state) == (None, None, None)
    assert (await Clip.get(pk=second.pk)).remixes_count == 0
    remix = await update(3, quoteAuthorization=world.stamp)  # a stamp without a quote: nothing
    assert (remix.quote_authorization_uri, remix.quote_state) == (None, None)
    assert await QuoteCheck.filter(state="pending").count() == 0
