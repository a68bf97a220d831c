"""The use cases, against real SQLite and PostgreSQL."""

from __future__ import annotations

import itertools

import pytest
from factories import local_account, remote_account, rendered_video

from fedisora.api.entities import _quote_state
from fedisora.errors import Conflict, Forbidden, Invalid, NotFound
from fedisora.ids import new_id
from fedisora.models import (
    Account,
    Boost,
    Clip,
    ClipTag,
    Comment,
    Follow,
    FollowState,
    Like,
    Mention,
    Notification,
    NotificationType,
    QuoteState,
    TimelineEntry,
    User,
    Visibility,
)
from fedisora.services import events, follows, interactions, posts
from fedisora.services.accounts import authenticate, create_local_account
from fedisora.services.passwords import PasswordGuard
from fedisora.services.remixes import approved, quote_state
from fedisora.services.visibility import can_see_clip


async def test_create_account_has_both_keys_and_urls(db: str) -> None:
    alice = await local_account("alice")
    assert alice.local and alice.uri == "https://fedisora.test/users/alice"
    assert alice.public_key_pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE KEY" in alice.private_key_pem
    assert alice.ed25519_public_multibase.startswith("z6Mk")  # Ed25519 multikey prefix
    assert alice.inbox_uri.endswith("/users/alice/inbox")
    assert alice.shared_inbox_uri == "https://fedisora.test/inbox"


@pytest.mark.parametrize(
    ("username", "email", "password", "message"),
    [
        ("bad name", "x@example.com", "longenough", "username"),
        ("ok", "not-an-email", "longenough", "e-mail"),
        ("ok", "x@example.com", "short", "password"),
        ("inbox", "x@example.com", "longenough", "reserved"),
    ],
)
async def test_create_account_rejects_bad_input_without_rows(
    db: str, username: str, email: str, password: str, message: str
) -> None:
    with pytest.raises(Invalid, match=message):
        await create_local_account(username, email, password)
    assert await Account.all().count() == 0
    assert await User.all().count() == 0


async def test_duplicate_username_and_email(db: str) -> None:
    await local_account("alice")
    with pytest.raises(Conflict, match="taken"):
        await create_local_account("ALICE", "other@example.com", "longenough")
    with pytest.raises(Conflict, match="already registered"):
        await create_local_account("alice2", "alice@example.com", "longenough")
    assert await Account.all().count() == 1


async def test_authenticate(db: str) -> None:
    alice = await local_account("alice")
    guard = PasswordGuard()

    async def log_in(login: str, password: str) -> Account | None:
        return await authenticate(login, password, guard=guard, ip="192.0.2.1")

    assert (await log_in("alice@example.com", "correct horse battery")).pk == alice.pk
    assert (await log_in("Alice", "correct horse battery")).pk == alice.pk
    assert await log_in("alice", "wrong password") is None
    assert await log_in("nobody", "correct horse battery") is None
    assert await log_in("nul\x00name", "correct horse battery") is None  # looked up nowhere


async def test_post_clip_tags_mentions_feeds_and_notifications(db: str) -> None:
    alice = await local_account("alice")
    bob = await local_account("bob")
    carol = await local_account("carol")
    await follows.follow(bob, alice)
    media = await rendered_video(alice)
    clip = await posts.post_clip(
        alice, media, caption="Sunset #Waves #waves with @carol and @ghost", language="en"
    )
    assert clip.uri == f"https://fedisora.test/users/alice/clips/{clip.id}"
    assert clip.id > 2**40  # a time-based id
    assert '<a href="https://fedisora.test/tags/waves"' in clip.content
    assert 'href="https://fedisora.test/@carol"' in clip.content
    assert "@ghost" in clip.content and "ghost</a>" not in clip.content
    tags = await ClipTag.filter(clip_id=clip.pk).prefetch_related("tag")
    assert [t.tag.name for t in tags] == ["waves"]
    assert await Mention.filter(clip_id=clip.pk).values_list("account_id", flat=True) == [carol.pk]
    feed_owners = set(
        await TimelineEntry.filter(clip_id=clip.pk).values_list("owner_id", flat=True)
    )
    assert feed_owners == {alice.pk, bob.pk, carol.pk}
    note = await Notification.get(recipient_id=carol.pk)
    assert note.type == NotificationType.MENTION and note.clip_id == clip.pk
    assert (await Account.get(pk=alice.pk)).clips_count == 1


