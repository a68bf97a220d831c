"""Creating clips in the browser (web/create.py): the create form and its refusals, one render
per form, the remix source, cameos with their owners' restrictions, the render's page and its
server-sent progress, publishing, the drafts, and an expired session in the middle of it.

The renders that run do so on the tiny model on CPU, through the real render queue (two full
renders in this module: they cost seconds each)."""

from __future__ import annotations

import asyncio
import io
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from factories import local_account, rendered_video
from PIL import Image
from signed_settings import signed_settings
from webhelpers import DOMAIN, browser, form_csrf, log_in, logged_in

from fedisora.config import Settings
from fedisora.models import Clip, MediaFile, RenderJob, WebSession
from fedisora.services import posts
from fedisora.work import Engine
from fedisora.work.runner import InProcessRunner
from render.provenance import InstanceCredentials, generate_instance_ca


@pytest.fixture(scope="module")
def tiny() -> Any:
    from render.pipeline import load_pipeline

    return load_pipeline("tiny", device="cpu")


@pytest.fixture(scope="module")
def ca() -> InstanceCredentials:
    return generate_instance_ca(DOMAIN)


@pytest.fixture
def settings(tmp_path: Path, ca: InstanceCredentials, db: str) -> Settings:
    """The web tests' settings, with the instance's provenance keys (renders are signed)."""
    return signed_settings(tmp_path, ca, db, DOMAIN)


@pytest.fixture
def engine(settings: Settings, tiny: Any, web: httpx.ASGITransport) -> Engine:
    from render.queue import build_render_machine

    async def load(_settings: Any) -> Any:
        return tiny

    built = Engine(
        [build_render_machine(settings, load=load)],
        lease=timedelta(seconds=30),
        context={"settings": settings},
    )
    web.app.state.engine = built  # type: ignore[attr-defined]
    return built


async def drain(engine: Engine) -> None:
    await InProcessRunner(engine, queues=("render",), concurrency=1, poll_interval=0.05).drain(90)


def still_png() -> bytes:
    x = np.linspace(0, 255, 96, dtype=np.uint8)
    pixels = np.stack(np.broadcast_arrays(x[None, :], x[::-1, None], x[None, :] // 2), axis=-1)
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels), "RGB").save(out, format="PNG")
    return out.getvalue()


def form_token(page: str) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', page)
    assert found is not None, page[:2000]
    return found.group(1)


async def create_form(http: httpx.AsyncClient, query: str = "") -> dict[str, str]:
    """The hidden fields of a fresh create form."""
    page = await http.get(f"/create{query}")
    assert page.status_code == 200, page.text
    return {"csrf": form_csrf(page.text), "form_token": form_token(page.text)}


async def submit(
    http: httpx.AsyncClient, fields: dict[str, Any], files: dict[str, Any] | None = None
) -> httpx.Response:
    # multipart/form-data, as the page's form sends it
    return await http.post("/create", data=fields, files=files or {"still": ("", b"", "")})


def events(body: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            out.append((fields["event"], json.loads(fields["data"])))
    return out


def job_id_of(response: httpx.Response) -> int:
    assert response.status_code == 303, response.text[:3000]
    found = re.fullmatch(r"/renders/(\d+)", response.headers["location"])
    assert found is not None, response.headers["location"]
    return int(found.group(1))


def alert(page: str) -> str:
    found = re.search(r'role="alert"[^>]*>(.*?)</div>|role="alert">(.*?)</p>', page, re.S)
    assert found is not None, page[:3000]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1) or found.group(2))).strip()


# --------------------------------------------------------------------------- the form


