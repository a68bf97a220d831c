"""A script of ``bench/`` as a module of its own, for the tests of what it measures.

``bench/`` is no package (its ``web.py`` would stand for the ``web`` package), so tests
never import ``bench.*``: they load the file under the name ``bench_<name>``, once.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["load_bench"]

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_bench(name: str) -> ModuleType:
    """``bench/<name>.py``, loaded once as the module ``bench_<name>`` (registered, as
    dataclasses look their module up)."""
    module_name = f"bench_{name}"
    found = sys.modules.get(module_name)
    if found is not None:
        return found
    spec = importlib.util.spec_from_file_location(module_name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module
