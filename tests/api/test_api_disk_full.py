"""A full media disk (a real small tmpfs, or a loop ext4 where tmpfs cannot be mounted) answers
507 Insufficient Storage with a clear error, and leaves no file and no row behind: uploads,
profile pictures, a render's input still; also when the disk fills half way through a request
(the first file fits, the next does not). SQLite and PostgreSQL."""

from __future__ import annotations

import io
import math
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from apihelpers import Login, login
from factories import local_account
from PIL import Image
from throwaway import fill_filesystem, small_filesystem

from fedisora import outages
from fedisora.app import create_app
from fedisora.config import Settings, load_settings
from fedisora.models import Account, MediaFile, RenderJob

PAGE = 4096
FILLER = ".filler"


@dataclass
class Disk:
    root: Path  # the media root, on a file system of its own

    def fill(self, leave: int = 0) -> None:
        fill_filesystem(self.root / FILLER, leave=leave)

    def free(self) -> None:
        (self.root / FILLER).unlink()

    def files(self) -> set[str]:
        return {
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and p.name != FILLER
        }


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    root = tmp_path / "data" / "media"
    with small_filesystem(root, 4 * 1024 * 1024):
        for folder in ("uploads/images", "render-inputs"):  # as a used instance has them
            (root / folder).mkdir(parents=True)
        yield Disk(root)


@pytest.fixture
async def http(db: str, tmp_path: Path, disk: Disk) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": str(tmp_path / "data"),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_DATABASE_URL": db,
        }
    )
    assert settings.media_root == disk.root
    app = create_app(settings, run_work=False, manage_db=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.9", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="https://fedisora.test") as c:
        c.settings = settings  # type: ignore[attr-defined]
        yield c


def _photo(side: int = 256) -> bytes:
    """A noisy PNG: it compresses badly, so its clean copy and preview take several pages."""
    rng = np.random.default_rng(7)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(out, "PNG")
    return out.getvalue()


def _pages(nbytes: int) -> int:
    return math.ceil(nbytes / PAGE) * PAGE


def _stored_size(settings: Settings, tmp: Path) -> tuple[int, int]:
    """What ``store_image`` writes for :func:`_photo`: the clean copy and its preview, in
    bytes of whole pages (measured on another disk)."""
    from dataclasses import replace

    from fedisora.api.media import store_image

    stored = store_image(_photo(), replace(settings, media_root=tmp))
    image = (tmp / str(stored.values["file"])).stat().st_size
    preview = (tmp / str(stored.values["poster_file"])).stat().st_size
    assert _pages(preview) >= 2 * PAGE  # so that a page of slack never lets it fit
    return _pages(image), _pages(preview)


def _full(r: httpx.Response) -> None:
    assert r.status_code == 507, r.text
    assert r.json() == {"error": outages.DISK_FULL}
    assert r.headers["Access-Control-Allow-Origin"] == "*"


async def _upload(http: httpx.AsyncClient, me: Login) -> httpx.Response:
    return await http.post(
        "/api/v2/media", files={"file": ("still.png", _photo(), "image/png")}, headers=me.headers
    )


async def test_an_upload_to_a_full_disk_is_507_and_stores_nothing(
    http: httpx.AsyncClient, disk: Disk
) -> None:
    me = await login(http, await local_account("ann"))
    disk.fill()
    _full(await _upload(http, me))
    assert disk.files() == set() and await MediaFile.all().count() == 0

    disk.free()  # room again: the same upload goes through
    r = await _upload(http, me)
    assert r.status_code == 200, r.text
    assert len(disk.files()) == 2 and await MediaFile.all().count() == 1


async def test_an_upload_whose_preview_does_not_fit_leaves_no_image(
    http: httpx.AsyncClient, disk: Disk, tmp_path: Path
) -> None:
    me = await login(http, await local_account("ann"))
    image, _ = _stored_size(http.settings, tmp_path / "measure")  # type: ignore[attr-defined]
    disk.fill(leave=image + PAGE // 2)  # the image fits, its preview does not
    _full(await _upload(http, me))
    assert disk.files() == set() and await MediaFile.all().count() == 0


async def test_profile_pictures_on_a_full_disk(
    http: httpx.AsyncClient, disk: Disk, tmp_path: Path
) -> None:
    me = await login(http, await local_account("ann"))
    before = await Account.get(pk=me.account.pk)
    pictures = {
        "avatar": ("a.png", _photo(), "image/png"),
        "header": ("h.png", _photo(), "image/png"),
    }
    image, preview = _stored_size(http.settings, tmp_path / "measure")  # type: ignore[attr-defined]
    for leave in (0, image + preview + PAGE // 2):  # nothing fits; the avatar fits, not the header
        disk.fill(leave=leave)
        r = await http.patch(
            "/api/v1/accounts/update_credentials",
            data={"display_name": "Ann"},
            files=pictures,
            headers=me.headers,
        )
        _full(r)
        assert disk.files() == set(), leave
        after = await Account.get(pk=me.account.pk)
        assert (after.avatar_url, after.header_url, after.display_name) == (
            before.avatar_url,
            before.header_url,
            before.display_name,
        )
        disk.free()


async def test_a_render_input_still_on_a_full_disk(http: httpx.AsyncClient, disk: Disk) -> None:
    me = await login(http, await local_account("ann"))
    r = await _upload(http, me)
    assert r.status_code == 200, r.text
    uploaded = disk.files()
    disk.fill()
    r = await http.post(
        "/api/fedisora/v1/renders",
        data={"prompt": "the still, moving", "media_id": r.json()["id"], "seconds": "1"},
        headers=me.headers,
    )
    _full(r)
    assert disk.files() == uploaded and await RenderJob.all().count() == 0
    assert not os.listdir(disk.root / "render-inputs")