async def test_the_form_and_its_refusals(web: httpx.ASGITransport, settings: Settings) -> None:
    await local_account("alice")
    async with browser(web) as anonymous:
        r = await anonymous.get("/create")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/create"
        r = await anonymous.post("/create", data={"prompt": "x"})
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    async with logged_in(web, "alice") as http:
        page = await http.get("/create")
        assert page.status_code == 200
        html = page.text
        assert 'enctype="multipart/form-data"' in html and 'name="prompt"' in html
        assert 'max="10"' in html and "Up to 10 seconds on this instance." in html
        assert 'value="9:16" checked' in html and 'value="1:1"' in html and 'value="16:9"' in html
        assert 'name="still" type="file"' in html
        assert "No likeness is available to you" in html
        assert '<script type="module" src="/static/create.js">' in html
        assert "<script>" not in html and " style=" not in html
        assert (await http.get("/static/create.js")).status_code == 200
        assert (await http.get("/static/create.css")).status_code == 200

        hidden = await create_form(http)
        cases: list[tuple[dict[str, Any], dict[str, Any] | None, str, int]] = [
            ({"prompt": "x" * 2001}, None, "Prompt: is 2001 characters long", 422),
            ({"prompt": "", "seconds": "2"}, None, "Prompt: must not be empty", 422),
            ({"prompt": "a kite", "seconds": "60"}, None, "Length: must be more than 0", 422),
            ({"prompt": "a kite", "seconds": "soon"}, None, "Length: must be a number", 422),
            ({"prompt": "a kite", "aspect": "4:3"}, None, "Aspect: unknown aspect", 422),
            ({"prompt": "a kite", "seed": "-3"}, None, "Seed: must be a whole number", 422),
            (
                {"prompt": "a kite over the sea", "seconds": "2"},
                {"still": ("notes.txt", b"hello, not an image", "text/plain")},
                "Still image: the file is not a readable JPEG, PNG or WebP image",
                422,
            ),
            (
                {"prompt": "a kite over the sea", "seconds": "2"},
                {"still": ("fake.png", b"\x89PNG\r\n\x1a\n broken", "image/png")},
                "Still image: the file is not a readable JPEG, PNG or WebP image",
                422,
            ),
            (
                {"prompt": "a kite", "seconds": "2"},
                {"still": ("clip.mp4", b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64, "video/mp4")},
                "Still image: the still must be a JPEG, PNG or WebP image; this file is a video",
                422,
            ),
        ]
        for fields, files, message, status in cases:
            r = await submit(http, {**hidden, **fields}, files)
            assert r.status_code == status, (fields, r.status_code, r.text[:500])
            assert message in alert(r.text), (message, alert(r.text))
            # the values entered are kept, and the same form token (nothing was queued)
            assert form_token(r.text) == hidden["form_token"]
            if fields.get("prompt"):
                assert f">{fields['prompt']}</textarea>" in r.text
            if "seconds" in fields:
                assert f'value="{fields["seconds"]}"' in r.text
            assert 'aria-invalid="true"' in r.text
        # No render was queued, and the refused stills left no media.
        assert await RenderJob.all().count() == 0
        assert await MediaFile.all().count() == 0

        # The CSRF token is checked.
        r = await submit(http, {"form_token": hidden["form_token"], "prompt": "a kite"})
        assert r.status_code == 403 and "The form expired" in alert(r.text)
        r = await submit(http, {**hidden, "csrf": "forged", "prompt": "a kite"})
        assert r.status_code == 403
        assert await RenderJob.all().count() == 0

        # A valid still is stored as the API stores it, and kept when the form is refused.
        r = await submit(
            http,
            {**hidden, "prompt": "", "seconds": "1"},
            {"still": ("s.png", still_png(), "image/png")},
        )
        assert r.status_code == 422 and "Prompt: must not be empty" in alert(r.text)
        (kept,) = await MediaFile.all()
        assert kept.kind == "image"
        assert f'name="media_id" value="{kept.pk}"' in r.text and "Your still is kept" in r.text
        r = await submit(
            http, {**hidden, "prompt": "the still comes alive", "seconds": "1", "media_id": kept.pk}
        )
        job = await RenderJob.get(pk=job_id_of(r))
        assert job.spec["kind"] == "image" and job.spec["input_image"]
        assert job.spec["aspect"] == "9:16" and job.spec["seconds"] == 1.0

        # Quotas: three at a time; the fourth is refused in words.
        for n in range(2):
            fresh = await create_form(http)
            job_id_of(await submit(http, {**fresh, "prompt": f"clip {n}", "seconds": "1"}))
        fresh = await create_form(http)
        r = await submit(http, {**fresh, "prompt": "one too many", "seconds": "1"})
        assert r.status_code == 429
        assert "Render limit reached: you have 3 renders queued or running" in alert(r.text)
        assert ">one too many</textarea>" in r.text
        assert await RenderJob.all().count() == 3

    # Another person cannot use alice's still.
    await local_account("bob")
    async with logged_in(web, "bob") as bob:
        hidden = await create_form(bob)
        r = await submit(bob, {**hidden, "prompt": "steal", "media_id": kept.pk})
        assert r.status_code == 422 and "not yours" in alert(r.text)


