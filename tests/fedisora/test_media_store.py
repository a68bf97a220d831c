"""The media store (fedisora.media_store) against a real S3-compatible server (moto's, on
loopback) and on local disk: the same behaviour from both."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from s3server import closed_port

from fedisora.config import ConfigError, load_settings
from fedisora.media_store import (
    LocalStore,
    MediaStore,
    MediaStoreError,
    S3Store,
    check_key,
    media_store,
)


def _settings(tmp_path: Path, **env: str) -> Any:
    return load_settings(
        {
            "FEDISORA_DATA_DIR": str(tmp_path / "data"),
            "FEDISORA_CONFIG": str(tmp_path / "none.env"),
            **env,
        }
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MediaStore:
    if request.param == "local":
        return media_store(_settings(tmp_path))
    s3 = request.getfixturevalue("s3")
    return media_store(_settings(tmp_path, **s3.env(s3.bucket())))


async def test_a_file_put_under_a_key_reads_back_whole_and_is_deleted(
    store: MediaStore, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 5000  # 1.28 MB: more than one read chunk
    src = store.staging("clips/render-1.mp4")
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(data)
    await store.commit("clips/render-1.mp4", None)
    info = await store.info("clips/render-1.mp4")
    assert info is not None and info.size == len(data) and info.content_type == "video/mp4"
    assert await store.get_bytes("clips/render-1.mp4") == data
    assert await store.checksum("clips/render-1.mp4") == hashlib.sha256(data).hexdigest()
    ranged = b"".join([c async for c in store.stream("clips/render-1.mp4", 1000, 1500)])
    assert ranged == data[1000:1500]
    tail = b"".join([c async for c in store.stream("clips/render-1.mp4", len(data) - 10)])
    assert tail == data[-10:]
    async with store.local_copy("clips/render-1.mp4") as path:
        assert path.read_bytes() == data
    assert [k async for k in store.keys()] == ["clips/render-1.mp4"]

    await store.delete(["clips/render-1.mp4", "clips/never-there.mp4", None])
    assert not await store.exists("clips/render-1.mp4")
    with pytest.raises(FileNotFoundError):
        await store.get_bytes("clips/render-1.mp4")
    with pytest.raises(FileNotFoundError):
        async with store.local_copy("clips/render-1.mp4"):
            pass
    assert [k async for k in store.keys()] == []


async def test_a_put_replaces_the_object_whole(store: MediaStore) -> None:
    await store.put_bytes("uploads/images/a.png", b"first version")
    await store.put_bytes("uploads/images/a.png", b"second")
    assert await store.get_bytes("uploads/images/a.png") == b"second"
    assert [k async for k in store.keys("uploads/")] == ["uploads/images/a.png"]


async def test_the_s3_store_records_the_checksum_and_serves_urls(s3: Any, tmp_path: Path) -> None:
    bucket = s3.bucket()
    settings = _settings(
        tmp_path, **s3.env(bucket, FEDISORA_S3_PUBLIC_URL="https://cdn.example/media/")
    )
    store = media_store(settings)
    assert isinstance(store, S3Store) and settings.s3_serve == "public"
    await store.put_bytes("a/b.jpg", b"jpeg bytes")
    info = await store.info("a/b.jpg")
    assert info is not None
    assert info.sha256 == hashlib.sha256(b"jpeg bytes").hexdigest()
    assert store.public_url("a/b.jpg") == "https://cdn.example/media/a/b.jpg"
    signed = await store.signed_url("a/b.jpg")
    assert signed is not None and signed.startswith(f"{s3.endpoint}/{bucket}/a/b.jpg?")
    assert s3.objects(bucket) == {"a/b.jpg": b"jpeg bytes"}


async def test_an_unreachable_store_is_a_clear_error_and_consumes_nothing(
    s3: Any, tmp_path: Path
) -> None:
    settings = _settings(
        tmp_path,
        **s3.env("media-nowhere", FEDISORA_S3_ENDPOINT=f"http://127.0.0.1:{closed_port()}"),
    )
    store = media_store(settings)
    src = store.staging("clips/x.mp4")
    src.parent.mkdir(parents=True)
    src.write_bytes(b"clip")
    with pytest.raises(MediaStoreError, match=r"could not store clips/x\.mp4") as caught:
        await store.commit("clips/x.mp4")
    assert "127.0.0.1" not in str(caught.value)  # for anyone: names no server
    assert "media store (s3 (bucket media-nowhere at http://127.0.0.1:" in caught.value.detail
    assert src.read_bytes() == b"clip"  # kept for the retry
    with pytest.raises(MediaStoreError):
        await store.info("clips/x.mp4")
    assert MediaStoreError.status == 503


def test_keys_never_leave_the_store_or_name_scratch_work() -> None:
    for bad in ("", "/etc/passwd", "../x", "a/../../x", "render-work/1/frames.npy", ".x", "a/.b"):
        with pytest.raises(ValueError):
            check_key(bad)
    assert check_key("clips/render-1.mp4") == "clips/render-1.mp4"


async def test_the_local_store_is_media_root_as_before(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    store = media_store(settings)
    assert isinstance(store, LocalStore) and store.root == settings.media_root
    (settings.media_root / "render-work" / "3").mkdir(parents=True)
    (settings.media_root / "render-work" / "3" / "frames.npy").write_bytes(b"x")
    (settings.media_root / "clips").mkdir()
    (settings.media_root / "clips" / ".render-3.mp4.part").write_bytes(b"x")
    (settings.media_root / "clips" / "render-3.mp4").write_bytes(b"x")
    assert [k async for k in store.keys()] == ["clips/render-3.mp4"]


def test_the_s3_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FEDISORA_S3_BUCKET and FEDISORA_S3_ENDPOINT"):
        _settings(tmp_path, FEDISORA_MEDIA_BACKEND="s3")
    with pytest.raises(ConfigError, match="FEDISORA_MEDIA_BACKEND must be one of local, s3"):
        _settings(tmp_path, FEDISORA_MEDIA_BACKEND="ftp")
    with pytest.raises(ConfigError, match="FEDISORA_S3_ENDPOINT must be an http"):
        _settings(tmp_path, FEDISORA_S3_ENDPOINT="s3.example.com")
    with pytest.raises(ConfigError, match="FEDISORA_S3_BUCKET must be an S3 bucket name"):
        _settings(tmp_path, FEDISORA_S3_BUCKET="A_B")
    with pytest.raises(ConfigError, match="FEDISORA_S3_SERVE=public needs FEDISORA_S3_PUBLIC_URL"):
        _settings(
            tmp_path,
            FEDISORA_MEDIA_BACKEND="s3",
            FEDISORA_S3_ENDPOINT="http://127.0.0.1:9000",
            FEDISORA_S3_BUCKET="media",
            FEDISORA_S3_SERVE="public",
        )
    ok = _settings(
        tmp_path,
        FEDISORA_MEDIA_BACKEND="s3",
        FEDISORA_S3_ENDPOINT="http://127.0.0.1:9000/",
        FEDISORA_S3_BUCKET="media",
    )
    assert (ok.s3_endpoint, ok.s3_serve) == ("http://127.0.0.1:9000", "proxy")
