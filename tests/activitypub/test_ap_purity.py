"""The pure protocol modules import no database, network or GPU stack: every module of
``activitypub/`` (the application's federation layer, with its models, services, HTTP and
work machines, is ``fedisora/federation/``), and the pure parts of the policy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
ACTIVITYPUB = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for path in (ROOT / "activitypub").rglob("*.py")
)
PURE_MODULES = [*ACTIVITYPUB, "fedisora.policy.matcher", "fedisora.policy.optout_list"]
FORBIDDEN = ["tortoise", "httpx", "httpcore", "torch", "diffusers", "starlette", "asyncpg"]


def test_pure_modules_import_no_io_stack() -> None:
    # A fresh interpreter: this test process has other packages' imports in sys.modules.
    script = (
        "import importlib, json, sys\n"
        f"for name in {PURE_MODULES!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    loaded = set(json.loads(result.stdout))
    assert "activitypub" in loaded
    assert loaded.isdisjoint(FORBIDDEN), loaded & set(FORBIDDEN)


def test_the_protocol_package_is_all_pure_and_needs_nothing_of_the_application() -> None:
    """Every module under ``activitypub/`` (objects.py included) loads alone: no database,
    network or GPU stack, and nothing of ``fedisora`` (the application's own federation
    layer lives in ``fedisora/federation/``)."""
    assert "activitypub.objects" in ACTIVITYPUB and len(ACTIVITYPUB) >= 10
    script = (
        "import importlib, json, sys\n"
        f"for name in {ACTIVITYPUB!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    loaded = set(json.loads(result.stdout))
    assert loaded.isdisjoint([*FORBIDDEN, "fedisora", "web", "render"]), loaded


def test_public_names_are_exported() -> None:
    import activitypub.consent
    import activitypub.digest
    import activitypub.errors
    import activitypub.integrity
    import activitypub.keys
    import activitypub.signatures
    import activitypub.signatures.cavage
    import activitypub.signatures.rfc9421

    for module in (
        activitypub.consent,
        activitypub.digest,
        activitypub.errors,
        activitypub.integrity,
        activitypub.keys,
        activitypub.signatures,
        activitypub.signatures.cavage,
        activitypub.signatures.rfc9421,
    ):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
        public = {
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and getattr(value, "__module__", None) == module.__name__
            and callable(value)
        }
        assert public <= set(module.__all__), public - set(module.__all__)