async def test_ai_only_rule_and_ownership(db: str) -> None:
    alice = await local_account("alice")
    bob = await local_account("bob")
    unverified = await rendered_video(alice, state="unverified")
    with pytest.raises(Invalid, match="AI-only rule"):
        await posts.post_clip(alice, unverified)
    foreign = await rendered_video(alice, local=False)
    with pytest.raises(Invalid, match="AI-only rule"):
        await posts.post_clip(alice, foreign)
    with pytest.raises(Forbidden, match="another account"):
        await posts.post_clip(bob, await rendered_video(alice))
    media = await rendered_video(alice)
    await posts.post_clip(alice, media)
    with pytest.raises(Invalid, match="already posted"):
        await posts.post_clip(alice, media)
    with pytest.raises(Invalid, match="visibility"):
        await posts.post_clip(alice, await rendered_video(alice), visibility="friends")
    with pytest.raises(Invalid, match="limit is 1000"):
        await posts.post_clip(alice, await rendered_video(alice), caption="x" * 1001)
    assert await Clip.all().count() == 1


async def test_visibility_rules(db: str) -> None:
    alice = await local_account("alice")
    follower = await local_account("follower")
    stranger = await local_account("stranger")
    mentioned = await local_account("mentioned")
    await follows.follow(follower, alice)
    private = await posts.post_clip(alice, await rendered_video(alice), visibility="private")
    direct = await posts.post_clip(
        alice, await rendered_video(alice), visibility=Visibility.DIRECT, caption="hi @mentioned"
    )
    public = await posts.post_clip(alice, await rendered_video(alice))
    assert await can_see_clip(follower, private) and not await can_see_clip(stranger, private)
    assert not await can_see_clip(None, private)
    assert await can_see_clip(mentioned, direct) and not await can_see_clip(follower, direct)
    assert await can_see_clip(None, public)
    # A direct clip never reaches followers' home feeds.
    assert not await TimelineEntry.filter(clip_id=direct.pk, owner_id=follower.pk).exists()
    with pytest.raises(NotFound):
        await interactions.like(stranger, private)
    with pytest.raises(Forbidden, match="boosted"):
        await interactions.boost(follower, private)


async def test_like_is_idempotent_and_counts(db: str) -> None:
    alice = await local_account("alice")
    bob = await local_account("bob")
    clip = await posts.post_clip(alice, await rendered_video(alice))
    first = await interactions.like(bob, clip)
    again = await interactions.like(bob, clip)
    assert first.pk == again.pk
    assert (await Clip.get(pk=clip.pk)).likes_count == 1
    assert await Notification.filter(recipient_id=alice.pk, type="favourite").count() == 1
    assert await interactions.unlike(bob, clip)
    assert not await interactions.unlike(bob, clip)
    assert (await Clip.get(pk=clip.pk)).likes_count == 0
    # Liking your own clip counts but does not notify you.
    await interactions.like(alice, clip)
    assert await Notification.filter(recipient_id=alice.pk, type="favourite").count() == 1


