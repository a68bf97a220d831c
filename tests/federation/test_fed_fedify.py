"""An independent implementation on loopback: a Fedify server (Node, @fedify/fedify from npm).

Two Fedify peers (tests/support/fedify_peer/server.mjs, installed by fedify_node.py) on their
own ports, so on two hosts: ``a`` with the actors alice and bob, ``b`` with carol. They talk
to one real fedisora instance (``fedisora serve`` on 127.0.0.1, plain http) whose user is
``admin``. The test drives the Fedify users through the peer's control API (follow, like,
announce, reply, undo, accept, reject, and a hand-made forwarded or tampered activity) and
checks, with Fedify's own code on the other side:

- what fedisora serves reads as Fedify reads it (lookupObject: the actor's Ed25519 key is its
  assertionMethod, the clip a Note with a video Document) and expands with jsonld.js in safe
  mode (no term left undefined, which a reader would silently drop);
- FEP-8b32 proofs both ways: Fedify's verifyObject holds on every activity fedisora delivers;
  fedisora takes Fedify's proofs, a forwarded one (HTTP-signed by another actor) included,
  and refuses a tampered one;
- the follow state machine against Fedify's Follow, Undo, Accept and Reject;
- a reply from Fedify to a local clip is forwarded to the clip author's other remote followers.

One fedisora instance and the two peers serve the whole module; each test uses its own
actors' state. Without npm or the registry the module fails (never skips).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fedify_node import (
    FedifyPeer,
    fedify_peer_install,
    start_fedify_peer,
    stop_fedify_peer,
)
from fedinstances import Instance, free_port, start, stop, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fedify")


@pytest.fixture(scope="module")
def peers(tmp: Path) -> Iterator[tuple[FedifyPeer, FedifyPeer]]:
    node, server = fedify_peer_install()
    started: list[FedifyPeer] = []
    try:
        started.append(
            start_fedify_peer(node, server, free_port(), ("alice", "bob"), tmp / "a.log")
        )
        started.append(start_fedify_peer(node, server, free_port(), ("carol",), tmp / "b.log"))
        yield started[0], started[1]
    finally:
        for peer in started:
            stop_fedify_peer(peer)


@pytest.fixture(scope="module")
def instance(tmp: Path) -> Iterator[Instance]:
    started = start("fed", tmp)
    try:
        yield started
    finally:
        stop(started)


@pytest.fixture(scope="module")
def a(peers: tuple[FedifyPeer, FedifyPeer]) -> FedifyPeer:
    return peers[0]


@pytest.fixture(scope="module")
def b(peers: tuple[FedifyPeer, FedifyPeer]) -> FedifyPeer:
    return peers[1]


@pytest.fixture(scope="module")
def admin(instance: Instance) -> str:
    return f"{instance.base}/users/admin"


@pytest.fixture(scope="module")
def clip(instance: Instance, a: FedifyPeer, admin: str) -> str:
    """A clip of admin's, posted once alice follows admin (so its Create goes to peer a)."""
    _follow_accepted(instance, a, "alice", admin)
    uri: str = instance.act("post", "admin", "hello fedify")["uri"]
    return uri


def _follow_accepted(instance: Instance, peer: FedifyPeer, name: str, target: str) -> str:
    follow: str = peer.control("follow", actor=name, target=target)["id"]
    wait_for(
        instance,
        lambda s: any(f["uri"] == follow and f["state"] == "accepted" for f in s["follows"]),
        f"{name}'s Follow {follow} to be accepted",
    )
    peer.wait_for(
        lambda s: any(_accepts(r, follow) for r in s["received"]),
        f"fedisora's Accept of {follow}",
    )
    return follow


def _accepts(record: dict[str, Any], follow: str) -> bool:
    obj = record["json"].get("object")
    return record["type"] == "Accept" and (
        obj == follow or (isinstance(obj, dict) and obj.get("id") == follow)
    )


def _follows(state: dict[str, Any], follower: str, target: str) -> list[dict[str, Any]]:
    return [f for f in state["follows"] if f["follower"] == follower and f["target"] == target]


# --- (1) what fedisora serves, as Fedify reads it -----------------------------------------


