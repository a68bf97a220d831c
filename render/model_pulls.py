"""Pulls an admin asks for on ``/admin/models``: durable work rows (``ModelPull``) a render
worker runs, never the request that asked.

A pull runs :func:`render.models.pull` in a thread on the ``render`` queue (the workers that
hold the models directory and the GPU), keeping its lease while it downloads, and writes its
phase and bytes to the row about once a second for the page to show. A download that fails
on the way (the network, the hub) is tried again, resuming what was fetched; a refused pull
(a corrupted file, the wrong family, no disk space) fails at once with the reason, nothing
installed. With ``use_after`` the model is put in use once pulled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from fedisora.config import Settings
from fedisora.errors import Conflict
from fedisora.models import Account, ModelPull, utcnow
from fedisora.work import Machine, Retry, WorkContext
from fedisora.work.engine import Outcome
from fedisora.work.graph import State, StateGraph
from render import models
from render.catalogue import CATALOGUE

__all__ = ["PULL_GRAPH", "machines", "recent", "request_pull"]

log = logging.getLogger("fedisora.render.models")

RETRY = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30))
PULL_GRAPH = StateGraph(
    "model_pulls",
    [
        State("pending", to=("pulled", "failed"), retry=RETRY, max_attempts=len(RETRY) + 1),
        State("pulled", terminal=True),
        State("failed", terminal=True),
    ],
    initial="pending",
    failed="failed",
)
WRITE_EVERY = 1.0
"""Seconds between progress writes to the row."""


async def request_pull(
    settings: Settings, name: str, by: Account, *, use_after: bool = False, source: str = ""
) -> ModelPull:
    """Queue a pull of catalogue model *name* (audited); :class:`Conflict` while one of the
    same model is under way, :class:`render.models.ModelError` for a name not in the
    catalogue."""
    from fedisora.federation.rows import wake_row
    from fedisora.services import audit

    if name not in CATALOGUE:
        raise models.ModelError(f"{name!r} is not in the catalogue (known: {', '.join(CATALOGUE)})")
    if await ModelPull.filter(name=name, state="pending").exists():
        raise Conflict(f"{name} is being pulled already")
    now = utcnow()
    row = await ModelPull.create(
        name=name,
        source=source,
        use_after=use_after,
        requested_by_id=by.pk,
        state=PULL_GRAPH.initial,
        state_changed_at=now,
        next_attempt_at=now,
        created_at=now,
    )
    then = ", then put in use" if use_after else ""
    await audit.record(by, "render.model_pull", audit.target("model", name), f"queued{then}")
    try:
        await wake_row(ModelPull, row)
    except Exception:  # the next sweep starts it
        log.warning("waking a runner for model pull %s failed", row.pk, exc_info=True)
    return row


async def recent(limit: int = 20) -> list[ModelPull]:
    """The latest pulls, newest first (the admin page)."""
    return await ModelPull.all().order_by("-id").limit(limit)


async def _pull(row: ModelPull, ctx: WorkContext) -> Outcome:
    settings: Settings = ctx.engine.context["settings"]
    loop = asyncio.get_running_loop()
    last = 0.0

    async def _write(phase: str, done: int, total: int) -> None:
        await ModelPull.filter(pk=row.pk, lock_token=ctx.token).update(
            phase=phase, done_bytes=done, total_bytes=total
        )

    def progress(state: models.PullProgress) -> None:
        """In the pull's thread: the phase and bytes to the row, about once a second."""
        nonlocal last
        now = time.monotonic()
        if now - last < WRITE_EVERY and state.phase not in ("done", "installing"):
            return
        last = now
        asyncio.run_coroutine_threadsafe(_write(state.phase, state.done, state.total), loop).result(
            60
        )

    source = Path(row.source) if row.source else None
    try:
        async with ctx.keep_lease():
            done = await asyncio.to_thread(
                models.pull, settings, row.name, source=source, progress=progress
            )
    except models.DownloadFailed as exc:  # the network or the hub: resumed next time
        return Retry(str(exc))
    except models.ModelError as exc:  # refused: nothing installed, nothing to retry
        await ctx.move("failed", last_error=str(exc)[:10000], finished_at=utcnow())
        return "failed"
    if row.use_after:
        from fedisora.services import audit

        by: Any = await Account.get_or_none(pk=row.requested_by_id) or audit.CLI
        try:
            await models.use(settings, done.name, by)
        except models.ModelError as exc:  # pulled, but this version cannot render it
            await ctx.move(
                "pulled",
                phase="done",
                last_error=f"pulled, not put in use: {exc}"[:10000],
                finished_at=utcnow(),
            )
            return "pulled"
    await ctx.move("pulled", phase="done", finished_at=utcnow())
    return "pulled"


def machines(settings: Settings) -> list[Machine]:
    return [
        Machine(
            model=ModelPull,
            graph=PULL_GRAPH,
            handlers={"pending": _pull},
            queue="render",
            light=False,
        )
    ]
