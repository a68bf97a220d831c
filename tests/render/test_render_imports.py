"""The web process imports render.spec for validation and must stay torch-free."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import render

HEAVY = ("torch", "diffusers", "transformers", "av", "c2pa", "cryptography", "blurhash")


def _loaded_after(statement: str) -> dict[str, bool]:
    code = (
        f"import sys, json\n{statement}\n"
        f"print(json.dumps({{m: m in sys.modules for m in {[*HEAVY, 'numpy']!r}}}))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_spec_imports_nothing_heavy() -> None:
    loaded = _loaded_after("import render, render.spec, render.errors")
    assert not any(loaded.values()), loaded  # not even numpy


def test_worker_modules_import_their_heavy_deps_lazily() -> None:
    loaded = _loaded_after(
        "import render.pipeline, render.encode, render.provenance, render.watermark"
    )
    assert not any(loaded[m] for m in HEAVY), loaded


def test_package_exports_only_pure_names() -> None:
    assert set(render.__all__) >= {"RenderSpec", "RenderLimitError", "plan", "validate"}
    for name in render.__all__:
        assert getattr(render, name) is not None
