"""Remixes across servers as FEP-044f quotes, the quoting side and revocations, and the
federated Delete of a local account."""

from __future__ import annotations

from typing import Any

import httpx
from factories import local_account, rendered_video
from fedhelpers import DOMAIN, REMOTE, Peer, RemoteActor, make_remote, stamp_doc

from activitypub import objects
from fedisora.api.entities import status_entities
from fedisora.config import Settings
from fedisora.federation.context import Federation
from fedisora.federation.delivery import quote_request_id
from fedisora.federation.ingest import quote_stamp
from fedisora.models import Account, Clip, Delivery, InboxItem, utcnow
from fedisora.services import events, follows, interactions, posts
from fedisora.work.machines import build_engine

AP = {"Accept": "application/activity+json"}
INBOX = f"https://{DOMAIN}/inbox"


async def post(client: httpx.AsyncClient, remote: RemoteActor, activity: dict[str, Any]) -> int:
    body, headers = remote.signed(INBOX, activity)
    return (await client.post("/inbox", content=body, headers=headers)).status_code


async def process_all(settings: Settings) -> list[InboxItem]:
    engine = build_engine(settings, providers=["fedisora.federation.inbox:machines"])
    engine.context["settings"] = settings
    for row in await InboxItem.filter(state="received").order_by("id"):
        await engine.advance("inbox_items", row.pk)
    return await InboxItem.all().order_by("id")


def _create(remote: RemoteActor, n: int, **extra: Any) -> dict[str, Any]:
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


def _answer(kind: str, rita: RemoteActor, remix: Clip, source: Clip, n: int, **extra: Any) -> Any:
    return {
        "id": f"{rita.uri}#answers/{n}",
        "type": kind,
        "actor": rita.uri,
        "object": {
            "id": quote_request_id(remix),
            "type": "QuoteRequest",
            "actor": remix.uri.split("/clips/")[0],
            "object": source.uri,
            "instrument": remix.uri,
        },
        **extra,
    }


async def _payloads(kind: str) -> list[dict[str, Any]]:
    return [d.payload for d in await Delivery.all().order_by("id") if d.payload["type"] == kind]


async def _activities(kind: str) -> list[dict[str, Any]]:
    """The activities of *kind* written for delivery, once each (a row per inbox)."""
    return list({p["id"]: p for p in await _payloads(kind)}.values())