def test_fedify_finds_the_actors_ed25519_key_as_its_assertion_method(
    a: FedifyPeer, admin: str
) -> None:
    found = a.control("lookup", uri=admin)
    assert found["found"], found
    assert found["type"].endswith("#Person") or found["type"] == "Person", found["type"]
    assert found["id"] == admin
    ed = [k for k in found["assertionMethods"] if k["algorithm"] == "Ed25519"]
    assert len(ed) == 1, found["assertionMethods"]
    assert ed[0]["controller"] == admin
    assert ed[0]["id"].startswith(admin + "#")
    rsa = [k for k in found["publicKeys"] if k["algorithm"] == "RSASSA-PKCS1-v1_5"]
    assert [k["owner"] for k in rsa] == [admin], found["publicKeys"]


def test_every_document_expands_without_undefined_terms(
    instance: Instance, a: FedifyPeer, admin: str, clip: str
) -> None:
    comment = instance.act("comment", "admin", clip, "a comment of the author")["comment"]
    documents = [
        admin,
        f"{instance.base}/actor",  # the instance actor
        f"{admin}/outbox",
        f"{admin}/followers",
        f"{admin}/following",
        f"{admin}/collections/featured",
        clip,
        f"{clip}/likes",
        f"{clip}/shares",
        f"{clip}/replies",
        f"{clip}/video",  # the clip as a PeerTube-style Video
        comment,
    ]
    failures = {}
    for uri in documents:
        result = a.control("expand", uri=uri)
        if not result["ok"]:
            failures[uri] = result
        elif not a.control("lookup", uri=uri)["found"]:  # Fedify's parser took it too
            failures[uri] = "lookupObject found nothing"
    assert not failures, failures
    # The check itself: a term no context defines is refused, not dropped.
    served = httpx.get(clip, headers={"Accept": "application/activity+json"}).json()
    served["attachment"][0]["madeUpTerm"] = 1
    refused = a.control("expandJson", document=served)
    assert not refused["ok"] and "madeUpTerm" in str(refused), refused


def test_fedify_reads_the_clip_as_a_note_with_a_video_document(a: FedifyPeer, clip: str) -> None:
    found = a.control("lookup", uri=clip)
    assert found["found"], found
    assert found["type"].endswith("#Note"), found["type"]
    assert found["id"] == clip
    [video] = found["attachments"]
    assert video["type"] == "Document", video
    assert video["mediaType"] == "video/mp4"
    assert (video["width"], video["height"]) == (256, 448)


# --- (2) object integrity proofs, both ways -----------------------------------------------


def test_fedify_verifies_the_proofs_of_what_fedisora_delivers(
    instance: Instance, a: FedifyPeer, admin: str, clip: str
) -> None:
    # alice follows admin (the clip fixture): fedisora's Accept and the clip's Create came;
    # a clip posted and deleted sends a Create and a Delete.
    gone = instance.act("post", "admin", "soon deleted")["uri"]
    instance.act("delete", "admin", gone)
    state = a.wait_for(
        lambda s: (
            any(_created(p, clip) for p in s["posts"])
            and any(_deletes(p, gone) for p in s["posts"])
        ),
        "the Create of the clip and the Delete of the other",
    )
    delivered = [p for p in state["posts"] if p["document"]["actor"] == admin]
    assert {p["document"]["type"] for p in delivered} >= {"Accept", "Create", "Delete"}
    for post in delivered:
        assert post["status"] == 202, post
        assert post["document"]["proof"]["cryptosuite"] == "eddsa-jcs-2022"
        assert post["proof"] == {"verified": True}, post
        expanded = a.control("expandJson", document=post["document"])
        assert expanded["ok"], (post["document"]["type"], expanded.get("undefinedTerms"))
    # Fedify's inbox took each as verified (its listener ran, maybe after the answer).
    ids = {p["document"]["id"] for p in delivered}
    a.wait_for(lambda s: ids <= {r["id"] for r in s["received"]}, "Fedify's listener")


