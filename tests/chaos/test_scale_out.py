"""Scale-out, shown (issue 20, point 2): one instance served by two web processes and two
workers (``default`` and ``render``) on one PostgreSQL, one Redis and one S3 bucket of media.

The chaos rig (:mod:`rig`) deploys it as in production, on loopback, with ``web2`` beside
``web`` (the same domain, another port: what a load balancer in front sees). A mixed load
(:mod:`load`: posts, comments, likes, follows, renders and their publication, and signed
activities from the loopback peer to the inbox) goes through both web processes in turn while
a public stream is open on each. Then, with no fault injected:

* every item of work was done exactly once: every durable row settled, none failed, the
  invariants of :mod:`invariants` (each acknowledged write present, no effect twice, one
  media file per render, no activity delivered to the peer twice, nothing committed missing
  at the peer) hold with no excused window, and no delivery row or notification exists twice;
* every clip posted through either web process reached the stream on both;
* a render asked for on one web process and made by the render worker is seen, its video
  served, and published and shown, through the other;
* one request id links a request and its work across processes: a render job keeps its
  request's ``X-Request-Id``, and every delivery the default worker made carries the id of
  the request it came from (an API call, an inbox POST).

Media: every process keeps it in one S3 bucket (:func:`media_settings`; moto's server on
loopback in the suite, MinIO or another S3-compatible store in production).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from invariants import check, connect, settle, work_tables
from load import RENDERS, Load
from rig import ChaosRig, Template, chaos_rig
from scenario import SEED, Scenario

pytestmark = [pytest.mark.slow]

LOAD_SECONDS = 20.0
RENDER_WAIT = 150.0  # two renders and the pipeline's first load, on a busy CPU
STREAM = "/api/v1/streaming/public"


def media_settings(s3: Any) -> dict[str, str]:
    """The media settings of every process of the rig: object storage, a bucket of its own
    on the suite's S3 server (moto's, on loopback: tests/support/s3server.py), as an
    instance on several hosts keeps its media. Render scratch work stays on the render
    worker's disk; the invariants read the stored files through the rig
    (``ChaosRig.media_keys``, ``has_media``), whatever the backend."""
    return dict(s3.env(s3.bucket()))


@pytest.fixture
def scaled(tmp_path: Path, template: Template, s3: Any) -> Iterator[ChaosRig]:
    with chaos_rig(tmp_path, template, webs=2, env=media_settings(s3)) as built:
        yield built


class Stream:
    """A public server-sent event stream open on one web process: the ids of the clips
    (``update`` events) it received."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.clips: set[str] = set()
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None)) as http,
            http.stream("GET", f"{self.url}{STREAM}") as r,
        ):
            assert r.status_code == 200, await r.aread()
            event = ""
            async for line in r.aiter_lines():
                if line.startswith(":"):
                    self.ready.set()  # the stream's opening comment: subscribed
                elif line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "update":
                    self.clips.add(str(json.loads(line.removeprefix("data: "))["id"]))

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[Stream]:
        self._task = asyncio.create_task(self._read())
        try:
            ready = asyncio.create_task(self.ready.wait())
            await asyncio.wait({ready, self._task}, timeout=30, return_when="FIRST_COMPLETED")
            if self._task.done():
                self._task.result()  # it ended: say why
            assert self.ready.is_set(), f"the stream on {self.url} did not open"
            yield self
        finally:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def _until(condition: Any, seconds: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await condition():
            return True
        await asyncio.sleep(every)
    return bool(await condition())


async def _ask_render(rig: ChaosRig, scenario: Scenario, web: str) -> str:
    """A render asked for through web process *web*; its job id."""
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.post(
            f"{rig.url_of(web)}{RENDERS}",
            headers={**rig.users[1].headers(), "X-Request-Id": f"scale-out-render-{web}"},
            json={"prompt": f"scale-out render on {web}", "seconds": 0.5},
        )
    assert r.status_code == 202, r.text
    assert r.headers["x-request-id"] == f"scale-out-render-{web}"
    job = str(r.json()["id"])
    scenario.ledger.renders.add(job)
    return job


async def _render_seen_across(
    rig: ChaosRig, scenario: Scenario, job: str, asked_on: str, seen_on: str
) -> None:
    """Render *job*, asked for on *asked_on* and made by the render worker, seen through
    *seen_on*: its state, its video's bytes (those the worker wrote); published there, its
    clip in the API and on its web page through *asked_on*."""
    user = rig.users[1]
    asked, seen = rig.url_of(asked_on), rig.url_of(seen_on)
    async with httpx.AsyncClient(timeout=15) as http:
        state = ""

        async def ready() -> bool:
            nonlocal state
            got = await http.get(f"{seen}{RENDERS}/{job}", headers=user.headers())
            state = got.json().get("state", got.text) if got.status_code == 200 else got.text
            return state == "ready"

        # Asked every 2 s: a render on a busy CPU takes minutes, and a client polling faster
        # runs into the account's API rate limit (300 requests in 5 minutes, as Mastodon's).
        assert await _until(ready, RENDER_WAIT, every=2.0), (
            f"render {job} {state}, seen on {seen_on}\n{rig.logs()}"
        )
        body = (await http.get(f"{seen}{RENDERS}/{job}", headers=user.headers())).json()
        media = body["media_attachment"]
        path = httpx.URL(media["url"]).path  # the instance's URL; fetched from *seen_on*
        video = await http.get(f"{seen}{path}")
        assert video.status_code == 200, (path, video.status_code)
        conn = await connect(rig)
        try:
            file = await conn.fetchval(
                "SELECT file FROM media_files WHERE id = $1", int(media["id"])
            )
        finally:
            await conn.close()
        assert video.content == rig.media_bytes(file)  # the object in the bucket

        key = f"scale-out publish {job}"
        r = await http.post(
            f"{seen}/api/v1/statuses",
            headers={**user.headers(), "Idempotency-Key": key},
            data={"status": f"chaos post [{key}]", "media_ids[]": media["id"]},
        )
        assert r.status_code == 200, r.text
        status = r.json()
        scenario.ledger.posts[key] = status["id"]
        scenario.ledger.published[job] = status["id"]
        shown = await http.get(f"{asked}/api/v1/statuses/{status['id']}")
        assert shown.status_code == 200, shown.text
        assert shown.json()["media_attachments"][0]["id"] == media["id"]
        page = await http.get(f"{asked}{httpx.URL(status['url']).path}")
        assert page.status_code == 200 and path in page.text, (status["url"], page.status_code)


DUPLICATES = {
    "delivery rows for one activity and inbox": """
        SELECT activity_id, inbox_url, count(*) FROM deliveries
        GROUP BY activity_id, inbox_url HAVING count(*) > 1""",
    "notifications made twice": """
        SELECT recipient_id, type, from_account_id, clip_id, comment_id, render_job_id, count(*)
        FROM notifications
        GROUP BY recipient_id, type, from_account_id, clip_id, comment_id, render_job_id
        HAVING count(*) > 1""",
    "outbox events made twice for one change": """
        SELECT kind, actor_id, data::text, count(*) FROM outbox_events
        GROUP BY kind, actor_id, data::text HAVING count(*) > 1""",
}


async def test_two_web_processes_and_two_workers_share_the_work(scaled: ChaosRig) -> None:
    rig = scaled
    started = time.monotonic()
    scenario = Scenario(rig, f"{SEED}:scale-out")
    await scenario.warm_up(render=False)  # the peer's follows and clips
    webs = rig.webs
    assert webs == ["web", "web2"]
    # A render asked for on each web process: the render worker makes them under the load,
    # and each is then seen through the other web process.
    jobs = {web: await _ask_render(rig, scenario, web) for web in webs}
    for job in jobs.values():  # the test publishes these itself: the load leaves them
        scenario.ledger.published[job] = ""

    async with Stream(rig.url_of("web")).open() as one, Stream(rig.url_of("web2")).open() as two:
        load = Load(rig, scenario.ledger, scenario.seed, renders=1, webs=webs)
        async with load:
            await asyncio.sleep(LOAD_SECONDS)
        await _render_seen_across(rig, scenario, jobs["web"], "web", "web2")
        await _render_seen_across(rig, scenario, jobs["web2"], "web2", "web")
        assert all(load.served[w] > 30 for w in webs), load.served
        await settle(rig)

        posted = set(scenario.ledger.posts.values())
        assert len(posted) > 10, scenario.ledger.outcomes

        async def streamed() -> bool:
            return posted <= one.clips and posted <= two.clips

        assert await _until(streamed, 20), (
            f"clips posted but not streamed: on web {sorted(posted - one.clips)}, "
            f"on web2 {sorted(posted - two.clips)}"
        )

    report = await check(rig, scenario.ledger)  # no fault: no excused redelivery
    assert not report.violations, "\n  ".join(report.violations) + "\n" + rig.logs()
    assert scenario.ledger.server_errors() == 0, scenario.ledger.outcomes

    conn = await connect(rig)
    try:
        for what, sql in DUPLICATES.items():
            rows = await conn.fetch(sql)
            assert not rows, f"{what}: {[tuple(r) for r in rows[:8]]}"
        failed = {
            table: n
            for table, _ in work_tables()
            if (
                n := await conn.fetchval(
                    f'SELECT count(*) FROM "{table}" WHERE state = $1', "failed"
                )
            )
        }
        assert not failed, f"work rows that failed: {failed}\n{rig.logs()}"
        done = await conn.fetchval("SELECT count(*) FROM outbox_events WHERE state = 'done'")
        delivered = await conn.fetchval("SELECT count(*) FROM deliveries WHERE state = 'delivered'")
        renders = await conn.fetchval(
            "SELECT count(*) FROM render_jobs WHERE output_id IS NOT NULL"
        )
        # One request id links a request and the work it caused, across processes: the
        # render jobs keep the id they were asked for under, and every delivery (made by the
        # default worker from an event of a request, of an inbox item or of a render) carries
        # the id of the request at its origin.
        asked = dict(
            await conn.fetch(
                "SELECT request_id, id::text FROM render_jobs WHERE id = ANY($1::bigint[])",
                [int(j) for j in jobs.values()],
            )
        )
        assert asked == {f"scale-out-render-{w}": j for w, j in jobs.items()}, asked
        unlinked = await conn.fetch(
            "SELECT id, activity_id FROM deliveries WHERE request_id IS NULL LIMIT 8"
        )
        assert not unlinked, f"deliveries without a request id: {[tuple(r) for r in unlinked]}"
    finally:
        await conn.close()
    assert done > 0 and delivered > 0 and renders >= 3
    print(
        f"scale-out: {dict(load.served)} requests per web process, "
        f"{len(scenario.ledger.inbound)} inbound activities, {len(posted)} posts streamed to "
        f"both, {done} outbox events, {delivered} deliveries, {renders} renders; "
        f"{report.counts['activities the peer received']} activities at the peer, none twice; "
        f"{time.monotonic() - started:.0f} s"
    )