async def test_a_form_sent_twice_queues_one_render(web: httpx.ASGITransport) -> None:
    await local_account("alice")
    async with logged_in(web, "alice") as http:
        hidden = await create_form(http)
        fields = {**hidden, "prompt": "a lighthouse", "seconds": "1"}
        first = job_id_of(await submit(http, fields))
        again = job_id_of(await submit(http, fields))
        assert again == first
        # Sent twice at once (a double click): still one.
        hidden = await create_form(http)
        fields = {**hidden, "prompt": "a harbour", "seconds": "1"}
        a, b = await asyncio.gather(submit(http, fields), submit(http, fields))
        assert job_id_of(a) == job_id_of(b) != first
        assert await RenderJob.all().count() == 2


async def test_remix_source_shown_or_refused_in_words(web: httpx.ASGITransport) -> None:
    alice = await local_account("alice")
    await local_account("bob")
    public = await posts.post_clip(alice, await rendered_video(alice), caption="the original")
    private = await posts.post_clip(
        alice, await rendered_video(alice), caption="for followers", visibility="private"
    )
    async with logged_in(web, "bob") as http:
        page = await http.get(f"/create?remix_of={public.pk}")
        assert page.status_code == 200
        assert "Remix of" in page.text and "the original" in page.text
        assert f'name="remix_of" value="{public.pk}"' in page.text

        for target in (str(private.pk), "123456789", "not-a-clip"):
            page = await http.get(f"/create?remix_of={target}")
            assert page.status_code == 404, target
            assert "This clip cannot be remixed" in alert(page.text)
            assert 'name="prompt"' in page.text  # the form is still there
            assert "for followers" not in page.text

        hidden = await create_form(http)
        r = await submit(http, {**hidden, "prompt": "my take", "remix_of": str(private.pk)})
        assert r.status_code == 404 and "This clip cannot be remixed" in alert(r.text)
        assert ">my take</textarea>" in r.text
        assert await RenderJob.all().count() == 0

        hidden = await create_form(http, f"?remix_of={public.pk}")
        r = await submit(
            http, {**hidden, "prompt": "my take", "seconds": "1", "remix_of": public.pk}
        )
        job = await RenderJob.get(pk=job_id_of(r))
        assert job.spec["kind"] == "remix" and job.spec["remix_clip_id"] == public.pk
        page = await http.get(f"/renders/{job.pk}")
        assert "Remix of" in page.text and "the original" in page.text


async def test_cameo_picker_and_restrictions(web: httpx.ASGITransport, settings: Settings) -> None:
    from likenesses import verified_likeness

    carol = await local_account("carol")
    await local_account("bob")
    async with logged_in(web, "bob") as http:
        page = await http.get("/create")
        assert "No likeness is available to you" in page.text
        await verified_likeness(
            carol, settings, audience="everyone", restrictions="No politics, no ads."
        )
        page = await http.get("/create")
        assert f'name="cameos" value="{carol.pk}"' in page.text
        assert "No politics, no ads." in page.text and 'name="accept_restrictions"' in page.text

        hidden = await create_form(http)
        fields = {**hidden, "prompt": "carol waves", "seconds": "1", "cameos": str(carol.pk)}
        r = await submit(http, fields)
        assert r.status_code == 422
        assert "@carol asks you to accept their restrictions" in alert(r.text)
        assert f'value="{carol.pk}" checked' in r.text
        assert await RenderJob.all().count() == 0

        r = await submit(http, {**fields, "accept_restrictions": "1"})
        job = await RenderJob.get(pk=job_id_of(r))
        assert job.spec["cameos"] == [carol.pk]
        page = await http.get("/create")
        assert "(you accepted them)" in page.text

        # A likeness whose owner narrowed who may use it: refused in words.
        from fedisora.services.likeness import update_policy

        await update_policy(carol, audience="me")
        page = await http.get("/create")
        assert "No likeness is available to you" in page.text
        hidden = await create_form(http)
        r = await submit(
            http,
            {**hidden, "prompt": "again", "seconds": "1", "cameos": str(carol.pk)}
            | {"accept_restrictions": "1"},
        )
        assert r.status_code in (403, 422), r.text[:500]
        message = alert(r.text)
        assert message.startswith("Cameos:") and "@carol lets" in message, message
        assert await RenderJob.all().count() == 1


