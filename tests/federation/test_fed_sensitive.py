"""A moderator's sensitive flag federates: marking a local account's clips and comments
sensitive (a report action) sends an ``Update`` of each Note with ``sensitive: true`` to the
audience of its ``Create``, an approved appeal one with ``sensitive: false``; and a peer's
``Update`` flipping the flag on its own clip or comment is applied here (nobody else's).

In-process: Delivery rows and their payloads are what would be sent; remote activities come
in through :func:`handle_activity` (what the inbox machine runs).
"""

from __future__ import annotations

from typing import Any

import pytest
from factories import local_account, rendered_video
from fedhelpers import REMOTE, RemoteActor, make_remote

from activitypub import objects
from fedisora.federation.context import Federation
from fedisora.federation.ingest import Ignored, handle_activity
from fedisora.models import Account, AccountWarning, Clip, Comment, Delivery
from fedisora.services import comment_edits, follows, interactions, moderation, posts, reports

IDOLS = "idols.example"


def _note(author: RemoteActor, path: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{author.uri}/{path}",
        "type": "Note",
        "attributedTo": author.uri,
        "content": f"<p>{path}</p>",
        "to": [objects.PUBLIC],
        "cc": [f"{author.uri}/followers"],
        **extra,
    }


def _video(author: RemoteActor, n: int, **extra: Any) -> dict[str, Any]:
    host = author.account.domain
    video = {"type": "Document", "mediaType": "video/mp4", "url": f"https://{host}/{n}.mp4"}
    return _note(author, f"clips/{n}", attachment=[video], **extra)


def _activity(kind: str, author: RemoteActor, obj: dict[str, Any], n: int = 0) -> dict[str, Any]:
    suffix = "activity" if kind == "Create" else f"updates/{n}"
    return {"id": f"{obj['id']}/{suffix}", "type": kind, "actor": author.uri, "object": obj}


async def _sent(kind: str, uri: str) -> dict[str, set[str]]:
    """The activities of *kind* about *uri* written as Delivery rows: id -> inboxes."""
    found: dict[str, set[str]] = {}
    for row in await Delivery.filter(activity_id__startswith=uri).order_by("id"):
        if row.payload["type"] == kind and row.payload["object"]["id"] == uri:
            found.setdefault(row.activity_id, set()).add(row.inbox_url)
    return found


async def _payload(activity_id: str) -> dict[str, Any]:
    row = await Delivery.filter(activity_id=activity_id).first()
    assert row is not None
    return dict(row.payload)


async def _world(federation: Federation) -> tuple[Account, Clip, Comment]:
    """ann's clip, and her comment on idol's remote clip; her followers on two servers."""
    ann = await local_account("ann")
    for name, host in (("r1", REMOTE), ("r2", REMOTE), ("o1", "other.example")):
        fan = await make_remote(name, host)
        await follows.follow(fan.account, ann, uri=f"{fan.uri}#follow")
    idol = await make_remote("idol", IDOLS)
    await handle_activity(federation, _activity("Create", idol, _video(idol, 1)))
    theirs = await Clip.get(uri=f"{idol.uri}/clips/1")
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="hi #fox")
    comment = await interactions.comment(ann, theirs, "lovely")
    return ann, clip, comment


async def _mark(ann: Account, ids: list[int]) -> tuple[Account, AccountWarning]:
    boss = await local_account("boss", admin=True)
    ben = await local_account("ben")
    report = await reports.file_report(ben, ann, status_ids=ids)
    await reports.take_action(report, "mark_sensitive", boss, "tag it next time")
    return boss, await AccountWarning.get(account_id=ann.pk)


