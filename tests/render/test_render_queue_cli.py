"""``fedisora render`` and ``fedisora verify`` on a freshly initialised instance."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from instance import copy_migrated_sqlite

import render.queue
from fedisora.cli import main
from fedisora.config import Settings

_DEFAULT_KEY = render.queue._pipeline_key(Settings())


def _run(argv: list[str]) -> int:
    # The commands call asyncio.run; a thread keeps them off the test session's event loop.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(main, argv).result()


def _seed(tmp_path: Path) -> None:
    """The instance's SQLite database, a copy of the migrated template (tests/support/
    instance.py): ``init`` then finds nothing to migrate, not ~10 s of CPU per test
    (tests/fedisora/test_cli.py and test_migrations.py migrate for real)."""
    copy_migrated_sqlite(tmp_path / "data" / "fedisora.sqlite3")


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny: Any) -> Path:
    # The worker's once-per-process pipeline cache, seeded with the session's tiny pipeline.
    monkeypatch.setitem(render.queue._PIPELINES, _DEFAULT_KEY, tiny)
    for name in ("FEDISORA_DATABASE_URL", "FEDISORA_MEDIA_ROOT", "FEDISORA_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FEDISORA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FEDISORA_DOMAIN", "clips.example")
    monkeypatch.setenv("FEDISORA_LOG_LEVEL", "warning")
    _seed(tmp_path)
    assert _run(["init", "--admin-password", "correct horse battery"]) == 0
    return tmp_path


def test_render_verify_and_bad_requests(
    instance: Path, capsys: pytest.CaptureFixture[str], gradient_clip: Path, tiny: Any
) -> None:
    out = instance / "kite.mp4"
    capsys.readouterr()
    code = _run(
        ["render", "a kite over a hill", "--seconds", "0.5", "--seed", "42", "--out", str(out)]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"output: {out}" in printed and out.is_file()
    assert "validation: Trusted" in printed
    assert "claim: instance clips.example, job 1, model tiny, seed 42" in printed
    assert "watermark: id 1," in printed and "matches the claim's job" in printed
    # The worker used the process's cached pipeline instead of loading its own.
    assert render.queue._PIPELINES == {_DEFAULT_KEY: tiny}

    assert _run(["verify", str(out)]) == 0
    assert "validation: Trusted" in capsys.readouterr().out

    # Another instance's clip is intact but not trusted here until its root is installed.
    assert _run(["verify", str(gradient_clip)]) == 1
    assert "manifest: none" in capsys.readouterr().out
    trusted = instance / "data" / "provenance" / "trusted"
    trusted.mkdir()
    shutil.move(instance / "data" / "provenance" / "root.pem", trusted / "clips.pem")
    shutil.rmtree(instance / "data" / "provenance" / "roots")  # no root history either
    assert _run(["verify", str(out)]) == 0
    assert "validation: Trusted (signed by a trusted instance root; 1 trusted roots)" in (
        capsys.readouterr().out
    )
    (trusted / "clips.pem").unlink()
    assert _run(["verify", str(out)]) == 1
    report = capsys.readouterr().out
    assert "validation: Valid (intact, but the signer is not in the trusted roots" in report

    # Bad requests end with one clear line on stderr, and no job.
    assert _run(["render", "   ", "--seconds", "1"]) == 1
    assert "error: prompt: must not be empty" in capsys.readouterr().err
    assert _run(["render", "ok", "--seconds", "30"]) == 1
    assert "error: seconds: must be more than 0 and at most 10, got 30.0" in capsys.readouterr().err
    assert _run(["render", "ok", "--aspect", "4:3"]) == 1
    assert "allowed: 9:16, 1:1, 16:9" in capsys.readouterr().err
    assert sorted(p.name for p in (instance / "data" / "media" / "clips").iterdir()) == [
        "render-1.jpg",
        "render-1.mp4",
    ]


def test_render_with_sound_from_the_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tiny_ltx2: Any,
) -> None:  # fmt: skip
    key = render.queue._pipeline_key(Settings(render_model="tiny-ltx2"))
    monkeypatch.setitem(render.queue._PIPELINES, key, tiny_ltx2)
    for name in ("FEDISORA_DATABASE_URL", "FEDISORA_MEDIA_ROOT", "FEDISORA_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FEDISORA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FEDISORA_DOMAIN", "clips.example")
    monkeypatch.setenv("FEDISORA_LOG_LEVEL", "warning")
    monkeypatch.setenv("FEDISORA_RENDER_MODEL", "tiny-ltx2")
    _seed(tmp_path)
    assert _run(["init", "--admin-password", "correct horse battery"]) == 0
    out = tmp_path / "surf.mp4"
    capsys.readouterr()
    code = _run(["render", "surf on rocks", "--seconds", "0.5", "--seed", "4", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "model tiny-ltx2, seed 4" in printed
    assert "generated tracks: video, audio" in printed
    assert "sound: aac 24000 Hz, 2 channel(s), 0.708 s from 0.000 s (picture: 0.708 s)" in printed

    code = _run(["render", "still water", "--seconds", "0.5", "--no-audio", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "generated tracks" not in printed and "sound:" not in printed

    monkeypatch.setenv("FEDISORA_RENDER_MODEL", "tiny")
    assert _run(["render", "a bell", "--seconds", "0.5", "--audio"]) == 1
    assert "error: audio: model family tiny renders no sound" in capsys.readouterr().err