# --------------------------------------------------------------------------- rendering


async def test_render_progress_publish_and_drafts(
    web: httpx.ASGITransport, engine: Engine, settings: Settings
) -> None:
    await local_account("alice")
    await local_account("bob")
    async with logged_in(web, "alice") as http:
        hidden = await create_form(http)
        job_id = job_id_of(
            await submit(http, {**hidden, "prompt": "a red kite over dunes", "seconds": "1"})
        )
        hidden = await create_form(http)
        other_id = job_id_of(
            await submit(
                http, {**hidden, "prompt": "a square sea", "seconds": "1", "aspect": "1:1"}
            )
        )

        page = await http.get(f"/renders/{job_id}")
        assert page.status_code == 200
        html = page.text
        assert 'role="progressbar"' in html and 'aria-valuenow="0"' in html
        assert 'aria-valuemin="0"' in html and 'aria-valuemax="100"' in html
        assert "In the queue: position 1" in html
        assert f'data-render-events="/renders/{job_id}/events"' in html
        assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in html
        assert f'action="/renders/{job_id}/cancel"' in html
        drafts = await http.get("/drafts")
        assert "a red kite over dunes" in drafts.text and "a square sea" in drafts.text

        async with logged_in(web, "bob") as bob:
            for path in ("", "/events"):
                assert (await bob.get(f"/renders/{job_id}{path}")).status_code == 404
            r = await bob.post(
                f"/renders/{job_id}/cancel", data={"csrf": form_csrf((await bob.get("/")).text)}
            )
            assert r.status_code == 404
        async with browser(web) as anonymous:
            assert (await anonymous.get(f"/renders/{job_id}/events")).status_code == 401

        # The owner's stream while it renders: the queue position, steps, then the end.
        watching = asyncio.create_task(http.get(f"/renders/{job_id}/events"))
        await asyncio.sleep(0.3)
        await drain(engine)
        r = await asyncio.wait_for(watching, 60)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        seen = events(r.text)
        kinds = [k for k, _ in seen]
        assert kinds[-1] == "end" and set(kinds[:-1]) == {"progress"}
        first, last = seen[0][1], seen[-2][1]
        assert first["state"] == "queued" and first["label"] == "In the queue: position 1"
        assert last["state"] == "ready" and last["percent"] == 100 and last["label"] == "Ready"
        assert any(d["label"].startswith("Rendering: step ") for _, d in seen[:-1]), seen
        assert seen[-1][1] == {"id": str(job_id), "state": "ready"}

        # Ready: a looping preview and the Publish form.
        page = await http.get(f"/renders/{job_id}")
        job = await RenderJob.get(pk=job_id)
        assert job.state == "ready" and job.output_id is not None
        output = await MediaFile.get(pk=job.output_id)
        assert f'src="https://{DOMAIN}/media/{output.file}"' in page.text
        assert " loop " in page.text and 'role="progressbar"' not in page.text
        assert f'action="/renders/{job_id}/publish"' in page.text and "Keep as draft" in page.text
        csrf = form_csrf(page.text)

        # A caption over the limit is refused in the page, the values kept.
        r = await http.post(
            f"/renders/{job_id}/publish",
            data={"csrf": csrf, "caption": "y" * 1001, "visibility": "unlisted"},
        )
        assert r.status_code == 422 and "1000" in alert(r.text)
        assert 'value="unlisted" checked' in r.text
        r = await http.post(f"/renders/{job_id}/publish", data={"caption": "no token"})
        assert r.status_code == 403
        assert await Clip.all().count() == 0

        fields = {
            "csrf": csrf,
            "caption": "my kite #render",
            "visibility": "unlisted",
            "spoiler_text": "bright colours",
        }
        r = await http.post(f"/renders/{job_id}/publish", data=fields)
        assert r.status_code == 303
        clip = await Clip.get(render_job_id=job_id)
        assert r.headers["location"] == f"/@alice/{clip.pk}"
        assert clip.visibility == "unlisted" and clip.caption == "my kite #render"
        assert clip.spoiler_text == "bright colours" and clip.sensitive
        assert clip.media_id == output.pk
        media = await MediaFile.get(pk=output.pk)
        assert media.provenance["state"] == "trusted" and media.provenance["local"] is True
        assert (await RenderJob.get(pk=job_id)).state == "published"
        clip_page = await http.get(r.headers["location"])
        assert clip_page.status_code == 200 and "Verified AI provenance" in clip_page.text
        # The same form again: the same clip, not a second one.
        r = await http.post(f"/renders/{job_id}/publish", data=fields)
        assert r.status_code == 303 and r.headers["location"] == f"/@alice/{clip.pk}"
        assert await Clip.all().count() == 1
        page = await http.get(f"/renders/{job_id}")
        assert "See the clip" in page.text

        # The drafts: the other render is ready there, with publish and delete.
        drafts = await http.get("/drafts")
        assert "a red kite over dunes" not in drafts.text and "a square sea" in drafts.text
        assert f'href="/renders/{other_id}#publish"' in drafts.text
        other = await RenderJob.get(pk=other_id)
        assert other.state == "ready" and other.output_id is not None
        video = settings.media_root / str((await MediaFile.get(pk=other.output_id)).file)
        assert video.exists()
        r = await http.post(
            f"/renders/{other_id}/cancel", data={"csrf": form_csrf(drafts.text), "back": "drafts"}
        )
        assert r.status_code == 303 and r.headers["location"] == "/drafts"
        assert (await RenderJob.get(pk=other_id)).state == "cancelled"
        assert not video.exists() and await MediaFile.filter(pk=other.output_id).count() == 0
        drafts = await http.get("/drafts")
        assert "a square sea" not in drafts.text and "No drafts" in drafts.text
        # Deleting it again is refused in words.
        r = await http.post(
            f"/renders/{other_id}/cancel", data={"csrf": form_csrf(drafts.text), "back": "drafts"}
        )
        assert r.status_code == 409 and "already cancelled" in alert(r.text)


