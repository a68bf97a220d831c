"""The shape every chaos test shares: warm up, then rounds of load + one fault + checks."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from invariants import check, connect, settle
from load import RENDERS, Inbound, Ledger, Load, submit_render
from rig import ChaosRig

Inject = Callable[[], Awaitable[None]]

SCALE = int(os.environ.get("FEDISORA_TEST_CHAOS_SCALE", "1") or "1")
SEED = os.environ.get("FEDISORA_TEST_CHAOS_SEED", "fedisora") or "fedisora"


@dataclass
class Tally:
    """Faults injected and survived (every invariant held after them), by kind."""

    injected: Counter[str] = field(default_factory=Counter)
    survived: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        kinds = ", ".join(
            f"{kind} {self.survived[kind]}/{n}" for kind, n in sorted(self.injected.items())
        )
        total, ok = sum(self.injected.values()), sum(self.survived.values())
        return (
            f"chaos: {total} faults injected, {ok} survived (seed {SEED!r}, scale {SCALE}): {kinds}"
        )


@dataclass
class Scenario:
    """One test's rig, ledger and excused windows (see :mod:`invariants`)."""

    rig: ChaosRig
    seed: str
    ledger: Ledger = field(default_factory=Ledger)
    excused: list[tuple[float, float]] = field(default_factory=list)
    rounds: int = 0
    warm_up_seconds: float = 0.0

    async def warm_up(self, *, render: bool = True) -> None:
        """Before any fault: each peer actor follows each local user (so every local post
        and comment federates to the peer), the peer posts two clips, and (*render*) one
        render runs (the render worker loads its pipeline) and is published; all of it
        settled."""
        rig, peer, ledger = self.rig, self.rig.peer, self.ledger
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=15) as http:
            for actor in (peer.actors[name] for name in peer.names):
                for user in rig.users:
                    follow = peer.follow(actor, user.uri)
                    assert await peer.send(http, rig.url, actor, follow) == 202
                    ledger.inbound[follow["id"]] = Inbound("Follow", user.uri)
                for n in range(2):
                    clip = peer.clip(actor, f"{actor.name} warm-up clip {n}")
                    assert await peer.send(http, rig.url, actor, clip) == 202
                    ledger.inbound[clip["id"]] = Inbound("Create", clip["object"]["id"])
        if render:
            await self._warm_up_render()
        await settle(rig, bound=60)
        self.warm_up_seconds = time.monotonic() - started
        conn = await connect(rig)
        try:
            ledger.clips = [
                (str(r["id"]), r["uri"]) for r in await conn.fetch("SELECT id, uri FROM clips")
            ]
            ledger.accounts = [
                str(r["id"])
                for r in await conn.fetch(
                    "SELECT id FROM accounts WHERE domain = $1 OR id = ANY($2::bigint[])",
                    peer.domain,
                    [int(u.id) for u in rig.users],
                )
            ]
        finally:
            await conn.close()

    async def _warm_up_render(self) -> None:
        rig, ledger = self.rig, self.ledger
        async with httpx.AsyncClient(timeout=15) as http:
            user = rig.users[0]
            job = await submit_render(rig, ledger, "chaos warm-up")
            await settle(rig, bound=120)
            r = await http.get(f"{rig.url}{RENDERS}/{job}", headers=user.headers())
            assert r.json()["state"] == "ready", r.text
            media = r.json()["media_attachment"]["id"]
            r = await http.post(
                f"{rig.url}/api/v1/statuses",
                headers={**user.headers(), "Idempotency-Key": "warm-up"},
                data={"status": "chaos post [warm-up]", "media_ids[]": media},
            )
            assert r.status_code == 200, r.text
            ledger.posts["warm-up"] = r.json()["id"]
            ledger.published[job] = r.json()["id"]

    async def round(
        self,
        kind: str,
        inject: Inject,
        tally: Tally,
        *,
        after: float = 2.0,
        load: dict[str, object] | None = None,
        settle_bound: float | None = None,
        recover: Inject | None = None,
    ) -> dict[str, object]:
        """Run the load, *inject* the fault into it, keep the load going *after* seconds
        more, stop it, run *recover* (the end of a fault that outlasts the load), wait for
        every durable row to settle and check every invariant. Counts the fault in *tally*
        as injected, and as survived once all held."""
        self.rounds += 1
        tally.injected[kind] += 1
        started = time.monotonic()
        async with Load(self.rig, self.ledger, f"{self.seed}:{self.rounds}", **(load or {})):
            await inject()
            await asyncio.sleep(after)
        if recover is not None:
            await recover()
        kwargs = {"bound": settle_bound} if settle_bound is not None else {}
        settled = await settle(self.rig, **kwargs)
        report = await check(self.rig, self.ledger, excused=self.excused)
        summary = {
            "kind": kind,
            "warm-up": round(self.warm_up_seconds, 1) if self.rounds == 1 else None,
            "seconds": round(time.monotonic() - started, 1),
            "settled_in": round(settled, 1),
            "5xx": self.ledger.server_errors(),
            **report.counts,
        }
        shown = ", ".join(f"{k} {v}" for k, v in summary.items() if k != "kind" and v is not None)
        tally.notes.append(f"{kind} (round {self.rounds}): {shown}")
        assert not report.violations, (
            f"after {kind} (seed {self.seed!r}, round {self.rounds}):\n  "
            + "\n  ".join(report.violations)
            + f"\noutcomes: {dict(self.ledger.outcomes)}\n{self.rig.logs()}"
        )
        tally.survived[kind] += 1
        return summary