async def test_threaded_comments(db: str) -> None:
    alice = await local_account("alice")
    bob = await local_account("bob")
    carol = await local_account("carol")
    clip = await posts.post_clip(alice, await rendered_video(alice))
    top = await interactions.comment(bob, clip, "nice one")
    reply = await interactions.comment(carol, clip, "agreed @bob", parent=top)
    assert reply.parent_id == top.pk and top.id < reply.id
    assert (await Clip.get(pk=clip.pk)).comments_count == 2
    assert (await Comment.get(pk=top.pk)).replies_count == 1
    assert await Notification.filter(recipient_id=alice.pk, comment_id=reply.pk).exists()
    assert await Notification.filter(recipient_id=bob.pk, comment_id=reply.pk).exists()
    liked = await interactions.like(alice, reply)
    assert liked.comment_id == reply.pk and (await Comment.get(pk=reply.pk)).likes_count == 1
    with pytest.raises(Invalid, match="some text"):
        await interactions.comment(bob, clip, "   ")
    other = await posts.post_clip(alice, await rendered_video(alice))
    with pytest.raises(Invalid, match="another clip"):
        await interactions.comment(bob, other, "x", parent=top)
    with pytest.raises(Forbidden):
        await interactions.delete_comment(carol, top)
    await interactions.delete_comment(alice, top)  # the clip's author may moderate
    assert (await Clip.get(pk=clip.pk)).comments_count == 1


async def test_boost_and_unboost_fan_out(db: str) -> None:
    alice = await local_account("alice")
    bob = await local_account("bob")
    reader = await local_account("reader")
    await follows.follow(reader, bob)
    clip = await posts.post_clip(alice, await rendered_video(alice))
    await interactions.boost(bob, clip)
    await interactions.boost(bob, clip)
    assert await Boost.filter(clip_id=clip.pk).count() == 1
    entry = await TimelineEntry.get(owner_id=reader.pk, clip_id=clip.pk)
    assert entry.boosted_by_id == bob.pk
    assert await interactions.unboost(bob, clip)
    assert not await TimelineEntry.filter(owner_id=reader.pk, clip_id=clip.pk).exists()
    assert (await Clip.get(pk=clip.pk)).boosts_count == 0


async def test_follow_with_manual_approval(db: str) -> None:
    locked = await local_account("locked")
    locked.locked = True
    await locked.save()
    fan = await local_account("fan")
    await posts.post_clip(locked, await rendered_video(locked))
    row = await follows.follow(fan, locked)
    assert row.state == FollowState.PENDING
    assert await Notification.filter(recipient_id=locked.pk, type="follow_request").exists()
    assert not await TimelineEntry.filter(owner_id=fan.pk).exists()
    row = await follows.accept_follow(locked, row)
    assert row.state == FollowState.ACCEPTED
    assert await TimelineEntry.filter(owner_id=fan.pk).count() == 1  # backfilled
    assert (await Account.get(pk=locked.pk)).followers_count == 1
    assert await follows.unfollow(fan, locked)
    assert (await Account.get(pk=locked.pk)).followers_count == 0
    assert not await TimelineEntry.filter(owner_id=fan.pk).exists()
    with pytest.raises(Invalid):
        await follows.follow(fan, fan)


async def test_follow_remote_stays_pending_and_reject(db: str) -> None:
    alice = await local_account("alice")
    remote = await remote_account("rita")
    row = await follows.follow(alice, remote)
    assert row.state == FollowState.PENDING
    incoming = await follows.follow(remote, alice)
    assert incoming.state == FollowState.ACCEPTED
    await follows.reject_follow(alice, incoming)
    assert not await Follow.filter(pk=incoming.pk).exists()


async def test_block_ends_follows_and_hides(db: str) -> None:
    alice = await local_account("alice")
    bob = await local_account("bob")
    await follows.follow(bob, alice)
    await follows.follow(alice, bob)
    clip = await posts.post_clip(alice, await rendered_video(alice))
    await follows.block(alice, bob)
    assert await Follow.all().count() == 0
    assert not await can_see_clip(bob, clip)
    with pytest.raises(Forbidden):
        await follows.follow(bob, alice)
    await follows.unblock(alice, bob)
    assert await can_see_clip(bob, clip)


