"""``fedisora worker`` whose durable-work engine reads a clock the test moves forward.

    python tests/support/warped_worker.py CLOCK_FILE [fedisora worker arguments...]

The engine's clock is the real UTC time plus the number of seconds in *CLOCK_FILE* (0 when
the file is missing; the test rewrites it atomically, only ever forward). Everything the
work engine decides by time reads that clock: when a row is due, its retry schedule, leases,
state timeouts, and a delivery's memory of a host being down (``WorkContext.now``). So
moving it by a day is, for the rows, a day going by, in seconds of real time. The rest of
the process keeps real time (TCP timeouts, Redis TTLs of host slots, signatures), and the
web process, which only creates rows, keeps its own real clock (a row it makes is simply
due at once for this worker).

Everything else is the real ``fedisora worker`` (the same ``fedisora.cli.main``).
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fedisora.models import utcnow  # noqa: E402
from fedisora.work import machines  # noqa: E402
from fedisora.work.engine import Engine  # noqa: E402


class FileClock:
    """Real time plus the offset (seconds) written in *path*."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def offset(self) -> float:
        try:
            return float(self.path.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0.0

    def __call__(self) -> datetime:
        return utcnow() + timedelta(seconds=self.offset())


def main() -> int:
    clock = FileClock(Path(sys.argv[1]))
    build = machines.build_engine

    def warped(*args: object, **kwargs: object) -> Engine:
        engine = build(*args, **kwargs)  # type: ignore[arg-type]
        engine.clock = clock
        return engine

    machines.build_engine = warped  # cmd_worker imports it when it runs

    from fedisora.cli import main as fedisora_main

    return fedisora_main(["worker", *sys.argv[2:]])


if __name__ == "__main__":
    sys.exit(main())
