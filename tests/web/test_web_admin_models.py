"""``/admin/models``: the catalogue, the installed models and the one in use, pulls queued as
durable work a render worker runs (never in the request), putting a model in use (admins
only, CSRF-checked, audited). Nothing is downloaded: the worker's pull reads a tiny
checkpoint laid out as the hub's cache."""

from __future__ import annotations

import html
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from factories import local_account
from hub_layout import blob_of, lay_out
from webhelpers import browser, form_csrf, logged_in

from fedisora.config import Settings
from fedisora.models import Account, AuditEntry, ModelPull
from fedisora.work import Engine
from fedisora.work.runner import InProcessRunner
from render import model_pulls, models

WAN = "wan2.1-t2v-1.3b"
REPO = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"


@pytest.fixture(scope="module")
def saved_wan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from render.tiny import build_tiny_wan

    where = tmp_path_factory.mktemp("saved") / "wan"
    build_tiny_wan().save_pretrained(where)
    return where


def _worker(settings: Settings) -> InProcessRunner:
    """The render queue's runner, serving only model pulls."""
    engine = Engine(
        model_pulls.machines(settings), lease=timedelta(seconds=30), context={"settings": settings}
    )
    return InProcessRunner(engine, queues=("render",), concurrency=1, poll_interval=0.05)


async def test_only_admins_see_the_page_and_its_actions(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    models.reset()
    await local_account("boss", admin=True)
    await local_account("somebody")
    async with browser(web) as anon:
        assert (await anon.get("/admin/models")).status_code == 401
    async with logged_in(web, "somebody") as user:
        assert (await user.get("/admin/models")).status_code == 403
        token = form_csrf((await user.get("/create")).text)
        r = await user.post("/admin/models/use", data={"csrf": token, "name": "tiny-ltx"})
        assert r.status_code == 403
        r = await user.post("/admin/models/pull", data={"csrf": token, "name": WAN})
        assert r.status_code == 403
    assert await ModelPull.all().count() == 0
    async with logged_in(web, "boss") as admin:
        page = await admin.get("/admin/models")
        assert page.status_code == 200
        text = html.unescape(page.text)
        assert 'href="/admin/models"' in page.text  # in the admin nav
        assert "In use" in text and "<strong>tiny</strong>" in text
        assert REPO in text and "Apache-2.0" in text and "24 GB: 480x832" in text
        assert "LTX-2 Community License" in text  # family ltx2: supported (synchronized audio)
        assert "not supported by this version yet" not in text


async def test_a_pull_is_queued_run_by_a_worker_and_put_in_use(
    web: httpx.ASGITransport, settings: Settings, saved_wan: Path, tmp_path: Path
) -> None:
    models.reset()
    await local_account("boss", admin=True)
    async with logged_in(web, "boss") as admin:
        token = form_csrf((await admin.get("/admin/models")).text)
        r = await admin.post(
            "/admin/models/pull", data={"csrf": token, "name": WAN, "use_after": "yes"}
        )
        assert r.status_code == 303 and r.headers["location"] == f"/admin/models?queued={WAN}"
        row = await ModelPull.get(name=WAN)
        assert row.state == "pending" and row.use_after and row.source == ""  # from the hub
        page = await admin.get(r.headers["location"])
        assert "waiting for a render worker" in page.text and "is queued" in page.text
        again = await admin.post("/admin/models/pull", data={"csrf": token, "name": WAN})
        assert again.status_code == 409 and "being pulled already" in again.text
        unknown = await admin.post("/admin/models/pull", data={"csrf": token, "name": "sora-2"})
        assert unknown.status_code == 422 and "not in the catalogue" in html.unescape(unknown.text)
    # The queued pull is not run here (it would go to the hub); one from a hub cache on the
    # worker's host is, by the render queue's runner, as a worker would.
    await ModelPull.filter(pk=row.pk).update(state="failed")
    lay_out(saved_wan, tmp_path / "hub", REPO)
    boss = await Account.get(username="boss")
    queued = await model_pulls.request_pull(
        settings, WAN, boss, use_after=True, source=str(tmp_path / "hub")
    )
    await _worker(settings).drain(60)
    done = await ModelPull.get(pk=queued.pk)
    assert done.state == "pulled" and done.phase == "done" and done.finished_at is not None
    assert done.total_bytes > 0 and done.done_bytes == done.total_bytes
    assert models.in_use(await models.effective(settings)) == WAN
    models.reset()
    assert (await models.effective(settings)).render_model == str(settings.models_dir / WAN)
    actions = [e.action for e in await AuditEntry.filter(action__startswith="render.model")]
    assert sorted(actions) == ["render.model", "render.model_pull", "render.model_pull"]

    async with logged_in(web, "boss") as admin:
        shown = html.unescape((await admin.get("/admin/models")).text)
        assert f"<strong>{WAN}</strong>" in shown and "chosen here" in shown
        token = form_csrf(shown)
        r = await admin.post("/admin/models/use", data={"csrf": token, "name": "tiny-ltx"})
        assert r.status_code == 303 and r.headers["location"] == "/admin/models?in_use=tiny-ltx"
        assert "tiny-ltx is in use" in (await admin.get(r.headers["location"])).text
        bad = await admin.post("/admin/models/use", data={"csrf": token, "name": "cogvideox-2b"})
        assert bad.status_code == 422 and "is not installed" in html.unescape(bad.text)
    assert (await models.effective(settings)).render_model == "tiny-ltx"


async def test_a_refused_pull_fails_with_its_reason_and_installs_nothing(
    web: httpx.ASGITransport, settings: Settings, saved_wan: Path, tmp_path: Path
) -> None:
    models.reset()
    await local_account("boss", admin=True)
    repo = lay_out(saved_wan, tmp_path / "hub", REPO)
    blob = blob_of(repo, "vae/diffusion_pytorch_model.safetensors")
    blob.write_bytes(blob.read_bytes()[:-10] + b"0123456789")
    boss = await Account.get(username="boss")
    row = await model_pulls.request_pull(settings, WAN, boss, source=str(tmp_path / "hub"))
    await _worker(settings).drain(60)
    failed = await ModelPull.get(pk=row.pk)
    assert failed.state == "failed" and failed.attempts <= 1
    assert "vae/diffusion_pytorch_model.safetensors is corrupted" in failed.last_error
    assert WAN not in models.installed(settings)
    async with logged_in(web, "boss") as admin:
        page = html.unescape((await admin.get("/admin/models")).text)
        assert "vae/diffusion_pytorch_model.safetensors is corrupted" in page
