"""Independent fediverse software for tests, each in a virtualenv of its own under ~/.cache.

Their pinned dependencies (old tortoise, quart...) must never meet ours. A venv counts as ready
only once its install finished (a marker file), so an interrupted install is redone, not reused.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CACHE = Path.home() / ".cache" / "fedisora-tests"


def peer_python(name: str, packages: list[str], timeout: float = 900) -> Path:
    """The python of a venv named *name* with *packages* installed; fails the test if it can't."""
    venv = CACHE / name
    python = venv / "bin" / "python"
    marker = venv / ".fedisora-installed"
    if marker.is_file() and python.exists():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *packages],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if install.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        pytest.fail(f"cannot install {' '.join(packages)} from PyPI: {install.stderr[-500:]}")
    marker.write_text(" ".join(packages) + "\n")
    return python
