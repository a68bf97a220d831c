"""An actor suspended by its own server (Mastodon's ``suspended`` in the actor), and how that
stays apart from a suspension by this instance's moderators.

The remote server is the scripted peer of conftest.py; activities come in signed, through
the inbox, and are processed by the InboxItem machine.
"""

from __future__ import annotations

from typing import Any

import httpx
from factories import local_account
from fedhelpers import REMOTE, Peer, RemoteActor, make_remote
from test_fed_inbox import post, process_all

from activitypub.federation.actors import fetch_actor, store_actor
from activitypub.federation.context import Federation
from fedisora.config import Settings
from fedisora.models import Account, Follow
from fedisora.services.account_deletion import suspend_account, unsuspend_account


def suspended(doc: dict[str, Any]) -> dict[str, Any]:
    """The actor as Mastodon serves a suspended one: its profile blanked, ``suspended``."""
    return dict(doc, name=doc["preferredUsername"], summary="", suspended=True)


def update(remote: RemoteActor, doc: dict[str, Any], n: int) -> dict[str, Any]:
    return {"id": f"{remote.uri}#updates/{n}", "type": "Update", "actor": remote.uri, "object": doc}


async def shown(client: httpx.AsyncClient, remote: RemoteActor) -> bool:
    r = await client.get("/api/v1/accounts/lookup", params={"acct": f"rita@{REMOTE}"})
    assert r.status_code in (200, 404), r.text
    return r.status_code == 200


async def test_the_origins_suspension_follows_its_actor_updates(
    client: httpx.AsyncClient, settings: Settings, federation: Federation
) -> None:
    ann = await local_account("ann")
    rita = await make_remote()
    full = dict(rita.document(), name="Rita R.", summary="<p>hi</p>")
    assert (await post(client, rita, update(rita, full, 1))).status_code == 202
    await process_all(settings)
    assert await shown(client, rita)

    assert (await post(client, rita, update(rita, suspended(full), 2))).status_code == 202
    await process_all(settings)
    row = await Account.get(pk=rita.account.pk)
    assert row.origin_suspended_at is not None and row.suspended_at is None and row.suspended
    assert (row.display_name, row.note) == ("Rita R.", "hi")  # the blanked profile is not kept
    assert not await shown(client, rita)
    # Hidden like an account suspended here: its other activities are ignored.
    follow = {"id": f"{rita.uri}#follows/1", "type": "Follow", "actor": rita.uri, "object": ann.uri}
    assert (await post(client, rita, follow)).status_code == 202
    item = (await process_all(settings))[-1]
    assert item.state == "ignored" and "suspended by its server" in item.last_error
    assert not await Follow.filter(follower_id=rita.account.pk).exists()

    # Its server lifts the suspension: the full actor again.
    assert (await post(client, rita, update(rita, dict(full, name="Rita"), 3))).status_code == 202
    await process_all(settings)
    row = await Account.get(pk=rita.account.pk)
    assert row.origin_suspended_at is None and not row.suspended and row.display_name == "Rita"
    assert await shown(client, rita)


async def test_the_origin_never_lifts_a_local_moderators_suspension(
    client: httpx.AsyncClient, settings: Settings, federation: Federation, peer: Peer
) -> None:
    rita = await make_remote()
    doc = rita.document()
    assert (await post(client, rita, update(rita, suspended(doc), 1))).status_code == 202
    await process_all(settings)
    await suspend_account(rita.account)  # a moderator here suspends it too

    # Its server lifts its own suspension: the door takes it on the key cached a moment ago
    # (or, later, refuses it: suspended here), and processing ignores it: suspended here.
    assert (await post(client, rita, update(rita, doc, 2))).status_code == 202
    item = (await process_all(settings))[-1]
    assert item.state == "ignored" and "suspended or deleted here" in item.last_error
    row = await Account.get(pk=rita.account.pk)
    assert row.origin_suspended_at is not None and row.suspended_at is not None
    # However the lift comes in (here a refetch), only the origin's suspension goes.
    await store_actor(doc, rita.uri)
    row = await Account.get(pk=rita.account.pk)
    assert row.origin_suspended_at is None and row.suspended_at is not None
    assert not await shown(client, rita)

    # Suspended by its server again, then lifted here: the origin's suspension stays.
    await store_actor(suspended(doc), rita.uri)
    row = await unsuspend_account(rita.account)
    assert row.suspended_at is None and row.suspended and row.fetched_at is None
    assert not await shown(client, rita)
    # Whatever its server said meanwhile, the next use refetches the actor and follows it.
    peer.documents[rita.uri] = doc
    row = await fetch_actor(federation, rita.uri)
    assert not row.suspended and await shown(client, rita)
    peer.documents[rita.uri] = suspended(doc)
    row = await fetch_actor(federation, rita.uri, refresh=True)
    assert row.origin_suspended_at is not None and row.suspended_at is None
    assert not await shown(client, rita)
