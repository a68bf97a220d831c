"""Running housekeeping chores in tests, with time passed in through the engine's clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from fedisora.config import Settings
from fedisora.models import Chore, utcnow
from fedisora.work import Engine
from fedisora.work.machines import build_machines


class Clock:
    """The engine's clock: real time plus however much time the test let pass."""

    def __init__(self) -> None:
        self.passed = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.passed


def engine_for(settings: Settings, clock: Callable[[], datetime]) -> Engine:
    """An engine of every machine the instance runs, on *clock*."""
    return Engine(build_machines(settings), clock=clock, context={"settings": settings})


async def run_chore(engine: Engine, name: str) -> Chore:
    """One run of chore *name*, due now by the engine's clock; the row afterwards."""
    row = await Chore.get(name=name)
    await Chore.filter(pk=row.pk).update(next_attempt_at=engine.clock())
    assert await engine.advance("chores", row.pk) == "retry"
    return await Chore.get(pk=row.pk)
