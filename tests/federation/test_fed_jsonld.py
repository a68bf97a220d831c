"""What the instance serves and sends is strict JSON-LD (issue 19, point 1), from real rows.

The documents come out of the running code: the ActivityPub routes (actors, the instance
actor, a clip as Note and as PeerTube Video, a comment, collections and pages, a quote stamp,
a Tombstone) and the Delivery rows that services write for each local action (every
activity type fedisora sends, likeness consent included). Each is expanded with pyld over the
bundled contexts (``jsonld_check``); a dropped or blank-node term, an undefined type or a
JSON-LD error fails, naming the document and the term. The pure builders are checked shape
by shape in tests/activitypub/test_jsonld_valid.py.
"""

from __future__ import annotations

from typing import Any

import httpx
from factories import local_account, rendered_video
from fedhelpers import DOMAIN, REMOTE, Peer, RemoteActor, make_remote, post_inbox, process_inbox
from jsonld_check import failures
from likenesses import verified_likeness

from activitypub import consent, keys, objects
from fedisora.config import Settings
from fedisora.federation import likeness as fl
from fedisora.federation.context import Federation
from fedisora.federation.ingest import quote_stamp
from fedisora.models import (
    Account,
    Clip,
    Delivery,
    LikenessGrant,
    MediaFile,
    utcnow,
)
from fedisora.services import (
    account_deletion,
    bookmarks,
    comment_edits,
    follows,
    interactions,
    posts,
    reports,
)
from fedisora.services import likeness as likeness_svc

AP = {"Accept": "application/activity+json"}


def _remote_note(remote: RemoteActor, n: int, **extra: Any) -> dict[str, Any]:
    note = {
        "id": f"{remote.uri}/clips/{n}",
        "type": "Note",
        "attributedTo": remote.uri,
        "content": f"<p>clip {n}</p>",
        "to": [objects.PUBLIC],
        "cc": [f"{remote.uri}/followers"],
        "attachment": [
            {"type": "Document", "mediaType": "video/mp4", "url": f"https://{REMOTE}/{n}.mp4"}
        ],
        **extra,
    }
    return {"id": f"{note['id']}/activity", "type": "Create", "actor": remote.uri, "object": note}


async def _get(client: httpx.AsyncClient, path: str, **headers: str) -> Any:
    response = await client.get(path, headers={**AP, **headers})
    assert response.status_code in (200, 410), f"{path}: {response.status_code} {response.text}"
    return response.json()


async def _full_video(account: Account) -> MediaFile:
    """A rendered video with every field a finished render has (the factory leaves the
    file's size, digest, blurhash, poster and alt text out)."""
    media = await rendered_video(account)
    await MediaFile.filter(pk=media.pk).update(
        size=123456,
        sha256="ab" * 32,
        blurhash="LEHV6nWB2yk8pyo0adR*.7kCMdnj",
        poster_file=f"clips/{media.pk}.jpg",
        description="a fox in snow",
    )
    return await MediaFile.get(pk=media.pk)


