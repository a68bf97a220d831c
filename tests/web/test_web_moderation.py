"""Moderation in the pages: a silenced account's clips in the feeds, a sensitive account's
clips behind a click, warnings and appeals (the user's page, the admins' page, the undo), the
admins' rules page and the rules on the sign-up and report pages."""

from __future__ import annotations

import re

import httpx
from factories import local_account, rendered_video
from webhelpers import browser, form_csrf, logged_in

from fedisora.models import (
    Account,
    AccountWarning,
    Appeal,
    AuditEntry,
    Notification,
    NotificationType,
    Report,
    Rule,
    User,
)
from fedisora.services import audit, follows, interactions, moderation, posts, reports, roles
from web.comment_pages import comment_href


def _reels(page: str) -> list[str]:
    return re.findall(r'<article class="reel[^"]*"[^>]*data-clip-id="(\d+)"', page)


async def test_silence_sensitive_warning_and_appeal_in_the_pages(
    web: httpx.ASGITransport,
) -> None:
    boss = await local_account("boss", admin=True)
    alice, bob, carol = [await local_account(n) for n in ("alice", "bob", "carol")]
    await follows.follow(carol, bob)
    clip = await posts.post_clip(bob, await rendered_video(bob), caption="loud clip")
    report = await reports.file_report(alice, bob, status_ids=[clip.pk])
    async with logged_in(web, "boss") as admin:
        page = (await admin.get(f"/admin/reports/{report.pk}")).text
        assert f"/admin/reports/{report.pk}/silence" in page
        assert f"/admin/reports/{report.pk}/mark_sensitive" in page
        r = await admin.post(
            f"/admin/reports/{report.pk}/silence",
            data={"csrf": form_csrf(page), "text": "too loud"},
        )
        assert r.status_code == 303
        assert "(limited)" in (await admin.get(f"/admin/reports/{report.pk}")).text

    async with logged_in(web, "alice") as http:
        assert str(clip.pk) not in _reels((await http.get("/explore?tab=local")).text)
        assert "loud clip" in (await http.get("/@bob")).text  # the profile still shows it
        assert "loud clip" not in (await http.get("/tags/nothing")).text
    async with browser(web) as anon:
        assert str(clip.pk) not in _reels((await anon.get("/explore?tab=local")).text)
    async with logged_in(web, "carol") as http:  # a follower
        assert str(clip.pk) in _reels((await http.get("/explore?tab=local")).text)
        assert "Sensitive content" not in (await http.get(f"/@bob/{clip.pk}")).text

    # Bob reads the warning from its notification and appeals it.
    async with logged_in(web, "bob") as http:
        notes = (await http.get("/notifications")).text
        assert "/settings/warnings#warning-" in notes
        page = await http.get("/settings/warnings")
        assert page.status_code == 200
        assert "Your account was limited" in page.text and "too loud" in page.text
        warning_id = int(re.findall(r'id="warning-(\d+)"', page.text)[0])
        token = form_csrf(page.text)
        r = await http.post(f"/settings/warnings/{warning_id}/appeal", data={"text": "ok"})
        assert r.status_code == 403  # no CSRF token: nothing filed
        r = await http.post(
            f"/settings/warnings/{warning_id}/appeal", data={"csrf": token, "text": "  "}
        )
        assert r.status_code == 422 and "say why" in r.text.lower()
        r = await http.post(
            f"/settings/warnings/{warning_id}/appeal",
            data={"csrf": token, "text": "I will keep it down"},
        )
        assert r.status_code == 303
        r = await http.post(
            f"/settings/warnings/{warning_id}/appeal", data={"csrf": token, "text": "again"}
        )
        assert r.status_code == 409 and "appealed this warning already" in r.text
        page = (await http.get("/settings/warnings")).text
        assert "Your appeal: pending" in page and "I will keep it down" in page
    # Someone else's warning is not found.
    async with logged_in(web, "alice") as http:
        token = form_csrf((await http.get("/settings/warnings")).text)
        r = await http.post(
            f"/settings/warnings/{warning_id}/appeal", data={"csrf": token, "text": "mine?"}
        )
        assert r.status_code == 404
        assert (await http.get("/admin/appeals")).status_code == 403
    assert await Appeal.all().count() == 1

    # The admins approve it: bob is unsilenced and told; it is audited.
    async with logged_in(web, "boss") as admin:
        page = (await admin.get("/admin/appeals")).text
        assert "I will keep it down" in page and "no longer silenced" in page
        appeal = await Appeal.get()
        r = await admin.post(f"/admin/appeals/{appeal.pk}/approve", data={"csrf": "bad"})
        assert r.status_code == 403
        r = await admin.post(f"/admin/appeals/{appeal.pk}/approve", data={"csrf": form_csrf(page)})
        assert r.status_code == 303
        r = await admin.post(f"/admin/appeals/{appeal.pk}/reject", data={"csrf": form_csrf(page)})
        assert r.status_code == 409 and "decided already" in r.text
    assert (await Account.get(pk=bob.pk)).silenced_at is None
    assert await Notification.filter(
        recipient_id=bob.pk, type=NotificationType.APPEAL_APPROVED
    ).exists()
    async with logged_in(web, "alice") as http:
        assert str(clip.pk) in _reels((await http.get("/explore?tab=local")).text)
    logged = [e.action for e in await AuditEntry.all().order_by("id")]
    assert logged[-2:] == ["account.unsilence", "appeal.approve"]
    assert "report.silence" in logged

    # A sensitive account: its clips, and its comments on others' clips, are behind a click
    # in the pages.
    calm = await posts.post_clip(alice, await rendered_video(alice), caption="calm clip")
    remark = await interactions.comment(bob, calm, "a loud remark")
    remark_href = comment_href(remark)
    assert remark_href is not None
    behind = '<details class="cw"><summary>Sensitive content</summary>'
    async with logged_in(web, "carol") as http:
        assert behind not in (await http.get(f"/@alice/{calm.pk}")).text
    second = await reports.file_report(alice, bob, comment="nsfw")
    await reports.take_action(second, "sensitive", boss)
    async with logged_in(web, "carol") as http:
        assert "Sensitive content" in (await http.get(f"/@bob/{clip.pk}")).text
        page = (await http.get(f"/@alice/{calm.pk}")).text
        assert behind in page and "a loud remark" in page.split(behind, 1)[1]
        assert behind in (await http.get(remark_href)).text


