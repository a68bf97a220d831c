"""An independent judge: fediverse-pasture's verify_actor, in its own virtualenv, probes a
running fedisora instance with its six test actors.

Expected verdicts (pasture's own rules): every actor can fetch ours; unsigned POSTs (alice,
dean) are refused; signed POSTs (bob, emily) and signed POSTs whose keys can only be fetched
with a signed GET (claire, frank) are accepted; WebFinger resolves to the actor.

The virtualenv is made once under ~/.cache (pasture pins packages that must not meet ours);
without PyPI the test is skipped, saying so.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fedinstances import Instance, free_port, start, stop
from peer_venv import peer_python

pytestmark = pytest.mark.slow

PASTURE = "fediverse-pasture==0.2.25"
RUNNER = """
import sys
import uvicorn
from fediverse_pasture.verify_actor import build_app

port = int(sys.argv[1])
app = build_app(False, f"127.0.0.1:{port}", False, 20)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""


def _pasture_python() -> Path:
    return peer_python("pasture-0.2.25", [PASTURE, "uvicorn"])


@pytest.fixture
def pasture(tmp_path: Path) -> Iterator[str]:
    python = _pasture_python()
    port = free_port()
    runner = tmp_path / "run_pasture.py"
    runner.write_text(RUNNER)
    log = (tmp_path / "pasture.log").open("wb")
    process = subprocess.Popen(
        [str(python), str(runner), str(port)], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "pasture.log").read_text()[-3000:]
            try:
                if httpx.get(base, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        process.wait(15)
        log.close()


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Instance]:
    started = start("fed", tmp_path)
    try:
        yield started
    finally:
        stop(started)


def test_verify_actor_verdicts(pasture: str, instance: Instance) -> None:
    actor = f"{instance.base}/users/admin"
    r = httpx.get(
        pasture, params={"actor_uri": actor}, headers={"Accept": "application/json"}, timeout=120
    )
    assert r.status_code == 200
    report = r.json()
    result = report["result"]
    steps = json.loads(report["messages"])
    assert result["webfinger"] is True, steps
    for name in ("alice", "bob", "claire", "dean", "emily", "frank"):
        assert result[name]["get_actor"] is True, (name, steps)
    for name in ("alice", "dean"):  # unsigned POSTs
        assert result[name]["post_inbox"] is False, (name, steps)
    for name in ("bob", "claire", "emily", "frank"):
        assert result[name]["post_inbox"] is True, (name, steps)