async def test_served_documents_are_strict_json_ld(
    client: httpx.AsyncClient, settings: Settings, federation: Federation
) -> None:
    ann = await local_account("ann")
    await Account.filter(pk=ann.pk).update(locked=True, display_name="Ann")
    ann = await Account.get(pk=ann.pk)
    assert ann.ed25519_public_multibase  # the actor publishes its FEP-521a key
    rita = await make_remote()
    clip = await posts.post_clip(
        ann,
        await _full_video(ann),
        caption=f"snow #fox @rita@{REMOTE}",
        sensitive=True,
        spoiler_text="snow",
        language="en",
    )
    await bookmarks.pin(ann, clip)
    comment = await interactions.comment(ann, clip, "and again")
    gone = await posts.post_clip(ann, await rendered_video(ann), caption="gone")
    await posts.delete_clip(ann, gone)
    remix = _remote_note(rita, 7, quote=clip.uri)
    assert (await post_inbox(client, rita, remix)).status_code == 202
    await process_inbox(settings)
    stamp = quote_stamp(clip, remix["object"]["id"])

    clip_path = clip.uri.removeprefix(f"https://{DOMAIN}")
    paths = {
        "actor": "/users/ann",
        "instance actor": "/actor",
        "instance actor outbox": "/actor/outbox",
        "outbox": "/users/ann/outbox",
        "outbox page": "/users/ann/outbox?page=true",
        "followers": "/users/ann/followers",
        "following": "/users/ann/following",
        "featured": "/users/ann/collections/featured",
        "clip as Note": clip_path,
        "clip as Video": f"{clip_path}/video",
        "likes": f"{clip_path}/likes",
        "shares": f"{clip_path}/shares",
        "replies": f"{clip_path}/replies",
        "comment": comment.uri.removeprefix(f"https://{DOMAIN}"),
        "quote stamp": stamp.removeprefix(f"https://{DOMAIN}"),
        "deleted clip (Tombstone)": gone.uri.removeprefix(f"https://{DOMAIN}"),
    }
    served = {name: await _get(client, path) for name, path in paths.items()}
    served["clip to PeerTube"] = await _get(
        client, clip_path, **{"User-Agent": "PeerTube/7.0.0 (+https://peertube.example)"}
    )
    # What each is (so a route that changed its answer does not pass unnoticed).
    assert served["actor"]["assertionMethod"][0]["type"] == "Multikey"
    assert served["instance actor"]["type"] == "Application"
    assert served["clip as Note"]["attachment"][0]["size"] > 0
    assert served["clip as Video"]["type"] == served["clip to PeerTube"]["type"] == "Video"
    assert served["outbox page"]["orderedItems"][0]["object"]["id"] == clip.uri
    assert served["featured"]["orderedItems"][0]["id"] == clip.uri
    assert served["quote stamp"]["type"] == "QuoteAuthorization"
    assert served["deleted clip (Tombstone)"]["type"] == "Tombstone"
    named = {f"GET {paths.get(name, clip_path)} ({name})": doc for name, doc in served.items()}
    problems = failures(named)
    assert not problems, "\n".join(problems)


#: Every activity type the instance sends, and what it carries (checked as they are sent).
SENT = {
    "Create",
    "Update",
    "Delete",
    "Like",
    "Announce",
    "Undo",
    "Follow",
    "Accept",
    "Reject",
    "Block",
    "Flag",
    "QuoteRequest",
    "CameoRequest",
    "LikenessUse",
    "Offer",
}


def _owner_doc(actor: RemoteActor, key: Any) -> dict[str, Any]:
    doc = actor.document()
    doc["assertionMethod"] = [
        {
            "id": f"{actor.uri}#ed25519-key",
            "type": "Multikey",
            "controller": actor.uri,
            "publicKeyMultibase": keys.public_key_to_multibase(key.public_key()),
        }
    ]
    return doc


def _remote_grant(owner: RemoteActor, key: Any, grantee: str) -> dict[str, Any]:
    now = utcnow().replace(microsecond=0)
    doc = consent.build_grant(
        grant_id=f"https://{REMOTE}/likeness/grants/1",
        owner=owner.uri,
        grantee=grantee,
        scope="drafts",
        restrictions_digest=consent.restrictions_digest(""),
        published=now,
    )
    return consent.sign_grant(doc, key, key_id=f"{owner.uri}#ed25519-key", created=now)


