"""Where finished media lives: a directory on local disk, or an S3-compatible bucket.

Every stored file (renders and their posters, uploads, input stills, avatars and headers) has
a *key*, its path relative to the store (``clips/render-12.mp4``): the value kept in
``MediaFile.file`` and the rest of ``/media/<key>``. Code that makes a file writes it to local
disk first (a render's scratch work stays in ``<media_root>/render-work``; the finished file at
:meth:`MediaStore.staging`), then hands it over with :meth:`MediaStore.put_file` /
:meth:`MediaStore.commit`, which place it under its key in one step: an object is either
there whole or not at all, so nothing half-written is ever served. Reads that need a local
file use :meth:`MediaStore.local_copy`; deletes go through :meth:`MediaStore.delete`.

- :class:`LocalStore` (``FEDISORA_MEDIA_BACKEND=local``, the default) keeps files under
  ``media_root`` exactly as before: staging a key *is* its final place, so a commit is a no-op.
- :class:`S3Store` (``FEDISORA_MEDIA_BACKEND=s3``) keeps them in ``FEDISORA_S3_BUCKET`` through
  obstore (an async client). ``media_root`` then only holds scratch work.

An unreachable store, or one refusing a write, raises :class:`MediaStoreError` (503 on the API,
a retry for a render) with a message naming the store and not the credentials.
:func:`media_store` gives the process's store for some settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import mimetypes
import os
import shutil
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from fedisora.config import Settings
from fedisora.errors import FedisoraError

__all__ = [
    "PRIVATE_TOP",
    "LocalStore",
    "MediaStore",
    "MediaStoreError",
    "ObjectInfo",
    "S3Store",
    "check_key",
    "media_store",
    "s3_store",
    "sha256_of",
]

log = logging.getLogger(__name__)

PRIVATE_TOP = ("render-work",)
"""Top-level folders of ``media_root`` that are scratch work, never stored media."""
SHA256_META = "sha256"
"""The user metadata an object keeps its SHA-256 in (hex), as written by :meth:`put_file`."""
_CHUNK = 1 << 20


class MediaStoreError(FedisoraError):
    """The media store cannot be reached or refused the operation; nothing was stored.

    Its message is for anyone (an API client, a render's owner): it names no server;
    :attr:`detail` adds which store and what it answered (logged where it is raised, and
    printed by the admin's commands)."""

    status = 503

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail or message


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str
    sha256: str | None  # as recorded at write time (None: not recorded)
    etag: str | None = None


def check_key(key: str) -> str:
    """*key* if it is a relative path inside the store with no hidden or private part."""
    parts = PurePosixPath(key).parts
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or not parts
        or parts[0] in PRIVATE_TOP
        or any(p in ("", ".", "..") or p.startswith(".") for p in parts)
    ):
        raise ValueError(f"not a media key: {key!r}")
    return key


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _valid(keys: Iterable[str | None]) -> list[str]:
    """The media keys among *keys* (a name that could never be stored names nothing)."""
    found = []
    for key in keys:
        if key:
            with contextlib.suppress(ValueError):
                found.append(check_key(key))
    return found


def _content_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


class MediaStore(ABC):
    """The interface; see the module's documentation."""

    backend: str = ""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch  # local disk: render work, staging, temporary copies

    def staging(self, key: str) -> Path:
        """Where to write the finished file for *key* before :meth:`commit`."""
        return self.scratch / check_key(key)

    async def commit(self, *keys: str | None) -> None:
        """Store the staged files of *keys* (``None`` and empty ones are skipped)."""
        for key in keys:
            if key:
                await self.put_file(key, self.staging(key))

    @abstractmethod
    async def put_file(
        self, key: str, src: Path, content_type: str | None = None, *, consume: bool = True
    ) -> None:
        """Place the finished local file *src* under *key* atomically; *src* is consumed
        (moved, or removed once stored) unless *consume* is false."""

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        check_key(key)
        self.scratch.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.scratch, prefix=".put-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            await self.put_file(key, Path(name), content_type)
        finally:
            await asyncio.to_thread(Path(name).unlink, missing_ok=True)

    @abstractmethod
    async def info(self, key: str) -> ObjectInfo | None:
        """Size, type and recorded checksum of *key*; None when there is no such object."""

    async def exists(self, key: str) -> bool:
        return await self.info(key) is not None

    @abstractmethod
    async def get_bytes(self, key: str) -> bytes:
        """The object's bytes (FileNotFoundError when there is none)."""

    @abstractmethod
    def stream(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        """Bytes ``[start, end)`` of the object, in chunks."""

    @abstractmethod
    async def fetch(self, key: str, dest: Path) -> Path:
        """Copy the object to the local file *dest* (FileNotFoundError when there is none)."""

    @abstractmethod
    async def delete(self, keys: Iterable[str | None]) -> None:
        """Remove the objects of *keys* (missing ones and empty keys are fine)."""

    @abstractmethod
    def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Every stored key (under *prefix*), scratch work and temporary files left out."""

    async def checksum(self, key: str) -> str:
        """The SHA-256 (hex) of the object's bytes as read back now."""
        digest = hashlib.sha256()
        async for chunk in self.stream(key):
            digest.update(chunk)
        return digest.hexdigest()

    @contextlib.asynccontextmanager
    async def local_copy(self, key: str) -> AsyncIterator[Path]:
        """A local file holding the object while the block runs (FileNotFoundError if none)."""
        check_key(key)
        self.scratch.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=self.scratch, prefix=".copy-"))
        try:
            yield await self.fetch(key, folder / PurePosixPath(key).name)
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)

    def public_url(self, key: str) -> str | None:
        """The object's URL for clients when the store is public (else None: /media/ serves)."""
        return None

    async def signed_url(self, key: str) -> str | None:
        """A time-limited URL of the object (None when the store has none)."""
        return None

    def describe(self) -> str:
        return self.backend

    async def close(self) -> None:
        return None


