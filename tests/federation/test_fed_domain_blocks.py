"""Federation with a suspended domain: its inbox POSTs are refused before the body is read or
any signature work is done (403, counted), nothing is fetched from it or sent to it, and its
media is not fetched when only media is rejected."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from factories import local_account
from fedhelpers import DOMAIN, REMOTE, Peer, make_remote

from fedisora.config import Settings
from fedisora.federation import routes
from fedisora.federation.actors import ActorError, fetch_actor
from fedisora.federation.context import Federation
from fedisora.federation.http import UnsafeURL
from fedisora.models import Delivery, DomainBlock, Follow, InboxItem, WorkTally, utcnow
from fedisora.services import domain_blocks
from fedisora.services.audit import CLI
from fedisora.work.machines import build_engine

INBOX = f"https://{DOMAIN}/inbox"


def _follow(uri: str, target: str) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{uri}#follows/1",
        "type": "Follow",
        "actor": uri,
        "object": target,
    }


GARBAGE_SIGNATURE = {
    "content-type": "application/activity+json",
    "signature-input": 'sig1=("@method");created=1;keyid="https://{host}/users/rita#main-key"',
    "signature": "sig1=:AAAA:",
}


def _garbage(host: str) -> dict[str, str]:
    return {k: v.format(host=host) for k, v in GARBAGE_SIGNATURE.items()}


async def test_suspended_domain_refused_before_signature_work_and_counted(
    client: httpx.AsyncClient,
    federation: Federation,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bob = await local_account("bob")
    rita = await make_remote()
    body, signed = rita.signed(INBOX, _follow(rita.uri, bob.uri))
    # Before the block: a garbage signature is a signature refusal (401), the real one works.
    activity = json.dumps(_follow(rita.uri, bob.uri)).encode()
    r = await client.post("/inbox", content=activity, headers=_garbage(REMOTE))
    assert r.status_code in (400, 401) and "signature" in r.text.lower()
    await domain_blocks.create_block(CLI, REMOTE, settings, severity="suspend")

    def no_signature_work(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("signature work for a blocked domain")

    monkeypatch.setattr(routes, "verify_signer", no_signature_work)
    monkeypatch.setattr(routes, "signed_request", no_signature_work)
    monkeypatch.setattr(routes, "parse_json", no_signature_work)  # nor the body parsed
    answers = [
        await client.post("/inbox", content=body, headers=signed),  # a valid signature
        await client.post("/inbox", content=b"not json at all", headers=_garbage(REMOTE)),
        await client.post(
            f"/users/{bob.username}/inbox", content=b"{}", headers=_garbage(f"a.{REMOTE}")
        ),
        await client.post(
            "/inbox",
            content=b"x",
            headers={
                "content-type": "application/activity+json",
                "signature": f'keyId="https://{REMOTE}:8443/actor#k",algorithm="hs2019",'
                'headers="(request-target)",signature="AAAA"',
            },
        ),
    ]
    assert [a.status_code for a in answers] == [403, 403, 403, 403]
    assert all("does not accept activities from your domain" in a.text for a in answers)
    assert await InboxItem.all().count() == 0
    counts = await domain_blocks.refusals()
    assert counts == {REMOTE: 3, f"a.{REMOTE}": 1}
    # The first refusal was written at once; the others with the next flush.
    await domain_blocks.flush_refusals()
    rows = await WorkTally.filter(table_name="inbox_refusals").values("group_key", "count")
    assert {r["group_key"]: r["count"] for r in rows} == counts
    # Another domain goes on as before (to the signature check, here refused by the spy).
    monkeypatch.undo()
    other = await make_remote("otto", "other.example")
    body, signed = other.signed(INBOX, _follow(other.uri, bob.uri))
    assert (await client.post("/inbox", content=body, headers=signed)).status_code == 202


async def test_actor_of_blocked_domain_signed_elsewhere_is_refused(
    client: httpx.AsyncClient, federation: Federation, settings: Settings
) -> None:
    """The key's host is not the only one checked: an activity whose actor is on a blocked
    domain is refused too, still before any signature work."""
    bob = await local_account("bob")
    other = await make_remote("otto", "other.example")
    await domain_blocks.create_block(CLI, REMOTE, settings, severity="suspend")
    activity = _follow(f"https://{REMOTE}/users/rita", bob.uri)
    body, signed = other.signed(INBOX, activity)
    r = await client.post("/inbox", content=body, headers=signed)
    assert r.status_code == 403
    assert await InboxItem.all().count() == 0


async def test_limited_federation_refuses_domains_not_allowed(
    client: httpx.AsyncClient, federation: Federation, settings: Settings
) -> None:
    import dataclasses

    limited = dataclasses.replace(settings, limited_federation=True)
    federation.settings = limited
    client._transport.app.state.settings = limited  # type: ignore[attr-defined]
    bob = await local_account("bob")
    rita = await make_remote()
    body, signed = rita.signed(INBOX, _follow(rita.uri, bob.uri))
    assert (await client.post("/inbox", content=body, headers=signed)).status_code == 403
    await domain_blocks.create_allow(CLI, REMOTE, limited)
    assert (await client.post("/inbox", content=body, headers=signed)).status_code == 202


async def test_nothing_is_fetched_from_or_sent_to_a_suspended_domain(
    federation: Federation, settings: Settings, peer: Peer
) -> None:
    alice = await local_account("alice")
    rita = await make_remote()
    await domain_blocks.create_block(CLI, REMOTE, settings, severity="suspend")
    with pytest.raises(ActorError, match="blocked"):
        await fetch_actor(federation, f"https://{REMOTE}/users/someone")
    with pytest.raises(UnsafeURL, match="blocked"):
        await federation.client.get_json(f"https://sub.{REMOTE}/objects/1")
    # A delivery written before the block (and held by a worker then) fails when it is sent.
    await domain_blocks.delete_block(CLI, await DomainBlock.get(domain=REMOTE))
    from fedisora.federation.delivery import enqueue

    assert await enqueue(alice, {"id": "https://fedisora.test/act/1"}, [rita.account]) == 1
    row = await Delivery.get()
    await domain_blocks.create_block(CLI, REMOTE, settings, severity="suspend")
    assert (await Delivery.get(pk=row.pk)).state == "failed"  # cancelled at once
    await Delivery.filter(pk=row.pk).update(
        state="pending", last_error="", next_attempt_at=utcnow()
    )
    engine = build_engine(settings, providers=["fedisora.federation.delivery:machines"])
    engine.context["settings"] = settings
    await engine.advance("deliveries", row.pk)
    fresh = await Delivery.get(pk=row.pk)
    assert fresh.state == "failed" and "blocked" in fresh.last_error
    assert peer.requests == []


async def test_rejected_media_is_not_fetched(
    federation: Federation, settings: Settings, peer: Peer
) -> None:
    await domain_blocks.create_block(CLI, REMOTE, settings, severity="noop", reject_media=True)
    # Its activities and actors are fetched, its media is not.
    peer.documents[f"https://{REMOTE}/notes/1"] = {"id": f"https://{REMOTE}/notes/1"}
    _, doc = await federation.client.get_json(f"https://{REMOTE}/notes/1")
    assert json.dumps(doc)
    with pytest.raises(UnsafeURL, match="media"):
        await federation.client.open_stream(f"https://{REMOTE}/media/1.mp4", headers={})
    assert [r.url.path for r in peer.requests] == ["/notes/1"]


async def test_activity_stored_before_the_block_is_ignored(
    client: httpx.AsyncClient, federation: Federation, settings: Settings
) -> None:
    bob = await local_account("bob")
    rita = await make_remote()
    body, signed = rita.signed(INBOX, _follow(rita.uri, bob.uri))
    assert (await client.post("/inbox", content=body, headers=signed)).status_code == 202
    await domain_blocks.create_block(CLI, REMOTE, settings, severity="suspend")
    engine = build_engine(settings, providers=["fedisora.federation.inbox:machines"])
    engine.context["settings"] = settings
    item = await InboxItem.get()
    await engine.advance("inbox_items", item.pk)
    item = await InboxItem.get(pk=item.pk)
    assert item.state == "ignored" and "blocked" in item.last_error
    assert await Follow.all().count() == 0
