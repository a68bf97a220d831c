"""Uploads (stills, avatars, signed clips) of an instance whose media is in an S3-compatible
bucket (moto's server on loopback): stored in the bucket, served back through /media/; a
store that cannot be reached answers 503 with a JSON error and keeps nothing (no row, no
object, no staged file). Account deletion takes the account's objects out of the bucket."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from apihelpers import login
from factories import local_account
from PIL import Image
from s3server import closed_port

from fedisora.app import create_app
from fedisora.config import Settings, load_settings
from fedisora.models import Account, MediaFile
from fedisora.services.account_deletion import delete_local_account

BASE = "https://fedisora.test"


def _png(size: tuple[int, int], colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
async def client_for(db: str, tmp_path: Path) -> AsyncIterator[Callable[[dict[str, str]], Any]]:
    made: list[httpx.AsyncClient] = []

    def make(env: dict[str, str]) -> tuple[httpx.AsyncClient, Settings]:
        settings = load_settings(
            {
                "FEDISORA_DOMAIN": "fedisora.test",
                "FEDISORA_DATA_DIR": str(tmp_path / "data"),
                "FEDISORA_SECRET_KEY": "s" * 40,
                "FEDISORA_CONFIG": str(tmp_path / "none.env"),
                "FEDISORA_DATABASE_URL": db,
                **env,
            }
        )
        app = create_app(settings, run_work=False, manage_db=False)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.9", 1234))
        c = httpx.AsyncClient(transport=transport, base_url=BASE)
        made.append(c)
        return c, settings

    yield make
    for c in made:
        await c.aclose()


def _staged(settings: Settings) -> list[Path]:
    return [p for p in settings.media_root.rglob("*") if p.is_file()]


async def test_uploads_go_to_the_bucket_and_come_back(s3: Any, client_for: Any) -> None:
    bucket = s3.bucket()
    client, settings = client_for(s3.env(bucket))
    account = await local_account("painter")
    me = await login(client, account)
    still = _png((64, 48), "green")
    r = await client.post(
        "/api/v2/media", files={"file": ("s.png", still, "image/png")}, headers=me.headers
    )
    assert r.status_code == 200, r.text
    media = await MediaFile.get(pk=int(r.json()["id"]))
    objects = s3.objects(bucket)
    assert set(objects) == {media.file, media.poster_file}
    served = await client.get(r.json()["url"].removeprefix(BASE))
    assert served.status_code == 200 and served.content == objects[str(media.file)]

    r = await client.patch(
        "/api/v1/accounts/update_credentials",
        files={"avatar": ("a.png", _png((64, 64), "red"), "image/png")},
        headers=me.headers,
    )
    assert r.status_code == 200, r.text
    avatar = r.json()["avatar"]
    served = await client.get(avatar.removeprefix(BASE))
    with Image.open(io.BytesIO(served.content)) as image:
        assert image.size == (64, 64) and image.getpixel((5, 5)) == (255, 0, 0)
    assert len(s3.objects(bucket)) == 4  # the still and the avatar, each with its preview
    assert _staged(settings) == []  # nothing left on local disk

    await delete_local_account(await Account.get(pk=account.pk), settings=settings)
    assert s3.objects(bucket) == {}


async def test_an_unreachable_store_is_a_503_and_keeps_nothing(s3: Any, client_for: Any) -> None:
    env = s3.env("media-nowhere", FEDISORA_S3_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    client, settings = client_for(env)
    me = await login(client, await local_account("painter"))
    r = await client.post(
        "/api/v2/media",
        files={"file": ("s.png", _png((64, 48), "green"), "image/png")},
        headers=me.headers,
    )
    assert r.status_code == 503
    assert "media store could not store uploads/images/" in r.json()["error"]
    assert "127.0.0.1" not in r.text
    assert await MediaFile.all().count() == 0
    assert _staged(settings) == []
    r = await client.patch(
        "/api/v1/accounts/update_credentials",
        files={"avatar": ("a.png", _png((64, 64), "red"), "image/png")},
        data={"display_name": "Painter"},
        headers=me.headers,
    )
    assert r.status_code == 503 and "error" in r.json()
    after = (await client.get("/api/v1/accounts/verify_credentials", headers=me.headers)).json()
    assert after["display_name"] != "Painter"  # nothing changed
    assert _staged(settings) == []
