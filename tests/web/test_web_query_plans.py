"""No statement the common pages, client API reads, federation documents and deletions run
scans a whole table for want of an index (PostgreSQL's plans).

The pages and endpoints are asked through the real app (the inbox's handlers and an
account's deletion called as their runners call them); every SELECT, UPDATE and DELETE they
send to PostgreSQL is explained first (not run twice) with sequential scans, merge and hash
joins disabled: a plan still showing a sequential scan, or an index scan whose condition
leaves out the index's first column (a walk of the whole index), found no index to serve its
filter. PostgreSQL does not index a foreign key by itself, so each read "by clip", "by
account" needs its own. Allowed, each for its reason: :data:`WHOLE_TABLES`. What timeline
pages' range scans look like is checked in tests/fedisora/test_indexes.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from factories import local_account, rendered_video
from webhelpers import (
    DOMAIN,
    api_token,
    browser,
    create,
    logged_in,
    peer_account,
    receive,
)

from activitypub.objects import PUBLIC, activity
from fedisora.config import Settings
from fedisora.federation.context import Federation
from fedisora.federation.ingest import handle_activity
from fedisora.models import Account, Block, Clip, Mute
from fedisora.services import account_deletion, follows, interactions, posts

WHOLE_TABLES = {
    # Read whole on purpose, each a few rows an admin keeps (and kept by each process).
    "instance settings": re.compile(r'FROM "instance_settings"'),
    "domain policy": re.compile(r'FROM "domain_(blocks|allows)"$'),
    "server rules": re.compile(r'FROM "rules" ORDER BY'),
    "relays": re.compile(r'FROM "relays" WHERE "actor_uri"='),
    # An account's deletion counts the deliveries of its Delete once, for its report (the
    # table holds the last hours' deliveries; an index would cost every delivery written).
    "deleted account's deliveries": re.compile(
        r'^SELECT COUNT\(\*\) FROM "deliveries" WHERE "sender_id"=\$1 AND "activity_id"='
    ),
    # The counts of NodeInfo and /api/v1/instance read everything they count, once every few
    # minutes per process (fedisora.usage).
    "usage counts": re.compile(r'^SELECT COUNT\(\*\) FROM "(users|comments)" WHERE'),
    # Search matches any part of a name or text (LIKE '%...%'), which no B-tree index serves
    # (Mastodon searches by a full-text index).
    "account search": re.compile(r'FROM "accounts" WHERE .*UPPER\(CAST\("username" .*LIKE'),
    "clip search": re.compile(r'FROM "clips" .*UPPER\(CAST\("clips"."caption" .*LIKE'),
    "comment search": re.compile(r'FROM "comments" .*UPPER\(CAST\("comments"."text" .*LIKE'),
    # The instance's contact: its first admin, at the start of the users in id order.
    "contact": re.compile(r'FROM "users" WHERE "is_admin"=\$1 ORDER BY "id" ASC LIMIT'),
}


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The plan's nodes, but what a nested loop keeps whole in memory to join a few rows
    (Materialize: on the test's few rows the planner prefers that to a lookup per row)."""
    yield plan
    if plan["Node Type"] != "Materialize":
        for child in plan.get("Plans", ()):
            yield from _nodes(child)


_leading: dict[str, str] = {}


async def _whole(conn: Any, node: dict[str, Any]) -> bool:
    """Whether a plan node reads its whole table: a sequential scan, or an index scan whose
    condition leaves out the index's first column (it walks the whole index)."""
    kind = node["Node Type"]
    if kind == "Seq Scan":
        return True
    if kind not in ("Index Scan", "Index Only Scan", "Bitmap Index Scan"):
        return False
    name = node["Index Name"]
    if name not in _leading:
        _leading[name] = str(
            await conn.fetchval(
                "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
                " WHERE c.relname = $1",
                name,
            )
        )
    condition = node.get("Index Cond", "")
    return re.search(rf"\b{re.escape(_leading[name])}\b", condition) is None


def _allowed(statement: str) -> bool:
    one_line = " ".join(statement.split())
    return any(pattern.search(one_line) for pattern in WHOLE_TABLES.values())