async def test_sent_activities_are_strict_json_ld(
    client: httpx.AsyncClient, settings: Settings, federation: Federation, peer: Peer
) -> None:
    ann = await local_account("ann")
    rita = await make_remote()
    rex = await make_remote("rex", "other.example")
    # Followed by rita (an Accept), a locked request refused (a Reject).
    await follows.follow(rita.account, ann, uri=f"{rita.uri}#follows/1")
    await Account.filter(pk=ann.pk).update(locked=True)
    ann = await Account.get(pk=ann.pk)
    request = await follows.follow(rex.account, ann, uri=f"{rex.uri}#follows/1")
    await follows.reject_follow(ann, request)
    # Clips: posted (Create), edited (Update), deleted (Delete); a cameo clip below.
    clip = await posts.post_clip(
        ann, await _full_video(ann), caption=f"fox #snow @rita@{REMOTE}", language="en"
    )
    await posts.edit_clip(ann, clip, caption="fox, edited #snow")
    # A remote clip: liked, boosted, commented on, each undone or edited or deleted.
    theirs = _remote_note(rita, 3)
    assert (await post_inbox(client, rita, theirs)).status_code == 202
    await process_inbox(settings)
    remote_clip = await Clip.get(uri=theirs["object"]["id"])
    await interactions.like(ann, remote_clip)
    await interactions.unlike(ann, remote_clip)
    await interactions.boost(ann, remote_clip)
    await interactions.unboost(ann, remote_clip)
    reply = await interactions.comment(ann, remote_clip, "nice")
    await comment_edits.edit_comment(ann, reply, text="nice one")
    await interactions.delete_comment(ann, reply)
    # Following (Follow, Undo{Follow}), blocking (Block, Undo{Block}), a forwarded report.
    await follows.follow(ann, rex.account)
    await follows.unfollow(ann, rex.account)
    await follows.block(ann, rex.account)
    await follows.unblock(ann, rex.account)
    await reports.file_report(ann, rita.account, comment="spam", forward=True)
    # A remix of the remote clip asks its author (QuoteRequest); a remote remix of ours gets
    # a stamp, and deleting ours then withdraws it (Delete{QuoteAuthorization}).
    await posts.remix_clip(ann, remote_clip, await rendered_video(ann), caption="remix")
    quoting = _remote_note(rita, 8, quote=clip.uri)
    assert (await post_inbox(client, rita, quoting)).status_code == 202
    await process_inbox(settings)
    await posts.delete_clip(ann, clip)

    # Likeness consent: ann's likeness, granted ahead (Offer), asked for by rita (Accept
    # with the grant; Reject when the restrictions are not accepted), used in a clip (the
    # grant embedded in its cameos), revoked (Delete with the signed revocation).
    await verified_likeness(ann, settings, audience="everyone", restrictions="no ads")
    await likeness_svc.grant(ann, rex.account)
    for n, accept in ((1, False), (2, True)):
        ask = fl.cameo_request(
            f"https://{REMOTE}/likeness/requests/{n}/x",
            rita.uri,
            ann.uri,
            accept_restrictions=accept,
        )
        await fl.on_cameo_request(federation, rita.account, ask)
    ben = await local_account("ben")
    await follows.follow(rita.account, ben, uri=f"{rita.uri}#follows/2")
    await likeness_svc.request_use(ben, ann, accept_restrictions=True)
    [grant] = await LikenessGrant.filter(owner_id=ann.pk, grantee_id=ben.pk)
    await posts.post_clip(ben, await rendered_video(ben), caption="us", cameos=[(ann, grant.uri)])
    rex_grant = await LikenessGrant.get(owner_id=ann.pk, grantee_id=rex.account.pk)
    await likeness_svc.revoke_grant(ann, rex_grant.pk)
    await likeness_svc.revoke_likeness(ann, settings=settings)
    # ben asks rita for her likeness (CameoRequest) and uses a grant of hers (LikenessUse).
    key = keys.generate_ed25519_key()
    peer.documents[rita.uri] = _owner_doc(rita, key)
    await likeness_svc.request_use(ben, rita.account)
    await fl.store_grant(federation, ben, rita.account, _remote_grant(rita, key, ben.uri))
    decision = await likeness_svc.check_consent(ben, rita.account, publish=False)
    await likeness_svc.record_use(decision, ben, "requested")
    # Suspension (Update{actor} with suspended), then deletion (Delete{actor}).
    await account_deletion.suspend_account(ben)
    await account_deletion.delete_local_account(ben, settings=settings)

    sent = {d.payload["id"]: d.payload for d in await Delivery.all().order_by("id")}
    assert SENT <= {p["type"] for p in sent.values()}
    undone = {p["object"]["type"] for p in sent.values() if p["type"] == "Undo"}
    assert undone == {"Like", "Announce", "Follow", "Block"}
    answered = {p["object"]["type"] for p in sent.values() if p["type"] in ("Accept", "Reject")}
    assert answered == {"Follow", "CameoRequest"}
    deleted = [p for p in sent.values() if p["type"] == "Delete"]
    assert {_type(p["object"]) for p in deleted} >= {"Tombstone", "QuoteAuthorization"}
    assert any(_type(p.get("instrument")) == "LikenessRevocation" for p in deleted)
    assert any(p["object"] == ben.uri for p in deleted)  # the account's deletion
    created = [p["object"] for p in sent.values() if p["type"] == "Create"]
    assert any(o["attachment"] and o["attachment"][0].get("size") for o in created)
    assert any(o.get("cameos") for o in created)
    updated = [p["object"] for p in sent.values() if p["type"] == "Update"]
    assert any(_type(o) == "Person" and o.get("suspended") for o in updated)
    problems = failures({f"{p['type']} {activity_id}": p for activity_id, p in sent.items()})
    assert not problems, "\n".join(problems)


def _type(value: Any) -> Any:
    return value.get("type") if isinstance(value, dict) else None
