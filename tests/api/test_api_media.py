"""Media uploads: input stills, the AI-only rule for videos, GET/PUT, and the /media files."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from apihelpers import login
from factories import local_account
from PIL import Image

from fedisora.app import create_app
from fedisora.config import Settings, load_settings
from fedisora.models import Account, MediaFile, MediaKind
from render.encode import encode_mp4
from render.provenance import (
    InstanceCredentials,
    ProvenanceClaim,
    generate_instance_ca,
    prompt_sha256,
    sign_mp4,
)

DOMAIN = "fedisora.test"


@pytest.fixture(scope="module")
def own_ca() -> InstanceCredentials:
    return generate_instance_ca(DOMAIN)


@pytest.fixture(scope="module")
def peer_ca() -> InstanceCredentials:
    return generate_instance_ca("peer.example")


@pytest.fixture(scope="module")
def stranger_ca() -> InstanceCredentials:
    return generate_instance_ca("stranger.example")


@pytest.fixture
def settings(tmp_path: Path, own_ca: InstanceCredentials, peer_ca: InstanceCredentials) -> Settings:
    data = tmp_path / "data"
    prov = data / "provenance"
    (prov / "trusted").mkdir(parents=True)
    (prov / "root.pem").write_text(own_ca.root_pem)
    (prov / "chain.pem").write_text(own_ca.chain_pem)
    (prov / "key.pem").write_text(own_ca.key_pem)
    (prov / "trusted" / "peer.pem").write_text(peer_ca.root_pem)
    return load_settings(
        {
            "FEDISORA_DOMAIN": DOMAIN,
            "FEDISORA_DATA_DIR": str(data),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_CONFIG": str(tmp_path / "none.env"),
        }
    )


@pytest.fixture
async def client(db: str, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    from dataclasses import replace

    app = create_app(replace(settings, database_url=db), run_work=False, manage_db=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.9", 1234))
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{DOMAIN}") as c:
        yield c


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48), **save: Any) -> bytes:
    """A smooth test picture (red across, green down) encoded as *fmt*."""
    width, height = size
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    pixels[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    pixels[..., 2] = 90
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, format=fmt, **save)
    return out.getvalue()


@pytest.fixture(scope="module")
def unsigned_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = np.arange(9)[:, None, None]
    frames = np.zeros((9, 64, 48, 3), np.uint8)
    frames[..., 0] = (np.arange(48)[None, None, :] * 5 + t * 20) % 256
    frames[..., 1] = (np.arange(64)[None, :, None] * 4) % 256
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    encode_mp4(frames, path, fps=8)
    return path


def signed(src: Path, dst: Path, ca: InstanceCredentials, instance: str, creator: str) -> bytes:
    claim = ProvenanceClaim(
        instance=instance,
        job_id="42",
        model="tiny",
        seed=7,
        prompt_sha256=prompt_sha256("a red kite"),
        creator=creator,
    )
    sign_mp4(src, dst, chain_pem=ca.chain_pem, key_pem=ca.key_pem, claim=claim)
    return dst.read_bytes()


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    data: bytes,
    *,
    name: str = "upload.bin",
    content_type: str = "application/octet-stream",
    version: str = "v2",
    **fields: str,
) -> httpx.Response:
    return await client.post(
        f"/api/{version}/media",
        files={"file": (name, data, content_type)},
        data=fields,
        headers=headers,
    )


async def test_image_upload_is_an_input_still_served_under_media(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    alice = await login(client, await local_account("alice"))
    png = image_bytes("PNG", (64, 48))
    r = await upload(
        client, alice.headers, png, name="still.png", content_type="image/png",
        description="a gradient", focus="0.5,-0.25",
    )  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "image" and isinstance(body["id"], str)
    assert body["description"] == "a gradient" and body["blurhash"]
    assert body["meta"]["original"]["width"] == 64 and body["meta"]["original"]["height"] == 48
    assert body["meta"]["focus"] == {"x": 0.5, "y": -0.25}
    assert body["meta"]["fedisora"] == {"ai_generated": False, "provenance": "input_still"}
    assert body["url"].startswith(f"https://{DOMAIN}/media/uploads/images/")

    row = await MediaFile.get(pk=int(body["id"]))
    assert row.kind == MediaKind.IMAGE and row.account_id == alice.account.pk
    stored = settings.media_root / str(row.file)
    with Image.open(stored) as im, Image.open(io.BytesIO(png)) as sent:
        assert im.format == "PNG" and im.size == (64, 48)
        assert np.array_equal(np.asarray(im.convert("RGB")), np.asarray(sent))  # lossless

    # The file and its preview are served, with Range support, by /media.
    path = body["url"].removeprefix(f"https://{DOMAIN}")
    served = await client.get(path)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.content == stored.read_bytes()
    part = await client.get(path, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == stored.read_bytes()[:10]
    preview = await client.get(body["preview_url"].removeprefix(f"https://{DOMAIN}"))
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"

    # v1 answers the same shape.
    r = await upload(client, alice.headers, png, content_type="image/png", version="v1")
    assert r.status_code == 200 and r.json()["type"] == "image"


async def test_jpeg_metadata_is_not_kept(client: httpx.AsyncClient, settings: Settings) -> None:
    alice = await login(client, await local_account("alice"))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {1: "N", 2: (59.0, 20.0, 0.0)}  # GPS
    jpeg = image_bytes("JPEG", (80, 40), exif=exif.tobytes())
    with Image.open(io.BytesIO(jpeg)) as original:
        assert original.getexif()[0x010F] == "SecretCam"
    r = await upload(client, alice.headers, jpeg, content_type="image/jpeg")
    assert r.status_code == 200, r.text
    row = await MediaFile.get(pk=int(r.json()["id"]))
    assert row.content_type == "image/jpeg"
    data = (settings.media_root / str(row.file)).read_bytes()
    assert b"SecretCam" not in data
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG" and im.size == (80, 40) and not im.getexif()


@pytest.mark.parametrize(
    ("payload", "content_type", "message"),
    [
        (b"", "image/png", "empty"),
        (image_bytes("PNG", (300, 200))[:300], "image/png", "not a readable"),
        (image_bytes("JPEG", (300, 200))[:900], "image/jpeg", "not a readable"),
        (image_bytes("GIF"), "image/gif", "GIF"),
        (image_bytes("BMP"), "image/bmp", "BMP"),
        (image_bytes("PNG", (8, 8)), "image/png", "at least 16 pixels"),
        (b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n", "application/pdf", "AI-only"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40), "audio/wav", "unsupported file type"),
        (bytes(range(256)) * 4, "application/octet-stream", "unsupported file type"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(300), "audio/mpeg", "AI-only"),
    ],
)
async def test_bad_uploads_are_refused(
    client: httpx.AsyncClient, payload: bytes, content_type: str, message: str
) -> None:
    alice = await login(client, await local_account("alice"))
    r = await upload(client, alice.headers, payload, content_type=content_type)
    assert r.status_code == 422, r.text
    assert message in r.json()["error"]
    assert await MediaFile.all().count() == 0


async def test_size_and_pixel_limits(client: httpx.AsyncClient) -> None:
    from fedisora.api.instance import IMAGE_SIZE_LIMIT

    alice = await login(client, await local_account("alice"))
    big = image_bytes("PNG", (32, 32)) + bytes(IMAGE_SIZE_LIMIT)
    r = await upload(client, alice.headers, big, content_type="image/png")
    assert r.status_code == 413 and "larger than 16 MB" in r.json()["error"]
    huge = io.BytesIO()
    Image.new("L", (5000, 4000)).save(huge, format="PNG")
    r = await upload(client, alice.headers, huge.getvalue(), content_type="image/png")
    assert r.status_code == 422 and "5000x4000 pixels" in r.json()["error"]
    r = await client.post("/api/v2/media", data={"description": "x"}, headers=alice.headers)
    assert r.status_code == 422 and "file is required" in r.json()["error"]
    assert await MediaFile.all().count() == 0


async def test_unsigned_and_untrusted_videos_break_the_ai_only_rule(
    client: httpx.AsyncClient,
    unsigned_mp4: Path,
    stranger_ca: InstanceCredentials,
    tmp_path: Path,
) -> None:
    alice = await login(client, await local_account("alice"))
    plain = await asyncio.to_thread(unsigned_mp4.read_bytes)
    r = await upload(client, alice.headers, plain, content_type="video/mp4")
    assert r.status_code == 422
    error = r.json()["error"]
    assert "AI-only rule" in error and "no C2PA provenance manifest" in error

    foreign = signed(unsigned_mp4, tmp_path / "s.mp4", stranger_ca, "stranger.example", "x")
    r = await upload(client, alice.headers, foreign, content_type="video/mp4")
    assert r.status_code == 422 and "does not trust" in r.json()["error"]

    r = await upload(client, alice.headers, b"\x1a\x45\xdf\xa3" + bytes(500), name="a.webm")
    assert r.status_code == 422 and "AI-only rule" in r.json()["error"]
    assert await MediaFile.all().count() == 0
    # Nothing of the refused files stays behind, not even a temporary copy.
    media_root = tmp_path / "data" / "media"
    assert not [p for p in media_root.rglob("*") if p.is_file()]


async def test_tampered_video_is_refused(
    client: httpx.AsyncClient, unsigned_mp4: Path, own_ca: InstanceCredentials, tmp_path: Path
) -> None:
    alice = await login(client, await local_account("alice"))
    good = signed(unsigned_mp4, tmp_path / "ok.mp4", own_ca, DOMAIN, alice.account.uri)
    mdat = good.index(b"mdat") + 64
    bad = good[:mdat] + bytes([good[mdat] ^ 0xFF]) + good[mdat + 1 :]
    r = await upload(client, alice.headers, bad, content_type="video/mp4")
    assert r.status_code == 422 and "does not validate" in r.json()["error"], r.text


async def test_own_render_uploaded_again_can_be_posted(
    client: httpx.AsyncClient,
    settings: Settings,
    unsigned_mp4: Path,
    own_ca: InstanceCredentials,
    tmp_path: Path,
) -> None:
    alice = await login(client, await local_account("alice"))
    video = signed(unsigned_mp4, tmp_path / "mine.mp4", own_ca, DOMAIN, alice.account.uri)
    r = await upload(client, alice.headers, video, content_type="video/mp4", description="kite")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "video" and body["description"] == "kite"
    assert body["meta"]["fedisora"] == {
        "ai_generated": True,
        "provenance": "trusted",
        "audio": False,
    }
    assert body["meta"]["original"]["frame_rate"] == "8/1"
    assert body["meta"]["original"]["width"] == 48 and body["meta"]["original"]["height"] == 64
    row = await MediaFile.get(pk=int(body["id"]))
    assert row.provenance["local"] is True and row.provenance["claim"]["job_id"] == "42"
    assert row.frames == 9 and (settings.media_root / str(row.poster_file)).is_file()
    assert (settings.media_root / str(row.file)).read_bytes() == video

    served = await client.get(body["url"].removeprefix(f"https://{DOMAIN}"))
    assert served.status_code == 200 and served.headers["content-type"] == "video/mp4"
    assert served.headers["accept-ranges"] == "bytes"

    r = await client.post(
        "/api/v1/statuses", data={"status": "again", "media_ids[]": body["id"]},
        headers=alice.headers,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["media_attachments"][0]["id"] == body["id"]
    # Uploading the same clip again names the same attachment: it cannot be posted twice.
    r = await upload(client, alice.headers, video, content_type="video/mp4")
    assert r.status_code == 200 and r.json()["id"] == body["id"]
    assert await MediaFile.filter(kind=MediaKind.VIDEO).count() == 1
    r = await client.post(
        "/api/v1/statuses", data={"media_ids[]": body["id"]}, headers=alice.headers
    )
    assert r.status_code == 422 and "already posted" in r.json()["error"]


async def test_videos_of_trusted_peers_or_of_others_are_kept_but_not_postable(
    client: httpx.AsyncClient,
    unsigned_mp4: Path,
    own_ca: InstanceCredentials,
    peer_ca: InstanceCredentials,
    tmp_path: Path,
) -> None:
    alice = await login(client, await local_account("alice"))
    bob: Account = await local_account("bob")
    peer = signed(unsigned_mp4, tmp_path / "p.mp4", peer_ca, "peer.example", alice.account.uri)
    others = signed(unsigned_mp4, tmp_path / "b.mp4", own_ca, DOMAIN, bob.uri)
    for video in (peer, others):
        r = await upload(client, alice.headers, video, content_type="video/mp4")
        assert r.status_code == 200, r.text
        row = await MediaFile.get(pk=int(r.json()["id"]))
        assert row.provenance["state"] == "trusted" and row.provenance["local"] is False
        r = await client.post(
            "/api/v1/statuses", data={"media_ids[]": str(row.pk)}, headers=alice.headers
        )
        assert r.status_code == 422 and "AI-only rule" in r.json()["error"]


async def test_renders_signed_under_a_retired_root_of_this_instance(
    client: httpx.AsyncClient, settings: Settings, unsigned_mp4: Path, tmp_path: Path
) -> None:
    """A clip rendered here before the root was replaced can still be uploaded and posted;
    the retired root vouches for nothing that names another instance."""
    from render.instance import record_roots

    retired = generate_instance_ca(DOMAIN)
    record_roots(settings, retired.root_pem)
    alice = await login(client, await local_account("alice"))
    mine = signed(unsigned_mp4, tmp_path / "old.mp4", retired, DOMAIN, alice.account.uri)
    r = await upload(client, alice.headers, mine, content_type="video/mp4")
    assert r.status_code == 200, r.text
    row = await MediaFile.get(pk=int(r.json()["id"]))
    assert row.provenance["state"] == "trusted" and row.provenance["local"] is True
    r = await client.post(
        "/api/v1/statuses", data={"media_ids[]": str(row.pk)}, headers=alice.headers
    )
    assert r.status_code == 200, r.text

    elsewhere = signed(unsigned_mp4, tmp_path / "e.mp4", retired, "peer.example", "x")
    r = await upload(client, alice.headers, elsewhere, content_type="video/mp4")
    assert r.status_code == 422 and "does not trust" in r.json()["error"]


async def test_get_and_put_only_for_the_owner(client: httpx.AsyncClient) -> None:
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    r = await upload(client, alice.headers, image_bytes(), content_type="image/png")
    media_id = r.json()["id"]

    r = await client.get(f"/api/v1/media/{media_id}", headers=alice.headers)
    assert r.status_code == 200 and r.json()["id"] == media_id
    for method in ("GET", "PUT"):
        r = await client.request(method, f"/api/v1/media/{media_id}", headers=bob.headers)
        assert r.status_code == 404 and r.json() == {"error": "Record not found"}
    for missing in ("999999999", "abc"):
        r = await client.get(f"/api/v1/media/{missing}", headers=alice.headers)
        assert r.status_code == 404

    r = await client.put(
        f"/api/v1/media/{media_id}",
        json={"description": "new words", "focus": "-1,1"},
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["description"] == "new words"
    assert r.json()["meta"]["focus"] == {"x": -1.0, "y": 1.0}
    r = await client.put(f"/api/v1/media/{media_id}/", data={"focus": ""}, headers=alice.headers)
    assert r.status_code == 200 and "focus" not in r.json()["meta"]
    assert r.json()["description"] == "new words"
    for bad in ("2,0", "x,y", "0.1", "nan,0"):
        r = await client.put(
            f"/api/v1/media/{media_id}", data={"focus": bad}, headers=alice.headers
        )
        assert r.status_code == 422 and "focus" in r.json()["error"]
    r = await client.put(
        f"/api/v1/media/{media_id}", data={"description": "d" * 1501}, headers=alice.headers
    )
    assert r.status_code == 422 and "1500" in r.json()["error"]
    assert (await MediaFile.get(pk=int(media_id))).description == "new words"


async def test_auth_and_scopes(client: httpx.AsyncClient) -> None:
    account = await local_account("alice")
    reader = await login(client, account, scope="read")
    r = await upload(client, {}, image_bytes(), content_type="image/png")
    assert r.status_code == 401
    r = await upload(client, reader.headers, image_bytes(), content_type="image/png")
    assert r.status_code == 403 and "scopes" in r.json()["error"]
    media_writer = await login(client, account, scope="write:media")
    r = await upload(client, media_writer.headers, image_bytes(), content_type="image/png")
    assert r.status_code == 200


async def test_unfinished_and_temporary_files_are_not_served(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    work = settings.media_root / "render-work" / "7"
    work.mkdir(parents=True)
    (work / "encoded.mp4").write_bytes(b"partial")
    clips = settings.media_root / "clips"
    clips.mkdir()
    (clips / ".render-7.mp4.abc.part").write_bytes(b"partial")
    (clips / "render-7.jpg").write_bytes(b"poster")
    assert (await client.get("/media/render-work/7/encoded.mp4")).status_code == 404
    assert (await client.get("/media/clips/.render-7.mp4.abc.part")).status_code == 404
    assert (await client.get("/media/clips/../render-work/7/encoded.mp4")).status_code == 404
    ok = await client.get("/media/clips/render-7.jpg")
    assert ok.status_code == 200 and ok.content == b"poster"
