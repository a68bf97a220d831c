"""Delivery: rows per shared inbox from service events, signing, double-knock, backoff."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
from factories import local_account, rendered_video
from fedhelpers import REMOTE, Peer, make_remote

from activitypub import objects
from activitypub.keys import load_public_key_pem
from activitypub.signatures import Request, verify_request
from fedisora.config import Settings
from fedisora.federation.context import Federation
from fedisora.federation.delivery import DELIVERY_GRAPH, RETRY_SCHEDULE, delivery_stats
from fedisora.ids import new_id
from fedisora.models import Account, Clip, Delivery, Follow, FollowState
from fedisora.services import follows, interactions, posts
from fedisora.work.engine import Engine
from fedisora.work.machines import build_engine


def engine_for(settings: Settings) -> Engine:
    engine = build_engine(settings, providers=["fedisora.federation.delivery:machines"])
    engine.context["settings"] = settings
    return engine


async def _follower(username: str, domain: str, target: Account) -> Account:
    remote = await make_remote(username, domain)
    await follows.follow(remote.account, target, uri=f"{remote.uri}#follow")
    return remote.account


async def test_one_row_per_shared_inbox(federation: Federation) -> None:
    ann = await local_account("ann")
    await _follower("r1", REMOTE, ann)
    await _follower("r2", REMOTE, ann)  # same host, same shared inbox
    await _follower("o1", "other.example", ann)
    local_fan = await local_account("ben")
    await follows.follow(local_fan, ann)
    await Delivery.all().delete()  # the Accepts sent for those follows

    clip = await posts.post_clip(ann, await rendered_video(ann), caption="hi #fox")
    rows = await Delivery.all().order_by("inbox_url")
    assert [r.inbox_url for r in rows] == [
        "https://other.example/inbox",
        f"https://{REMOTE}/inbox",
    ]
    payload = rows[0].payload
    assert payload["type"] == "Create"
    assert payload["object"]["id"] == clip.uri
    assert payload["object"]["attachment"][0]["mediaType"] == "video/mp4"
    assert payload["to"] == [objects.PUBLIC]
    assert all(r.state == DELIVERY_GRAPH.initial for r in rows)

    await Delivery.all().delete()
    await posts.post_clip(ann, await rendered_video(ann), caption="just me", visibility="direct")
    assert await Delivery.all().count() == 0  # nobody outside a direct clip's audience

    await posts.post_clip(ann, await rendered_video(ann), caption="friends", visibility="private")
    rows = await Delivery.all()
    assert len(rows) == 2
    assert objects.PUBLIC not in rows[0].payload["to"] + rows[0].payload.get("cc", [])


async def test_follow_like_comment_to_remote(federation: Federation) -> None:
    ann = await local_account("ann")
    rita = await make_remote()
    theirs = await Account.get(pk=rita.account.pk)
    await follows.follow(ann, theirs)
    [follow_row] = await Delivery.all()
    assert follow_row.payload["type"] == "Follow"
    assert follow_row.inbox_url == f"https://{REMOTE}/inbox"
    assert (await Follow.get(follower_id=ann.pk)).state == FollowState.PENDING

    await follows.unfollow(ann, theirs)
    rows = await Delivery.all().order_by("id")
    undo = rows[-1].payload
    assert undo["type"] == "Undo" and undo["object"]["type"] == "Follow"
    assert undo["object"]["id"] == follow_row.payload["id"]


async def test_deliver_double_knock_and_backoff(
    federation: Federation, settings: Settings, peer: Peer
) -> None:
    ann = await local_account("ann")
    await _follower("r1", REMOTE, ann)
    await Delivery.all().delete()
    public_key = load_public_key_pem(ann.public_key_pem or "")

    def cavage_only(request: httpx.Request) -> httpx.Response:
        if "signature-input" in request.headers:
            return httpx.Response(401)
        verify_request(  # the independent check: our verifier, on the bytes that arrived
            Request("POST", str(request.url), request.headers.multi_items(), request.content),
            public_key,
            now=time.time(),
        )
        return httpx.Response(202)

    peer.handler = cavage_only
    await posts.post_clip(ann, await rendered_video(ann), caption="one")
    engine = engine_for(settings)
    [row] = await Delivery.all()
    await engine.advance("deliveries", row.pk)
    row = await Delivery.get(pk=row.pk)
    assert row.state == "delivered" and row.delivered_at is not None
    assert [("signature-input" in r.headers) for r in peer.requests] == [True, False]
    assert federation.client.memory.get(REMOTE) == "cavage"

    peer.requests.clear()
    await posts.post_clip(ann, await rendered_video(ann), caption="two")
    row = await Delivery.filter(state="pending").get()
    await engine.advance("deliveries", row.pk)
    assert len(peer.requests) == 1  # remembered: cavage first, no second knock
    assert (await Delivery.get(pk=row.pk)).state == "delivered"

    peer.handler = lambda request: httpx.Response(503)
    await posts.post_clip(ann, await rendered_video(ann), caption="three")
    row = await Delivery.filter(state="pending").get()
    await engine.advance("deliveries", row.pk)
    row = await Delivery.get(pk=row.pk)
    assert row.state == "pending" and row.attempts == 1
    assert row.last_error == "HTTP 503"
    assert row.next_attempt_at is not None
    wait = row.next_attempt_at - row.state_changed_at
    assert timedelta(seconds=29) < wait < timedelta(seconds=60)

    # The last allowed attempt fails too: the row is failed, not retried for ever.
    max_attempts = DELIVERY_GRAPH["pending"].max_attempts
    assert max_attempts is not None
    await Delivery.filter(pk=row.pk).update(
        attempts=max_attempts - 1, next_attempt_at=row.state_changed_at
    )
    await engine.advance("deliveries", row.pk)
    assert (await Delivery.get(pk=row.pk)).state == "failed"


async def test_permanent_refusal_fails_at_once(
    federation: Federation, settings: Settings, peer: Peer
) -> None:
    ann = await local_account("ann")
    rita = await make_remote()
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="x")
    await interactions.like(rita.account, clip, uri=f"{rita.uri}#like")  # remote: no delivery
    assert await Delivery.all().count() == 0
    await follows.block(ann, rita.account)
    [row] = await Delivery.all()
    assert row.payload["type"] == "Block"
    peer.handler = lambda request: httpx.Response(410)
    await engine_for(settings).advance("deliveries", row.pk)
    row = await Delivery.get(pk=row.pk)
    assert row.state == "failed" and "410" in row.last_error


def test_retry_schedule_covers_two_days() -> None:
    total = sum(RETRY_SCHEDULE, timedelta(0))
    assert total >= timedelta(days=2)
    assert RETRY_SCHEDULE[0] == timedelta(seconds=30)
    assert max(RETRY_SCHEDULE) == timedelta(hours=6)
    assert DELIVERY_GRAPH["pending"].max_attempts == len(RETRY_SCHEDULE) + 1


async def _two_rows_to_a_dead_host(peer: Peer) -> list[Delivery]:
    """Two clips by ann, whose one follower's host refuses connections: two Delivery rows."""
    ann = await local_account("ann")
    await _follower("r1", REMOTE, ann)
    await Delivery.all().delete()

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    peer.handler = down
    await posts.post_clip(ann, await rendered_video(ann), caption="one")
    await posts.post_clip(ann, await rendered_video(ann), caption="two")
    return await Delivery.all().order_by("id")