async def test_remix_links_and_notifies(db: str) -> None:
    alice = await local_account("alice")
    bob = await local_account("bob")
    source = await posts.post_clip(alice, await rendered_video(alice))
    remix = await posts.remix_clip(bob, source, await rendered_video(bob), caption="my take")
    assert remix.remix_of_id == source.pk and remix.remix_of_uri == source.uri
    assert (await Clip.get(pk=source.pk)).remixes_count == 1
    assert await Notification.filter(recipient_id=alice.pk, type="fedisora.remix").exists()
    private = await posts.post_clip(alice, await rendered_video(alice), visibility="private")
    with pytest.raises(NotFound):
        await posts.remix_clip(bob, private, await rendered_video(bob))


async def test_the_approval_rule_reads_the_same_as_a_query_and_in_python(db: str) -> None:
    """remixes.approved (the query recount_remixes counts with) and remixes.quote_state (what
    the API shows, through entities) agree on every kind of remix row."""
    alice = await local_account("alice")
    zed = await remote_account("zed")
    local_source = await posts.post_clip(alice, await rendered_video(alice))
    remote_source = await Clip.create(
        id=new_id(), account=zed, uri=f"{zed.uri}/clips/1", local=False
    )
    states = [None, *QuoteState]
    for source in (local_source, remote_source):
        expected: set[int] = set()
        for n, (local, state, stamp) in enumerate(
            itertools.product((True, False), states, (None, f"{source.uri}/stamps/x"))
        ):
            author = alice if local else zed
            remix = await Clip.create(
                id=new_id(),
                account=author,
                uri=f"{author.uri}/clips/remix-{source.pk}-{n}",
                local=local,
                remix_of=source,
                remix_of_uri=source.uri,
                quote_state=state.value if state else None,
                quote_authorization_uri=stamp,
            )
            shown = _quote_state(remix)  # the API's reading, from the URI
            assert shown == quote_state(remix, source.local), (local, state, stamp)
            if shown == QuoteState.ACCEPTED:
                expected.add(remix.pk)
        counted = Clip.filter(approved(source.local), remix_of_id=source.pk)
        assert {c.pk for c in await counted} == expected
        assert expected  # each source has approved remixes and others
        assert await Clip.filter(remix_of_id=source.pk).count() > len(expected)


async def test_edit_and_delete(db: str) -> None:
    alice = await local_account("alice")
    bob = await local_account("bob")
    seen: list[str] = []

    async def listener(event: events.Event) -> None:
        seen.append(event.kind)

    events.subscribe(listener)
    events.set_runner(None)  # the outbox processes each event as it commits, in this task
    try:
        clip = await posts.post_clip(alice, await rendered_video(alice), caption="#one")
        await interactions.like(bob, clip)
        with pytest.raises(Forbidden):
            await posts.edit_clip(bob, clip, caption="hacked")
        edited = await posts.edit_clip(alice, clip, caption="#two", spoiler_text="cw")
        assert edited.edited_at is not None and edited.sensitive
        assert [
            t.tag.name for t in await ClipTag.filter(clip_id=clip.pk).prefetch_related("tag")
        ] == ["two"]
        with pytest.raises(Forbidden):
            await posts.delete_clip(bob, clip)
        await posts.delete_clip(alice, clip)
        await posts.delete_clip(alice, clip)  # twice is harmless
    finally:
        events.clear_runner()
        events.unsubscribe(listener)
    gone = await Clip.get(pk=clip.pk)
    assert gone.deleted_at is not None and gone.caption == "" and gone.media_id is None
    assert not await TimelineEntry.filter(clip_id=clip.pk).exists()
    assert (await Account.get(pk=alice.pk)).clips_count == 0
    assert await Like.filter(clip_id=clip.pk).count() == 1  # kept for the tombstone's history
    assert seen.count("clip.deleted") == 1
    assert seen[:3] == ["clip.created", "like.created", "notification.created"]
