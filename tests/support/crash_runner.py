"""Run an in-process runner over the test machine until killed: `crash_runner.py DB_URL LEASE`."""

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


async def main(url: str, lease: float) -> None:
    await init_db(url)
    engine = Engine([machine()], lease=timedelta(seconds=lease))
    runner = InProcessRunner(engine, poll_interval=0.1, concurrency=4)
    print("ready", flush=True)
    await runner.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