class Plans:
    """Every statement sent to PostgreSQL, explained before it runs: those reading a whole
    table (:func:`_whole`) but the allowed ones, by statement."""

    def __init__(self) -> None:
        self.scans: dict[str, str] = {}
        self.explained: list[str] = []
        self._busy = False

    async def explain(self, fetch: Callable[..., Any], conn: Any, query: str, args: Any) -> None:
        verb = query.lstrip()[:6].upper()
        if self._busy or verb not in ("SELECT", "DELETE", "UPDATE"):
            return
        self._busy = True
        try:
            async with conn.transaction():
                # (and joins by index lookups: on the test's few rows the planner would
                # rather merge or hash whole tables)
                for setting in ("enable_seqscan", "enable_mergejoin", "enable_hashjoin"):
                    await fetch(conn, f"SET LOCAL {setting} = off")
                rows = await fetch(conn, f"EXPLAIN (FORMAT JSON) {query}", *args)
            found = [
                f"{node['Node Type']} on {node.get('Relation Name') or node.get('Index Name')}"
                f" ({node.get('Index Cond') or node.get('Filter') or 'everything'})"
                for node in _nodes(json.loads(rows[0][0])[0]["Plan"])
                if await _whole(conn, node)
            ]
        finally:
            self._busy = False
        self.explained.append(query)
        if found and not _allowed(query):
            self.scans[" ".join(query.split())] = "; ".join(found)

    def watch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        connection = asyncpg.connection.Connection
        fetch = connection.fetch

        def watching(original: Callable[..., Any]) -> Callable[..., Any]:
            async def run(conn: Any, query: str, *args: Any, **kw: Any) -> Any:
                await self.explain(fetch, conn, query, args)
                return await original(conn, query, *args, **kw)

            return run

        monkeypatch.setattr(connection, "fetch", watching(fetch))
        monkeypatch.setattr(connection, "execute", watching(connection.execute))

    def check(self, at_least: int) -> None:
        assert len(self.explained) >= at_least  # (the statements were seen)
        assert self.scans == {}, "\n\n".join(f"{q}\n  {p}" for q, p in self.scans.items())


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
async def test_no_statement_scans_a_table_for_want_of_an_index(
    db: str, web: httpx.ASGITransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    cy = await local_account("cy")
    clips = [
        await posts.post_clip(bob, await rendered_video(bob), caption=f"tide {n} #cats")
        for n in range(3)
    ]
    for clip in clips:
        await interactions.like(ann, clip)
    await follows.follow(ann, bob)
    await Block.create(account=ann, target=cy)
    await Mute.create(account=cy, target=ann)
    src = await posts.post_clip(bob, await rendered_video(bob), caption="for @ann #dogs")
    remix = await posts.post_clip(
        ann, await rendered_video(ann), caption="after @bob", remix_of=src
    )
    first = await interactions.comment(ann, src, "lovely, @bob")
    reply = await interactions.comment(bob, src, "thanks @ann", parent=first)
    await interactions.like(ann, reply)
    await interactions.boost(ann, src)

    plans = Plans()
    plans.watch(monkeypatch)

    asked: list[tuple[str, int]] = []
    pages = [
        *("/", "/?tab=local", "/?tab=following", "/?tab=federated", "/explore"),
        *("/@bob", "/@bob/followers", "/@bob/following", f"/@bob/{src.pk}", f"/@ann/{remix.pk}"),
        *("/notifications", "/search?q=cats", "/search?q=bob", "/tags/cats", "/settings"),
        *("/drafts", "/create", "/settings/for-you", "/settings/apps"),
        *("/feed/new?tab=foryou&since_id=1", "/feed/new?tab=local&since_id=1"),
    ]
    async with logged_in(web, "ann") as http:
        for path in pages:
            asked.append((path, (await http.get(path)).status_code))
    async with browser(web) as visitor:
        for path in ("/explore", "/explore?tab=federated", "/@bob", f"/@bob/{src.pk}"):
            asked.append((path, (await visitor.get(path)).status_code))
    reads = [
        *("/api/v1/timelines/home", "/api/v1/timelines/public?local=true"),
        *("/api/v1/timelines/public", "/api/fedisora/v1/timelines/for_you"),
        *("/api/v1/notifications", "/api/v2/notifications", "/api/v1/timelines/tag/cats"),
        *(f"/api/v1/accounts/{bob.pk}/statuses", f"/api/v1/accounts/{bob.pk}/followers"),
        *(f"/api/v1/statuses/{src.pk}", f"/api/v1/statuses/{src.pk}/context"),
        *(f"/api/v1/statuses/{first.pk}", f"/api/v1/statuses/{src.pk}/favourited_by"),
        *(f"/api/v1/statuses/{src.pk}/reblogged_by", "/api/v2/search?q=cats"),
        *("/api/v1/accounts/verify_credentials", "/api/v1/favourites", "/api/v1/bookmarks"),
        *("/api/v1/trends/statuses", "/api/v1/blocks", "/api/v1/mutes", "/api/v1/instance"),
        *(f"/api/v1/accounts/relationships?id[]={bob.pk}", "/api/v2/instance"),
    ]
    activity = {"accept": "application/activity+json"}
    async with httpx.AsyncClient(transport=web, base_url=f"https://{DOMAIN}") as api:
        me = await api_token(api, "ann")
        for path in reads:
            asked.append((path, (await api.get(path, headers=me)).status_code))
        for path, headers in (
            (f"/.well-known/webfinger?resource=acct:bob@{DOMAIN}", {}),
            ("/users/bob", activity),
            ("/users/bob/outbox?page=true", activity),
            ("/users/bob/followers", activity),
            (f"/users/bob/clips/{src.pk}", activity),
            ("/nodeinfo/2.1", {}),
        ):
            asked.append((path, (await api.get(path, headers=headers)).status_code))
        for method, path in (
            ("POST", f"/api/v1/statuses/{reply.pk}/unfavourite"),
            ("POST", f"/api/v1/statuses/{src.pk}/unreblog"),
            ("DELETE", f"/api/v1/statuses/{first.pk}"),
            ("DELETE", f"/api/v1/statuses/{remix.pk}"),
        ):
            response = await api.request(method, path, headers=me)
            asked.append((f"{method} {path}", response.status_code))
    assert [a for a in asked if a[1] != 200] == []
    plans.check(at_least=300)


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
async def test_no_statement_of_the_inbox_scans_a_table_for_want_of_an_index(
    db: str, fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a federating instance receives most: clips, likes, boosts, follows, their undoing,
    edits and deletions, and an account's deletion, through the inbox's handlers."""
    ann = await local_account("ann")
    bob = await local_account("bob")
    local = await posts.post_clip(ann, await rendered_video(ann), caption="a tide pool #sea")
    pam = await peer_account("pam")
    far = await peer_account("far")
    await follows.follow(bob, pam)
    plans = Plans()
    plans.watch(monkeypatch)

    note = create(pam, 1, mentions=[ann], hashtags=["sea"])
    await receive(fed, note)
    await receive(fed, create(far, 2))
    like = activity("Like", f"{pam.uri}#likes/1", pam.uri, local.uri, context=False)
    boost = activity("Announce", f"{pam.uri}#boosts/1", pam.uri, local.uri, to=[PUBLIC])
    follow = activity("Follow", f"{pam.uri}#follows/1", pam.uri, ann.uri)
    for sent in (like, boost, follow):
        await handle_activity(fed, sent)
    for sent in (like, boost, follow):
        undo = activity("Undo", f"{sent['id']}/undo", pam.uri, sent, context=False)
        await handle_activity(fed, undo)
    edited = {**note["object"], "content": "<p>a lighthouse, edited</p>"}
    edited["updated"] = "2026-01-02T00:00:00Z"
    await handle_activity(fed, activity("Update", f"{pam.uri}#updates/1", pam.uri, edited))
    tombstone = {"id": note["object"]["id"], "type": "Tombstone"}
    await handle_activity(fed, activity("Delete", f"{pam.uri}#deletes/1", pam.uri, tombstone))
    await handle_activity(fed, activity("Delete", f"{far.uri}#delete", far.uri, far.uri))
    assert not await Clip.filter(uri=note["object"]["id"], deleted_at=None).exists()
    assert (await Account.get(pk=far.pk)).origin_deleted_at is not None
    plans.check(at_least=100)


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
async def test_no_statement_of_an_account_deletion_scans_a_table_for_want_of_an_index(
    db: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    mine = await posts.post_clip(ann, await rendered_video(ann), caption="for @bob #sea")
    theirs = await posts.post_clip(bob, await rendered_video(bob), caption="hello @ann")
    said = await interactions.comment(ann, theirs, "lovely, @bob")
    await interactions.comment(bob, mine, "thanks @ann", parent=None)
    await interactions.like(ann, theirs)
    await interactions.like(bob, mine)
    await interactions.boost(ann, theirs)
    await interactions.like(bob, said)
    await follows.follow(ann, bob)
    await follows.follow(bob, ann)
    await Mute.create(account=bob, target=ann)
    plans = Plans()
    plans.watch(monkeypatch)
    done = await account_deletion.delete_local_account(ann, settings=settings)
    assert (done.clips, done.comments, done.likes, done.boosts) == (1, 1, 1, 1)
    plans.check(at_least=50)