async def test_dead_host_backed_off_as_a_whole(
    federation: Federation, settings: Settings, peer: Peer
) -> None:
    first, second = await _two_rows_to_a_dead_host(peer)
    await engine_for(settings).advance("deliveries", first.pk)
    first = await Delivery.get(pk=first.pk)
    second = await Delivery.get(pk=second.pk)
    assert first.attempts == 1 and "ConnectError" in first.last_error
    assert second.attempts == 0
    assert first.next_attempt_at is not None and second.next_attempt_at is not None
    # The second row waits with its host instead of knocking on a dead server now.
    assert abs(second.next_attempt_at - first.next_attempt_at) < timedelta(seconds=1)
    assert second.next_attempt_at - second.created_at > timedelta(seconds=25)
    assert len(peer.requests) == 1
    assert await delivery_stats() == [{"host": REMOTE, "state": "pending", "count": 2}]


async def test_rows_claimed_before_the_host_went_down_wait_with_it(
    federation: Federation, settings: Settings, peer: Peer
) -> None:
    """A row claimed ahead (a batch claim) when another row finds its host down makes no
    request of its own: it waits, without using an attempt, until the host's back-off ends;
    then the host is tried again, and once it answers its rows go through."""
    first, second = await _two_rows_to_a_dead_host(peer)
    engine = engine_for(settings)
    machine = engine.machine("deliveries")
    claimed = await engine.claim(machine, second.pk)
    assert claimed is not None
    await engine.advance("deliveries", first.pk)
    first = await Delivery.get(pk=first.pk)
    assert first.attempts == 1 and len(peer.requests) == 1

    await engine.advance_claimed(machine, *claimed)
    second = await Delivery.get(pk=second.pk)
    assert len(peer.requests) == 1  # no second knock on the dead host
    assert second.attempts == 0 and second.state == "pending"
    assert second.last_error == f"{REMOTE} is down"
    assert second.next_attempt_at is not None and first.next_attempt_at is not None
    assert abs(second.next_attempt_at - first.next_attempt_at) < timedelta(seconds=1)

    # After the back-off the host is tried again; it answers now.
    peer.handler = None
    later = first.next_attempt_at + timedelta(seconds=1)
    engine.clock = lambda: later
    for row in (first, second):
        await engine.advance("deliveries", row.pk)
    assert [r.state for r in await Delivery.all().order_by("id")] == ["delivered", "delivered"]
    assert len(peer.requests) == 3
    assert federation.down_hosts == {}


