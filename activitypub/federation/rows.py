"""Creating durable work rows from federation code, waking the process's runner if any."""

from __future__ import annotations

from typing import Any

from fedisora.models import WorkRow, utcnow
from fedisora.work.engine import Engine

__all__ = ["create_row", "set_engine"]

_engine: Engine | None = None


def set_engine(engine: Engine | None) -> None:
    global _engine
    _engine = engine


async def create_row(model: type[WorkRow], initial: str, **values: Any) -> Any:
    """Insert a row due now. With an engine whose machines include *model*, wake a runner;
    without (a CLI command, a test), the next sweep of any runner finds it."""
    if _engine is not None:
        try:
            _engine.machine_for(model)
        except KeyError:
            pass
        else:
            return await _engine.create(model, **values)
    now = utcnow()
    return await model.create(
        state=initial, state_changed_at=now, next_attempt_at=now, created_at=now, **values
    )
