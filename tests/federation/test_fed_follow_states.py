"""The follow state machine against each incoming activity, as Mastodon runs it (issue 19,
point 3): for every state a follow between a remote actor and a local account can be in,
each activity the remote actor can send, through the real inbox (signed POST, stored,
processed by the inbox machine) and the real delivery of our answers.

A peer that follows again (it lost its state, or our Accept was lost) is accepted again and
the stored id becomes the new one; an Undo of the old or the new id ends the follow; the same
for a request still pending at a locked account; a Reject ends a pending or an established
follow of ours; an Accept of an accepted follow or of nothing changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from factories import local_account
from fedhelpers import DOMAIN, RemoteActor, make_remote

from fedisora.config import Settings
from fedisora.errors import Invalid
from fedisora.federation.context import Federation
from fedisora.models import (
    Account,
    Delivery,
    Follow,
    FollowState,
    InboxItem,
    Notification,
    NotificationType,
)
from fedisora.services import follows
from fedisora.work.machines import build_engine

INBOX = f"https://{DOMAIN}/inbox"


async def _send(client: httpx.AsyncClient, remote: RemoteActor, activity: dict[str, Any]) -> str:
    """POST *activity* signed by *remote*, process it; the inbox item's final state."""
    body, headers = remote.signed(INBOX, activity)
    r = await client.post("/inbox", content=body, headers=headers)
    assert r.status_code == 202, r.text
    return await _process(client)


_settings: list[Settings] = []


async def _process(client: httpx.AsyncClient) -> str:
    engine = build_engine(_settings[0], providers=["fedisora.federation.inbox:machines"])
    engine.context["settings"] = _settings[0]
    last = "none"
    for row in await InboxItem.filter(state="received").order_by("id"):
        await engine.advance("inbox_items", row.pk)
        last = (await InboxItem.get(pk=row.pk)).state
    return last


@pytest.fixture(autouse=True)
def _keep_settings(settings: Settings) -> Any:
    _settings[:] = [settings]
    yield
    _settings.clear()


def _follow(remote: RemoteActor, target: Account, n: int) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.uri}#follows/{n}",
        "type": "Follow",
        "actor": remote.uri,
        "object": target.uri,
    }


def _undo(remote: RemoteActor, inner: dict[str, Any] | str, n: int) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.uri}#undos/{n}",
        "type": "Undo",
        "actor": remote.uri,
        "object": inner,
    }


def _answer(remote: RemoteActor, kind: str, follow: Follow, me: Account, n: int) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{remote.uri}#{kind.lower()}s/{n}",
        "type": kind,
        "actor": remote.uri,
        "object": {"id": follow.uri, "type": "Follow", "actor": me.uri, "object": remote.uri},
    }


async def _local(name: str, locked: bool) -> Account:
    account = await local_account(name)
    if locked:
        await Account.filter(pk=account.pk).update(locked=True)
    return await Account.get(pk=account.pk)


async def _accepts_sent() -> list[str]:
    """The ids of the Follows our Accepts delivered so far answered, in order."""
    rows = await Delivery.all().order_by("id")
    return [d.payload["object"]["id"] for d in rows if d.payload.get("type") == "Accept"]


async def _counts(account: Account) -> tuple[int, int]:
    row = await Account.get(pk=account.pk)
    return row.followers_count, row.following_count


# --- a remote actor follows a local account -------------------------------------------------------


@pytest.mark.parametrize("locked", [False, True], ids=["open", "locked"])
async def test_no_follow_then_a_follow(
    client: httpx.AsyncClient, federation: Federation, locked: bool
) -> None:
    ann = await _local("ann", locked)
    rita = await make_remote()
    assert await _send(client, rita, _follow(rita, ann, 1)) == "processed"
    row = await Follow.get(follower_id=rita.account.pk, target_id=ann.pk)
    assert row.uri == f"{rita.uri}#follows/1" and row.previous_uri is None
    if locked:
        assert row.state == FollowState.PENDING
        assert await _accepts_sent() == []
        assert (
            await Notification.filter(
                recipient_id=ann.pk, type=NotificationType.FOLLOW_REQUEST
            ).count()
            == 1
        )
        assert await _counts(ann) == (0, 0)
    else:
        assert row.state == FollowState.ACCEPTED
        assert await _accepts_sent() == [row.uri]
        assert await _counts(ann) == (1, 0)


async def test_an_accepted_follower_follows_again_and_is_accepted_again(
    client: httpx.AsyncClient, federation: Federation
) -> None:
    ann = await local_account("ann")
    rita = await make_remote()
    await _send(client, rita, _follow(rita, ann, 1))
    assert await _send(client, rita, _follow(rita, ann, 2)) == "processed"
    row = await Follow.get(follower_id=rita.account.pk, target_id=ann.pk)
    assert row.state == FollowState.ACCEPTED
    assert (row.uri, row.previous_uri) == (f"{rita.uri}#follows/2", f"{rita.uri}#follows/1")
    # a second Accept, of the new id: the peer stops waiting
    assert await _accepts_sent() == [f"{rita.uri}#follows/1", f"{rita.uri}#follows/2"]
    assert await _counts(ann) == (1, 0)  # still one follower
    assert await Notification.filter(recipient_id=ann.pk, type=NotificationType.FOLLOW).count() == 1


