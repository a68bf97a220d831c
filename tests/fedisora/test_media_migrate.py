"""``fedisora media migrate --to s3`` (fedisora.media_migrate) against a real S3-compatible
server (moto's, on loopback): every file ends in the bucket with its bytes; a run killed
halfway loses nothing and the next one goes on from where it stopped; an unreachable store
stops with a clear message and removes nothing. ``fedisora backup`` of an instance whose media
is in a bucket lists the objects with their checksums, and restore checks them."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from s3server import closed_port

from fedisora.backup import OBJECTS_FILE, BackupError, backup, restore
from fedisora.config import load_settings
from fedisora.media_migrate import JOURNAL
from fedisora.media_store import media_store

ROOT = Path(__file__).resolve().parents[2]
FILES = 240


def _media(root: Path) -> dict[str, bytes]:
    """A media root as an instance leaves it: clips, posters, stills, avatars, and the
    scratch work and temporary files that are not media."""
    files: dict[str, bytes] = {}
    for n in range(FILES):
        folder = ("clips", "uploads/images", "uploads/videos", "render-inputs")[n % 4]
        ext = ("mp4", "png", "jpg", "png")[n % 4]
        files[f"{folder}/{n:04d}.{ext}"] = secrets.token_bytes(4000 + n)
    for key, data in files.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
    (root / "render-work" / "7").mkdir(parents=True)
    (root / "render-work" / "7" / "frames.npy").write_bytes(b"scratch")
    (root / "clips" / ".render-9.mp4.abc.part").write_bytes(b"half")
    return files


def _env(tmp_path: Path, s3: Any, bucket: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDISORA_")}
    env.update(
        {
            "FEDISORA_DATA_DIR": str(tmp_path / "data"),
            "FEDISORA_CONFIG": str(tmp_path / "none.env"),
            "PYTHONPATH": str(ROOT),
            **s3.env(bucket),
            "FEDISORA_MEDIA_BACKEND": "local",  # migrating: the instance still runs locally
            **extra,
        }
    )
    return env


def _migrated_database(data_dir: Path) -> None:
    """``db.sqlite3`` in *data_dir*: a copy of the migrated SQLite template (tests/support/
    instance.py), not ~10 s of CPU migrating afresh (tests/fedisora/test_migrations.py does)."""
    from instance import copy_migrated_sqlite

    copy_migrated_sqlite(data_dir / "db.sqlite3")


def _migrate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fedisora", "media", "migrate", "--to", "s3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_migration_killed_halfway_goes_on_when_run_again(tmp_path: Path, s3: Any) -> None:
    bucket = s3.bucket()
    root = tmp_path / "data" / "media"
    files = _media(root)
    env = _env(tmp_path, s3, bucket)

    proc = subprocess.Popen(
        [sys.executable, "-m", "fedisora", "media", "migrate", "--to", "s3"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    verified = 0
    for line in proc.stdout:
        verified += " verified" in line
        if verified == 30:
            proc.send_signal(signal.SIGKILL)  # no chance to tidy up
            break
    proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.stderr is not None
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    moved = s3.objects(bucket)
    assert 30 <= len(moved) < FILES  # halfway
    assert all(files[k] == data for k, data in moved.items())  # what is there is whole
    for key, data in files.items():  # nothing local is gone yet
        assert (root / key).read_bytes() == data
    assert (root / JOURNAL).is_file()

    done = _migrate(env)
    assert done.returncode == 0, done.stderr
    assert "resuming: " in done.stdout
    assert f"done: {FILES} files in the bucket" in done.stdout
    assert "all verified by SHA-256" in done.stdout
    assert "now set FEDISORA_MEDIA_BACKEND=s3" in done.stdout
    uploaded = int(done.stdout.split(" uploaded")[0].rsplit("(", 1)[1])
    assert uploaded <= FILES - 30  # what the first run verified was not sent again
    assert s3.objects(bucket) == files  # every file, byte for byte; no scratch, no temp file
    assert not any((root / key).exists() for key in files)  # moved: local copies gone
    assert (root / "render-work" / "7" / "frames.npy").is_file()  # scratch stays local
    assert not (root / JOURNAL).exists()

    again = _migrate(env)  # nothing left: a clear no-op
    assert again.returncode == 0 and "done: 0 files" in again.stdout


def test_an_unreachable_store_stops_the_migration_and_removes_nothing(
    tmp_path: Path, s3: Any
) -> None:
    root = tmp_path / "data" / "media"
    files = _media(root)
    env = _env(
        tmp_path, s3, "media-nowhere", FEDISORA_S3_ENDPOINT=f"http://127.0.0.1:{closed_port()}"
    )
    done = _migrate(env)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "media migrate: the media store (s3 (bucket media-nowhere" in done.stderr
    assert "stopped after 0 of" in done.stderr and "nothing was removed" in done.stderr
    for key, data in files.items():
        assert (root / key).read_bytes() == data


def test_a_bad_setting_is_named(tmp_path: Path, s3: Any) -> None:
    env = _env(tmp_path, s3, "media-x", FEDISORA_S3_BUCKET="")
    done = _migrate(env)
    assert done.returncode != 0 and "FEDISORA_S3_BUCKET" in done.stderr
    assert "Traceback" not in done.stderr


async def test_a_backup_lists_the_buckets_objects_and_restore_checks_them(
    tmp_path: Path, s3: Any
) -> None:
    bucket = s3.bucket()

    def settings(where: str, **env: str) -> Any:
        return load_settings(
            {
                "FEDISORA_DATA_DIR": str(tmp_path / where),
                "FEDISORA_CONFIG": str(tmp_path / "none.env"),
                "FEDISORA_DATABASE_URL": f"sqlite://{tmp_path / where / 'db.sqlite3'}",
                "FEDISORA_SECRET_KEY": "k" * 40,
                **s3.env(bucket),
                **env,
            }
        )

    here = settings("here")
    here.data_dir.mkdir()
    _migrated_database(tmp_path / "here")
    store = media_store(here)
    files = {f"clips/{n}.mp4": secrets.token_bytes(3000 + n) for n in range(5)}
    for key, data in files.items():
        await store.put_bytes(key, data)
    done = await asyncio.to_thread(backup, here, tmp_path / "backup")
    listing = json.loads((tmp_path / "backup" / OBJECTS_FILE).read_text())
    assert listing["objects"] == {
        k: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for k, d in files.items()
    }
    assert bucket in listing["store"]
    assert not (tmp_path / "backup" / "media").exists()  # the media is not copied
    manifest = json.loads((tmp_path / "backup" / "MANIFEST.json").read_text())
    assert OBJECTS_FILE in manifest["files"] and done.files == len(manifest["files"])

    # into a local instance: refused, saying what to set
    with pytest.raises(BackupError, match="FEDISORA_MEDIA_BACKEND=s3"):
        await restore(settings("local", FEDISORA_MEDIA_BACKEND="local"), tmp_path / "backup")
    # a bucket that lost an object, or holds other bytes: refused, the keys named
    await store.delete(["clips/3.mp4"])
    await store.put_bytes("clips/1.mp4", b"other bytes")
    with pytest.raises(BackupError, match=r"lacks 2 of the 5 objects .*clips/1.mp4, clips/3.mp4"):
        await restore(settings("there"), tmp_path / "backup")
    assert not (tmp_path / "there" / "db.sqlite3").exists()  # nothing restored
    # the bucket whole again: restored, the objects where they were
    await store.put_bytes("clips/1.mp4", files["clips/1.mp4"])
    await store.put_bytes("clips/3.mp4", files["clips/3.mp4"])
    there = settings("there")
    await restore(there, tmp_path / "backup")
    assert (tmp_path / "there" / "db.sqlite3").is_file()
    assert s3.objects(bucket) == files


async def test_a_backup_with_files_restores_into_an_empty_bucket(tmp_path: Path, s3: Any) -> None:
    def settings(where: str, **env: str) -> Any:
        return load_settings(
            {
                "FEDISORA_DATA_DIR": str(tmp_path / where),
                "FEDISORA_CONFIG": str(tmp_path / "none.env"),
                "FEDISORA_DATABASE_URL": f"sqlite://{tmp_path / where / 'db.sqlite3'}",
                "FEDISORA_SECRET_KEY": "k" * 40,
                **env,
            }
        )

    here = settings("here")
    here.media_root.mkdir(parents=True)
    _migrated_database(tmp_path / "here")
    files = _media(here.media_root)
    await asyncio.to_thread(backup, here, tmp_path / "backup")
    bucket = s3.bucket()
    await restore(settings("there", **s3.env(bucket)), tmp_path / "backup")
    assert s3.objects(bucket) == files


def test_check_says_whether_the_media_store_answers(tmp_path: Path, s3: Any) -> None:
    from instance import cli_fails, cli_ok, fedisora, free_port, instance_env

    env = instance_env(tmp_path / "data", free_port())
    cli_ok(fedisora(["init"], env))
    bucket = s3.bucket()
    out = cli_ok(fedisora(["check"], dict(env, **s3.env(bucket))))
    assert f"media: s3 (bucket {bucket} at {s3.endpoint})" in out and out.strip().endswith("ok")
    down = dict(env, **s3.env(bucket, FEDISORA_S3_ENDPOINT=f"http://127.0.0.1:{closed_port()}"))
    cli_fails(
        fedisora(["check"], down), f"error: media store: the media store (s3 (bucket {bucket}"
    )
