"""Creating durable work rows from federation code, waking the process's runner if any."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from fedisora.models import WorkRow, utcnow
from fedisora.work.engine import Engine
from fedisora.work.group_commit import GroupInsert

__all__ = ["create_row", "insert_grouped", "set_engine", "wake_row"]

_engine: Engine | None = None
_groups: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[type[WorkRow], GroupInsert[Any]]
] = weakref.WeakKeyDictionary()


def set_engine(engine: Engine | None) -> None:
    global _engine
    _engine = engine


def _machine_engine(model: type[WorkRow]) -> Engine | None:
    if _engine is None:
        return None
    try:
        _engine.machine_for(model)
    except KeyError:
        return None
    return _engine


async def create_row(model: type[WorkRow], initial: str, **values: Any) -> Any:
    """Insert a row due now. With an engine whose machines include *model*, wake a runner;
    without (a CLI command, a test), the next sweep of any runner finds it."""
    engine = _machine_engine(model)
    if engine is not None:
        return await engine.create(model, **values)
    now = utcnow()
    return await model.create(
        state=initial, state_changed_at=now, next_attempt_at=now, created_at=now, **values
    )


async def wake_row(model: type[WorkRow], row: Any) -> None:
    """Wake a runner for *row*, which the caller inserted in a transaction now committed
    (a wake-up before the commit could find nothing); none without an engine."""
    engine = _machine_engine(model)
    if engine is not None:
        await engine.wake(engine.machine_for(model), row)


async def _wake(model: type[WorkRow]) -> None:
    engine = _machine_engine(model)
    if engine is not None:
        await engine.wake_soon(engine.machine_for(model))


_last: tuple[weakref.ref[asyncio.AbstractEventLoop], dict[type[WorkRow], GroupInsert[Any]]] | None
_last = None


def _loop_groups() -> dict[type[WorkRow], GroupInsert[Any]]:
    """This event loop's groups. (The last loop's are kept at hand: a weak dictionary
    lookup makes a weak reference each time, which cost more than the rest of a call.)"""
    global _last
    loop = asyncio.get_running_loop()
    if _last is not None and _last[0]() is loop:
        return _last[1]
    groups = _groups.setdefault(loop, {})
    _last = (weakref.ref(loop), groups)
    return groups


async def insert_grouped(model: type[WorkRow], initial: str, unique: str, **values: Any) -> None:
    """Insert a row due now, committed together with concurrent callers' rows (see
    :mod:`fedisora.work.group_commit`); a row whose *unique* value exists is skipped."""
    groups = _loop_groups()
    group = groups.get(model)
    if group is None:
        group = groups[model] = GroupInsert(
            model, initial, unique=unique, wake=lambda: _wake(model)
        )
    await group.insert(**values)