async def test_boost_comment_edit_and_manual_approval(federation: Federation) -> None:
    ann = await local_account("ann")
    rita = await make_remote()
    theirs = await posts.store_clip(
        Clip(
            id=new_id(),
            account=rita.account,
            uri=f"{rita.uri}/clips/1",
            url=f"{rita.uri}/clips/1",
            caption="remote",
            content="<p>remote</p>",
            local=False,
        ),
        rita.account,
    )
    await interactions.boost(ann, theirs)
    await interactions.comment(ann, theirs, "nice one")
    rows = [d.payload for d in await Delivery.all().order_by("id")]
    assert [p["type"] for p in rows] == ["Announce", "Create"]
    announce, create = rows
    assert announce["object"] == theirs.uri and announce["actor"] == ann.uri
    assert create["object"]["inReplyTo"] == theirs.uri
    assert rita.uri in create["object"]["to"] + create["object"]["cc"]

    await Delivery.all().delete()
    await Account.filter(pk=ann.pk).update(locked=True)
    ann = await Account.get(pk=ann.pk)
    request = await follows.follow(rita.account, ann, uri=f"{rita.uri}#follows/9")
    assert request.state == FollowState.PENDING
    assert await Delivery.all().count() == 0  # nothing until ann decides
    await follows.accept_follow(ann, request)
    [accept] = [d.payload for d in await Delivery.all()]
    assert accept["type"] == "Accept"
    assert accept["object"] == {
        "id": f"{rita.uri}#follows/9",
        "type": "Follow",
        "actor": rita.uri,
        "object": ann.uri,
    }

    await Delivery.all().delete()
    mine = await posts.post_clip(ann, await rendered_video(ann), caption="v1")
    await posts.edit_clip(ann, mine, caption="v2")
    await posts.delete_clip(ann, mine)
    kinds = [d.payload["type"] for d in await Delivery.all().order_by("id")]
    assert kinds == ["Create", "Update", "Delete"]
    update = (await Delivery.all().order_by("id"))[1]
    assert "v2" in update.payload["object"]["content"]


async def test_an_answer_to_a_follow_is_named_by_the_follow_it_answers(db: str) -> None:
    """Two Follows answered in the same second get two Accept ids (a peer that remembers
    ids, as Fedify does, took the second for the first); answering one again (a retried
    delivery) gives the same id; an Accept and a Reject of one Follow differ."""
    from factories import local_account, remote_account

    from fedisora.federation.delivery import _follow_accepted, _follow_rejected

    admin = await local_account("admin")
    bob = await remote_account("bob")
    first = {"follower_id": bob.pk, "follow_uri": "https://remote.example/f/1"}
    second = {"follower_id": bob.pk, "follow_uri": "https://remote.example/f/2"}
    ids = []
    for data, answer in (
        (first, _follow_accepted),
        (second, _follow_accepted),
        (first, _follow_accepted),
        (first, _follow_rejected),
    ):
        found = await answer(admin, data)
        assert found is not None
        ids.append(found[0]["id"])
    assert ids[0] != ids[1]
    assert ids[0] == ids[2]
    assert ids[3] != ids[0] and "#rejects/" in ids[3]
