"""Root history: a replaced provenance root stays trusted for the clips signed under it.

``fedisora init --new-provenance-root`` (or new credentials put in the data dir by hand)
replaces the signing root; the old root's certificate stays in ``provenance/roots/``, so
``fedisora verify`` still trusts the clips rendered before. The root history itself is tested
here too.
"""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from instance import copy_migrated_sqlite

import render.queue
from fedisora.cli import main
from fedisora.config import Settings, load_settings
from render.instance import (
    own_roots,
    record_roots,
    retired_roots,
    root_fingerprint,
    trusted_roots,
)
from render.provenance import InstanceCredentials, generate_instance_ca

_DEFAULT_KEY = render.queue._pipeline_key(Settings())


def _run(argv: list[str]) -> int:
    # The commands call asyncio.run; a thread keeps them off the test session's event loop.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(main, argv).result()


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny: Any) -> Path:
    monkeypatch.setitem(render.queue._PIPELINES, _DEFAULT_KEY, tiny)
    for name in ("FEDISORA_DATABASE_URL", "FEDISORA_MEDIA_ROOT", "FEDISORA_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FEDISORA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FEDISORA_DOMAIN", "clips.example")
    monkeypatch.setenv("FEDISORA_LOG_LEVEL", "warning")
    # A copy of the migrated template (tests/support/instance.py): init migrates nothing, not
    # ~10 s of CPU per test (tests/fedisora/test_cli.py and test_migrations.py migrate for real).
    copy_migrated_sqlite(tmp_path / "data" / "fedisora.sqlite3")
    assert _run(["init", "--admin-password", "correct horse battery"]) == 0
    return tmp_path / "data"


def _render(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code = _run(["render", "a kite over a hill", "--seconds", "0.5", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "validation: Trusted" in printed


def _verify(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = _run(["verify", str(path)])
    return code, capsys.readouterr().out


def _history(data: Path) -> list[str]:
    return sorted(p.name for p in (data / "provenance" / "roots").iterdir())


def test_a_clip_rendered_before_the_root_was_replaced_still_verifies(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    provenance = data / "provenance"
    first_root = (provenance / "root.pem").read_text()
    assert _history(data) == [f"{root_fingerprint(first_root)}.pem"]  # init keeps it at once
    old_clip = tmp_path / "old.mp4"
    _render(old_clip, capsys)

    # The admin replaces the root the documented way.
    capsys.readouterr()
    assert _run(["init", "--new-provenance-root"]) == 0
    printed = capsys.readouterr().out
    assert "provenance signing certificate: replaced; 1 retired root(s)" in printed
    second_root = (provenance / "root.pem").read_text()
    assert second_root != first_root
    assert stat.S_IMODE((provenance / "key.pem").stat().st_mode) == 0o600
    assert _history(data) == sorted(f"{root_fingerprint(r)}.pem" for r in (first_root, second_root))
    for path in (provenance / "roots").iterdir():  # certificates only, never a key
        assert "PRIVATE KEY" not in path.read_text()
        assert path.read_text().count("BEGIN CERTIFICATE") == 1

    code, report = _verify(old_clip, capsys)
    assert code == 0, report
    assert "validation: Trusted (signed by a trusted instance root; 2 trusted roots)" in report

    # New clips are signed under the new root, and verify too.
    new_clip = tmp_path / "new.mp4"
    _render(new_clip, capsys)
    settings = load_settings()
    assert own_roots(settings) == [second_root, first_root]
    from render.provenance import verify_mp4

    assert verify_mp4(new_clip, [second_root]).trusted
    assert not verify_mp4(old_clip, [second_root]).trusted

    # Re-running plain `fedisora init` keeps everything as it is.
    capsys.readouterr()
    assert _run(["init"]) == 0
    assert "provenance signing certificate: kept" in capsys.readouterr().out
    assert own_roots(settings) == [second_root, first_root]

    # Deleting a retired root's file withdraws it: the old clip is no longer trusted.
    (provenance / "roots" / f"{root_fingerprint(first_root)}.pem").unlink()
    code, report = _verify(old_clip, capsys)
    assert code == 1
    assert "validation: Valid (intact, but the signer is not in the trusted roots" in report


def _install_by_hand(provenance: Path, credentials: InstanceCredentials) -> None:
    for name, text in zip(("root.pem", "chain.pem", "key.pem"), credentials, strict=True):
        (provenance / name).write_text(text)


def test_roots_put_in_by_hand_are_kept_once_clips_are_signed_under_them(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An admin may install credentials by hand (a commercial chain, say): the render queue
    keeps each root it signs under, so replacing it by hand later loses nothing."""
    provenance = data / "provenance"
    first = (provenance / "root.pem").read_text()
    by_hand = generate_instance_ca("clips.example")
    _install_by_hand(provenance, by_hand)
    clip = tmp_path / "by-hand.mp4"
    _render(clip, capsys)
    assert f"{root_fingerprint(by_hand.root_pem)}.pem" in _history(data)

    _install_by_hand(provenance, generate_instance_ca("clips.example"))
    code, report = _verify(clip, capsys)
    assert code == 0, report
    assert "3 trusted roots" in report
    assert retired_roots(load_settings())[-1] == first  # recorded first, listed last


def test_a_data_dir_from_before_root_history_keeps_its_root_on_init(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    provenance = data / "provenance"
    for path in (provenance / "roots").iterdir():
        path.unlink()
    (provenance / "roots").rmdir()
    root = (provenance / "root.pem").read_text()
    # The key gone, say: init makes new credentials and keeps the old root first.
    (provenance / "key.pem").unlink()
    (provenance / "chain.pem").unlink()
    capsys.readouterr()
    assert _run(["init"]) == 0
    assert "replaced; 1 retired root(s)" in capsys.readouterr().out
    assert retired_roots(load_settings()) == [root]


def test_the_root_history(tmp_path: Path) -> None:
    settings = load_settings({"FEDISORA_DATA_DIR": str(tmp_path), "FEDISORA_SECRET_KEY": "s" * 40})
    assert own_roots(settings) == [] and trusted_roots(settings) == []
    roots = [generate_instance_ca(f"r{n}.example").root_pem for n in range(4)]
    provenance = tmp_path / "provenance"
    provenance.mkdir()
    for n, root in enumerate(roots):
        assert record_roots(settings, root) == [root_fingerprint(root)]
        assert record_roots(settings, root) == []  # once
        path = provenance / "roots" / f"{root_fingerprint(root)}.pem"
        os.utime(path, (1_000_000 + n, 1_000_000 + n))
    (provenance / "root.pem").write_text(roots[1])
    # A file that is no certificate is ignored; a key pasted into one is dropped.
    (provenance / "roots" / "junk.pem").write_text("not a certificate")
    (provenance / "roots" / "with-key.pem").write_text(
        roots[2] + generate_instance_ca("k.example").key_pem
    )
    assert retired_roots(settings) == [roots[3], roots[2], roots[0]]  # newest first
    assert own_roots(settings) == [roots[1], roots[3], roots[2], roots[0]]
    (provenance / "trusted").mkdir()
    other = generate_instance_ca("other.example").root_pem
    (provenance / "trusted" / "other.pem").write_text(other)
    assert trusted_roots(settings) == [*own_roots(settings), other]
    # Checks of other instances' clips do not trust this instance's retired roots.
    assert trusted_roots(settings, retired=False) == [roots[1], other]
    with pytest.raises(ValueError):
        record_roots(settings, generate_instance_ca("x.example").chain_pem)  # a leaf
