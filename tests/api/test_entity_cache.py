"""The rendering cache of entities (fedisora.api.entity_cache) never serves a stale entity.

Each change a page can show (a like, an unlike, an edit of the caption with new hashtags
and mentions, a deletion, a provenance check's label, a media description, the author's
name and avatar, a mentioned account's new name, an author's suspension) is made through
the code that makes it; the entity then rendered with the cache warm must equal the one
rendered with the cache empty, and show the change. Viewer flags are never shared between
viewers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from factories import local_account, remote_account, rendered_video
from prometheus_client.parser import text_string_to_metric_families

from fedisora.api import entity_cache
from fedisora.api.entities import account_entities, status_entities
from fedisora.federation import media_check
from fedisora.federation.actors import store_actor
from fedisora.models import Account, Clip, Comment, Mention, utcnow
from fedisora.services import interactions, posts

Json = dict[str, Any]


def _empty() -> None:
    for cache in entity_cache.caches():
        cache.clear()


async def _render(viewer: Account | None, status: Clip | Comment) -> Json:
    """*status* as a page renders it: its row (and its author's) read afresh."""
    fresh = await type(status).get(pk=status.pk)
    (entity,) = await status_entities(viewer, [fresh])
    return entity


async def _cached_and_fresh(viewer: Account | None, status: Clip | Comment) -> tuple[Json, Json]:
    cached = await _render(viewer, status)
    _empty()
    fresh = await _render(viewer, status)
    return cached, fresh


async def test_a_cached_entity_is_never_stale(db: str) -> None:
    alice = await local_account("alice")
    bob = await local_account("bob")
    carol = await remote_account("carol")
    media = await rendered_video(alice)
    clip = await posts.post_clip(alice, media, caption="#sea first @bob")
    await Mention.create(account=carol, clip=clip, target_key=f"clip:{clip.pk}")
    comment = await interactions.comment(bob, clip, "nice @alice")
    await Mention.create(account=carol, comment=comment, target_key=f"comment:{comment.pk}")

    async def remote_carol_renamed() -> None:
        # Her server's actor document, as a fetch or an Update stores it: a new name and url.
        await store_actor(
            {
                "id": carol.uri,
                "type": "Person",
                "preferredUsername": "caroline",
                "inbox": f"{carol.uri}/inbox",
                "url": "https://remote.example/@caroline",
            },
            carol.uri,
        )

    async def provenance_checked() -> None:
        # A remote check that gave up labels the media "unverified" (media_check's path).
        failed = media_check.REMOTE_MEDIA_GRAPH.failed
        await media_check._on_transition(
            SimpleNamespace(media_id=media.pk),  # type: ignore[arg-type]
            "fetching",
            failed,
        )

    changes: list[tuple[str, Callable[[], Awaitable[Any]], Callable[[Json, Json], bool]]] = [
        ("like", lambda: interactions.like(bob, clip), lambda e, _c: e["favourites_count"] == 1),
        (
            "unlike",
            lambda: interactions.unlike(bob, clip),
            lambda e, _c: e["favourites_count"] == 0,
        ),
        (
            "edit",
            lambda: posts.edit_clip(alice, clip, caption="#storm edited @alice"),
            lambda e, _c: (
                [t["name"] for t in e["tags"]] == ["storm"]
                and any(m["username"] == "alice" for m in e["mentions"])
            ),
        ),
        (
            "provenance",
            provenance_checked,
            lambda e, _c: (
                e["media_attachments"][0]["meta"]["fedisora"]["provenance"] == "unverified"
            ),
        ),
        (
            "author renamed",
            lambda: Account.filter(pk=alice.pk).update(
                display_name="Alice B", avatar_url="https://fedisora.test/a.png"
            ),
            lambda e, c: (
                e["account"]["display_name"] == "Alice B"
                and e["account"]["avatar"] == "https://fedisora.test/a.png"
                and c["in_reply_to_account_id"] == str(alice.pk)
            ),
        ),
        (
            "mentioned account renamed",
            remote_carol_renamed,
            lambda e, c: (
                any(m["username"] == "caroline" for m in e["mentions"])
                and any(m["username"] == "caroline" for m in c["mentions"])
            ),
        ),
        (
            "author sensitized",
            lambda: Account.filter(pk=alice.pk).update(sensitized_at=utcnow()),
            lambda e, _c: e["sensitive"] is True,
        ),
        ("delete", lambda: posts.delete_clip(alice, clip), lambda e, _c: e["content"] == ""),
    ]
    for name, change, shows in changes:
        await _render(bob, clip)
        before = entity_cache.STATUSES.hits
        await _render(bob, clip)  # warm: served from the cache
        assert entity_cache.STATUSES.hits > before, name
        await change()
        clip = await Clip.get(pk=clip.pk)
        for viewer in (None, bob):
            cached, fresh = await _cached_and_fresh(viewer, clip)
            assert cached == fresh, (name, viewer)
            cached_comment, fresh_comment = await _cached_and_fresh(viewer, comment)
            assert cached_comment == fresh_comment, (name, viewer)
            assert shows(cached, cached_comment), (name, cached, cached_comment)


async def test_a_media_description_through_the_api_reaches_the_clip(
    client: httpx.AsyncClient,
) -> None:
    """``PUT /api/v1/media/:id`` on the media of a posted clip: the clip's entity shows it."""
    from apihelpers import login

    alice = await local_account("alice")
    media = await rendered_video(alice)
    clip = await posts.post_clip(alice, media, caption="described")
    await _render(None, clip)
    headers = {"Authorization": f"Bearer {(await login(client, alice)).token}"}
    r = await client.put(
        f"/api/v1/media/{media.pk}", data={"description": "waves"}, headers=headers
    )
    assert r.status_code == 200, r.text
    cached, fresh = await _cached_and_fresh(None, clip)
    assert cached == fresh
    assert cached["media_attachments"][0]["description"] == "waves"


async def test_viewer_flags_are_each_viewers_own(db: str) -> None:
    alice = await local_account("alice")
    bob = await local_account("bob")
    dave = await local_account("dave")
    clip = await posts.post_clip(alice, await rendered_video(alice), caption="flags")
    await interactions.like(bob, clip)
    await interactions.boost(bob, clip)
    await Clip.filter(pk=clip.pk).update(pinned=True)
    for _ in range(2):  # the second round is served from the cache
        as_bob = await _render(bob, clip)
        as_dave = await _render(dave, clip)
        as_alice = await _render(alice, clip)
        as_nobody = await _render(None, clip)
        assert as_bob["favourited"] is True and as_bob["reblogged"] is True
        assert as_dave["favourited"] is False and as_dave["reblogged"] is False
        assert "pinned" not in as_bob and "pinned" not in as_dave
        assert as_alice["pinned"] is True and as_alice["favourited"] is False
        assert "favourited" not in as_nobody and "pinned" not in as_nobody
        assert as_bob["favourites_count"] == as_dave["favourites_count"] == 1
    assert entity_cache.STATUSES.hits > 0


async def test_cached_entities_are_copies(db: str) -> None:
    """A caller setting a key on what it was handed changes no other caller's entity."""
    alice = await local_account("alice")
    clip = await posts.post_clip(alice, await rendered_video(alice), caption="copies")
    first = await _render(None, clip)
    first["fedisora"] = {"reason": "mine"}
    first["id"] = "changed"
    again = await _render(None, clip)
    assert "fedisora" not in again and again["id"] == str(clip.pk)
    (account,) = account_entities([alice])
    account["source"] = {}
    assert "source" not in account_entities([alice])[0]


async def test_a_bounded_cache_evicts_the_least_recently_used() -> None:
    cache = entity_cache.EntityCache("test", 2)
    cache.put("a", 1, {"a": 1})
    cache.put("b", 1, {"b": 1})
    assert cache.get("a", 1) == {"a": 1}  # "a" is now the most recently used
    cache.put("c", 1, {"c": 1})
    assert cache.get("b", 1) is None and cache.get("a", 1) == {"a": 1}
    assert cache.get("a", 2) is None  # another stamp: a miss
    assert (cache.hits, cache.misses, len(cache)) == (2, 2, 2)
    off = entity_cache.EntityCache("off", 0)
    off.put("a", 1, {})
    assert len(off) == 0


async def test_the_metrics_count_hits_and_misses(client: httpx.AsyncClient) -> None:
    """Through fedisora.cachestats, in the family of the process's other caches."""
    alice = await local_account("alice")
    await posts.post_clip(alice, await rendered_video(alice), caption="counted")
    _empty()

    def lookups(body: str) -> dict[tuple[str, str], float]:
        return {
            (s.labels["cache"], s.labels["result"]): s.value
            for family in text_string_to_metric_families(body)
            for s in family.samples
            if s.name == "fedisora_cache_lookups_total"
        }

    before = lookups((await client.get("/metrics")).text)
    for _ in range(2):
        assert (await client.get("/api/v1/timelines/public")).status_code == 200
    body = (await client.get("/metrics")).text
    after = lookups(body)

    def grew(cache: str, result: str) -> float:
        return after[cache, result] - before.get((cache, result), 0.0)

    # the first page renders the clip (a miss), the second serves it (a hit)
    assert grew("status_entities", "miss") >= 1 and grew("status_entities", "hit") >= 1
    assert ("account_entities", "hit") in after
    assert 'fedisora_entity_cache_entries{cache="status_entities"} 1.0' in body
    assert "fedisora_entity_cache_requests" not in body  # the family it had of its own


def test_the_size_setting(tmp_path: Any) -> None:
    from fedisora.config import ConfigError, load_settings

    base = {"FEDISORA_DATA_DIR": str(tmp_path)}
    assert load_settings(base).entity_cache_size == entity_cache.DEFAULT_SIZE
    assert load_settings({**base, "FEDISORA_ENTITY_CACHE_SIZE": "0"}).entity_cache_size == 0
    for bad in ("-1", "many"):
        with pytest.raises(ConfigError, match="ENTITY_CACHE_SIZE"):
            load_settings({**base, "FEDISORA_ENTITY_CACHE_SIZE": bad})
    try:
        entity_cache.configure(1)
        entity_cache.ACCOUNTS.put(1, "a", {})
        entity_cache.ACCOUNTS.put(2, "b", {})
        assert len(entity_cache.ACCOUNTS) == 1
    finally:
        entity_cache.configure(entity_cache.DEFAULT_SIZE)


async def test_saving_a_row_read_before_a_bump_keeps_the_bump(db: str) -> None:
    """A plain ``save()`` of a clip or comment read before its version was raised writes
    every other column but never sets the version back (a cached entity of the older
    version could match again)."""
    from fedisora.services.entity_versions import bump_clips, bump_comments

    alice = await local_account("alice")
    clip = await posts.post_clip(alice, await rendered_video(alice), caption="kept")
    comment = await interactions.comment(alice, clip, "kept too")
    stale_clip = await Clip.get(pk=clip.pk)
    stale_comment = await Comment.get(pk=comment.pk)
    await bump_clips([clip.pk])
    await bump_comments([comment.pk])
    stale_clip.spoiler_text = "saved"
    await stale_clip.save()
    stale_comment.spoiler_text = "saved"
    await stale_comment.save()
    fresh_clip, fresh_comment = await Clip.get(pk=clip.pk), await Comment.get(pk=comment.pk)
    assert (fresh_clip.version, fresh_clip.spoiler_text) == (1, "saved")
    assert (fresh_comment.version, fresh_comment.spoiler_text) == (1, "saved")
