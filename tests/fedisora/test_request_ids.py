"""One request id links a request and the work it caused (issue 20, point 4).

A request's ``X-Request-Id`` is stored on each durable work row it creates (render jobs,
outbox events, deliveries, ...: ``request_id``), carried on to the rows a worker's step of
such a row creates, and named by the worker's log lines while it runs that step."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import local_account, remote_account, rendered_video

from fedisora import urls
from fedisora.api.oauth import issue_token
from fedisora.app import create_app
from fedisora.config import load_settings
from fedisora.federation import install, uninstall
from fedisora.logs import JsonFormatter, RequestIdFilter
from fedisora.models import Delivery, OAuthApplication, OutboxEvent, RenderJob
from fedisora.services import events, follows
from fedisora.services.outbox import build_machine
from fedisora.work import Engine


@pytest.fixture
async def client(db: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": str(tmp_path),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_DATABASE_URL": db,
        }
    )
    urls.configure(settings)
    app = create_app(settings, run_work=False, manage_db=False)
    install(None)
    events.clear_runner()  # committed events wait for a runner: the test runs them below
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1234))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="https://fedisora.test") as c:
            yield c
    finally:
        await uninstall()


@pytest.fixture
def work_log() -> Iterator[list[dict[str, Any]]]:
    """The ``fedisora.work`` logger's records as the JSON log format writes them."""
    lines: list[dict[str, Any]] = []
    formatter = JsonFormatter()

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(formatter.format(record)))

    handler = Keep(logging.INFO)
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("fedisora.work")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_a_request_id_reaches_the_work_it_caused_and_the_workers_log(
    client: httpx.AsyncClient, work_log: list[dict[str, Any]]
) -> None:
    ann = await local_account("ann")
    rita = await remote_account("rita")
    await follows.follow(rita, ann, uri=f"{rita.uri}#follows/1")
    engine = Engine([build_machine()])
    before = await OutboxEvent.all().order_by("id")
    assert before and all(e.request_id is None for e in before)  # no request made them
    for event in before:  # one actor's events run in order: these first
        await engine.advance("outbox_events", event.pk)
    await Delivery.all().delete()
    work_log.clear()

    oauth = await OAuthApplication.create(
        name="t",
        redirect_uris="urn:ietf:wg:oauth:2.0:oob",
        scopes="read write",
        client_id="req-ids",
        client_secret="req-ids-secret",
    )
    token = (await issue_token(oauth, ann, ["read", "write"])).token
    auth = {"Authorization": f"Bearer {token}"}

    r = await client.post(
        "/api/fedisora/v1/renders",
        headers={**auth, "X-Request-Id": "req-render-1"},
        json={"prompt": "a lighthouse at dusk", "seconds": 0.5},
    )
    assert r.status_code == 202, r.text
    assert r.headers["x-request-id"] == "req-render-1"
    job = await RenderJob.get(pk=int(r.json()["id"]))
    assert job.request_id == "req-render-1"

    video = await rendered_video(ann)
    r = await client.post(
        "/api/v1/statuses",
        headers={**auth, "X-Request-Id": "req-post-1"},
        data={"status": "hello", "media_ids[]": str(video.pk)},
    )
    assert r.status_code == 200, r.text
    caused = await OutboxEvent.exclude(pk__in=[e.pk for e in before]).order_by("id")
    assert caused and {e.request_id for e in caused} == {"req-post-1"}

    # A worker runs the events: the deliveries they make carry the id on, and its log
    # lines for those steps name it.
    for event in caused:
        await engine.advance("outbox_events", event.pk)
    deliveries = await Delivery.filter(host="remote.example")
    assert deliveries and {d.request_id for d in deliveries} == {"req-post-1"}
    running = [line for line in work_log if "running" in line["message"]]
    assert running and {line.get("request_id") for line in running} == {"req-post-1"}
    assert {f"outbox_events:{e.pk}: running pending" for e in caused} <= {
        line["message"] for line in running
    }

    # Work nothing asked for carries no id, and no id leaks out of a step.
    later = await Delivery.create(
        sender=ann,
        inbox_url="https://remote.example/inbox",
        host="remote.example",
        activity_id="https://fedisora.test/x",
        payload={},
        state="pending",
    )
    assert later.request_id is None
