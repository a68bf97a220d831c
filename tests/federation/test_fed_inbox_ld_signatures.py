"""Mastodon's Linked Data signatures on incoming activities (``RsaSignature2017``; issue 19,
point 2): a reply forwarded by another server than its author's (HTTP-signed by that server)
is accepted as its author's when it carries a valid signature by the author's RSA key, as
Mastodon accepts it; one that does not hold (a modified activity, a key not the actor's, an
unknown signature type, a context that changes what a term means) is refused with its
reason, and nothing is stored. The vector signed by Fedify is accepted too."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from factories import local_account, rendered_video
from fedhelpers import DOMAIN, RemoteActor, make_remote, post_inbox, process_inbox

from activitypub import keys, ld_signatures
from fedisora.config import Settings
from fedisora.federation.context import Federation
from fedisora.models import Account, Comment, Delivery, InboxItem, utcnow
from fedisora.services import follows, posts

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
VECTORS = Path(__file__).resolve().parents[1] / "fixtures" / "ld_signatures"
MASTODON_CONTEXT: list[Any] = [
    "https://www.w3.org/ns/activitystreams",
    {
        "ostatus": "http://ostatus.org#",
        "atomUri": "ostatus:atomUri",
        "inReplyToAtomUri": "ostatus:inReplyToAtomUri",
        "conversation": "ostatus:conversation",
        "sensitive": "as:sensitive",
        "toot": "http://joinmastodon.org/ns#",
        "votersCount": "toot:votersCount",
    },
]


def _reply(author: RemoteActor, clip_uri: str, ann_uri: str, n: int) -> dict[str, Any]:
    """A reply to a local clip, shaped as Mastodon's ``Create(Note)``."""
    status = f"{author.uri}/statuses/{n}"
    note = {
        "id": status,
        "type": "Note",
        "summary": None,
        "inReplyTo": clip_uri,
        "published": "2026-12-07T09:00:00Z",
        "url": f"https://{author.account.domain}/@{author.account.username}/{n}",
        "attributedTo": author.uri,
        "to": [PUBLIC],
        "cc": [f"{author.uri}/followers", ann_uri],
        "sensitive": False,
        "atomUri": status,
        "inReplyToAtomUri": clip_uri,
        "conversation": f"tag:{author.account.domain},2026-12-07:objectId={n}",
        "content": f"<p>what light! ({n})</p>",
        "contentMap": {"en": f"<p>what light! ({n})</p>"},
        "attachment": [],
        "tag": [{"type": "Mention", "href": ann_uri, "name": f"@ann@{DOMAIN}"}],
    }
    return {
        "@context": MASTODON_CONTEXT,
        "id": f"{status}/activity",
        "type": "Create",
        "actor": author.uri,
        "published": note["published"],
        "to": note["to"],
        "cc": note["cc"],
        "object": note,
    }


def _signed(doc: dict[str, Any], key: Any, creator: str) -> dict[str, Any]:
    return ld_signatures.sign(doc, key, creator, created=datetime.now(UTC))


async def test_a_forwarded_reply_signed_by_its_author_is_accepted_and_forwarded(
    client: httpx.AsyncClient, settings: Settings, federation: Federation
) -> None:
    ann = await local_account("ann")
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="a storm at sea")
    rita = await make_remote()  # the reply's author, on a Mastodon
    otto = await make_remote("otto", domain="otto.example")  # the server that forwards it
    fan = await make_remote("fan", domain="fan.example")
    await follows.follow(fan.account, ann, uri=f"{fan.uri}#follows/1")
    await Delivery.all().delete()  # the Accept

    reply = _signed(_reply(rita, clip.uri, ann.uri, 1), rita.private_key, f"{rita.uri}#main-key")
    sent = copy.deepcopy(reply)
    sent["object"]["mood"] = "added on the way"  # no context defines it: not signed
    r = await post_inbox(client, otto, sent)  # HTTP-signed by otto, signed (LD) by rita
    assert r.status_code == 202, r.text
    [item] = await InboxItem.all()
    assert item.actor_uri == rita.uri
    assert item.payload == reply  # what the signature does not cover is not kept
    assert await process_inbox(settings) == ["processed"]
    [comment] = await Comment.filter(clip_id=clip.pk)
    assert comment.account_id == rita.account.pk and "what light! (1)" in comment.content

    # forwarded on as received (Mastodon's inbox forwarding), verifiable by rita's key alone
    [forwarded] = await Delivery.all()
    assert forwarded.inbox_url == "https://fan.example/inbox" and forwarded.payload == reply
    public = rita.private_key.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    ld_signatures.verify(forwarded.payload, public)


