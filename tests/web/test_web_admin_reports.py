"""/admin/reports: admins see open and resolved reports, a report's clips, and act on it with
CSRF-protected buttons that go through the reports service (audited, the user told)."""

from __future__ import annotations

import re

import httpx
from factories import local_account, rendered_video
from webhelpers import logged_in

from fedisora.models import Account, AccountWarning, AuditEntry, Clip, Report
from fedisora.services import posts, reports


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def test_admin_handles_a_report_from_the_web(web: httpx.ASGITransport) -> None:
    await local_account("boss", admin=True)
    alice = await local_account("alice")
    bob = await local_account("bob")
    await posts.post_clip(bob, await rendered_video(bob), caption="buy my stuff")
    clip = await Clip.get(account_id=bob.pk)
    report = await reports.file_report(alice, bob, status_ids=[clip.pk], comment="ads")
    base = f"/admin/reports/{report.pk}"

    async with logged_in(web, "alice") as user:
        assert (await user.get("/admin/reports")).status_code == 403
        assert (await user.get(base)).status_code == 403
    async with logged_in(web, "boss") as admin:
        listing = (await admin.get("/admin/reports")).text
        assert f'href="{base}"' in listing and "@bob" in listing and "@alice" in listing
        assert 'href="/admin/reports"' in listing  # in the admin nav
        page = await admin.get(base)
        assert page.status_code == 200
        assert "buy my stuff" in page.text and "ads" in page.text and "Open." in page.text
        token = _csrf(page.text)

        # Without the form token nothing happens.
        r = await admin.post(f"{base}/delete", data={"text": "no ads"})
        assert r.status_code == 403
        assert (await Clip.get(pk=clip.pk)).deleted_at is None

        r = await admin.post(f"{base}/assign", data={"csrf": token})
        assert r.status_code == 303 and r.headers["location"] == base
        assert "assigned to @boss" in (await admin.get(base)).text
        r = await admin.post(f"{base}/delete", data={"csrf": token, "text": "no ads"})
        assert r.status_code == 303
        assert (await Clip.get(pk=clip.pk)).deleted_at is not None
        page = (await admin.get(base)).text
        assert "Resolved by @boss" in page and "(deleted)" in page and "Reopen" in page
        # A resolved report takes no second action until reopened: a clear 409 page.
        r = await admin.post(f"{base}/suspend", data={"csrf": token})
        assert r.status_code == 409 and "reopen it first" in r.text
        assert (await Account.get(pk=bob.pk)).suspended_at is None
        assert "No open reports" in (await admin.get("/admin/reports")).text
        assert f'href="{base}"' in (await admin.get("/admin/reports?resolved=1")).text
        r = await admin.post(f"{base}/reopen", data={"csrf": token})
        assert r.status_code == 303
        r = await admin.post(f"{base}/suspend", data={"csrf": token})
        assert r.status_code == 303
        assert (await Account.get(pk=bob.pk)).suspended_at is not None

        # Unknown reports and actions, and a bad cursor.
        assert (await admin.get("/admin/reports/999999")).status_code == 404
        r = await admin.post(f"{base}/obliterate", data={"csrf": token})
        assert r.status_code == 404
        assert (await admin.get("/admin/reports?max_id=x")).status_code == 400

    warnings = await AccountWarning.filter(account_id=bob.pk).order_by("id")
    assert [(w.action, w.text) for w in warnings] == [
        ("delete_statuses", "no ads"),
        ("suspend", ""),
    ]
    logged = await AuditEntry.filter(target_type="report", target_id=str(report.pk)).order_by("id")
    assert [e.action for e in logged] == [
        "report.assign",
        "report.delete",
        "report.reopen",
        "report.suspend",
    ]
    assert (await Report.get(pk=report.pk)).action_taken_at is not None
