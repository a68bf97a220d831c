"""Suspending, unsuspending and deleting accounts (services/account_deletion.py), on real
SQLite and PostgreSQL, and ``fedisora deleteuser``, ``suspend`` and ``unsuspend`` as an admin
runs them.

The federation listener is installed as the app installs it, so the actor's ``Update`` and
``Delete`` become real Delivery rows; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from factories import local_account, remote_account, rendered_video
from instance import cli_fails, cli_ok, fedisora, free_port, instance_env

from fedisora.api.http import Unauthorized, load_token
from fedisora.config import Settings, load_settings
from fedisora.errors import Conflict, Forbidden, Invalid
from fedisora.federation import install, uninstall
from fedisora.models import (
    Account,
    AccountWarning,
    AuditEntry,
    Block,
    Bookmark,
    Boost,
    Clip,
    Comment,
    Delivery,
    Follow,
    Like,
    MediaFile,
    Mute,
    Notification,
    OAuthAccessToken,
    OAuthApplication,
    RenderJob,
    TimelineEntry,
    User,
    utcnow,
)
from fedisora.services import bookmarks, events, follows, interactions, posts
from fedisora.services.account_deletion import (
    delete_activity_id,
    delete_local_account,
    is_deleted,
    is_remote_deleted,
    mark_remote_deleted,
    suspend_account,
    unsuspend_account,
)
from fedisora.services.accounts import authenticate, create_instance_actor, create_local_account
from fedisora.services.passwords import PasswordGuard

PASSWORD = "correct horse battery"


@pytest.fixture
def settings(tmp_path: Path, db: str) -> Settings:
    return load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": str(tmp_path),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_DATABASE_URL": db,
        }
    )


@pytest.fixture
async def federated(db: str) -> AsyncIterator[list[events.Event]]:
    """The delivery listener on (as in the app), and every event emitted, in order."""
    seen: list[events.Event] = []

    async def record(event: events.Event) -> None:
        seen.append(event)

    install(None)
    events.subscribe(record)
    try:
        yield seen
    finally:
        events.unsubscribe(record)
        await uninstall()


def _file(settings: Settings, rel: str) -> Path:
    path: Path = settings.media_root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not really a video")
    return path


async def _token(account: Account) -> str:
    app = await OAuthApplication.create(name="t", client_id=f"c{account.pk}", client_secret="x")
    raw = f"token-of-{account.username}"
    await OAuthAccessToken.create(token=raw, application=app, account=account, scopes="read")
    return raw


async def test_deletion_removes_login_and_content_and_sends_one_delete(
    db: str, settings: Settings, federated: list[events.Event]
) -> None:
    bob = await local_account("bob")
    alice = await local_account("alice")
    carol = await local_account("carol")
    fan = await remote_account("fan", "remote.example")
    idol = await remote_account("idol", "other.example")
    troll = await remote_account("troll", "third.example")
    bob_token = await _token(bob)
    await load_token(bob_token)  # works before

    bob_video = await rendered_video(bob)
    video_file = _file(settings, str(bob_video.file))
    bob_clip = await posts.post_clip(bob, bob_video, caption="mine #waves")
    alice_clip = await posts.post_clip(alice, await rendered_video(alice), caption="hers")
    await interactions.like(alice, bob_clip)
    await interactions.comment(alice, bob_clip, "nice")
    bob_comment = await interactions.comment(bob, alice_clip, "thanks @alice")
    await interactions.like(bob, alice_clip)
    await interactions.like(bob, await Comment.get(account_id=alice.pk))
    await interactions.boost(bob, alice_clip)
    await follows.follow(bob, alice)
    await follows.follow(alice, bob)
    await follows.follow(carol, bob)
    await follows.follow(fan, bob)  # a remote follower: its server must hear of the deletion
    await follows.follow(bob, idol)  # pending, remote: its server too
    await bookmarks.bookmark(bob, alice_clip)
    await follows.block(bob, troll)  # blocked, so not told of the deletion
    await follows.mute(alice, bob)
    queued = await RenderJob.create(
        account=bob,
        state="queued",
        spec={"prompt": "a cat", "input_image": "render-inputs/cat.png"},
        next_attempt_at=utcnow(),
    )
    still = _file(settings, "render-inputs/cat.png")
    held = await RenderJob.create(  # a worker is rendering it right now
        account=bob,
        state="rendering",
        spec={"prompt": "a dog"},
        locked_until=utcnow() + timedelta(minutes=5),
        lock_token="worker-1",
    )
    assert await Notification.filter(from_account_id=bob.pk).exists()
    assert await Notification.filter(recipient_id=bob.pk).exists()
    sent_before = {d.activity_id for d in await Delivery.filter(sender_id=bob.pk)}
    keys_before = (bob.private_key_pem, bob.public_key_pem)
    federated.clear()

    done = await delete_local_account(bob, settings=settings)

    assert not done.already_deleted
    assert (done.clips, done.comments, done.likes, done.boosts) == (1, 1, 2, 1)
    assert done.follows == 5 and done.media_files == 1 and done.render_jobs_cancelled == 2
    # The one event, and the Delete of the actor to each remote inbox that knew bob.
    assert [e.kind for e in federated if e.kind == "account.deleted"] == ["account.deleted"]
    deletes = await Delivery.filter(sender_id=bob.pk, activity_id=delete_activity_id(bob))
    assert sorted(d.inbox_url for d in deletes) == [
        "https://other.example/inbox",
        "https://remote.example/inbox",
    ]
    assert done.deliveries == 2
    for row in deletes:
        assert row.state == "pending"
        assert row.payload["type"] == "Delete"
        assert row.payload["actor"] == row.payload["object"] == bob.uri
    # Nothing else federates: no Delete per clip or comment, no Undo of likes or follows.
    after = {d.activity_id for d in await Delivery.filter(sender_id=bob.pk)}
    assert after - sent_before == {delete_activity_id(bob)}

    # Nothing authenticates as bob any more.
    assert not await User.filter(account_id=bob.pk).exists()
    for login in ("bob", "bob@example.com"):
        assert await authenticate(login, PASSWORD, guard=PasswordGuard(), ip="192.0.2.1") is None
    assert not await OAuthAccessToken.filter(account_id=bob.pk).exists()
    with pytest.raises(Unauthorized):
        await load_token(bob_token)

    # The row stays, suspended, with its keys, and holds the username for good.
    kept = await Account.get(pk=bob.pk)
    assert kept.suspended_at is not None
    assert (kept.private_key_pem, kept.public_key_pem) == keys_before
    assert kept.display_name == "" and await is_deleted(kept)
    assert (kept.followers_count, kept.following_count, kept.clips_count) == (0, 0, 0)
    for name in ("bob", "BOB"):
        with pytest.raises(Conflict, match="taken"):
            await create_local_account(name, "new-bob@example.com", PASSWORD)

    # Content: clips and comments are tombstones, the rest is gone, counters are right.
    clip = await Clip.get(pk=bob_clip.pk)
    assert clip.deleted_at is not None and clip.caption == "" and clip.media_id is None
    comment = await Comment.get(pk=bob_comment.pk)
    assert comment.deleted_at is not None and comment.text == ""
    assert not await TimelineEntry.filter(clip_id=bob_clip.pk).exists()
    assert not await TimelineEntry.filter(owner_id=bob.pk).exists()
    hers = await Clip.get(pk=alice_clip.pk)
    assert (hers.likes_count, hers.boosts_count, hers.comments_count) == (0, 0, 0)
    assert (await Comment.get(account_id=alice.pk)).likes_count == 0
    for model, column in ((Like, "account_id"), (Boost, "account_id"), (Bookmark, "account_id")):
        assert not await model.filter(**{column: bob.pk}).exists()
    assert not await Follow.filter(follower_id=bob.pk).exists()
    assert not await Follow.filter(target_id=bob.pk).exists()
    alice_row, carol_row = await Account.get(pk=alice.pk), await Account.get(pk=carol.pk)
    assert (alice_row.followers_count, alice_row.following_count) == (0, 0)
    assert carol_row.following_count == 0
    assert not await Block.filter(account_id=bob.pk).exists()
    assert not await Mute.filter(target_id=bob.pk).exists()
    assert not await Notification.filter(recipient_id=bob.pk).exists()
    assert not await Notification.filter(from_account_id=bob.pk).exists()
    assert not await MediaFile.filter(account_id=bob.pk).exists()
    assert not video_file.exists() and not still.exists()
    # Renders: the queued one is cancelled (and removed); the one a worker holds is told to
    # stop, which that worker does at its next step.
    assert not await RenderJob.filter(pk=queued.pk).exists()
    stopping = await RenderJob.get(pk=held.pk)
    assert stopping.cancel_requested and stopping.state == "rendering"

    # Deleting again only finishes the clean-up: no second event, no second Delete.
    federated.clear()
    again = await delete_local_account(bob, settings=settings)
    assert again.already_deleted and again.deliveries == 2
    assert [e.kind for e in federated if e.kind == "account.deleted"] == []
    assert await Delivery.filter(activity_id=delete_activity_id(bob)).count() == 2


async def test_concurrent_deletions_record_the_event_once(
    db: str, settings: Settings, federated: list[events.Event]
) -> None:
    bob = await local_account("bob")
    fan = await remote_account("fan", "remote.example")
    await follows.follow(fan, bob)
    federated.clear()

    results = await asyncio.gather(
        *(delete_local_account(bob, settings=settings) for _ in range(3))
    )

    assert sorted(r.already_deleted for r in results) == [False, True, True]
    assert [e.kind for e in federated if e.kind == "account.deleted"] == ["account.deleted"]
    assert await Delivery.filter(activity_id=delete_activity_id(bob)).count() == 1


async def test_deleted_actor_answers_410_and_webfinger_too(
    db: str, settings: Settings, federated: list[events.Event]
) -> None:
    from fedisora.app import create_app

    bob = await local_account("bob")
    dave = await local_account("dave")
    await local_account("alice")
    await create_instance_actor()
    await delete_local_account(bob, settings=settings)
    await suspend_account(dave)  # suspended, not deleted: hidden, but not gone

    app = create_app(settings, run_work=False, manage_db=False)
    ap = {"accept": "application/activity+json"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://fedisora.test") as http:
        r = await http.get("/users/bob", headers=ap)
        assert r.status_code == 410
        assert r.headers["content-type"].startswith("application/activity+json")
        doc = r.json()
        assert doc["id"] == bob.uri and doc["type"] == "Tombstone"
        assert doc["formerType"] == "Person" and doc["deleted"].endswith("Z")
        assert (await http.get("/users/BOB", headers=ap)).status_code == 410
        assert (await http.get("/users/bob")).status_code == 410  # a browser too
        finger = await http.get("/.well-known/webfinger?resource=acct:bob@fedisora.test")
        assert finger.status_code == 410 and "deleted" in finger.json()["error"]
        finger = await http.get(f"/.well-known/webfinger?resource={bob.uri}")
        assert finger.status_code == 410

        # Suspended, not deleted: ActivityPub clients get Mastodon's minimal actor saying so
        # (peers refresh it), browsers a 403, and WebFinger still resolves it.
        r = await http.get("/users/dave", headers=ap)
        assert r.status_code == 200 and r.json()["suspended"] is True
        assert (await http.get("/users/dave")).status_code == 403
        finger = await http.get("/.well-known/webfinger?resource=acct:dave@fedisora.test")
        assert finger.status_code == 200 and finger.json()["links"][0]["href"] == dave.uri
        assert (await http.get("/users/nobody", headers=ap)).status_code == 404
        assert (await http.get("/users/alice", headers=ap)).json()["type"] == "Person"
        finger = await http.get("/.well-known/webfinger?resource=acct:alice@fedisora.test")
        assert finger.status_code == 200
        assert (await http.get("/actor", headers=ap)).json()["type"] == "Application"


async def test_a_deleted_accounts_clips_answer_410_even_before_clean_up_reaches_them(
    db: str, settings: Settings, federated: list[events.Event]
) -> None:
    from fedisora.app import create_app
    from fedisora.models import Clip

    bob = await local_account("bob")
    dave = await local_account("dave")
    tombstoned = await posts.post_clip(bob, await rendered_video(bob), caption="one")
    daves = await posts.post_clip(dave, await rendered_video(dave), caption="two")
    await delete_local_account(bob, settings=settings)
    await suspend_account(dave)
    # As if the clean-up had not got to this one yet: the row is still live.
    pending = await posts.post_clip(bob, await rendered_video(bob), caption="three")
    await Clip.filter(pk=pending.pk).update(deleted_at=None)

    app = create_app(settings, run_work=False, manage_db=False)
    ap = {"accept": "application/activity+json"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://fedisora.test") as http:
        for clip in (tombstoned, pending):
            r = await http.get(clip.uri.removeprefix("https://fedisora.test"), headers=ap)
            assert r.status_code == 410, clip.caption
            assert r.json()["type"] == "Tombstone" and r.json()["id"] == clip.uri
            assert "three" not in r.text
        # Suspended is hidden, not gone.
        r = await http.get(daves.uri.removeprefix("https://fedisora.test"), headers=ap)
        assert r.status_code == 404


async def test_remote_accounts_and_the_instance_actor_cannot_be_deleted(
    db: str, settings: Settings
) -> None:
    fan = await remote_account("fan", "remote.example")
    with pytest.raises(Invalid, match="only local accounts"):
        await delete_local_account(fan, settings=settings)
    instance = await create_instance_actor()
    with pytest.raises(Invalid, match="instance actor"):
        await delete_local_account(instance, settings=settings)
    with pytest.raises(Invalid, match="instance actor"):
        await suspend_account(instance)
    assert (await Account.get(pk=fan.pk)).suspended_at is None
    assert (await Account.get(pk=instance.pk)).suspended_at is None


# --- suspending and unsuspending -------------------------------------------------------------


async def _updates(account: Account) -> list[Delivery]:
    rows = await Delivery.filter(sender_id=account.pk).order_by("id")
    return [d for d in rows if d.payload["type"] == "Update"]


async def test_suspension_sends_the_suspended_actor_and_unsuspension_the_full_one(
    db: str, settings: Settings, federated: list[events.Event]
) -> None:
    bob = await local_account("bob", display_name="Bob B.")
    avatar = "https://fedisora.test/media/avatars/bob.png"
    await Account.filter(pk=bob.pk).update(note="hello there", avatar_url=avatar)
    fan = await remote_account("fan", "remote.example")
    idol = await remote_account("idol", "other.example")
    troll = await remote_account("troll", "third.example")
    await follows.follow(fan, bob)  # a remote follower
    await follows.follow(bob, idol)  # a remote followee (pending)
    await follows.block(bob, troll)  # not told
    clip = await posts.post_clip(bob, await rendered_video(bob), caption="still here")
    token = await _token(bob)
    federated.clear()

    row = await suspend_account(bob)

    assert row.suspended_at is not None and row.suspended
    assert [e.kind for e in federated if e.kind.startswith("account.")] == ["account.suspended"]
    [first, second] = await _updates(bob)
    assert sorted((first.inbox_url, second.inbox_url)) == [
        "https://other.example/inbox",
        "https://remote.example/inbox",
    ]
    assert first.activity_id == second.activity_id and first.state == "pending"
    update = first.payload
    assert update["actor"] == bob.uri and update["to"] == [
        "https://www.w3.org/ns/activitystreams#Public"
    ]
    terms = {k: v for part in update["@context"] if isinstance(part, dict) for k, v in part.items()}
    assert (
        terms["suspended"] == "toot:suspended"
        and "https://w3id.org/security/v1" in update["@context"]
    )
    actor = update["object"]
    assert actor["id"] == bob.uri and actor["suspended"] is True and "@context" not in actor
    # Mastodon's minimal document: the profile is blanked, ids, inboxes and keys stay.
    assert (actor["name"], actor["summary"], actor["discoverable"]) == ("bob", "", False)
    assert "icon" not in actor and actor["inbox"].endswith("/users/bob/inbox")
    assert actor["publicKey"]["publicKeyPem"] == bob.public_key_pem
    # Hidden and logged out, but nothing is lost: the profile and the clip are kept.
    with pytest.raises(Unauthorized):
        await load_token(token)
    assert (row.display_name, row.note, row.avatar_url) == ("Bob B.", "hello there", avatar)
    assert await Clip.filter(pk=clip.pk, deleted_at=None).exists()

    # Suspending again changes and sends nothing.
    federated.clear()
    again = await suspend_account(bob)
    assert again.suspended_at == row.suspended_at and federated == []
    assert len(await _updates(bob)) == 2

    back = await unsuspend_account(bob)

    assert back.suspended_at is None and not back.suspended
    assert [e.kind for e in federated] == ["account.unsuspended"]
    assert (await load_token(token))[1] == bob  # the same token works again
    updates = await _updates(bob)
    assert len(updates) == 4
    lifted = updates[2].payload
    assert lifted["id"] != update["id"] and {d.inbox_url for d in updates[2:]} == {
        first.inbox_url,
        second.inbox_url,
    }
    full = lifted["object"]
    assert "suspended" not in full
    assert (full["name"], full["summary"], full["icon"]["url"]) == ("Bob B.", "hello there", avatar)

    with pytest.raises(Forbidden, match="@bob is not suspended"):
        await unsuspend_account(bob)
    assert len(await _updates(bob)) == 4


async def test_unsuspending_deleted_remote_and_origin_suspended_accounts(
    db: str, settings: Settings, federated: list[events.Event]
) -> None:
    bob = await local_account("bob")
    alice = await local_account("alice")
    fan = await remote_account("fan", "remote.example", fetched_at=utcnow())
    await follows.follow(fan, bob)
    await follows.follow(fan, alice)

    # A deleted account stays deleted.
    await delete_local_account(bob, settings=settings)
    with pytest.raises(Forbidden, match="@bob was deleted: it cannot be unsuspended"):
        await unsuspend_account(bob)
    assert await is_deleted(await Account.get(pk=bob.pk))

    # A remote account: local moderation, nothing federates either way.
    federated.clear()
    sent = await Delivery.all().count()
    assert (await suspend_account(fan)).suspended
    back = await unsuspend_account(fan)
    assert not back.suspended and back.fetched_at is None  # refetched on next use
    assert federated == [] and await Delivery.all().count() == sent

    # Suspended by its own server only: not this instance's to lift.
    await Account.filter(pk=fan.pk).update(origin_suspended_at=utcnow())
    with pytest.raises(Forbidden, match="suspended by its own server"):
        await unsuspend_account(fan)
    # Suspended by both: unsuspending here lifts only the suspension made here.
    await suspend_account(fan)
    back = await unsuspend_account(fan)
    assert back.suspended_at is None and back.origin_suspended_at is not None and back.suspended

    instance = await create_instance_actor()
    with pytest.raises(Invalid, match="instance actor"):
        await unsuspend_account(instance)
    assert federated == [] and await Delivery.all().count() == sent

    # Deleted by its own server (its actor's Delete came in): that stays so.
    gone = await remote_account("gone", "remote.example")
    await suspend_account(gone)
    await mark_remote_deleted(gone)
    assert is_remote_deleted(await Account.get(pk=gone.pk))
    with pytest.raises(Forbidden, match=r"@gone@remote\.example was deleted by its server"):
        await unsuspend_account(gone)
    assert is_remote_deleted(await Account.get(pk=gone.pk))
    # Suspended both here and by its server, at two times: not deleted.
    assert not is_remote_deleted(await Account.get(pk=fan.pk))


# --- fedisora deleteuser ---------------------------------------------------------------------


def test_deleteuser_command(tmp_path: Path) -> None:
    env = instance_env(tmp_path / "data", free_port())
    cli_ok(fedisora(["init"], env))
    create = ["createuser", "bob", "--email", "bob@example.com", "--password", PASSWORD]
    cli_ok(fedisora(create, env))

    cli_fails(fedisora(["deleteuser", "bob"], env), "add --yes to confirm")
    cli_fails(fedisora(["deleteuser", "nobody", "--yes"], env), "error: no local account @nobody")
    cli_fails(fedisora(["deleteuser", "instance", "--yes"], env), "instance actor cannot be")
    out = cli_ok(fedisora(["deleteuser", "@bob", "--yes"], env))
    assert out.startswith("deleted @bob: 0 clips") and "username stays reserved" in out
    assert "already deleted" in cli_ok(fedisora(["deleteuser", "bob", "--yes"], env))
    cli_fails(fedisora(create, env), "error: username 'bob' is taken")
    # The e-mail address is free again: only the username stays reserved.
    cli_ok(
        fedisora(
            ["createuser", "robert", "--email", "bob@example.com", "--password", PASSWORD], env
        )
    )
    usage = fedisora(["deleteuser"], env)
    assert usage.returncode == 2 and "username" in usage.stderr


# --- fedisora suspend / unsuspend ------------------------------------------------------------


async def test_suspend_and_unsuspend_commands(
    db: str, tmp_path: Path, federated: list[events.Event]
) -> None:
    """The commands run on this test's database as an admin runs them on an instance's: the
    same service as the admin API, so a local account's actor Update is queued for delivery."""
    env = instance_env(
        tmp_path,
        free_port(),
        FEDISORA_DOMAIN="fedisora.test",
        FEDISORA_DATABASE_URL=db,
        FEDISORA_SECRET_KEY="s" * 40,
    )

    async def run(*args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(fedisora, list(args), env)

    bob = await local_account("bob")
    carol = await local_account("carol")
    await create_instance_actor()
    down = f"127.0.0.1:{free_port()}"  # its server does not answer (and is on loopback)
    fan = await remote_account("fan", down, fetched_at=utcnow())
    gone = await remote_account("gone", "remote.example")
    await follows.follow(fan, bob)
    await delete_local_account(carol, settings=load_settings(env))
    await mark_remote_deleted(gone)
    await Delivery.all().delete()

    cli_fails(await run("suspend", "nobody"), "error: no local account @nobody")
    cli_fails(await run("suspend", "ghost@elsewhere.example"), "no account @ghost@elsewhere")
    cli_fails(await run("unsuspend", "a@b@c"), "is not an account")
    cli_fails(await run("suspend", "instance"), "the instance actor cannot be suspended")
    for command in ("suspend", "unsuspend"):
        cli_fails(await run(command, "carol"), "error: @carol was deleted")
        cli_fails(await run(command, "gone@remote.example"), "deleted by its server")

    out = cli_ok(await run("suspend", "@bob", "--text", "Spam in every comment."))
    assert out.strip() == "suspended @bob; the actor's Update goes to 1 remote inboxes"
    assert (await Account.get(pk=bob.pk)).suspended_at is not None
    # bob is told, as from the admin pages and API, and can appeal it from his session
    [warning] = await AccountWarning.filter(account_id=bob.pk)
    assert (warning.action, warning.text, warning.report_id) == (
        "suspend",
        "Spam in every comment.",
        None,
    )
    assert await Notification.filter(recipient_id=bob.pk, account_warning_id=warning.pk).exists()
    assert await AuditEntry.filter(actor_label="cli", action="account.suspend").count() == 1
    [update] = await Delivery.filter(sender_id=bob.pk)
    assert update.payload["type"] == "Update" and update.payload["object"]["suspended"] is True
    cli_fails(await run("suspend", "bob@fedisora.test"), "error: @bob is already suspended")

    out = cli_ok(await run("unsuspend", "bob"))
    assert out.strip() == "unsuspended @bob; the actor's Update goes to 1 remote inboxes"
    assert (await Account.get(pk=bob.pk)).suspended_at is None
    cli_fails(await run("unsuspend", "bob"), "error: @bob is not suspended")

    # A remote account: local moderation, nothing is sent; lifted, it is refetched.
    out = cli_ok(await run("suspend", f"fan@{down}"))
    assert out.startswith(f"suspended @fan@{down} here; its server is not told")
    assert (await Account.get(pk=fan.pk)).suspended_at is not None
    out = cli_ok(await run("unsuspend", f"FAN@{down}"))
    assert out.startswith(f"unsuspended @fan@{down} here") and "on its next use" in out
    row = await Account.get(pk=fan.pk)
    assert row.suspended_at is None and row.fetched_at is None
    assert await Delivery.all().count() == 2  # bob's two Updates, nothing for fan
    assert not await AccountWarning.filter(account_id=fan.pk).exists()  # not ours to tell

    usage = await run("suspend")
    assert usage.returncode == 2 and "acct" in usage.stderr