@pytest.mark.parametrize("undone", [1, 2], ids=["old-id", "new-id"])
@pytest.mark.parametrize("locked", [False, True], ids=["accepted", "pending"])
async def test_an_undo_of_either_id_ends_a_repeated_follow(
    client: httpx.AsyncClient, federation: Federation, undone: int, locked: bool
) -> None:
    ann = await _local("ann", locked)
    rita = await make_remote()
    await _send(client, rita, _follow(rita, ann, 1))
    await _send(client, rita, _follow(rita, ann, 2))
    row = await Follow.get(follower_id=rita.account.pk, target_id=ann.pk)
    assert row.state == (FollowState.PENDING if locked else FollowState.ACCEPTED)
    assert row.uri == f"{rita.uri}#follows/2"
    if locked:  # still one request, told once, nothing accepted
        assert await _accepts_sent() == []
        assert (
            await Notification.filter(
                recipient_id=ann.pk, type=NotificationType.FOLLOW_REQUEST
            ).count()
            == 1
        )
    # the Undo names the id only (no embedded Follow to fall back on)
    state = await _send(client, rita, _undo(rita, f"{rita.uri}#follows/{undone}", 1))
    assert state == "processed"
    assert not await Follow.filter(follower_id=rita.account.pk).exists()
    assert await _counts(ann) == (0, 0)


async def test_an_undo_of_an_unknown_follow_changes_nothing(
    client: httpx.AsyncClient, federation: Federation
) -> None:
    ann = await local_account("ann")
    rita = await make_remote()
    await _send(client, rita, _follow(rita, ann, 1))
    assert await _send(client, rita, _undo(rita, f"{rita.uri}#follows/9", 1)) == "ignored"
    assert await Follow.filter(follower_id=rita.account.pk).exists()
    assert await _counts(ann) == (1, 0)


async def test_a_follow_id_of_another_follow_is_refused(
    client: httpx.AsyncClient, federation: Federation
) -> None:
    """A repeated Follow may not take an id another follow of the same actor holds."""
    ann = await local_account("ann")
    bob = await local_account("bob")
    rita = await make_remote()
    await _send(client, rita, _follow(rita, ann, 1))
    await _send(client, rita, _follow(rita, bob, 2))
    row_ann = await Follow.get(follower_id=rita.account.pk, target_id=ann.pk)
    with pytest.raises(Invalid) as refused:
        await follows.follow(rita.account, ann, uri=f"{rita.uri}#follows/2")
    assert "another follow" in str(refused.value)
    after = await Follow.get(pk=row_ann.pk)
    assert (after.uri, after.previous_uri) == (row_ann.uri, None)


# --- a local account follows a remote actor ----------------------------------------------------


@pytest.mark.parametrize("kind", ["Accept", "Reject"])
@pytest.mark.parametrize("state", ["pending", "accepted"])
async def test_answers_to_our_follow(
    client: httpx.AsyncClient, federation: Federation, kind: str, state: str
) -> None:
    ann = await local_account("ann")
    rita = await make_remote()
    mine = await follows.follow(ann, rita.account)
    assert mine.state == FollowState.PENDING
    if state == "accepted":
        assert await _send(client, rita, _answer(rita, "Accept", mine, ann, 0)) == "processed"
        assert await _counts(ann) == (0, 1)
    result = await _send(client, rita, _answer(rita, kind, mine, ann, 1))
    if kind == "Reject":  # ends a pending or an established follow
        assert result == "processed"
        assert not await Follow.filter(pk=mine.pk).exists()
        assert await _counts(ann) == (0, 0)
    elif state == "pending":
        assert result == "processed"
        assert (await Follow.get(pk=mine.pk)).state == FollowState.ACCEPTED
        assert await _counts(ann) == (0, 1)
    else:  # an Accept of an accepted follow: nothing changes
        assert result == "ignored"
        assert (await Follow.get(pk=mine.pk)).state == FollowState.ACCEPTED
        assert await _counts(ann) == (0, 1)


@pytest.mark.parametrize("kind", ["Accept", "Reject"])
async def test_an_answer_to_no_follow_changes_nothing(
    client: httpx.AsyncClient, federation: Federation, kind: str
) -> None:
    ann = await local_account("ann")
    rita = await make_remote()
    ghost = Follow(uri=f"https://{DOMAIN}/users/ann/follows/404")
    assert await _send(client, rita, _answer(rita, kind, ghost, ann, 1)) == "ignored"
    assert not await Follow.exists()
    assert await _counts(ann) == (0, 0)