async def test_marking_sensitive_sends_an_update_to_the_create_audience(
    federation: Federation,
) -> None:
    ann, clip, comment = await _world(federation)
    created = {r.uri: await _sent("Create", r.uri) for r in (clip, comment)}
    assert [len(c) for c in created.values()] == [1, 1]

    await _mark(ann, [clip.pk, comment.pk])
    for row, model in ((clip, Clip), (comment, Comment)):
        stored = await model.get(pk=row.pk)
        assert stored.sensitive is True and stored.edited_at is not None
        [(update_id, inboxes)] = (await _sent("Update", row.uri)).items()
        [create_inboxes] = created[row.uri].values()
        assert inboxes == create_inboxes  # the same recipients as the Create
        update = await _payload(update_id)
        [create_id] = created[row.uri]
        create = await _payload(create_id)
        assert update["actor"] == ann.uri
        assert (update["to"], update["cc"]) == (create["to"], create["cc"])
        assert update["object"]["sensitive"] is True
        assert update["object"]["updated"] is not None  # newer than what peers have
    # The comment's audience has idol's server (the clip's author): the clip's has not.
    [comment_inboxes] = created[comment.uri].values()
    [clip_inboxes] = created[clip.uri].values()
    assert comment_inboxes == clip_inboxes | {f"https://{IDOLS}/inbox"}

    # Marked already: nothing changes, nothing is sent again.
    before = await Delivery.all().count()
    assert await moderation.mark_sensitive(ann, [clip.pk, comment.pk]) == []
    assert await Delivery.all().count() == before

    # A remote account's clip marked here: flagged here only (its server federates it).
    idol = await Account.get(domain=IDOLS)
    theirs = await Clip.get(account_id=idol.pk)
    assert await moderation.mark_sensitive(idol, [theirs.pk]) == [theirs.pk]
    assert (await Clip.get(pk=theirs.pk)).sensitive is True
    assert await Delivery.all().count() == before


async def test_an_approved_appeal_sends_an_update_lifting_the_flag(
    federation: Federation,
) -> None:
    ann, clip, comment = await _world(federation)
    gone = await posts.post_clip(ann, await rendered_video(ann), caption="deleted later")
    boss, warning = await _mark(ann, [clip.pk, comment.pk, gone.pk])
    await posts.delete_clip(ann, gone)
    marks = {r.uri: set(await _sent("Update", r.uri)) for r in (clip, comment, gone)}
    appeal = await moderation.file_appeal(ann, warning, "it is a documentary")
    await moderation.approve_appeal(appeal, boss)

    for row, model in ((clip, Clip), (comment, Comment)):
        assert (await model.get(pk=row.pk)).sensitive is False
        updates = await _sent("Update", row.uri)
        [lifted] = set(updates) - marks[row.uri]  # one more, with an id of its own
        [marked] = marks[row.uri]
        assert updates[lifted] == updates[marked]
        assert (await _payload(lifted))["object"]["sensitive"] is False
    assert set(await _sent("Update", gone.uri)) == marks[gone.uri]  # deleted: nothing more


async def test_a_comment_edit_federates_as_an_update(federation: Federation) -> None:
    ann, _clip, comment = await _world(federation)
    await comment_edits.edit_comment(ann, comment, text="lovelier")
    [(update_id, inboxes)] = (await _sent("Update", comment.uri)).items()
    assert inboxes == set().union(*(await _sent("Create", comment.uri)).values())
    assert "lovelier" in (await _payload(update_id))["object"]["content"]


async def test_a_peers_update_flipping_sensitive_is_applied(federation: Federation) -> None:
    rita = await make_remote("rita")
    otto = await make_remote("otto")  # rita's server, not her
    clip_doc = _video(rita, 1)
    reply_doc = _note(rita, "statuses/2", inReplyTo=clip_doc["id"])
    for doc in (clip_doc, reply_doc):
        await handle_activity(federation, _activity("Create", rita, doc))
    clip = await Clip.get(uri=clip_doc["id"])
    reply = await Comment.get(uri=reply_doc["id"])
    assert (clip.sensitive, reply.sensitive) == (False, False)

    for doc in (clip_doc, reply_doc):
        await handle_activity(federation, _activity("Update", rita, dict(doc, sensitive=True), 1))
    assert (await Clip.get(pk=clip.pk)).sensitive is True
    assert (await Comment.get(pk=reply.pk)).sensitive is True

    # Nobody but the author changes it: not otto, nor someone elsewhere claiming it.
    mallory = await make_remote("mallory", "elsewhere.example")
    for doc in (clip_doc, reply_doc):
        for forger in (otto, mallory):
            with pytest.raises(Ignored):
                await handle_activity(
                    federation, _activity("Update", forger, dict(doc, sensitive=False), 2)
                )
            forged = dict(doc, sensitive=False, attributedTo=forger.uri)
            with pytest.raises(Ignored):
                await handle_activity(federation, _activity("Update", forger, forged, 3))
    assert (await Clip.get(pk=clip.pk)).sensitive is True
    assert (await Comment.get(pk=reply.pk)).sensitive is True

    for doc in (clip_doc, reply_doc):
        await handle_activity(federation, _activity("Update", rita, dict(doc, sensitive=False), 4))
    assert (await Clip.get(pk=clip.pk)).sensitive is False
    assert (await Comment.get(pk=reply.pk)).sensitive is False
