"""The instance's C2PA signing root: making it, replacing it, and what admins read of it.

One entry point writes the credentials, :func:`provision`, for ``fedisora init`` (and its
``--new-provenance-root``) and the admin page ``/admin/provenance`` alike; it writes the
files (:func:`render.instance.write_credentials`) and the audit log.

A replacement takes effect for the next clip signed: the render queue reads the key and
chain from ``<data_dir>/provenance`` for every clip (:func:`render.instance.load_credentials`),
so render workers sharing this data directory need no restart. A worker on another machine
with a data directory of its own signs under whatever credentials that directory holds
until they are copied there.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fedisora.config import Settings
from fedisora.services import audit
from render.instance import (
    CredentialsWritten,
    RootInfo,
    current_roots,
    retired_roots,
    root_info,
    write_credentials,
)

__all__ = ["Roots", "provision", "roots"]


async def provision(
    settings: Settings, *, by: audit.Actor, replace: bool = False
) -> CredentialsWritten:
    """Make this instance's signing credentials when there are none, or new ones when
    *replace*; the root replaced stays in the root history (clips signed under it keep
    verifying). A root made or replaced is written to the audit log as done *by*."""
    written = await asyncio.to_thread(write_credentials, settings, replace=replace)
    if written.outcome == "kept":
        return written
    label = ""
    current = current_roots(settings)
    if current:
        label = root_info(current[0]).subject
    detail = (
        f"replaced root {written.previous}; {written.retired} retired root(s) kept"
        if written.outcome == "replaced"
        else "first root"
    )
    await audit.record(
        by,
        "provenance.root_replace" if written.outcome == "replaced" else "provenance.root_create",
        audit.target("provenance_root", written.root, label),
        detail,
    )
    return written


@dataclass(frozen=True)
class Roots:
    """The roots this instance signs under now and signed under before."""

    current: list[RootInfo]
    retired: list[RootInfo]

    def bundle(self) -> str:
        """Every root as one PEM text, the current one(s) first."""
        return "".join(r.pem for r in [*self.current, *self.retired])


def _infos(pems: list[str]) -> list[RootInfo]:
    infos = []
    for pem in pems:
        try:
            infos.append(root_info(pem))
        except ValueError:  # only readable roots are listed by current/retired_roots
            continue
    return infos


def _roots_sync(settings: Settings) -> Roots:
    return Roots(current=_infos(current_roots(settings)), retired=_infos(retired_roots(settings)))


async def roots(settings: Settings) -> Roots:
    """This instance's current and retired roots (read from disk, off the event loop)."""
    return await asyncio.to_thread(_roots_sync, settings)
