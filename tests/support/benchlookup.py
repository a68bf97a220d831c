"""``bench/lookup.py``'s clip makers and transformations, for the lookup's tests: the bench's
own code, loaded from its file (``bench/`` is scripts, not a package on the test path)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_PATH = Path(__file__).resolve().parents[2] / "bench" / "lookup.py"


def _load() -> ModuleType:
    found = sys.modules.get("bench_lookup")
    if found is not None:
        return found
    spec = importlib.util.spec_from_file_location("bench_lookup", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_lookup"] = module
    spec.loader.exec_module(module)
    return module


_bench = _load()
encode = _bench.encode
synthetic_clip = _bench.synthetic_clip
transform_file = _bench.transform_file
