"""Visitors' pages answered again (fedisora.api.replay_cache) are never stale.

Each change a page shows is made through the code that makes it, or straight in the
database as another process would; the page a visitor then gets must equal the one made
with every cache empty, and show the change. Signed-in callers never get a kept page.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from apihelpers import login
from factories import local_account, rendered_video

from fedisora.api import entity_cache, replay_cache
from fedisora.models import Account, Clip, DomainBlock, utcnow
from fedisora.services import audit, domain_blocks, instance_settings, interactions, posts


def _empty() -> None:
    for cache in entity_cache.caches():
        cache.clear()
    replay_cache.clear()


async def _twice(client: httpx.AsyncClient, path: str) -> tuple[httpx.Response, int]:
    """*path* for a visitor, after two requests: one that renders its entities, one that
    keeps it (made warm); and the hits meanwhile."""
    await client.get(path)
    await client.get(path)
    hits = replay_cache._counts[0]
    r = await client.get(path)
    return r, replay_cache._counts[0] - hits


async def _fresh(client: httpx.AsyncClient, path: str) -> httpx.Response:
    _empty()
    return await client.get(path)


def _same(kept: httpx.Response, fresh: httpx.Response) -> None:
    assert kept.status_code == fresh.status_code == 200
    assert kept.content == fresh.content
    assert kept.headers.get("link") == fresh.headers.get("link")
    assert kept.headers["content-type"] == fresh.headers["content-type"]


async def test_a_visitors_page_is_answered_again_and_never_stale(
    client: httpx.AsyncClient, db: str
) -> None:
    alice = await local_account("alice")
    bob = await local_account("bob")
    clips = [
        await posts.post_clip(alice, await rendered_video(alice), caption=f"#sea {n}")
        for n in range(3)
    ]
    paths = [
        "/api/v1/timelines/public?limit=20",
        "/api/v1/timelines/tag/sea",
        f"/api/v1/accounts/{alice.pk}/statuses",
        f"/@alice/{clips[0].pk}",
    ]
    postgres = db.startswith("postgres")

    async def check(change: str) -> None:
        for path in paths:
            kept, hits = await _twice(client, path)
            fresh = await _fresh(client, path)
            _same(kept, fresh)
            # (PostgreSQL only: on SQLite every page is made)
            assert hits == (1 if postgres else 0), (change, path)

    await check("nothing yet")
    # Each change, then each page as a visitor gets it with the kept one there.
    for path in paths:
        await client.get(path)
    await interactions.like(bob, clips[0])
    for path in paths:
        r = await client.get(path)
        assert r.content == (await _fresh(client, path)).content, path
    await check("a like")
    await Account.filter(pk=alice.pk).update(display_name="Alice Renamed")
    for path in paths:
        r = await client.get(path)
        assert "Alice Renamed" in r.text, path
    await check("a new name, written as another process would")
    await interactions.comment(bob, clips[0], "first!")
    r = await client.get(f"/@alice/{clips[0].pk}")
    assert "first!" in r.text
    newer = await posts.post_clip(alice, await rendered_video(alice), caption="#sea newest")
    r = await client.get("/api/v1/timelines/public?limit=20")
    assert r.json()[0]["id"] == str(newer.pk)
    await Clip.filter(pk=newer.pk).update(deleted_at=utcnow())
    r = await client.get("/api/v1/timelines/public?limit=20")
    assert str(newer.pk) not in {s["id"] for s in r.json()}
    await check("a clip posted and deleted")


async def test_a_changed_context_makes_the_page_anew(client: httpx.AsyncClient, db: str) -> None:
    """The domain policy and the instance's settings are not in the page's reads: a page
    kept under others is not answered."""
    alice = await local_account("alice")
    clip = await posts.post_clip(alice, await rendered_video(alice), caption="hello")
    path = "/api/v1/timelines/public"
    await _twice(client, path)
    await DomainBlock.create(domain="elsewhere.example", severity="suspend")
    domain_blocks.invalidate()
    hits = replay_cache._counts[0]
    await client.get(path)
    assert replay_cache._counts[0] == hits  # (another policy: made anew)
    page = f"/@alice/{clip.pk}"
    await _twice(client, page)
    settings = client._transport.app.state.settings  # type: ignore[attr-defined]
    await instance_settings.save(settings, audit.CLI, {"instance_name": "Renamed Place"})
    r = await client.get(page)
    assert "Renamed Place" in r.text


async def test_signed_in_callers_always_get_their_own_page(
    client: httpx.AsyncClient, db: str
) -> None:
    alice = await local_account("alice")
    bob = await local_account("bob")
    clip = await posts.post_clip(alice, await rendered_video(alice), caption="hello")
    await interactions.like(bob, clip)
    path = "/api/v1/timelines/public"
    await _twice(client, path)  # (kept for visitors)
    me = await login(client, bob)
    hits = replay_cache._counts[0]
    r = await client.get(path, headers={"Authorization": f"Bearer {me.token}"})
    assert r.json()[0]["favourited"] is True
    assert replay_cache._counts[0] == hits
    visitor = await client.get(path)
    assert "favourited" not in visitor.json()[0]


async def test_what_writes_or_fails_is_not_kept(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.responses import Response
    from tortoise import connections

    replay_cache.install()
    conn = connections.get("default")
    alice = await local_account("alice")
    made = 0

    async def writing() -> Response:
        nonlocal made
        made += 1
        await Account.filter(pk=alice.pk).update(note=f"visit {made}")
        await Account.get(pk=alice.pk)
        return Response(b"page")

    async def failing() -> Response:
        nonlocal made
        made += 1
        await Account.get(pk=alice.pk)
        return Response(b"no", 404)

    async def reading() -> Response:
        nonlocal made
        made += 1
        found = await Account.get(pk=alice.pk)
        return Response(found.username.encode())

    for make in (writing, failing, reading):
        made = 0
        replay_cache.clear()
        for _ in range(3):
            await replay_cache.answer(conn, make.__name__, "context", make)
        kept = db.startswith("postgres") and make is reading
        assert made == (1 if kept else 3), make.__name__

    # Kept at most MAX_AGE seconds.
    made = 0
    replay_cache.clear()
    clock = [1000.0]
    monkeypatch.setattr(replay_cache, "_now", lambda: clock[0])
    await replay_cache.answer(conn, "aging", "context", reading)
    clock[0] += replay_cache.MAX_AGE - 1
    await replay_cache.answer(conn, "aging", "context", reading)
    clock[0] += 2
    await replay_cache.answer(conn, "aging", "context", reading)
    assert made == (2 if db.startswith("postgres") else 3)


async def test_the_kept_pages_are_bounded(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.responses import Response
    from tortoise import connections

    replay_cache.install()
    replay_cache.clear()
    monkeypatch.setattr(replay_cache, "SIZE", 3)
    alice = await local_account("alice")

    async def page() -> Response:
        return Response((await Account.get(pk=alice.pk)).username.encode())

    for n in range(5):
        await replay_cache.answer(connections.get("default"), n, None, page)
    # (on SQLite nothing is kept: every page is made)
    assert list(replay_cache._pages) == ([2, 3, 4] if db.startswith("postgres") else [])
    # And by their bytes (a page's reads counted as much again as its body).
    monkeypatch.setattr(replay_cache, "SIZE", 100)
    monkeypatch.setattr(replay_cache, "BUDGET", 2 * len(b"alice") * 2)
    for n in range(5, 9):
        await replay_cache.answer(connections.get("default"), n, None, page)
    assert list(replay_cache._pages) == ([7, 8] if db.startswith("postgres") else [])


async def _checked(client: httpx.AsyncClient, path: str) -> replay_cache._Page:
    """*path* kept and checked once (its twins established): the page as kept."""
    for _ in range(4):
        await client.get(path)
    page = replay_cache._pages[("web" if path.startswith("/@") else "api", *_split(path))]
    assert page.check is not None
    return page


def _split(path: str) -> tuple[str, str]:
    route, _, query = path.partition("?")
    return route, query


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
async def test_a_checked_page_is_checked_by_its_row_versions_and_never_stale(
    client: httpx.AsyncClient, db: str
) -> None:
    """After its first check, a page's reads made by fastload are checked by their twins
    (row keys and versions) in one statement; every kind of change still shows at once."""
    alice = await local_account("alice")
    bob = await local_account("bob")
    source = await posts.post_clip(alice, await rendered_video(alice), caption="#sea source")
    clips = [
        await posts.post_clip(bob, await rendered_video(bob), caption=f"#sea {n}", remix_of=source)
        for n in range(2)
    ]
    paths = [
        "/api/v1/timelines/public?limit=20",
        "/api/v1/timelines/tag/sea",
        f"/api/v1/accounts/{bob.pk}/statuses",
        f"/@bob/{clips[0].pk}",
    ]
    for path in paths:
        page = await _checked(client, path)
    for path in paths:
        page = replay_cache._pages[("web" if path.startswith("/@") else "api", *_split(path))]
        assert page.check is not None and page.check.statement is not None, path
        # (the clip page's five reads, the account page's three: one round trip)
        unchecked = [page.reads[n][0][:300] for n in page.check.in_full]
        assert not unchecked, (path, unchecked)
        assert page.check.statement.count("UNION ALL") == len(page.reads) - 1, path

    async def shows(change: str) -> None:
        for path in paths:
            hits = replay_cache._counts[0]
            kept = await client.get(path)
            made = replay_cache._counts[0] == hits
            assert made, (change, path)  # (every page reads what changed)
            _same(kept, await _fresh(client, path))  # (and every kept page is dropped)
        for path in paths:
            await _checked(client, path)

    # A row joined to the page (the remixed clip's author), written as another process would.
    await Account.filter(pk=alice.pk).update(display_name="Alice Renamed")
    await shows("the remix source's author renamed")
    # A counter on the page's own rows.
    await interactions.like(alice, clips[0])
    await interactions.like(alice, clips[1])
    await shows("likes")
    # The remixed clip itself (joined to each page row).
    await Clip.filter(pk=source.pk).update(caption="#sea source, edited")
    await shows("the source edited")
    # A row gone and one new: the same number of rows, other keys.
    await Clip.filter(pk=clips[1].pk).update(deleted_at=utcnow())
    clips.append(
        await posts.post_clip(bob, await rendered_video(bob), caption="#sea new", remix_of=source)
    )
    await shows("one clip deleted, one posted")
    # Nothing changed: answered from the twins alone.
    for path in paths:
        hits = replay_cache._counts[0]
        assert (await client.get(path)).status_code == 200
        assert replay_cache._counts[0] == hits + 1, path


def test_twins_are_joined_into_one_statement_with_their_placeholders_moved() -> None:
    combined, values = replay_cache._combined(
        [
            ('SELECT "id" FROM "a" WHERE "id" = ANY($1) AND "x" = $2', (1, 2)),
            ('SELECT "id" FROM "b" WHERE "y" IN ($1,$2) LIMIT $3', (3, 4, 5)),
        ]
    )
    assert values == (1, 2, 3, 4, 5)
    assert '"id" = ANY($1) AND "x" = $2' in combined
    assert '"y" IN ($3,$4) LIMIT $5' in combined
    assert combined.count("UNION ALL") == 1 and combined.startswith("SELECT md5(")
    # A twin with a string literal (where "$1" could be text) or a stray placeholder is not
    # joined: its read is checked in full.
    assert replay_cache._placeable('SELECT 1 FROM "a" WHERE "x" = $1', 1)
    assert not replay_cache._placeable('SELECT 1 FROM "a" WHERE "x" = \'$1\'', 1)
    assert not replay_cache._placeable('SELECT 1 FROM "a" WHERE "x" = $2', 1)


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
async def test_requests_that_come_during_a_check_share_the_next_one(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One check per round trip for a page many ask for at once, and never an answer from
    a check that started before the request came (it could miss a change made just before)."""
    import asyncio

    from starlette.responses import Response
    from tortoise import connections

    replay_cache.install()
    replay_cache.clear()
    conn = connections.get("default")
    alice = await local_account("alice")

    async def page() -> Response:
        return Response((await Account.get(pk=alice.pk)).display_name.encode())

    await replay_cache.answer(conn, "page", None, page)
    await replay_cache.answer(conn, "page", None, page)  # (kept, then checked once)
    checks = 0
    checked, release = asyncio.Event(), asyncio.Event()
    same_rows = replay_cache._same_rows

    async def held(db: Any, kept: Any) -> bool:
        nonlocal checks
        checks += 1
        answer = await same_rows(db, kept)
        checked.set()
        await release.wait()
        return answer

    monkeypatch.setattr(replay_cache, "_same_rows", held)
    first = asyncio.ensure_future(replay_cache.answer(conn, "page", None, page))
    await asyncio.wait_for(checked.wait(), 10)  # (its check has read the rows: unchanged)
    await Account.filter(pk=alice.pk).update(display_name="Alice Renamed")
    later = [asyncio.ensure_future(replay_cache.answer(conn, "page", None, page)) for _ in range(5)]
    await asyncio.sleep(0.05)
    assert checks == 1  # (the later ones wait for the next check, not the running one)
    release.set()
    answers = await asyncio.wait_for(asyncio.gather(first, *later), 10)
    assert answers[0].body == alice.display_name.encode()  # (it came before the change)
    assert {r.body for r in answers[1:]} == {b"Alice Renamed"}
    assert checks == 2  # (one for the five)
    # A request cancelled while it waits does not cancel the check the others share.
    checked.clear()
    release.clear()
    waiting = [
        asyncio.ensure_future(replay_cache.answer(conn, "page", None, page)) for _ in range(3)
    ]
    await asyncio.wait_for(checked.wait(), 10)
    waiting[0].cancel()
    release.set()
    done = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 10)
    assert isinstance(done[0], asyncio.CancelledError)
    assert [r.body for r in done[1:]] == [b"Alice Renamed"] * 2  # type: ignore[union-attr]
