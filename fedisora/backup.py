"""Backups of a whole instance, and restoring one into an empty instance (issue 20, point 3).

``fedisora backup DIR`` writes into *DIR* (which must be new or empty):

- ``database.sqlite3``: SQLite's online backup API (a consistent copy while the instance
  runs), or ``database.pgdump``: ``pg_dump --format=custom`` (one snapshot) for PostgreSQL;
- ``config/fedisora.env``: the instance's configuration (its secret key, domain);
- ``provenance/``: the C2PA signing key, chain and every root, current and retired (clips
  signed under a retired root keep verifying only while it is kept);
- ``media/``: the media files (rendered clips, posters, stills, avatars); or, when the
  media is kept in an S3 bucket (``FEDISORA_MEDIA_BACKEND=s3``), ``media-objects.json``
  instead: every object's key with its size and SHA-256, and the bucket that holds them (the
  bucket is backed up by its own means: versioning, replication). Restore then checks that
  the restored instance's bucket holds each object, whole;
- ``MANIFEST.json`` last: what the backup holds, each file's size and SHA-256. A directory
  without it is an unfinished backup, and restore refuses it.

Not copied: downloaded render models (``fedisora model pull`` fetches them again) and the
render workers' scratch files (a job that was rendering starts that step again). Queued work
is in the database: a restored instance carries it on.

``fedisora restore DIR`` checks every file against the manifest first (a damaged backup is
refused with the file named), then requires an empty instance: a database without tables of
the same kind (SQLite or PostgreSQL) and a data directory holding no configuration,
provenance or media yet; it loads the database (``pg_restore`` for PostgreSQL), copies the
files and brings the schema up to date (``migrate``). Anything refused says why and changes
nothing.

Why by hand: the parts are each a library or tool call (``sqlite3.Connection.backup``,
``pg_dump``/``pg_restore``, ``shutil``); what is ours is which files make an instance and
the checks around them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fedisora.config import ENV_FILE_NAME, Settings
from fedisora.media_store import MediaStore, MediaStoreError, check_key, media_store

__all__ = ["FORMAT", "BackupError", "Summary", "backup", "restore"]

FORMAT = 1
MANIFEST = "MANIFEST.json"
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
OBJECTS_FILE = "media-objects.json"
_CHUNK = 1 << 20


class BackupError(Exception):
    """A backup or restore refused, with the reason in words."""


@dataclass(frozen=True)
class Summary:
    backend: str
    files: int
    bytes: int


def _sqlite_path(settings: Settings) -> Path:
    return Path(settings.database_url[len("sqlite://") :])


def _libpq_url(settings: Settings) -> str:
    """The database URL as libpq reads it (tortoise's own query options dropped)."""
    parts = urlsplit(settings.database_url)
    scheme = "postgresql" if parts.scheme in ("postgres", "postgresql", "asyncpg") else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, "", ""))


def _backend(settings: Settings) -> str:
    return "sqlite" if settings.uses_sqlite else "postgres"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _files_under(root: Path, skip: tuple[str, ...] = ()) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name not in skip)


def _run(argv: list[str], what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise BackupError(f"{argv[0]} is not installed (PostgreSQL's client tools)") from exc
    if done.returncode != 0:
        raise BackupError(f"{what} failed: {done.stderr.strip()[-2000:]}")


# --- backup ------------------------------------------------------------------------------------


def backup(settings: Settings, target: Path) -> Summary:
    """Write a backup of the instance *settings* describes into *target* (new or empty)."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} is not an empty directory: a backup goes into a new one")
    target.mkdir(parents=True, exist_ok=True)
    backend = _backend(settings)
    if backend == "sqlite":
        source = _sqlite_path(settings)
        if not source.is_file():
            raise BackupError(f"there is no database at {source}: nothing to back up")
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = sqlite3.connect(target / SQLITE_FILE)
        try:
            src.backup(dst)  # the online backup API: consistent while the instance writes
        finally:
            dst.close()
            src.close()
        database = SQLITE_FILE
    else:
        database = PG_FILE
        _run(
            [
                "pg_dump",
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--dbname={_libpq_url(settings)}",
                f"--file={target / PG_FILE}",
            ],
            "pg_dump",
        )
    env_file = settings.data_dir / ENV_FILE_NAME
    if env_file.is_file():
        (target / "config").mkdir()
        shutil.copy2(env_file, target / "config" / ENV_FILE_NAME)
    provenance = settings.data_dir / "provenance"
    for path in _files_under(provenance, skip=(".lock",)):
        dest = target / "provenance" / path.relative_to(provenance)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
    store = media_store(settings)
    if store.backend == "local":
        for path in _files_under(settings.media_root):
            dest = target / "media" / path.relative_to(settings.media_root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
    else:
        try:
            objects = asyncio.run(_object_list(store))
        except MediaStoreError as exc:
            raise BackupError(f"the media objects cannot be listed: {exc.detail}") from exc
        listing = {"store": store.describe(), "objects": objects}
        (target / OBJECTS_FILE).write_text(json.dumps(listing, indent=1, sort_keys=True))
    files = {
        path.relative_to(target).as_posix(): {"size": path.stat().st_size, "sha256": _sha256(path)}
        for path in _files_under(target)
    }
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": backend,
        "database": database,
        "domain": settings.domain,
        "files": files,
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return Summary(backend, len(files), sum(int(str(f["size"])) for f in files.values()))


async def _object_list(store: MediaStore) -> dict[str, dict[str, Any]]:
    """Every stored object's size and SHA-256 (as recorded when it was written, else read)."""
    found: dict[str, dict[str, Any]] = {}
    async for key in store.keys():
        info = await store.info(key)
        if info is None:  # deleted while we listed
            continue
        digest = info.sha256 or await store.checksum(key)
        found[key] = {"size": info.size, "sha256": digest}
    return found


# --- restore -----------------------------------------------------------------------------------


def _manifest(source: Path) -> dict[str, Any]:
    path = source / MANIFEST
    if not path.is_file():
        raise BackupError(f"{source} holds no {MANIFEST}: not a backup, or an unfinished one")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path} cannot be read: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a backup of this format ({FORMAT})")
    files = manifest.get("files")
    if not isinstance(files, dict) or manifest.get("database") not in files:
        raise BackupError(f"{path} lists no database")
    return manifest