def test_fedisora_verifies_fedifys_proofs_and_refuses_a_tampered_one(
    instance: Instance, a: FedifyPeer, b: FedifyPeer, admin: str, clip: str
) -> None:
    # (What Fedify's sendActivity delivers carries a proof and an LD signature added after
    # it: every other test here sends such activities.) A Create with bob's proof alone
    # (Fedify's signObject), HTTP-signed by bob himself:
    own = a.control("forward", actor="bob", inReplyTo=clip, to=[admin], content="bob's own")
    assert own["status"] == 202, own
    # ... by alice, another actor of bob's server: a forwarded activity, taken by its proof;
    same_host = a.control(
        "forward", actor="bob", via="alice", inReplyTo=clip, to=[admin], content="via alice"
    )
    assert same_host["status"] == 202, same_host
    assert same_host["json"]["proof"]["verificationMethod"].startswith(a.actor("bob") + "#")
    # ... and by carol of another server (as a relay or a thread's server forwards it).
    made = a.control(
        "forward", actor="bob", inReplyTo=clip, to=[admin], content="via carol", deliver=False
    )
    other_host = b.control("forward", via="carol", to=[admin], document=made["json"])
    assert other_host["status"] == 202, other_host
    notes = {own["note"], same_host["note"], other_host["note"]}
    wait_for(instance, lambda s: notes <= set(s["comments"]), "the three replies")

    # Changed after signing: refused, whoever signed the request.
    tampered = a.control("forward", actor="bob", inReplyTo=clip, to=[admin], tamper=True)
    forged = a.control("forward", actor="bob", via="alice", inReplyTo=clip, to=[admin], tamper=True)
    made = a.control("forward", actor="bob", inReplyTo=clip, to=[admin], deliver=False)
    made["json"]["object"]["content"] = "not what bob wrote"
    relayed = b.control("forward", via="carol", to=[admin], document=made["json"])
    for refused in (tampered, forged, relayed):
        assert refused["status"] == 401, refused
        assert "proof does not hold" in refused["body"], refused
    state = instance.act("state")
    assert not {tampered["note"], forged["note"], relayed["note"]} & set(state["comments"])
    assert all(i["state"] != "failed" for i in state["inbox"])


def _deletes(post: dict[str, Any], obj: str) -> bool:
    document = post.get("document") or {}
    inner = document.get("object")
    return document.get("type") == "Delete" and (
        inner == obj or (isinstance(inner, dict) and inner.get("id") == obj)
    )


def _created(post: dict[str, Any], obj: str) -> bool:
    document = post.get("document") or {}
    inner = document.get("object")
    return document.get("type") == "Create" and (
        inner == obj or (isinstance(inner, dict) and inner.get("id") == obj)
    )


def _received(peer: FedifyPeer, check: Any, what: str) -> dict[str, Any]:
    """The first activity the peer's inbox listener took (Fedify verified it) that *check*
    accepts, waited for."""
    state = peer.wait_for(lambda s: any(check(r) for r in s["received"]), what)
    found: dict[str, Any] = next(r for r in state["received"] if check(r))
    return found


def _proof_held(peer: FedifyPeer, activity_id: str) -> None:
    """Every POST of *activity_id* to *peer* was taken, and Fedify verified its proof."""

    def of(state: dict[str, Any]) -> list[dict[str, Any]]:
        return [p for p in state["posts"] if (p["document"] or {}).get("id") == activity_id]

    # Listed once Fedify answered the POST, which may be after its listener ran.
    posts = of(peer.wait_for(lambda s: bool(of(s)), f"the POST of {activity_id}"))
    for post in posts:
        assert post["status"] == 202, post
        assert post["proof"] == {"verified": True}, post


# --- interactions: follows both ways, likes, boosts, replies, undo ------------------------


def test_fedisora_follows_a_fedify_actor_and_unfollows(
    instance: Instance, b: FedifyPeer, admin: str
) -> None:
    carol = b.actor("carol")
    instance.act("follow", "admin", f"carol@{b.domain}")
    follow = _received(b, lambda r: r["type"] == "Follow" and r["actor"] == admin, "the Follow")
    assert follow["object"] == carol
    _proof_held(b, follow["id"])
    wait_for(
        instance,
        lambda s: [f["state"] for f in _follows(s, admin, carol)] == ["accepted"],
        "carol's Accept",
    )
    assert b.state()["followers"]["carol"] == [admin]
    instance.act("unfollow", "admin", carol)
    undo = _received(b, lambda r: r["type"] == "Undo" and r["object"] == follow["id"], "the Undo")
    _proof_held(b, undo["id"])
    b.wait_for(lambda s: s["followers"]["carol"] == [], "carol's follower list to be empty")
    assert _follows(instance.act("state"), admin, carol) == []