async def test_signatures_that_do_not_hold_are_refused_with_their_reason(
    client: httpx.AsyncClient, settings: Settings, federation: Federation
) -> None:
    ann = await local_account("ann")
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="a storm at sea")
    rita = await make_remote()
    otto = await make_remote("otto", domain="otto.example")
    creator = f"{rita.uri}#main-key"

    def reply(n: int) -> dict[str, Any]:
        return _reply(rita, clip.uri, ann.uri, n)

    tampered = _signed(reply(1), rita.private_key, creator)
    tampered["object"]["content"] = "<p>buy now at spam.example</p>"
    wrong_key = _signed(reply(2), otto.private_key, creator)  # otto's key, rita's name
    others_key = _signed(reply(3), otto.private_key, f"{otto.uri}#main-key")
    unknown_type = _signed(reply(4), rita.private_key, creator)
    unknown_type["signature"]["type"] = "RsaSignature2018"
    swapped = _signed(reply(5), rita.private_key, creator)
    swapped["@context"] = [MASTODON_CONTEXT[0], {**MASTODON_CONTEXT[1]}]
    swapped["@context"][1].update(content="as:summary", summary="as:content")
    swapped["object"].update(summary=swapped["object"]["content"], content=None)
    no_such_key = _signed(reply(6), rita.private_key, f"{rita.uri}#other-key")
    not_bundled = _signed(reply(7), rita.private_key, creator)
    not_bundled["@context"] = [*MASTODON_CONTEXT, "https://litepub.example/litepub-0.1.jsonld"]
    cases = [
        (tampered, "does not match the activity"),
        (wrong_key, "does not match the activity"),
        (others_key, "is not the actor's"),
        (unknown_type, "unsupported Linked Data signature type 'RsaSignature2018'"),
        (swapped, "another meaning"),
        (no_such_key, "lists no key"),
        (not_bundled, "is not known here"),
    ]
    for activity, reason in cases:
        r = await post_inbox(client, otto, activity)
        assert r.status_code == 401, (activity["id"], r.text)
        error = r.json()["error"]
        assert error.startswith("the activity's signature does not hold: "), error
        assert reason in error, error
    assert not await InboxItem.exists()
    # forwarded with no signature and no proof: otto cannot speak for rita; only the
    # object's id is kept, for ingest to fetch from rita's server (test_fed_inbox_proofs)
    r = await post_inbox(client, otto, reply(8))
    assert r.status_code == 202, r.text
    [row] = await InboxItem.all()
    assert row.payload["object"] == reply(8)["object"]["id"] and "signature" not in row.payload
    await row.delete()
    assert not await Comment.exists()

    # From rita herself the HTTP signature is what counts: her Linked Data signature is not
    # read (Mastodon reads it only for an activity another server signed).
    r = await post_inbox(client, rita, tampered)
    assert r.status_code == 202, r.text


async def test_fedifys_signed_reply_is_accepted_when_forwarded(
    client: httpx.AsyncClient, federation: Federation
) -> None:
    """The vector signed by Fedify (tests/fixtures/ld_signatures/README.md): its author known
    here with the vector's public key, the reply forwarded by another server is accepted."""
    vector = json.loads((VECTORS / "fedify-forwarded-reply.json").read_text(encoding="utf-8"))
    pem = (VECTORS / "fedify-forwarded-reply.pub.pem").read_text(encoding="utf-8")
    bob = "https://mastodon.example/users/bob"
    await Account.create(
        username="bob",
        domain="mastodon.example",
        uri=bob,
        inbox_uri=f"{bob}/inbox",
        shared_inbox_uri="https://mastodon.example/inbox",
        followers_uri=f"{bob}/followers",
        public_key_id=f"{bob}#main-key",
        public_key_pem=keys.public_key_to_pem(keys.load_public_key_pem(pem)),
        fetched_at=utcnow(),
    )
    otto = await make_remote("otto", domain="otto.example")
    changed = copy.deepcopy(vector)
    changed["object"]["content"] = "<p>changed</p>"
    r = await post_inbox(client, otto, changed)
    assert r.status_code == 401 and "does not match" in r.json()["error"], r.text
    r = await post_inbox(client, otto, vector)
    assert r.status_code == 202, r.text
    [item] = await InboxItem.all()
    assert item.actor_uri == bob and item.payload == vector