def _check_files(source: Path, files: dict[str, Any]) -> None:
    root = source.resolve()
    for name, entry in files.items():
        path = (source / name).resolve()
        if not path.is_relative_to(root):
            raise BackupError(f"the manifest names a file outside the backup: {name}")
        if not path.is_file():
            raise BackupError(f"the backup is damaged: {name} is missing")
        if path.stat().st_size != entry.get("size") or _sha256(path) != entry.get("sha256"):
            raise BackupError(f"the backup is damaged: {name} differs from its checksum")


async def _check_objects(source: Path, files: dict[str, Any], store: MediaStore) -> None:
    """A backup whose media is in a bucket restores only into an instance whose store holds
    every object it lists, whole; one with media files, into an empty store."""
    try:
        if OBJECTS_FILE not in files:
            if store.backend != "local" and [k async for k in store.keys()]:
                raise BackupError(
                    f"the media store, {store.describe()}, holds media already: restore needs "
                    "an empty instance"
                )
            return
        if store.backend == "local":
            raise BackupError(
                f"this backup's media is in an S3 bucket (listed in {OBJECTS_FILE}): restore "
                "into an instance with FEDISORA_MEDIA_BACKEND=s3 and the FEDISORA_S3_* "
                "settings of that bucket (or a copy of it)"
            )
        listing = json.loads((source / OBJECTS_FILE).read_text())
        objects: dict[str, Any] = listing.get("objects") or {}
        bad: list[str] = []
        for key, entry in sorted(objects.items()):
            info = await store.info(key)
            if info is None or info.size != entry.get("size"):
                bad.append(key)
            elif (info.sha256 or await store.checksum(key)) != entry.get("sha256"):
                bad.append(key)
    except MediaStoreError as exc:
        raise BackupError(f"the media objects cannot be checked: {exc.detail}") from exc
    except (OSError, ValueError) as exc:
        raise BackupError(f"{OBJECTS_FILE} cannot be read: {exc}") from exc
    if bad:
        shown = ", ".join(bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise BackupError(
            f"the media store, {store.describe()}, lacks {len(bad)} of the {len(objects)} "
            f"objects this backup lists, or holds other bytes under their keys ({shown}): "
            "point FEDISORA_S3_* at the bucket that holds them"
        )


async def _database_is_empty(settings: Settings) -> bool:
    if settings.uses_sqlite:
        path = _sqlite_path(settings)
        if not path.exists():
            return True
        conn = sqlite3.connect(path)
        try:
            found = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
            return int(found.fetchone()[0]) == 0
        finally:
            conn.close()
    import asyncpg

    conn = await asyncpg.connect(_libpq_url(settings))
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
        return int(count) == 0
    finally:
        await conn.close()


async def restore(settings: Settings, source: Path) -> Summary:
    """Restore the backup in *source* into the empty instance *settings* describes."""
    manifest = _manifest(source)
    files: dict[str, Any] = manifest["files"]
    backend = _backend(settings)
    if manifest.get("backend") != backend:
        raise BackupError(
            f"this backup holds a {manifest.get('backend')} database and this instance uses "
            f"{backend}: restore into an instance of the same kind"
        )
    _check_files(source, files)
    if (settings.data_dir / ENV_FILE_NAME).exists():
        raise BackupError(
            f"{settings.data_dir / ENV_FILE_NAME} exists: restore goes into an instance that "
            "was never set up (no `fedisora init` before it)"
        )
    store = media_store(settings)
    for what, root in (
        ("provenance files", settings.data_dir / "provenance"),
        ("media", settings.media_root),
    ):
        if _files_under(root, skip=(".lock",)):
            raise BackupError(f"{root} holds {what} already: restore needs an empty instance")
    await _check_objects(source, files, store)
    if not await _database_is_empty(settings):
        raise BackupError("the database has tables already: restore needs an empty database")

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        dest = _sqlite_path(settings)
        dest.parent.mkdir(parents=True, exist_ok=True)
        src = sqlite3.connect(f"file:{source / SQLITE_FILE}?mode=ro", uri=True)
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
    else:
        _run(
            [
                "pg_restore",
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={_libpq_url(settings)}",
                str(source / PG_FILE),
            ],
            "pg_restore",
        )
    for name in files:
        if name in (SQLITE_FILE, PG_FILE):
            continue
        top, _, rest = name.partition("/")
        if top == "config" and rest == ENV_FILE_NAME:
            dest = settings.data_dir / ENV_FILE_NAME
        elif top == "provenance":
            dest = settings.data_dir / "provenance" / rest
        elif top == "media" and store.backend != "local":
            try:
                check_key(rest)
            except ValueError:
                continue  # scratch work or a temporary file: never a stored object
            try:
                await store.put_file(rest, source / name, consume=False)
            except MediaStoreError as exc:
                raise BackupError(f"media/{rest} could not be stored: {exc.detail}") from exc
            continue
        elif top == "media":
            dest = settings.media_root / rest
        else:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, dest)
    from fedisora.db import migrate

    await migrate(settings.database_url)  # a backup of an older version: its schema caught up
    total = sum(int(f["size"]) for f in files.values())
    return Summary(backend, len(files), total)