async def test_remix_of_a_remote_clip_asks_and_stores_the_stamp(
    client: httpx.AsyncClient, settings: Settings, federation: Federation, peer: Peer
) -> None:
    ann = await local_account("ann")
    rita = await make_remote()
    fan = await make_remote("fan", "fans.example")  # follows ann: the remix's audience
    await follows.follow(fan.account, ann, uri=f"{fan.uri}#follows/1")
    assert await post(client, rita, _create(rita, 1)) == 202
    await process_all(settings)
    source = await Clip.get(uri=f"{rita.uri}/clips/1")

    remix = await posts.remix_clip(ann, source, await rendered_video(ann), caption="my take")
    [request] = await _payloads("QuoteRequest")
    assert request["actor"] == ann.uri
    assert request["object"] == source.uri
    assert request["to"] == [rita.uri]
    assert request["instrument"]["id"] == remix.uri
    assert request["instrument"]["quote"] == source.uri
    rows = await Delivery.filter(activity_id=request["id"])
    assert [r.inbox_url for r in rows] == [f"https://{REMOTE}/inbox"]

    # An Accept from someone else than the source's author changes nothing.
    otto = await make_remote("otto")
    stamp = f"{rita.uri}/quote_authorizations/1"
    peer.documents[stamp] = stamp_doc(stamp, rita.uri, remix.uri, source.uri)
    assert await post(client, otto, _answer("Accept", otto, remix, source, 1, result=stamp)) == 202
    # A stamp that names another post is refused.
    wrong = f"{rita.uri}/quote_authorizations/2"
    peer.documents[wrong] = stamp_doc(wrong, rita.uri, f"{rita.uri}/clips/9", source.uri)
    assert await post(client, rita, _answer("Accept", rita, remix, source, 2, result=wrong)) == 202
    items = await process_all(settings)
    assert [i.state for i in items[-2:]] == ["ignored", "ignored"]
    assert "author" in (items[-2].last_error or "")
    assert "interactingObject" in (items[-1].last_error or "")
    assert (await Clip.get(pk=remix.pk)).quote_authorization_uri is None
    assert (await status_entities(ann, [remix]))[0]["quote"]["state"] == "pending"
    assert (await Clip.get(pk=source.pk)).remixes_count == 0  # not approved: not counted

    await Delivery.all().delete()
    assert await post(client, rita, _answer("Accept", rita, remix, source, 3, result=stamp)) == 202
    assert (await process_all(settings))[-1].state == "processed"
    assert (await Clip.get(pk=remix.pk)).quote_authorization_uri == stamp
    assert (await Clip.get(pk=remix.pk)).quote_state == "accepted"
    assert (await Clip.get(pk=source.pk)).remixes_count == 1
    [entity] = await status_entities(ann, [await Clip.get(pk=remix.pk)])
    assert entity["quote"]["state"] == "accepted"
    assert entity["quote"]["quoted_status"]["id"] == str(source.pk)
    fetched = [r for r in peer.requests if str(r.url) == stamp]
    assert fetched and all("signature-input" in r.headers for r in fetched)  # a signed GET
    [update] = await _activities("Update")
    assert update["object"]["id"] == remix.uri
    assert update["object"]["quoteAuthorization"] == stamp
    approved_id = update["id"]
    assert "/updates/quote/" in approved_id  # an id of its own: a revocation may follow soon
    note = (await client.get(remix.uri.removeprefix(f"https://{DOMAIN}"), headers=AP)).json()
    assert note["quoteAuthorization"] == stamp and note["quote"] == source.uri

    # The author revokes: a Delete of the stamp clears it and tells everyone (an Update).
    await Delivery.all().delete()
    revoke = {"id": f"{stamp}#delete", "type": "Delete", "actor": rita.uri, "object": stamp}
    # otto is on rita's host, but not the author of the stamp.
    forged = {"id": f"{otto.uri}#delete", "type": "Delete", "actor": otto.uri, "object": stamp}
    assert await post(client, otto, forged) == 202
    assert await post(client, rita, revoke) == 202
    items = await process_all(settings)
    assert [i.state for i in items[-2:]] == ["ignored", "processed"]
    revoked = await Clip.get(pk=remix.pk)
    assert (revoked.quote_authorization_uri, revoked.quote_state) == (None, "revoked")
    assert (await Clip.get(pk=source.pk)).remixes_count == 0
    assert (await status_entities(ann, [revoked]))[0]["quote"] == {
        "state": "revoked",
        "quoted_status": None,
    }
    # The revocation is passed on to the remix's audience (its followers' shared inboxes and
    # the source's author) as an Update without the stamp, which third parties check.
    [update] = await _activities("Update")
    assert "quoteAuthorization" not in update["object"]
    assert update["object"]["quote"] == source.uri and update["id"] != approved_id
    inboxes = {r.inbox_url for r in await Delivery.filter(activity_id=update["id"])}
    assert inboxes == {f"https://{REMOTE}/inbox", "https://fans.example/inbox"}