def test_likes_boosts_replies_and_their_undo(
    instance: Instance, a: FedifyPeer, admin: str, clip: str
) -> None:
    def counts(state: dict[str, Any]) -> tuple[int, int]:
        [row] = [c for c in state["clips"] if c["uri"] == clip]
        return row["likes"], row["boosts"]

    likes, boosts = counts(instance.act("state"))
    like = a.control("like", actor="bob", object=clip, to=[admin])["id"]
    boost = a.control("announce", actor="bob", object=clip, to=[admin])["id"]
    reply = a.control("reply", actor="bob", inReplyTo=clip, to=[admin], content="nice clip")
    state = wait_for(
        instance,
        lambda s: counts(s) == (likes + 1, boosts + 1) and reply["note"] in s["comments"],
        "bob's Like, Announce and reply",
    )
    a.control("undo", actor="bob", id=like)
    a.control("undo", actor="bob", id=boost)
    state = wait_for(instance, lambda s: counts(s) == (likes, boosts), "both Undos")
    assert reply["note"] in state["comments"]
    assert all(i["state"] == "processed" for i in state["inbox"] if i["type"] != "Create"), state
    sent = {like, boost, reply["id"]}
    peer = a.wait_for(lambda s: sent <= {o["activity"] for o in s["outgoing"]}, "the answers")
    assert peer["outboxErrors"] == []
    # Each went once, with an RFC 9421 signature (Fedify's first knock), and was taken.
    for activity in sent:
        posts = [o for o in peer["outgoing"] if o["activity"] == activity]
        assert [(o["signature"], o["status"]) for o in posts] == [("rfc9421", 202)], posts


# --- (3) the follow state machine --------------------------------------------------------


def test_a_repeated_follow_gets_a_new_accept_and_an_undo_of_either_id_ends_it(
    instance: Instance, a: FedifyPeer, admin: str
) -> None:
    bob = a.actor("bob")
    for undone in ("first", "second"):
        first = _follow_accepted(instance, a, "bob", admin)
        second = a.control("follow", actor="bob", target=admin)["id"]
        assert second != first
        a.wait_for(
            lambda s, second=second: any(_accepts(r, second) for r in s["received"]),
            "a new Accept for the repeated Follow",
        )
        [row] = _follows(instance.act("state"), bob, admin)
        assert (row["uri"], row["state"]) == (second, "accepted")
        a.control("undo", actor="bob", id=first if undone == "first" else second)
        wait_for(
            instance,
            lambda s: _follows(s, bob, admin) == [],
            f"the Undo of the {undone} Follow to end the follow",
        )


def test_a_reject_ends_a_pending_and_an_established_follow(
    instance: Instance, a: FedifyPeer, admin: str
) -> None:
    a.control("autoAccept", actor="alice", on=False)
    try:
        _rejected(instance, a, admin, "alice", "pending")
    finally:
        a.control("autoAccept", actor="alice", on=True)
    _rejected(instance, a, admin, "bob", "accepted")


def _rejected(instance: Instance, a: FedifyPeer, admin: str, name: str, state: str) -> None:
    """admin follows *name* of peer a; once the follow is in *state*, *name* rejects it."""
    actor = a.actor(name)
    instance.act("follow", "admin", f"{name}@{a.domain}")
    wait_for(
        instance,
        lambda s: [f["state"] for f in _follows(s, admin, actor)] == [state],
        f"the follow of {name} to be {state}",
    )
    follow = _received(
        a,
        lambda r: r["type"] == "Follow" and r["actor"] == admin and r["object"] == actor,
        f"the Follow of {name}",
    )
    a.control("reject", actor=name, follow=follow["id"])
    wait_for(
        instance,
        lambda s: _follows(s, admin, actor) == [],
        f"{name}'s Reject to end the {state} follow",
    )


# --- (5) a reply from Fedify is forwarded to the author's other followers -----------------


def test_a_reply_to_a_local_clip_is_forwarded_to_other_remote_followers(
    instance: Instance, a: FedifyPeer, b: FedifyPeer, admin: str, clip: str
) -> None:
    _follow_accepted(instance, b, "carol", admin)
    reply = a.control("reply", actor="alice", inReplyTo=clip, to=[admin], content="forward me")
    wait_for(instance, lambda s: reply["note"] in s["comments"], "alice's reply")
    # On carol's server: alice's Create as alice made it, carried by fedisora's signature
    # and taken by Fedify on alice's proof.
    forwarded = _received(b, lambda r: r["id"] == reply["id"], "the forwarded reply")
    assert forwarded["actor"] == a.actor("alice")
    assert forwarded["json"]["object"]["id"] == reply["note"]
    _proof_held(b, reply["id"])
    # Not sent back to the reply's own server.
    state = instance.act("state")
    sent = [d for d in state["deliveries"] if d["id"] == reply["id"]]
    assert sent and all(d["inbox"].startswith(b.base) for d in sent), sent
    assert all(d["state"] == "delivered" for d in sent), sent
