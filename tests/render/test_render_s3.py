"""An instance whose media is in an S3-compatible bucket (moto's server on loopback, never a
mock in the code): a render (the tiny pipeline) is signed and stored in the bucket, posted,
served to a client through the instance (proxy, with Range), a presigned redirect or the
bucket's public URL, and its objects go when the clip is deleted and collected. A store that
is unreachable when the clip is finished: the render is retried with a clear reason, nothing
of the clip is in the bucket or served meanwhile, and it finishes once the store is back."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from chores import Clock, engine_for, run_chore
from factories import local_account, rendered_video
from s3server import closed_port

from fedisora import urls
from fedisora.app import create_app
from fedisora.config import Settings, load_settings
from fedisora.media_store import media_store
from fedisora.models import Clip, MediaFile, MediaKind, RenderJob, utcnow
from fedisora.services import posts
from fedisora.work import Engine
from fedisora.work.engine import AdvanceResult
from fedisora.work.housekeeping import ensure_chores
from render.queue import STORE_DOWN, build_render_machine
from render.service import cancel_render, submit_render

QUICK = {"prompt": "a paper boat on a pond", "seconds": 0.25}
TABLE = "render_jobs"
BASE = "https://fedisora.test"


def _settings(tmp_path: Path, credentials: Any, env: dict[str, str]) -> Settings:
    data = tmp_path / "data"
    prov = data / "provenance"
    prov.mkdir(parents=True, exist_ok=True)
    (prov / "root.pem").write_text(credentials.root_pem)
    (prov / "chain.pem").write_text(credentials.chain_pem)
    (prov / "key.pem").write_text(credentials.key_pem)
    return load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": str(data),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_CONFIG": str(tmp_path / "none.env"),
            **env,
        }
    )


def _engine(settings: Settings, tiny_loader: Any) -> Engine:
    return Engine(
        [build_render_machine(settings, load=tiny_loader)],
        lease=timedelta(seconds=30),
        context={"settings": settings},
    )


async def _render(engine: Engine, job: RenderJob, until: str = "ready") -> RenderJob:
    while job.state != until:
        assert await engine.advance(TABLE, job.pk) is AdvanceResult.MOVED, job.last_error
        job = await RenderJob.get(pk=job.pk)
    return job


def _local_files(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.relative_to(root).as_posix().startswith("render-work/")
    }


@pytest.fixture
async def client_for(db: str) -> AsyncIterator[Callable[[Settings], httpx.AsyncClient]]:
    made: list[httpx.AsyncClient] = []

    def make(settings: Settings) -> httpx.AsyncClient:
        from dataclasses import replace

        app = create_app(replace(settings, database_url=db), run_work=False, manage_db=False)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.9", 1234))
        c = httpx.AsyncClient(transport=transport, base_url=BASE)
        made.append(c)
        return c

    yield make
    for c in made:
        await c.aclose()


async def test_a_render_is_stored_served_and_deleted_in_the_bucket(
    db: str, tmp_path: Path, credentials: Any, tiny_loader: Any, s3: Any, client_for: Any
) -> None:
    bucket = s3.bucket()
    settings = _settings(tmp_path, credentials, s3.env(bucket))
    engine = _engine(settings, tiny_loader)
    alice = await local_account("alice")
    job = await submit_render(alice, QUICK, settings=settings, engine=engine)
    job = await _render(engine, job)
    media = await MediaFile.get(pk=job.output_id)
    objects = s3.objects(bucket)
    assert set(objects) == {media.file, media.poster_file}
    video = objects[str(media.file)]
    assert hashlib.sha256(video).hexdigest() == media.sha256 and len(video) == media.size
    assert video[4:8] == b"ftyp" and objects[str(media.poster_file)][:2] == b"\xff\xd8"
    assert _local_files(settings.media_root) == set()  # finished files live in the bucket only
    assert not (settings.media_root / "render-work" / str(job.pk)).exists()

    clip = await posts.post_clip(alice, media, caption="a boat")
    client = client_for(settings)
    status = (await client.get(f"/api/v1/statuses/{clip.pk}")).json()
    attachment = status["media_attachments"][0]
    assert attachment["url"] == f"{BASE}/media/{media.file}"
    assert attachment["preview_url"] == f"{BASE}/media/{media.poster_file}"
    path = attachment["url"].removeprefix(BASE)
    whole = await client.get(path)
    assert whole.status_code == 200 and whole.content == video
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    part = await client.get(path, headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.content == video[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(video)}"
    tail = await client.get(path, headers={"Range": "bytes=-16"})
    assert tail.status_code == 206 and tail.content == video[-16:]
    beyond = await client.get(path, headers={"Range": f"bytes={len(video)}-"})
    assert beyond.status_code == 416
    head = await client.head(path)
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(video)
    assert (await client.get("/media/clips/no-such.mp4")).status_code == 404
    assert (await client.get("/media/render-work/1/frames.npy")).status_code == 404

    # redirect: a presigned URL of the bucket, which a client follows to the bytes
    signed = client_for(
        _settings(tmp_path, credentials, s3.env(bucket, FEDISORA_S3_SERVE="redirect"))
    )
    moved = await signed.get(path)
    assert moved.status_code == 307 and moved.headers["location"].startswith(s3.endpoint)
    async with httpx.AsyncClient() as direct:  # (loopback: moto's server)
        assert (await direct.get(moved.headers["location"])).content == video

    # public: links name the bucket's public URL; old /media/ links are sent there
    public_base = f"{s3.endpoint}/{bucket}"
    async with httpx.AsyncClient() as direct:  # not public yet: unsigned reads are refused
        assert (await direct.get(f"{public_base}/{media.file}")).status_code == 403
    s3.make_public(bucket)
    public = _settings(tmp_path, credentials, s3.env(bucket, FEDISORA_S3_PUBLIC_URL=public_base))
    pub_client = client_for(public)
    try:
        status = (await pub_client.get(f"/api/v1/statuses/{clip.pk}")).json()
        url = status["media_attachments"][0]["url"]
        assert url == f"{public_base}/{media.file}"
        async with httpx.AsyncClient() as direct:
            assert (await direct.get(url)).content == video
        old = await pub_client.get(path)
        assert old.status_code == 301 and old.headers["location"] == url
    finally:
        urls.configure(settings)

    # deleted: the clip lets go of its media; the render it came from, discarded, takes its
    # objects out of the bucket
    await posts.delete_clip(alice, await Clip.get(pk=clip.pk))
    assert set(s3.objects(bucket)) == {media.file, media.poster_file}  # still a draft
    await cancel_render(alice, job, engine=engine)
    assert s3.objects(bucket) == {}
    assert not await MediaFile.filter(pk=media.pk).exists()
    assert (await client.get(path)).status_code == 404


async def test_unattached_media_is_collected_from_the_bucket(
    db: str, tmp_path: Path, credentials: Any, s3: Any
) -> None:
    bucket = s3.bucket()
    settings = _settings(tmp_path, credentials, s3.env(bucket))
    store = media_store(settings)
    alice = await local_account("alice")
    await store.put_bytes("uploads/images/old.png", b"png")
    await store.put_bytes("uploads/images/old-small.jpg", b"jpg")
    await store.put_bytes("uploads/images/kept.png", b"png")
    await MediaFile.create(
        account=alice,
        kind=MediaKind.IMAGE,
        file="uploads/images/old.png",
        poster_file="uploads/images/old-small.jpg",
        content_type="image/png",
    )
    posted = await rendered_video(alice)
    await store.put_bytes(str(posted.file), b"mp4")
    await posts.post_clip(alice, posted)
    clock = Clock()
    chores = engine_for(settings, clock)
    await ensure_chores()
    clock.passed = timedelta(hours=25)
    chore = await run_chore(chores, "media_gc")
    assert chore.progress["last"]["counts"] == {"media_removed": 1}
    assert set(s3.objects(bucket)) == {"uploads/images/kept.png", str(posted.file)}


async def test_an_unreachable_store_retries_the_render_and_serves_nothing_half_done(
    db: str, tmp_path: Path, credentials: Any, tiny_loader: Any, s3: Any, client_for: Any
) -> None:
    from moto.server import ThreadedMotoServer

    bucket = s3.bucket()  # moto's buckets are per process: a second server sees it too
    port = closed_port()
    settings = _settings(
        tmp_path, credentials, s3.env(bucket, FEDISORA_S3_ENDPOINT=f"http://127.0.0.1:{port}")
    )
    engine = _engine(settings, tiny_loader)
    alice = await local_account("alice")
    job = await submit_render(alice, QUICK, settings=settings, engine=engine)
    job = await _render(engine, job, until="signing")

    assert await engine.advance(TABLE, job.pk) is AdvanceResult.RETRY
    job = await RenderJob.get(pk=job.pk)
    assert job.state == "signing" and job.attempts == 1
    assert job.last_error.startswith(STORE_DOWN)
    assert f"could not store clips/render-{job.pk}.mp4" in job.last_error
    assert "127.0.0.1" not in job.last_error  # the owner sees it: no server named
    assert job.output_id is None and await MediaFile.all().count() == 0
    assert s3.objects(bucket) == {}
    assert _local_files(settings.media_root) == set()  # the staged clip was not left behind
    client = client_for(settings)
    answer = await client.get(f"/media/clips/render-{job.pk}.mp4")
    assert answer.status_code == 503 and "error" in answer.json()

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()  # the store is back
    try:
        await RenderJob.filter(pk=job.pk).update(next_attempt_at=utcnow())
        job = await _render(engine, job)
        media = await MediaFile.get(pk=job.output_id)
        video = s3.objects(bucket)[str(media.file)]
        assert hashlib.sha256(video).hexdigest() == media.sha256
        served = await client.get(f"/media/{media.file}")
        assert served.status_code == 200 and served.content == video
    finally:
        server.stop()


async def test_a_store_that_stays_down_fails_the_render_with_that_reason(
    db: str, tmp_path: Path, credentials: Any, tiny_loader: Any, s3: Any
) -> None:
    env = s3.env("media-nowhere", FEDISORA_S3_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    settings = _settings(tmp_path, credentials, env)
    engine = _engine(settings, tiny_loader)
    alice = await local_account("alice")
    job = await submit_render(alice, QUICK, settings=settings, engine=engine)
    job = await _render(engine, job, until="signing")
    results = []
    while (await RenderJob.get(pk=job.pk)).state == "signing":
        results.append(await engine.advance(TABLE, job.pk))
        await RenderJob.filter(pk=job.pk).update(next_attempt_at=utcnow())
    assert results[-1] is AdvanceResult.FAILED and set(results[:-1]) == {AdvanceResult.RETRY}
    job = await RenderJob.get(pk=job.pk)
    assert job.state == "failed" and job.last_error.startswith(STORE_DOWN)
    assert await MediaFile.all().count() == 0
    assert _local_files(settings.media_root) == set()
    assert not (settings.media_root / "render-work" / str(job.pk)).exists()


async def test_a_still_and_a_remix_source_come_from_the_bucket(
    db: str, tmp_path: Path, credentials: Any, tiny_loader: Any, s3: Any
) -> None:
    import io

    from PIL import Image

    bucket = s3.bucket()
    settings = _settings(tmp_path, credentials, s3.env(bucket))
    engine = _engine(settings, tiny_loader)
    bob = await local_account("bob")
    still = io.BytesIO()
    Image.new("RGB", (120, 90), (200, 40, 40)).save(still, format="JPEG")
    job = await submit_render(
        bob,
        {"prompt": "the red card flies away", "seconds": 0.25},
        settings=settings,
        engine=engine,
        image=still.getvalue(),
    )
    key = job.spec["input_image"]
    assert key.startswith("render-inputs/") and key in s3.objects(bucket)
    assert _local_files(settings.media_root) == set()  # the worker fetches it from the bucket
    job = await _render(engine, job)
    media = await MediaFile.get(pk=job.output_id)
    assert media.provenance["claim"]["input_image"] is True
    clip = await posts.post_clip(bob, media)

    # a remix conditions on the source clip's middle frame, read from the bucket
    remix = await submit_render(
        bob,
        {"prompt": "the card again", "seconds": 0.25, "remix_of": clip.pk},
        settings=settings,
        engine=engine,
    )
    remix = await _render(engine, remix)
    assert remix.spec["remix_frames"] is True
    assert _local_files(settings.media_root) == set()