async def test_rules_admin_page_signup_and_report(web: httpx.ASGITransport) -> None:
    await local_account("boss", admin=True)
    await local_account("alice")
    await local_account("bob")
    async with logged_in(web, "alice") as http:
        assert (await http.get("/admin/rules")).status_code == 403
    async with logged_in(web, "boss") as admin:
        page = (await admin.get("/admin/rules")).text
        assert 'href="/admin/rules"' in page and "No rules yet" in page
        token = form_csrf(page)
        r = await admin.post("/admin/rules", data={"text": "Be kind"})
        assert r.status_code == 403 and not await Rule.exists()
        r = await admin.post("/admin/rules", data={"csrf": token, "text": " ", "hint": "x"})
        assert r.status_code == 422 and "A rule needs its text" in r.text
        for text in ("Be kind", "Label AI likeness", "No spam"):
            r = await admin.post("/admin/rules", data={"csrf": token, "text": text})
            assert r.status_code == 303
        kind, label, spam = await Rule.all().order_by("id")
        r = await admin.post(
            f"/admin/rules/{kind.pk}/edit",
            data={"csrf": token, "text": "Be kind, always", "hint": "No harassment"},
        )
        assert r.status_code == 303
        for _ in range(3):  # to the top (the third time: at the top, nothing moves)
            r = await admin.post(f"/admin/rules/{spam.pk}/up", data={"csrf": token})
            assert r.status_code == 303
        r = await admin.post(f"/admin/rules/{label.pk}/remove", data={"csrf": token})
        assert r.status_code == 303
        r = await admin.post(f"/admin/rules/{kind.pk}/edit", data={"csrf": token, "text": ""})
        assert r.status_code == 422 and "needs its text" in r.text
        assert (await admin.post("/admin/rules/999999/up", data={"csrf": token})).status_code == 404
        page = (await admin.get("/admin/rules")).text
        assert page.index("No spam") < page.index("Be kind, always")
        assert "Label AI likeness" not in page
    logged = [e.action for e in await AuditEntry.filter(target_type="rule").order_by("id")]
    assert logged == ["rule.add"] * 3 + ["rule.edit", "rule.move", "rule.move", "rule.remove"]

    async with browser(web) as anon:
        signup = (await anon.get("/signup")).text
        assert "Be kind, always" in signup and "No harassment" in signup
    async with logged_in(web, "alice") as http:
        bob = await Account.get(username="bob")
        form = await http.get(f"/report?account={bob.pk}")
        assert f'name="rule_ids" value="{kind.pk}"' in form.text
        r = await http.post(
            "/report",
            data={
                "csrf": form_csrf(form.text),
                "account": str(bob.pk),
                "category": "violation",
                "rule_ids": [str(kind.pk)],
            },
        )
        assert r.status_code == 200, r.text
        report = await Report.get(account_id=(await Account.get(username="alice")).pk)
        assert report.category == "violation" and report.rule_ids == [str(kind.pk)]
        # A rule that is gone: the form again, with the message.
        r = await http.post(
            "/report",
            data={
                "csrf": form_csrf(form.text),
                "account": str(bob.pk),
                "category": "violation",
                "rule_ids": [str(label.pk)],
            },
        )
        assert r.status_code == 422 and "no such rule" in r.text
    async with logged_in(web, "boss") as admin:
        page = (await admin.get(f"/admin/reports/{report.pk}")).text
        assert "Rules cited" in page and "Be kind, always" in page
        notes = (await admin.get("/notifications")).text
        assert f"/admin/reports/{report.pk}" in notes  # admin.report


