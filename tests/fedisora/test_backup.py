"""``fedisora backup`` and ``fedisora restore`` (:mod:`fedisora.backup`; issue 20, point 3):
a populated instance (accounts, clips with their files, follows, a verified likeness and its
signed consent, queued render work, its provenance root) is backed up, restored into an
empty instance elsewhere, and every table and file compared; on SQLite (the online backup
API) and PostgreSQL (pg_dump / pg_restore). Refusals: a backup into a directory that is not
empty, a restore into a populated instance or one of another database kind, a damaged or
unfinished backup; each says why and changes nothing."""

from __future__ import annotations

import json
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from factories import local_account, remote_account, rendered_video
from likenesses import verified_likeness

from fedisora.backup import BackupError, backup, restore
from fedisora.config import Settings, load_settings
from fedisora.models import RenderJob, utcnow
from fedisora.services import follows, likeness, posts
from render.instance import write_credentials

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _settings(data: Path, url: str) -> Settings:
    return load_settings(
        {
            "FEDISORA_DATA_DIR": str(data),
            "FEDISORA_DATABASE_URL": url,
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_SECRET_KEY": "k" * 40,
        }
    )


async def _populate(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "fedisora.env").write_text("FEDISORA_SECRET_KEY=" + "k" * 40 + "\n")
    write_credentials(settings)
    ann = await local_account("ann")
    bob = await local_account("bob")
    rita = await remote_account("rita")
    await follows.follow(bob, ann)
    await follows.follow(rita, ann, uri="https://remote.example/users/rita#follows/1")
    for n in range(3):
        media = await rendered_video(ann)
        file = settings.media_root / str(media.file)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(secrets.token_bytes(2000 + n))
        await posts.post_clip(ann, media, caption=f"a storm at sea #{n}")
    await verified_likeness(ann, settings, audience="approved")
    await likeness.grant(ann, bob)
    now = utcnow()  # queued work: a restored instance carries it on
    await RenderJob.create(
        account=bob,
        state="queued",
        state_changed_at=now,
        next_attempt_at=now,
        created_at=now,
        spec={"prompt": "a kite", "seed": 3, "seconds": 1.0, "aspect": "9:16", "kind": "text"},
    )


async def _tables(url: str) -> dict[str, list[Any]]:
    """Every table's rows, in a stable order."""
    if url.startswith("sqlite://"):
        conn = sqlite3.connect(url[len("sqlite://") :])
        try:
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
                )
            ]
            return {n: sorted(map(repr, conn.execute(f'SELECT * FROM "{n}"'))) for n in names}
        finally:
            conn.close()
    conn2 = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        names = [
            r[0]
            for r in await conn2.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        ]
        out: dict[str, list[Any]] = {}
        for n in names:
            out[n] = sorted(repr(tuple(r)) for r in await conn2.fetch(f'SELECT * FROM "{n}"'))
        return out
    finally:
        await conn2.close()


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


async def _empty_database(db: str, tmp_path: Path) -> str:
    if db.startswith("sqlite://"):
        return f"sqlite://{tmp_path / 'restored.sqlite3'}"
    name = f"fedisora_restore_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(ADMIN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return f"{db.rsplit('/', 1)[0]}/{name}"


async def _drop(url: str) -> None:
    if url.startswith("postgres"):
        conn = await asyncpg.connect(ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        await conn.close()


async def test_a_backup_restored_elsewhere_is_the_same_instance(db: str, tmp_path: Path) -> None:
    here = _settings(tmp_path / "here", db)
    await _populate(here)
    done = backup(here, tmp_path / "backup")
    assert done.files >= 5
    manifest = json.loads((tmp_path / "backup" / "MANIFEST.json").read_text())
    assert manifest["backend"] == ("sqlite" if db.startswith("sqlite") else "postgres")
    assert any(name.startswith("provenance/roots/") for name in manifest["files"])

    url = await _empty_database(db, tmp_path)
    try:
        there = _settings(tmp_path / "there", url)
        await restore(there, tmp_path / "backup")
        original = await _tables(db)
        assert len(original["accounts"]) >= 3 and len(original["clips"]) == 3
        assert original["render_jobs"] and original["likeness_grants"] and original["follows"]
        assert await _tables(url) == original
        assert _files(there.media_root) == _files(here.media_root)
        assert _files(there.data_dir / "provenance") == _files(here.data_dir / "provenance")
        env = (there.data_dir / "fedisora.env").read_text()
        assert env == (here.data_dir / "fedisora.env").read_text()

        # a second restore into what is now a populated instance: refused, nothing touched
        (there.data_dir / "fedisora.env").unlink()
        with pytest.raises(BackupError, match="holds provenance files already"):
            await restore(there, tmp_path / "backup")
    finally:
        await _drop(url)


async def test_refusals_say_why_and_change_nothing(db: str, tmp_path: Path) -> None:
    here = _settings(tmp_path / "here", db)
    await _populate(here)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("something")
    with pytest.raises(BackupError, match="not an empty directory"):
        backup(here, tmp_path / "full")
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["x"]

    backup(here, tmp_path / "backup")
    with pytest.raises(BackupError, match="database has tables already"):
        await restore(_settings(tmp_path / "fresh", db), tmp_path / "backup")
    other = "postgres://postgres@127.0.0.1:5432/x" if db.startswith("sqlite") else "sqlite://x.db"
    with pytest.raises(BackupError, match="restore into an instance of the same kind"):
        await restore(_settings(tmp_path / "fresh", other), tmp_path / "backup")

    url = await _empty_database(db, tmp_path)
    try:
        target = _settings(tmp_path / "there", url)
        # damaged: a media file changed after the backup
        media = next(p for p in (tmp_path / "backup" / "media").rglob("*") if p.is_file())
        original = media.read_bytes()
        media.write_bytes(b"x" + original[1:])
        with pytest.raises(BackupError, match="differs from its checksum"):
            await restore(target, tmp_path / "backup")
        media.write_bytes(original)
        # unfinished: no manifest
        manifest = tmp_path / "backup" / "MANIFEST.json"
        kept = manifest.read_text()
        manifest.unlink()
        with pytest.raises(BackupError, match="not a backup, or an unfinished one"):
            await restore(target, tmp_path / "backup")
        manifest.write_text(kept)
        # nothing was written by the refused restores
        assert not target.data_dir.exists() or not any(target.data_dir.rglob("*.pem"))
        assert await _tables(url) == {} or all(not rows for rows in (await _tables(url)).values())
    finally:
        await _drop(url)
