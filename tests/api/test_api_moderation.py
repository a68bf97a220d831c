"""Silenced and sensitive accounts, the report actions that set them, appeals in the
``AccountWarning`` entity, ``admin.report`` notifications and the instance's rules in the API."""

from __future__ import annotations

import httpx
import pytest
from apihelpers import Login, login
from factories import local_account, remote_account, rendered_video

from fedisora.errors import Invalid
from fedisora.models import (
    Account,
    AccountWarning,
    AuditEntry,
    Clip,
    Notification,
    NotificationType,
)
from fedisora.services import follows, moderation, reports, rules

ADMIN_SCOPES = "read write admin:read admin:write"


async def _clip(client: httpx.AsyncClient, who: Login, text: str = "a clip #sea") -> str:
    media = await rendered_video(who.account)
    r = await client.post(
        "/api/v1/statuses",
        data={"status": text, "media_ids[]": str(media.pk)},
        headers=who.headers,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def _ids(client: httpx.AsyncClient, path: str, who: Login | None) -> list[str]:
    r = await client.get(path, headers=who.headers if who else {})
    assert r.status_code == 200, r.text
    return [s["id"] for s in r.json()]


async def test_silence_and_sensitive_through_reports_and_admin_api(
    client: httpx.AsyncClient, db: str
) -> None:
    boss = await local_account("boss", admin=True)
    admin = await login(client, boss, ADMIN_SCOPES, app_scopes=ADMIN_SCOPES)
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    carol = await login(client, await local_account("carol"))
    await follows.follow(carol.account, bob.account)  # carol follows bob (accepted: unlocked)
    bobs = await _clip(client, bob)
    local = "/api/v1/timelines/public?local=true"
    assert bobs in await _ids(client, local, alice)

    # silence, from a report: the report is resolved, audited, bob warned.
    report = await reports.file_report(alice.account, bob.account, status_ids=[int(bobs)])
    await reports.take_action(report, "silence", admin.account, "calm down")
    assert (await Account.get(pk=bob.account.pk)).silenced_at is not None
    for path in (local, "/api/v1/timelines/public", "/api/v1/timelines/tag/sea"):
        assert bobs not in await _ids(client, path, alice), path
        assert bobs not in await _ids(client, path, None), path
        assert bobs in await _ids(client, path, carol), path  # a follower still sees it
        assert bobs in await _ids(client, path, bob), path  # and bob his own
    # Search (a non-follower finds neither the account nor its clips), profile (shown).
    r = await client.get("/api/v2/search", params={"q": "bob"}, headers=alice.headers)
    assert all(a["id"] != str(bob.account.pk) for a in r.json()["accounts"])
    r = await client.get("/api/v2/search", params={"q": "bob"}, headers=carol.headers)
    assert any(a["id"] == str(bob.account.pk) for a in r.json()["accounts"])
    assert r.json()["accounts"][0].get("limited") is True
    statuses = f"/api/v1/accounts/{bob.account.pk}/statuses"
    assert bobs in await _ids(client, statuses, alice)
    # Its notifications reach followers only: alice is not told of bob's follow.
    await follows.follow(bob.account, alice.account)
    await follows.follow(bob.account, carol.account)
    assert not await Notification.filter(
        recipient_id=alice.account.pk, type=NotificationType.FOLLOW
    ).exists()
    assert await Notification.filter(
        recipient_id=carol.account.pk, type=NotificationType.FOLLOW
    ).exists()
    warning = await AccountWarning.get(account_id=bob.account.pk)
    assert (warning.action, warning.text, warning.report_id) == ("silence", "calm down", report.pk)

    # sensitive through the admin API (without a report): served sensitive everywhere.
    a = "/api/v1/admin/accounts"
    r = await client.get(f"/api/v1/statuses/{bobs}", headers=carol.headers)
    assert r.json()["sensitive"] is False
    r = await client.post(
        f"{a}/{bob.account.pk}/action", data={"type": "sensitive"}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    r = await client.get(f"/api/v1/statuses/{bobs}", headers=carol.headers)
    assert r.json()["sensitive"] is True
    from fedisora.federation.render import clip_note

    clip = await Clip.get(pk=int(bobs))
    assert (await clip_note(clip))["sensitive"] is True
    assert clip.sensitive is False  # the clip's own flag is untouched
    entity = (await client.get(f"{a}/{bob.account.pk}", headers=admin.headers)).json()
    assert entity["silenced"] is True and entity["sensitized"] is True
    r = await client.get(f"{a}?silenced=true", headers=admin.headers)
    assert [e["id"] for e in r.json()] == [str(bob.account.pk)]

    # unsensitive and unsilence: all back; the admin's own account is refused.
    r = await client.post(f"{a}/{bob.account.pk}/unsensitive", headers=admin.headers)
    assert r.status_code == 200 and r.json()["sensitized"] is False
    r = await client.post(f"{a}/{bob.account.pk}/unsilence", headers=admin.headers)
    assert r.status_code == 200 and r.json()["silenced"] is False
    r = await client.post(f"{a}/{boss.pk}/unsilence", headers=admin.headers)
    assert r.status_code == 403 and "own account" in r.json()["error"]
    assert bobs in await _ids(client, local, alice)
    r = await client.get(f"/api/v1/statuses/{bobs}", headers=carol.headers)
    assert r.json()["sensitive"] is False
    actions = [e.action for e in await AuditEntry.filter(target_id=str(bob.account.pk))]
    assert actions == [
        "account.silence",
        "account.sensitive",
        "account.unsensitive",
        "account.unsilence",
    ]
    assert "report.silence" in [e.action for e in await AuditEntry.all()]


async def test_mark_sensitive_warning_and_its_appeal_in_the_api(
    client: httpx.AsyncClient, db: str
) -> None:
    boss = await local_account("boss", admin=True)
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    bobs = await _clip(client, bob)
    report = await reports.file_report(alice.account, bob.account, status_ids=[int(bobs)])
    await reports.take_action(report, "mark_sensitive", boss, "tag it next time")
    assert (await Clip.get(pk=int(bobs))).sensitive is True
    warning = await AccountWarning.get(account_id=bob.account.pk)
    assert warning.action == "mark_statuses_as_sensitive" and warning.status_ids == [int(bobs)]

    def _warning(notes: list[dict[str, object]]) -> dict[str, object]:
        [note] = [n for n in notes if n["type"] == "moderation_warning"]
        found = note["moderation_warning"]
        assert isinstance(found, dict)
        return found

    r = await client.get("/api/v1/notifications", headers=bob.headers)
    assert _warning(r.json())["appeal"] is None
    appeal = await moderation.file_appeal(bob.account, warning, "it is a documentary")
    r = await client.get("/api/v1/notifications", headers=bob.headers)
    assert _warning(r.json())["appeal"] == {"text": "it is a documentary", "state": "pending"}

    await moderation.approve_appeal(appeal, boss)
    assert (await Clip.get(pk=int(bobs))).sensitive is False  # undone
    r = await client.get("/api/v1/notifications", headers=bob.headers)
    [told] = [n for n in r.json() if n["type"] == "fedisora.appeal_approved"]
    assert told["moderation_warning"]["appeal"]["state"] == "approved"
    logged = [e.action for e in await AuditEntry.all().order_by("id")]
    assert logged[-2:] == ["status.unmark_sensitive", "appeal.approve"]


async def test_new_reports_notify_the_admins(client: httpx.AsyncClient, db: str) -> None:
    boss = await login(client, await local_account("boss", admin=True))
    other = await login(client, await local_account("chief", admin=True))
    alice = await login(client, await local_account("alice"))
    bob = await local_account("bob")
    report = await reports.file_report(alice.account, bob, comment="spam")
    for admin in (boss, other):
        r = await client.get("/api/v1/notifications?types[]=admin.report", headers=admin.headers)
        [note] = r.json()
        assert note["account"]["id"] == str(alice.account.pk)
        assert note["report"]["id"] == str(report.pk)
        assert note["report"]["target_account"]["id"] == str(bob.pk)
    r = await client.get("/api/v1/notifications", headers=alice.headers)
    assert all(n["type"] != "admin.report" for n in r.json())  # not for users
    # One by an admin: the other admins are told, not the reporter.
    own = await reports.file_report(boss.account, bob, comment="me too")
    assert not await Notification.filter(recipient_id=boss.account.pk, report_id=own.pk).exists()
    assert await Notification.filter(recipient_id=other.account.pk, report_id=own.pk).exists()
    # A report received from another instance (a Flag) too.
    peer = await remote_account("mod", "peer.example")
    received = await reports.receive_report(peer, bob, comment="from afar")
    assert await Notification.filter(
        recipient_id=boss.account.pk, report_id=received.pk, type=NotificationType.ADMIN_REPORT
    ).exists()


async def test_rules_in_the_api_and_in_reports(client: httpx.AsyncClient, db: str) -> None:
    boss = await local_account("boss", admin=True)
    alice = await login(client, await local_account("alice"))
    bob = await local_account("bob")
    assert (await client.get("/api/v1/instance/rules")).json() == []
    first = await rules.add("Be kind", "No harassment.", boss)
    second = await rules.add("Label AI likeness", "", boss)
    with pytest.raises(Invalid, match="needs its text"):
        await rules.add("   ", "hint", boss)
    await rules.move(second, True, boss)
    expected = [
        {"id": str(second.pk), "text": "Label AI likeness", "hint": "", "translations": {}},
        {"id": str(first.pk), "text": "Be kind", "hint": "No harassment.", "translations": {}},
    ]
    assert (await client.get("/api/v1/instance/rules")).json() == expected
    assert (await client.get("/api/v2/instance")).json()["rules"] == expected
    assert (await client.get("/api/v1/instance")).json()["rules"] == expected

    r = await client.post(
        "/api/v1/reports",
        data={"account_id": str(bob.pk), "rule_ids[]": [str(first.pk)]},
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["category"] == "violation" and r.json()["rule_ids"] == [str(first.pk)]
    r = await client.post(
        "/api/v1/reports",
        data={"account_id": str(bob.pk), "rule_ids[]": ["999999"]},
        headers=alice.headers,
    )
    assert r.status_code == 422 and "unknown rule" in r.json()["error"]
    admin = await login(client, boss, ADMIN_SCOPES, app_scopes=ADMIN_SCOPES)
    r = await client.get("/api/v1/admin/reports", headers=admin.headers)
    assert r.json()[0]["rules"] == [expected[1]]
    logged = [e.action for e in await AuditEntry.filter(target_type="rule").order_by("id")]
    assert logged == ["rule.add", "rule.add", "rule.move"]


async def test_an_admin_api_action_without_a_report_is_told(
    client: httpx.AsyncClient, db: str
) -> None:
    """``POST /api/v1/admin/accounts/:id/action`` with no ``report_id`` tells the account
    too, as the admin pages and report actions do (moderation.act_on_account): a warning
    with the text, and its notification; ``none`` warns only with a text."""
    boss = await local_account("boss", admin=True)
    admin = await login(client, boss, ADMIN_SCOPES, app_scopes=ADMIN_SCOPES)
    erin = await local_account("erin")
    action = f"/api/v1/admin/accounts/{erin.pk}/action"
    for data in (
        {"type": "none"},  # nothing done, nothing to tell
        {"type": "none", "text": "Read the rules, please."},
        {"type": "silence"},
        {"type": "suspend", "text": "Ban evasion."},
    ):
        r = await client.post(action, data=data, headers=admin.headers)
        assert r.status_code == 200, r.text
    r = await client.post(
        action,
        data={"type": "none", "text": "x" * (moderation.MAX_WARNING + 1)},
        headers=admin.headers,
    )
    assert r.status_code == 422
    told = [
        (w.action, w.text, w.report_id)
        for w in await AccountWarning.filter(account_id=erin.pk).order_by("id")
    ]
    assert told == [
        ("none", "Read the rules, please.", None),
        ("silence", "", None),
        ("suspend", "Ban evasion.", None),
    ]
    assert (
        await Notification.filter(
            recipient_id=erin.pk, type=NotificationType.MODERATION_WARNING
        ).count()
        == 3
    )
    logged = [e.action for e in await AuditEntry.filter(target_id=str(erin.pk)).order_by("id")]
    assert logged == ["account.warn", "account.silence", "account.suspend"]
    assert await moderation.suspension_notice(erin) is not None