async def test_a_new_appeal_is_told_to_the_staff_who_may_decide_it(
    web: httpx.ASGITransport,
) -> None:
    """``fedisora.admin_appeal``: every active staff member who may moderate the appellant is
    told (the appellant named, the warning attached), in the page with a link to the
    appeals and in the API; a disabled moderator is not, and a moderator's own appeal goes to
    the admins only."""
    boss = await local_account("boss", admin=True)
    mia, gone, bob, alice = [await local_account(n) for n in ("mia", "gone", "bob", "alice")]
    for staff in (mia, gone):
        await roles.set_role(staff, "moderator", by=audit.CLI)
    await User.filter(account_id=gone.pk).update(disabled=True)
    report = await reports.file_report(alice, bob, comment="loud")
    await reports.take_action(report, "silence", mia, "too loud")
    warning = await AccountWarning.get(account_id=bob.pk)

    async with logged_in(web, "bob") as http:
        page = (await http.get("/settings/warnings")).text
        r = await http.post(
            f"/settings/warnings/{warning.pk}/appeal",
            data={"csrf": form_csrf(page), "text": "I will keep it down"},
        )
        assert r.status_code == 303
    told = await Notification.filter(type=NotificationType.ADMIN_APPEAL).order_by("recipient_id")
    assert [n.recipient_id for n in told] == [boss.pk, mia.pk]
    assert {(n.from_account_id, n.account_warning_id) for n in told} == {(bob.pk, warning.pk)}

    async with logged_in(web, "mia") as http:
        notes = (await http.get("/notifications")).text
        found = re.search(r'<li [^>]*data-type="fedisora.admin_appeal".*?</li>', notes, re.S)
        assert found is not None, notes
        item = found.group(0)
        assert '<span class="acct">@bob</span>' in item and "appealed a moderator" in item
        assert 'href="/admin/appeals"' in item
    async with httpx.AsyncClient(transport=web, base_url="https://fedisora.test") as api:
        r = await api.post(
            "/api/v1/apps",
            data={"client_name": "t", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"},
        )
        app = r.json()
        r = await api.post(
            "/oauth/token",
            data={
                "grant_type": "password",
                "client_id": app["client_id"],
                "client_secret": app["client_secret"],
                "username": "boss",
                "password": "correct horse battery",
                "scope": "read",
            },
        )
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = await api.get("/api/v1/notifications?types[]=fedisora.admin_appeal", headers=headers)
        assert r.status_code == 200
        (entity,) = r.json()
        assert entity["type"] == "fedisora.admin_appeal"
        assert entity["account"]["id"] == str(bob.pk)
        shown = entity["moderation_warning"]
        assert shown["id"] == str(warning.pk) and shown["action"] == "silence"
        assert shown["target_account"]["id"] == str(bob.pk)  # the appellant, not the viewer
        assert shown["appeal"] == {"text": "I will keep it down", "state": "pending"}

    # A moderator's own appeal: the admins decide it, so only they are told.
    report = await reports.file_report(alice, mia, comment="rude")
    await reports.take_action(report, "silence", boss, "calm down")
    own = await AccountWarning.get(account_id=mia.pk)
    appeal = await moderation.file_appeal(mia, own, "I was calm")
    told = await Notification.filter(type=NotificationType.ADMIN_APPEAL, account_warning_id=own.pk)
    assert [n.recipient_id for n in told] == [boss.pk]
    assert await Appeal.filter(pk=appeal.pk).exists()
