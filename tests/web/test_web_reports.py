"""Reporting from the browser: a clip, a comment or an account, through the service the API
uses (the same refusals), with the form kept on a refusal."""

from __future__ import annotations

import httpx
from factories import local_account, remote_account, rendered_video
from webhelpers import browser, form_csrf, logged_in

from fedisora.models import Report
from fedisora.services import interactions, posts


async def test_report_a_clip_a_comment_and_an_account(web: httpx.ASGITransport) -> None:
    alice, bob = await local_account("alice"), await local_account("bob")
    clip = await posts.post_clip(alice, await rendered_video(alice), caption="a sunset")
    remark = await interactions.comment(alice, clip, "buy cheap pills")
    async with logged_in(web, "bob") as http:
        page = (await http.get(f"/@alice/{clip.pk}")).text
        assert f'href="/report?clip={clip.pk}"' in page  # the clip's action bar
        assert f'href="/report?clip={remark.pk}"' in page  # each comment not mine
        form = await http.get(f"/report?clip={clip.pk}")
        assert form.status_code == 200 and "Report @alice" in form.text
        assert "a sunset" in form.text and 'name="forward"' not in form.text  # local: no copy
        r = await http.post(
            "/report",
            data={
                "csrf": form_csrf(form.text),
                "clip": str(clip.pk),
                "category": "spam",
                "comment": "not what it says",
            },
        )
        assert r.status_code == 200 and "your report was sent" in r.text
        report = await Report.get(account_id=bob.pk)
        assert (report.target_account_id, report.status_ids) == (alice.pk, [clip.pk])
        assert (report.category, report.comment) == ("spam", "not what it says")

        form = await http.get(f"/report?clip={remark.pk}")
        assert "About this comment" in form.text and "buy cheap pills" in form.text
        r = await http.post(
            "/report",
            data={"csrf": form_csrf(form.text), "clip": str(remark.pk), "category": "spam"},
        )
        assert r.status_code == 200
        profile = (await http.get("/@alice")).text
        assert f'href="/report?account={alice.pk}"' in profile
        form = await http.get(f"/report?account={alice.pk}")
        r = await http.post(
            "/report", data={"csrf": form_csrf(form.text), "account": str(alice.pk)}
        )
        assert r.status_code == 200
        assert await Report.filter(account_id=bob.pk).count() == 3


async def test_refusals_keep_the_form(web: httpx.ASGITransport) -> None:
    alice = await local_account("alice")
    await local_account("bob")
    fan = await remote_account("fan", "remote.example")
    clip = await posts.post_clip(alice, await rendered_video(alice), caption="mine")
    async with logged_in(web, "alice") as http:
        page = (await http.get(f"/@alice/{clip.pk}")).text
        assert "/report?clip=" not in page  # not one's own clip
        form = await http.get(f"/report?clip={clip.pk}")
        r = await http.post(
            "/report",
            data={"csrf": form_csrf(form.text), "clip": str(clip.pk), "comment": "hm"},
        )
        assert r.status_code == 422 and "You cannot report yourself" in r.text
        assert ">hm</textarea>" in r.text
        form = await http.get(f"/report?account={fan.pk}")
        assert 'name="forward"' in form.text and "remote.example" in form.text
        r = await http.post(
            "/report",
            data={
                "csrf": form_csrf(form.text),
                "account": str(fan.pk),
                "category": "nonsense",
                "comment": "why",
            },
        )
        assert r.status_code == 422 and "Category must be one of" in r.text
        r = await http.post(
            "/report",
            data={"csrf": form_csrf(form.text), "account": str(fan.pk), "comment": "x" * 1500},
        )
        assert r.status_code == 422 and "longer than 1000 characters" in r.text
        assert (await http.get("/report")).status_code == 400
        assert (await http.get("/report?clip=999999")).status_code == 404
        assert (await http.get("/report?clip=abc")).status_code == 400
        r = await http.post("/report", data={"csrf": "forged", "account": str(fan.pk)})
        assert r.status_code == 403
        assert await Report.all().count() == 0
    async with browser(web) as visitor:
        r = await visitor.get(f"/report?clip={clip.pk}")
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/report")