# --------------------------------------------------------------------------- local disk


class LocalStore(MediaStore):
    """Files under ``media_root``, as fedisora has always kept them."""

    backend = "local"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.root = root

    def path(self, key: str) -> Path:
        """The file of *key* on disk."""
        return self.root / check_key(key)

    async def put_file(
        self, key: str, src: Path, content_type: str | None = None, *, consume: bool = True
    ) -> None:
        await asyncio.to_thread(_replace_into, src, self.path(key), consume)

    async def info(self, key: str) -> ObjectInfo | None:
        try:
            size = (await asyncio.to_thread(self.path(key).stat)).st_size
        except (FileNotFoundError, NotADirectoryError):
            return None
        return ObjectInfo(key, size, _content_type(key), None)

    async def get_bytes(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path(key).read_bytes)

    async def stream(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        f = await asyncio.to_thread(open, self.path(key), "rb")
        try:
            f.seek(start)
            left = None if end is None else end - start
            while left is None or left > 0:
                size = _CHUNK if left is None else min(_CHUNK, left)
                chunk = await asyncio.to_thread(f.read, size)
                if not chunk:
                    break
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            f.close()

    async def fetch(self, key: str, dest: Path) -> Path:
        await asyncio.to_thread(shutil.copyfile, self.path(key), dest)
        return dest

    @contextlib.asynccontextmanager
    async def local_copy(self, key: str) -> AsyncIterator[Path]:
        path = self.path(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        yield path  # the file itself: no copy

    async def delete(self, keys: Iterable[str | None]) -> None:
        await asyncio.to_thread(_unlink_under, self.root, _valid(keys))

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        for key in await asyncio.to_thread(lambda: list(_walk(self.root, prefix))):
            yield key

    def describe(self) -> str:
        return f"local ({self.root})"


def _replace_into(src: Path, dest: Path, consume: bool = True) -> None:
    if src.resolve() == dest.resolve():
        return  # staged in place
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        if not consume:
            raise OSError("copy")
        os.replace(src, dest)
    except OSError:  # another file system: copy beside the target, then rename over it
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        os.close(fd)
        try:
            shutil.copyfile(src, name)
            os.replace(name, dest)
        finally:
            Path(name).unlink(missing_ok=True)
        if consume:
            src.unlink(missing_ok=True)


def _unlink_under(root: Path, keys: list[str]) -> None:
    base = root.resolve()
    for key in keys:
        path = (root / key).resolve()
        if path.is_relative_to(base) and path != base:  # (a symlink may point elsewhere)
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
                path.unlink()


def _walk(root: Path, prefix: str = "") -> Iterator[str]:
    if not root.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        if rel_dir == Path("."):
            dirnames[:] = [d for d in dirnames if d not in PRIVATE_TOP]
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            key = (rel_dir / name).as_posix()
            if key.startswith(prefix):
                yield key


# --------------------------------------------------------------------------- S3


class S3Store(MediaStore):
    """Objects in an S3-compatible bucket, through obstore."""

    backend = "s3"

    def __init__(
        self,
        scratch: Path,
        *,
        endpoint: str,
        bucket: str,
        region: str = "us-east-1",
        access_key: str = "",
        secret_key: str = "",
        public_url: str = "",
        url_seconds: int = 3600,
        timeout_seconds: float = 30.0,
    ) -> None:
        from obstore.store import S3Store as _Client

        super().__init__(scratch)
        self.endpoint, self.bucket = endpoint.rstrip("/"), bucket
        self.public_base = public_url.rstrip("/")
        self.url_seconds = url_seconds
        options: Any = {
            "connect_timeout": "5s",
            "timeout": f"{max(int(timeout_seconds), 1)}s",
            "allow_http": endpoint.startswith("http://"),
        }
        self._client = _Client(
            bucket,
            endpoint=self.endpoint,
            region=region,
            access_key_id=access_key or None,
            secret_access_key=secret_key or None,
            skip_signature=not (access_key and secret_key),
            virtual_hosted_style_request=False,
            client_options=options,
            retry_config={
                "max_retries": 2,
                "backoff": {
                    "init_backoff": timedelta(milliseconds=100),
                    "max_backoff": timedelta(seconds=2),
                    "base": 2,
                },
                "retry_timeout": timedelta(seconds=timeout_seconds),
            },
        )

    def describe(self) -> str:
        return f"s3 (bucket {self.bucket} at {self.endpoint})"

    def _error(self, action: str, key: str, exc: BaseException) -> MediaStoreError:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        detail = f"the media store ({self.describe()}) could not {action} {key}: {first}"
        log.warning("%s", detail)
        return MediaStoreError(
            f"the media store could not {action} {key}: it cannot be reached or refused; "
            "nothing was stored, try again later",
            detail,
        )

    @contextlib.contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise self._error(action, key, exc) from exc

    async def put_file(
        self, key: str, src: Path, content_type: str | None = None, *, consume: bool = True
    ) -> None:
        import obstore

        check_key(key)
        digest, size = await asyncio.to_thread(lambda: (sha256_of(src), src.stat().st_size))
        attributes = {"Content-Type": content_type or _content_type(key), SHA256_META: digest}
        with self._errors("store", key):
            # One PUT (or one completed multipart upload): the object appears whole or not
            # at all, so a reader never sees part of it.
            await obstore.put_async(self._client, key, src, attributes=attributes)
            head = await obstore.head_async(self._client, key)
        if head["size"] != size:
            raise MediaStoreError(
                f"the media store did not keep {key} whole; try again later",
                f"the media store ({self.describe()}) kept {head['size']} bytes of {key}, "
                f"not {size}",
            )
        if consume:
            await asyncio.to_thread(src.unlink, missing_ok=True)

    async def info(self, key: str) -> ObjectInfo | None:
        import obstore

        check_key(key)
        try:
            with self._errors("read", key):
                result = await obstore.get_async(self._client, key, options={"head": True})
        except FileNotFoundError:
            return None
        meta, attrs = result.meta, result.attributes
        return ObjectInfo(
            key,
            int(meta["size"]),
            str(attrs.get("Content-Type") or _content_type(key)),
            str(attrs[SHA256_META]) if attrs.get(SHA256_META) else None,
            meta.get("e_tag"),
        )

    async def get_bytes(self, key: str) -> bytes:
        import obstore

        check_key(key)
        with self._errors("read", key):
            result = await obstore.get_async(self._client, key)
            return bytes(await result.bytes_async())

    async def stream(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        import obstore

        check_key(key)
        options: dict[str, Any] = {}
        if start or end is not None:
            options["range"] = (start, end) if end is not None else {"offset": start}
        with self._errors("read", key):
            result = await obstore.get_async(self._client, key, options=options or None)  # type: ignore[arg-type]
            async for chunk in result.stream(min_chunk_size=256 * 1024):
                yield bytes(chunk)

    async def fetch(self, key: str, dest: Path) -> Path:
        part = dest.with_name(f".{dest.name}.part")
        f = await asyncio.to_thread(open, part, "wb")
        try:
            try:
                async for chunk in self.stream(key):
                    await asyncio.to_thread(f.write, chunk)
            finally:
                f.close()
            await asyncio.to_thread(os.replace, part, dest)
        finally:
            await asyncio.to_thread(part.unlink, missing_ok=True)
        return dest

    async def delete(self, keys: Iterable[str | None]) -> None:
        import obstore

        wanted = _valid(keys)
        for i in range(0, len(wanted), 500):
            batch = wanted[i : i + 500]
            with self._errors("delete", batch[0]):
                await obstore.delete_async(self._client, batch)

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        import obstore

        with self._errors("list", prefix or "/"):
            async for batch in obstore.list(self._client, prefix=prefix or None):
                for meta in batch:
                    yield str(meta["path"])

    def public_url(self, key: str) -> str | None:
        return f"{self.public_base}/{check_key(key)}" if self.public_base else None

    async def signed_url(self, key: str) -> str | None:
        import obstore

        check_key(key)
        with self._errors("sign a URL for", key):
            return await obstore.sign_async(
                self._client, "GET", key, timedelta(seconds=self.url_seconds)
            )


# --------------------------------------------------------------------------- the process's


_STORES: dict[tuple[Any, ...], MediaStore] = {}
_LOCK = threading.Lock()


def s3_store(settings: Settings, scratch: Path | None = None) -> S3Store:
    """An :class:`S3Store` from the ``FEDISORA_S3_*`` settings (whatever the backend)."""
    if not settings.s3_bucket or not settings.s3_endpoint:
        raise MediaStoreError(
            "the S3 media store is not configured: set FEDISORA_S3_ENDPOINT and "
            "FEDISORA_S3_BUCKET (and the keys)"
        )
    return S3Store(
        scratch or settings.media_root,
        endpoint=settings.s3_endpoint,
        bucket=settings.s3_bucket,
        region=settings.s3_region,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        public_url=settings.s3_public_url,
        url_seconds=settings.s3_url_seconds,
    )


def media_store(settings: Settings) -> MediaStore:
    """The store that *settings* name (one per distinct configuration, kept)."""
    key = (
        settings.media_backend,
        str(settings.media_root),
        settings.s3_endpoint,
        settings.s3_bucket,
        settings.s3_region,
        settings.s3_access_key,
        settings.s3_secret_key,
        settings.s3_public_url,
        settings.s3_url_seconds,
    )
    with _LOCK:
        store = _STORES.get(key)
        if store is None:
            store = (
                s3_store(settings)
                if settings.media_backend == "s3"
                else LocalStore(settings.media_root)
            )
            _STORES[key] = store
        return store
