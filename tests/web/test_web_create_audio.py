"""The create form's Sound box: shown (ticked) where the model renders sound, replaced by a
sentence where it makes silent clips; what is sent reaches the render."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import httpx
import pytest
from factories import local_account
from signed_settings import signed_settings
from webhelpers import DOMAIN, form_csrf, logged_in

from fedisora.app import create_app
from fedisora.config import Settings
from fedisora.models import RenderJob
from render.provenance import InstanceCredentials, generate_instance_ca


@pytest.fixture(scope="module")
def ca() -> InstanceCredentials:
    return generate_instance_ca(DOMAIN)


@pytest.fixture
def settings(tmp_path: Path, ca: InstanceCredentials, db: str) -> Settings:
    made: Settings = signed_settings(tmp_path, ca, db, DOMAIN)
    return made


async def _fields(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    page = await http.get("/create")
    assert page.status_code == 200, page.text
    token = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert token is not None
    return page.text, {"csrf": form_csrf(page.text), "form_token": token.group(1)}


async def _send(http: httpx.AsyncClient, fields: dict[str, str]) -> httpx.Response:
    return await http.post("/create", data=fields, files={"still": ("", b"", "")})


async def test_sound_box_on_a_model_with_sound(settings: Settings) -> None:
    web = httpx.ASGITransport(
        app=create_app(
            dataclasses.replace(settings, render_model="tiny-ltx2"), run_work=False, manage_db=False
        )
    )
    await local_account("alice")
    async with logged_in(web, "alice") as http:
        page, fields = await _fields(http)
        assert re.search(r'<input type="checkbox" name="audio" value="1"[^>]* checked>', page)
        assert "makes silent clips" not in page
        # Ticked (as shown), then unticked: the box is absent from the form data.
        base = {**fields, "prompt": "surf on rocks", "seconds": "1", "audio_shown": "1"}
        loud = await _send(http, {**base, "audio": "1"})
        assert loud.status_code == 303, loud.text[:2000]
        _, fields = await _fields(http)
        quiet = await _send(http, {**base, **fields})
        assert quiet.status_code == 303, quiet.text[:2000]
    jobs = await RenderJob.all().order_by("id")
    assert [j.spec["audio"] for j in jobs] == [True, False]


async def test_a_silent_model_says_so(settings: Settings) -> None:
    web = httpx.ASGITransport(app=create_app(settings, run_work=False, manage_db=False))
    await local_account("alice")
    async with logged_in(web, "alice") as http:
        page, fields = await _fields(http)
        assert "render model makes silent clips" in page
        assert 'name="audio"' not in page
        # A hand-made form asking for sound anyway is refused in words, on the form.
        refused = await _send(
            http,
            {**fields, "prompt": "a bell", "seconds": "1", "audio_shown": "1", "audio": "1"},
        )
        assert refused.status_code == 422
        assert "Sound: model family tiny renders no sound" in refused.text
    assert await RenderJob.all().count() == 0