async def test_drafts_cancel_and_an_expired_session(web: httpx.ASGITransport) -> None:
    await local_account("alice")
    async with logged_in(web, "alice") as http:
        hidden = await create_form(http)
        job_id = job_id_of(await submit(http, {**hidden, "prompt": "a slow tide", "seconds": "1"}))
        page = await http.get(f"/renders/{job_id}")
        r = await http.post(f"/renders/{job_id}/cancel", data={"csrf": form_csrf(page.text)})
        assert r.status_code == 303 and r.headers["location"] == f"/renders/{job_id}"
        page = await http.get(f"/renders/{job_id}")
        assert (await RenderJob.get(pk=job_id)).state == "cancelled"
        assert "Cancelled: cancelled by its owner" in page.text
        assert 'role="progressbar"' not in page.text

        hidden = await create_form(http)
        job_id = job_id_of(await submit(http, {**hidden, "prompt": "a long night", "seconds": "1"}))
        # The tab is closed and the session expires while it renders.
        await WebSession.all().delete()
        r = await http.get(f"/renders/{job_id}")
        assert r.status_code == 303 and r.headers["location"] == f"/login?next=/renders/{job_id}"
        assert (await http.get(f"/renders/{job_id}/events")).status_code == 401
        r = await http.get("/drafts")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/drafts"
        # The render went on regardless; logging in leads back to it and it is in the drafts.
        assert (await RenderJob.get(pk=job_id)).state == "queued"
        login = await http.get(f"/login?next=/renders/{job_id}")
        r = await http.post(
            "/login",
            data={
                "csrf": form_csrf(login.text),
                "login": "alice",
                "password": "correct horse battery",
                "next": f"/renders/{job_id}",
            },
        )
        assert r.status_code == 303 and r.headers["location"] == f"/renders/{job_id}"
        page = await http.get(f"/renders/{job_id}")
        assert page.status_code == 200 and "In the queue" in page.text
        drafts = await http.get("/drafts")
        assert "a long night" in drafts.text and "a slow tide" not in drafts.text
    async with browser(web) as other:
        await log_in(other, "alice")
        assert "a long night" in (await other.get("/drafts")).text
