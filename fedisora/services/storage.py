"""The space each class of stored data takes, for the admin overview.

Cheap by construction: per durable-work table one grouped count (the same the overview made
before: rows per state, plus inbox payload bytes from the ``size`` column, never reading a
payload), the rows retention deleted from :class:`~fedisora.models.WorkTally`, and the
table's size on disk from the database's own accounting (PostgreSQL:
``pg_total_relation_size``, with its indexes and TOAST, a catalog lookup; SQLite: the
``dbstat`` table of that table's pages, where SQLite has it). Media: one grouped sum of the
recorded file sizes per class (held by a clip, held by nothing, being removed), over the rows
with a file here (a remote clip's video is not stored here).
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

from tortoise import Tortoise
from tortoise.expressions import Q
from tortoise.functions import Count, Sum

from fedisora.models import InboxItem, MediaFile, MediaKind, WorkRow
from fedisora.services.retention import tallies

__all__ = [
    "DiskUse",
    "MediaSpace",
    "StateCount",
    "WorkSpace",
    "media_disk",
    "media_space",
    "work_models",
    "work_space",
]


@dataclass(frozen=True)
class StateCount:
    state: str
    rows: int  # rows in the table now
    deleted: int  # rows retention deleted (tallied)
    payload_bytes: int | None  # payload held (inbox items), None where not recorded

    @property
    def total(self) -> int:
        return self.rows + self.deleted


@dataclass(frozen=True)
class WorkSpace:
    table: str
    states: list[StateCount]
    disk_bytes: int | None  # the table with its indexes; None where the database cannot say

    @property
    def label(self) -> str:
        return self.table.replace("_", " ")

    @property
    def payload_bytes(self) -> int | None:
        held = [s.payload_bytes for s in self.states if s.payload_bytes is not None]
        return sum(held) if held else None


@dataclass(frozen=True)
class MediaSpace:
    kind: str
    attached: tuple[int, int]  # (files, bytes) a clip holds
    unattached: tuple[int, int]  # nothing holds them: collected once old enough (drafts kept)
    removing: tuple[int, int]  # marked by the collection, being removed


def work_models() -> list[type[WorkRow]]:
    """Every durable-work table of the app, including ones added later."""
    models = Tortoise.apps["fedisora"].values()
    return sorted(
        (m for m in models if issubclass(m, WorkRow)), key=lambda m: str(m._meta.db_table)
    )


async def work_space() -> list[WorkSpace]:
    found: list[WorkSpace] = []
    for model in work_models():
        table = str(model._meta.db_table)
        if model is InboxItem:
            grouped = (
                await model.annotate(n=Count("id"), b=Sum("size"))
                .group_by("state")
                .values("state", "n", "b")
            )
        else:
            grouped = await model.annotate(n=Count("id")).group_by("state").values("state", "n")
        live = {r["state"]: (int(r["n"]), r.get("b")) for r in grouped}
        deleted: dict[str, int] = {}
        for (state, _group), n in (await tallies(table)).items():
            deleted[state] = deleted.get(state, 0) + n
        states = [
            StateCount(
                state,
                live.get(state, (0, None))[0],
                deleted.get(state, 0),
                _bytes(live.get(state, (0, None))[1], model is InboxItem),
            )
            for state in sorted(set(live) | set(deleted))
        ]
        found.append(WorkSpace(table, states, await _disk_bytes(model)))
    return found


def _bytes(value: object, recorded: bool) -> int | None:
    if not recorded:
        return None
    return int(value) if isinstance(value, int | float) else 0


async def _disk_bytes(model: type[WorkRow]) -> int | None:
    db = model._meta.db
    table = str(model._meta.db_table)
    try:
        if db.capabilities.dialect == "postgres":
            rows = await db.execute_query_dict(
                "SELECT pg_total_relation_size(to_regclass($1)) AS size", [f'"{table}"']
            )
        else:
            rows = await db.execute_query_dict(
                "SELECT SUM(pgsize) AS size FROM dbstat WHERE aggregate = TRUE AND name IN "
                "(SELECT name FROM sqlite_master WHERE tbl_name = ?)",
                [table],
            )
    except Exception:  # an SQLite built without dbstat
        return None
    size = rows[0]["size"] if rows else None
    return int(size) if size is not None else None


async def media_space() -> list[MediaSpace]:
    classes = {
        "attached": Q(attached_at__not_isnull=True),
        "unattached": Q(attached_at=None, doomed_at=None),
        "removing": Q(doomed_at__not_isnull=True),
    }
    sums: dict[str, dict[str, tuple[int, int]]] = {}
    for name, where in classes.items():
        rows = (
            await MediaFile.filter(where, file__not_isnull=True)
            .annotate(n=Count("id"), b=Sum("size"))
            .group_by("kind")
            .values("kind", "n", "b")
        )
        for r in rows:
            sums.setdefault(str(r["kind"]), {})[name] = (int(r["n"]), int(r["b"] or 0))
    return [
        MediaSpace(
            kind.value,
            sums.get(kind.value, {}).get("attached", (0, 0)),
            sums.get(kind.value, {}).get("unattached", (0, 0)),
            sums.get(kind.value, {}).get("removing", (0, 0)),
        )
        for kind in MediaKind
    ]


@dataclass(frozen=True)
class DiskUse:
    """The file system holding the media directory (every file on it, not only media)."""

    total: int
    used: int
    free: int

    @property
    def percent_used(self) -> float:
        return 100.0 * self.used / self.total if self.total else 0.0


async def media_disk(media_root: Path) -> DiskUse | None:
    """Size, use and free space of the file system under *media_root* (None when it cannot
    be read, as when the directory does not exist yet)."""
    try:
        usage = await asyncio.to_thread(shutil.disk_usage, media_root)
    except OSError:
        return None
    return DiskUse(usage.total, usage.used, usage.free)
