"""Run an in-process runner over the test machine until killed:
`crash_runner.py DB_URL LEASE [CONCURRENCY]`."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from work_machines import machine

from fedisora.db import init_db
from fedisora.work import Engine
from fedisora.work.runner import InProcessRunner


async def main(url: str, lease: float, concurrency: int) -> None:
    await init_db(url)
    engine = Engine([machine()], lease=timedelta(seconds=lease))
    runner = InProcessRunner(engine, poll_interval=0.1, concurrency=concurrency)
    print("ready", flush=True)
    await runner.run()


if __name__ == "__main__":
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), concurrency))
