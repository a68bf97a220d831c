"""/admin/renders and the overview's render numbers: jobs by state and owner, cancel and
requeue through the render service (audited), per-user usage and a quota override that the
create form's submit obeys; admins only, CSRF on every form, bad input in words."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from factories import local_account
from webhelpers import form_csrf, logged_in

from fedisora.models import AuditEntry, RenderJob, RenderQuotaGuard, WorkerHeartbeat, utcnow


async def _job(account_id: int, state: str, prompt: str, **values: object) -> RenderJob:
    now = utcnow()
    return await RenderJob.create(
        account_id=account_id,
        state=state,
        state_changed_at=now,
        next_attempt_at=now if state == "queued" else None,
        created_at=now,
        spec={"prompt": prompt, "seconds": 1.0, "aspect": "9:16", "seed": 7, "kind": "text"},
        **values,
    )


def _ids(page: str) -> set[int]:
    return {int(n) for n in re.findall(r'<li id="job-(\d+)">', page)}


async def test_queue_filters_cancel_requeue_and_the_overview(web: httpx.ASGITransport) -> None:
    await local_account("boss", admin=True)
    alice = await local_account("alice")
    bob = await local_account("bob")
    queued = await _job(alice.pk, "queued", "<b>a kite</b> " + "over the sea " * 40)
    running = await _job(bob.pk, "rendering", "a running fox", gpu_seconds=12.0)
    failed = await _job(alice.pk, "failed", "a failed owl", last_error="out of memory")
    published = await _job(bob.pk, "published", "a published cat")
    old_failed = await _job(bob.pk, "failed", "yesterday's failure")
    await RenderJob.filter(pk=old_failed.pk).update(state_changed_at=utcnow() - timedelta(days=1))
    await WorkerHeartbeat.create(name="arq:render:gpu1:42", kind="arq", pid=42, queues="render")

    async with logged_in(web, "alice") as someone:
        for path in ("/admin/renders", "/admin/federation"):
            assert (await someone.get(path)).status_code == 403
        page = await someone.get("/create")
        r = await someone.post(
            f"/admin/renders/{queued.pk}/cancel", data={"csrf": form_csrf(page.text)}
        )
        assert r.status_code == 403

    async with logged_in(web, "boss") as admin:
        overview = await admin.get("/admin")
        assert overview.status_code == 200
        assert (
            'href="/admin/renders"' in overview.text and 'href="/admin/federation"' in overview.text
        )
        days = re.search(r'<table class="render-days">(.*?)</table>', overview.text, re.S)
        assert days is not None and days.group(1).count("<tr>") == 15  # a header and 14 days
        today = utcnow().strftime("%m-%d")
        assert re.search(
            rf"<td>{today}</td>\s*<td><meter[^>]*></meter> 1</td>\s*<td>1</td>", overview.text
        )
        yesterday = (utcnow() - timedelta(days=1)).strftime("%m-%d")
        assert re.search(
            rf"<td>{yesterday}</td>\s*<td><meter[^>]*></meter> 0</td>\s*<td>1</td>", overview.text
        )
        assert 'href="/admin/renders?state=queued">1</a>' in overview.text
        assert 'href="/admin/renders?state=rendering">1</a>' in overview.text
        assert "arq:render:gpu1:42" in overview.text and "Device: not reported" in overview.text
        assert "Model: tiny (tiny)" in overview.text
        assert "0 pending" in overview.text and "Media disk" in overview.text

        page = await admin.get("/admin/renders")
        assert page.status_code == 200
        assert _ids(page.text) == {queued.pk, running.pk, failed.pk, published.pk, old_failed.pk}
        assert "&lt;b&gt;a kite&lt;/b&gt;" in page.text and "<b>a kite" not in page.text
        assert "over the sea " * 40 not in page.text and "…" in page.text  # truncated
        assert "@alice" in page.text and "out of memory" in page.text
        failed_only = await admin.get("/admin/renders?state=failed")
        assert _ids(failed_only.text) == {failed.pk, old_failed.pk}
        alices = await admin.get("/admin/renders?user=alice")
        assert _ids(alices.text) == {queued.pk, failed.pk}
        assert "1 of 3 renders queued or running" in alices.text
        assert "1 of 50 clips" in alices.text
        both = await admin.get("/admin/renders?user=alice&state=failed")
        assert _ids(both.text) == {failed.pk}
        nobody = await admin.get("/admin/renders?user=nobody")
        assert nobody.status_code == 200 and "There is no account @nobody" in nobody.text
        assert _ids(nobody.text) == set()
        token = form_csrf(page.text)

        # Cancel: a queued job at once, a running one too (no worker holds it here).
        r = await admin.post(f"/admin/renders/{queued.pk}/cancel", data={"user": "alice"})
        assert r.status_code == 403  # no CSRF token
        assert (await RenderJob.get(pk=queued.pk)).state == "queued"
        r = await admin.post(
            f"/admin/renders/{queued.pk}/cancel", data={"csrf": token, "user": "alice"}
        )
        assert r.status_code == 303 and r.headers["location"] == "/admin/renders?user=alice"
        job = await RenderJob.get(pk=queued.pk)
        assert job.state == "cancelled" and job.last_error == "cancelled by an admin"
        r = await admin.post(f"/admin/renders/{running.pk}/cancel", data={"csrf": token})
        assert r.status_code == 303
        assert (await RenderJob.get(pk=running.pk)).state == "cancelled"
        # A failed job cannot be cancelled: said in the page.
        r = await admin.post(f"/admin/renders/{failed.pk}/cancel", data={"csrf": token})
        assert r.status_code == 409 and "only a queued or running render" in r.text

        # Requeue: a new queued job with the same request; the failed one stays as it ended.
        r = await admin.post(f"/admin/renders/{failed.pk}/requeue", data={"csrf": token})
        assert r.status_code == 303
        again = await RenderJob.filter(account_id=alice.pk, state="queued").get()
        assert again.spec["prompt"] == "a failed owl" and again.spec["seed"] == 7
        assert (await RenderJob.get(pk=failed.pk)).state == "failed"
        r = await admin.post(f"/admin/renders/{again.pk}/requeue", data={"csrf": token})
        assert r.status_code == 409 and "only a failed or cancelled render" in r.text

        # Unknown or malformed job ids: the 404 page.
        for bad in ("999999999", "nope"):
            r = await admin.post(f"/admin/renders/{bad}/cancel", data={"csrf": token})
            assert r.status_code == 404 and "no such render job" in r.text
            r = await admin.post(f"/admin/renders/{bad}/requeue", data={"csrf": token})
            assert r.status_code == 404
        assert (await admin.get("/admin/renders?max_id=x")).status_code == 400

    audit = await AuditEntry.filter(action__startswith="render.").order_by("id")
    assert [(a.action, a.target_id, a.actor_label) for a in audit] == [
        ("render.cancel", str(queued.pk), "@boss"),
        ("render.cancel", str(running.pk), "@boss"),
        ("render.requeue", str(failed.pk), "@boss"),
    ]
    assert audit[2].detail == f"queued again as render {again.pk}"


async def test_quota_override_is_enforced_on_submit(web: httpx.ASGITransport) -> None:
    await local_account("boss", admin=True)
    alice = await local_account("alice")
    async with logged_in(web, "boss") as admin:
        page = await admin.get("/admin/renders?user=alice")
        assert page.status_code == 200 and 'action="/admin/renders/quota"' in page.text
        token = form_csrf(page.text)
        form = {"user": "alice", "concurrent_jobs": "", "gpu_seconds_per_day": ""}
        r = await admin.post("/admin/renders/quota", data={**form, "clips_per_day": "1"})
        assert r.status_code == 403  # no CSRF token
        for value, words in (
            ("lots", "clips per day must be a whole number"),
            ("-1", "clips per day must be between 0 and 100000"),
            ("1.5", "clips per day must be a whole number"),
        ):
            r = await admin.post(
                "/admin/renders/quota", data={**form, "csrf": token, "clips_per_day": value}
            )
            assert r.status_code == 422 and words in r.text, r.text[:3000]
            assert f'name="clips_per_day" inputmode="numeric" value="{value}"' in r.text
        r = await admin.post(
            "/admin/renders/quota",
            data={**form, "csrf": token, "clips_per_day": "1", "gpu_seconds_per_day": "nan"},
        )
        assert r.status_code == 422 and "gpu seconds per day must be a number" in r.text
        assert (await RenderQuotaGuard.filter(account_id=alice.pk).first()) is None
        r = await admin.post(
            "/admin/renders/quota", data={**form, "csrf": token, "clips_per_day": "1"}
        )
        assert r.status_code == 303
        page = await admin.get("/admin/renders?user=alice")
        assert "0 of 1 clips (override)" in page.text
        r = await admin.post(
            "/admin/renders/quota",
            data={**form, "csrf": token, "clips_per_day": "1", "user": "ghost"},
        )
        assert r.status_code == 404

    from test_web_create import create_form, submit  # the create form, as a person sends it

    async with logged_in(web, "alice") as http:
        r = await submit(http, {**await create_form(http), "prompt": "one", "seconds": "1"})
        assert r.status_code == 303
        r = await submit(http, {**await create_form(http), "prompt": "two", "seconds": "1"})
        assert r.status_code == 429
        assert "you requested 1 clips in the last 24 hours; the limit is 1 per day" in r.text
    assert await RenderJob.filter(account_id=alice.pk).count() == 1

    async with logged_in(web, "boss") as admin:  # back to the instance's setting
        token = form_csrf((await admin.get("/admin/renders?user=alice")).text)
        r = await admin.post(
            "/admin/renders/quota",
            data={"csrf": token, "user": "alice", "clips_per_day": " "},
        )
        assert r.status_code == 303
        assert "1 of 50 clips" in (await admin.get("/admin/renders?user=alice")).text
    async with logged_in(web, "alice") as http:
        r = await submit(http, {**await create_form(http), "prompt": "two", "seconds": "1"})
        assert r.status_code == 303

    audit = await AuditEntry.filter(action="render.quota").order_by("id")
    assert [(a.target_id, a.detail) for a in audit] == [
        (str(alice.pk), "concurrent_jobs=default, clips_per_day=1, gpu_seconds_per_day=default"),
        (
            str(alice.pk),
            "concurrent_jobs=default, clips_per_day=default, gpu_seconds_per_day=default",
        ),
    ]