async def test_rejected_quote_request_and_unreachable_stamp(
    client: httpx.AsyncClient, settings: Settings, federation: Federation, peer: Peer
) -> None:
    ann = await local_account("ann")
    rita = await make_remote()
    assert await post(client, rita, _create(rita, 1)) == 202
    await process_all(settings)
    source = await Clip.get(uri=f"{rita.uri}/clips/1")
    remix = await posts.remix_clip(ann, source, await rendered_video(ann), caption="take")
    missing = f"{rita.uri}/quote_authorizations/404"  # the peer does not serve it
    assert (
        await post(client, rita, _answer("Accept", rita, remix, source, 1, result=missing)) == 202
    )
    assert await post(client, rita, _answer("Reject", rita, remix, source, 2)) == 202
    await Delivery.all().delete()
    items = await process_all(settings)
    assert [i.state for i in items[-2:]] == ["ignored", "processed"]
    assert "does not exist" in (items[-2].last_error or "")
    rejected = await Clip.get(pk=remix.pk)
    assert (rejected.quote_authorization_uri, rejected.quote_state) == (None, "rejected")
    assert await _payloads("Update") == []  # the remix's Note did not change


async def test_remix_of_a_local_clip_sends_no_quote_request(federation: Federation) -> None:
    ann = await local_account("ann")
    ben = await local_account("ben")
    source = await posts.post_clip(ann, await rendered_video(ann), caption="source")
    await posts.remix_clip(ben, source, await rendered_video(ben), caption="remix")
    assert await _payloads("QuoteRequest") == []


async def test_deleting_a_source_revokes_remote_remixes_stamps(
    client: httpx.AsyncClient, settings: Settings, federation: Federation
) -> None:
    ann = await local_account("ann")
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="source")
    rita = await make_remote()
    fan = await make_remote("fan", "fans.example")  # follows ann
    await follows.follow(fan.account, ann, uri=f"{fan.uri}#follows/1")
    liker = await make_remote("liker", "likers.example")  # liked the clip
    await interactions.like(liker.account, clip, uri=f"{liker.uri}#likes/1")
    remix_create = _create(rita, 7, quote=clip.uri)
    assert await post(client, rita, remix_create) == 202
    await process_all(settings)
    remix = await Clip.get(uri=remix_create["object"]["id"])
    stamp = quote_stamp(clip, remix.uri)
    path = stamp.removeprefix(f"https://{DOMAIN}")
    served = (await client.get(path, headers=AP)).json()
    assert served["type"] == "QuoteAuthorization" and served["interactingObject"] == remix.uri

    await Delivery.all().delete()
    await posts.delete_clip(ann, clip)
    [revoke] = [p for p in await _activities("Delete") if objects.id_of(p["object"]) == stamp]
    assert revoke["actor"] == ann.uri
    assert revoke["object"] == {"id": stamp, "type": "QuoteAuthorization"}
    assert revoke["to"] == [rita.uri]
    # To the remix's author, and to those who may have seen the remix (FEP-044f, Mastodon).
    rows = await Delivery.filter(activity_id=revoke["id"])
    assert {r.inbox_url for r in rows} == {
        f"https://{REMOTE}/inbox",
        "https://fans.example/inbox",
        "https://likers.example/inbox",
    }
    assert (await client.get(path, headers=AP)).status_code == 410


async def test_local_account_deletion_is_federated(federation: Federation) -> None:
    ann = await local_account("ann")
    fan = await make_remote("fan", "fans.example")
    idol = await make_remote("idol", "idols.example")
    await follows.follow(fan.account, ann, uri=f"{fan.uri}#follow")
    await follows.follow(ann, idol.account)
    await Delivery.all().delete()

    async with events.transaction() as conn:
        await Account.filter(pk=ann.pk).using_db(conn).update(suspended_at=utcnow())
        await events.emit(conn, "account.deleted", ann.pk)
    [delete, same] = await _payloads("Delete")  # one row per inbox, the same activity
    assert same == delete
    assert delete["actor"] == delete["object"] == ann.uri
    assert delete["to"] == [objects.PUBLIC]
    rows = await Delivery.filter(activity_id=delete["id"]).order_by("inbox_url")
    assert [r.inbox_url for r in rows] == [
        "https://fans.example/inbox",
        "https://idols.example/inbox",
    ]

    await Delivery.all().delete()
    async with events.transaction() as conn:  # a suspended account sends nothing else
        await events.emit(conn, "clip.created", ann.pk, clip_id=0)
    assert await Delivery.all().count() == 0
