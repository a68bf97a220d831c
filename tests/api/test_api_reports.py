"""Reports: filing one (``POST /api/v1/reports``), Mastodon's admin API for them, and the
actions a moderator takes (the user is told, the audit log keeps it); forwarding a report
about a remote account queues a ``Flag`` from the instance actor."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from apihelpers import Login, login
from factories import local_account, remote_account, rendered_video

from fedisora.federation import install, uninstall
from fedisora.models import (
    Account,
    AccountWarning,
    AuditEntry,
    Clip,
    Delivery,
    Notification,
    NotificationType,
    Report,
)
from fedisora.services.accounts import create_instance_actor

ADMIN_SCOPES = "read write admin:read admin:write"


@pytest.fixture
async def delivering(db: str) -> AsyncIterator[None]:
    """The federation listener on, as the app's lifespan installs it."""
    install(None)
    try:
        yield
    finally:
        await uninstall()


async def _clip(client: httpx.AsyncClient, who: Login, text: str = "a clip") -> str:
    media = await rendered_video(who.account)
    r = await client.post(
        "/api/v1/statuses",
        data={"status": text, "media_ids[]": str(media.pk)},
        headers=who.headers,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def _admin(client: httpx.AsyncClient, scope: str = ADMIN_SCOPES) -> Login:
    boss = await Account.get_or_none(username="boss", domain=None) or await local_account(
        "boss", admin=True
    )
    return await login(client, boss, scope, app_scopes=ADMIN_SCOPES)


async def test_file_a_report_and_bad_input(client: httpx.AsyncClient, db: str) -> None:
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    carol = await login(client, await local_account("carol"))
    bobs = await _clip(client, bob)
    carols = await _clip(client, carol)

    r = await client.post(
        "/api/v1/reports",
        data={
            "account_id": str(bob.account.pk),
            "status_ids[]": [bobs],
            "comment": "spam, spam, spam",
            "category": "spam",
        },
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["category"] == "spam" and body["comment"] == "spam, spam, spam"
    assert body["status_ids"] == [bobs] and body["action_taken"] is False
    assert body["forwarded"] is False and body["target_account"]["acct"] == "bob"
    row = await Report.get(pk=int(body["id"]))
    assert row.account_id == alice.account.pk and row.status_ids == [int(bobs)]

    refusals = [
        # another account's clip: named, and nothing stored
        ({"account_id": str(bob.account.pk), "status_ids[]": [carols]}, 422, carols),
        ({"account_id": str(alice.account.pk)}, 422, "yourself"),
        ({"account_id": str(bob.account.pk), "category": "rude"}, 422, "category must be"),
        ({"account_id": str(bob.account.pk), "rule_ids[]": ["1"]}, 422, "unknown rule"),
        ({"account_id": str(bob.account.pk), "comment": "x" * 1001}, 422, "longer than 1000"),
        ({"account_id": "999999"}, 404, "Record not found"),
        ({"status_ids[]": [bobs]}, 422, "account_id is required"),
    ]
    for data, status, words in refusals:
        r = await client.post("/api/v1/reports", data=data, headers=alice.headers)
        assert r.status_code == status and words in r.json()["error"], (data, r.text)
    assert await Report.all().count() == 1

    # write:reports suffices; a read-only token does not, nor no token.
    scoped = await login(client, alice.account, "write:reports")
    r = await client.post(
        "/api/v1/reports", json={"account_id": str(carol.account.pk)}, headers=scoped.headers
    )
    assert r.status_code == 200 and r.json()["category"] == "other"
    reader = await login(client, alice.account, "read")
    r = await client.post(
        "/api/v1/reports", data={"account_id": str(carol.account.pk)}, headers=reader.headers
    )
    assert r.status_code == 403
    r = await client.post("/api/v1/reports", data={"account_id": str(carol.account.pk)})
    assert r.status_code == 401
    assert await Report.all().count() == 2


async def test_admin_list_assign_resolve_reopen(client: httpx.AsyncClient, db: str) -> None:
    admin = await _admin(client)
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    bobs = await _clip(client, bob)
    ids = []
    for target, statuses in ((bob, [bobs]), (alice, [])):
        reporter = alice if target is bob else bob
        r = await client.post(
            "/api/v1/reports",
            data={"account_id": str(target.account.pk), "status_ids[]": statuses},
            headers=reporter.headers,
        )
        assert r.status_code == 200, r.text
        ids.append(r.json()["id"])
    a = "/api/v1/admin/reports"

    r = await client.get(a, headers=admin.headers)
    assert r.status_code == 200
    assert [x["id"] for x in r.json()] == ids[::-1]  # open ones, newest first
    one = r.json()[1]
    assert one["account"]["username"] == "alice" and one["target_account"]["username"] == "bob"
    assert [s["id"] for s in one["statuses"]] == [bobs] and one["assigned_account"] is None
    r = await client.get(
        a, params={"target_account_id": str(bob.account.pk)}, headers=admin.headers
    )
    assert [x["id"] for x in r.json()] == [ids[0]]
    r = await client.get(a, params={"account_id": str(bob.account.pk)}, headers=admin.headers)
    assert [x["id"] for x in r.json()] == [ids[1]]

    r = await client.post(f"{a}/{ids[0]}/assign_to_self", headers=admin.headers)
    assert r.status_code == 200 and r.json()["assigned_account"]["username"] == "boss"
    r = await client.post(f"{a}/{ids[0]}/unassign", headers=admin.headers)
    assert r.status_code == 200 and r.json()["assigned_account"] is None
    r = await client.post(f"{a}/{ids[0]}/resolve", headers=admin.headers)
    assert r.status_code == 200 and r.json()["action_taken"] is True
    assert r.json()["action_taken_by_account"]["username"] == "boss"
    assert [x["id"] for x in (await client.get(a, headers=admin.headers)).json()] == [ids[1]]
    r = await client.get(a, params={"resolved": "true"}, headers=admin.headers)
    assert [x["id"] for x in r.json()] == [ids[0]]
    r = await client.get(
        a, params={"resolved": "true", "unresolved": "true"}, headers=admin.headers
    )
    assert [x["id"] for x in r.json()] == ids[::-1]
    r = await client.post(f"{a}/{ids[0]}/reopen", headers=admin.headers)
    assert r.status_code == 200 and r.json()["action_taken"] is False
    assert r.json()["action_taken_at"] is None
    r = await client.get(f"{a}/{ids[0]}", headers=admin.headers)
    assert r.status_code == 200 and r.json()["id"] == ids[0]

    logged = await AuditEntry.filter(target_type="report").order_by("id")
    assert [(e.action, e.actor_label, e.target_label) for e in logged] == [
        ("report.assign", "@boss", f"report #{ids[0]}"),
        ("report.unassign", "@boss", f"report #{ids[0]}"),
        ("report.resolve", "@boss", f"report #{ids[0]}"),
        ("report.reopen", "@boss", f"report #{ids[0]}"),
    ]

    # Scopes and roles: read cannot write, plain scopes are not admin ones, users are refused.
    reader = await _admin(client, "admin:read:reports")
    assert (await client.get(a, headers=reader.headers)).status_code == 200
    r = await client.post(f"{a}/{ids[0]}/resolve", headers=reader.headers)
    assert r.status_code == 403 and "scopes" in r.json()["error"]
    plain = await _admin(client, "read write")
    assert (await client.get(a, headers=plain.headers)).status_code == 403
    user = await login(client, alice.account, ADMIN_SCOPES, app_scopes=ADMIN_SCOPES)
    for method, path in (("GET", ""), ("GET", f"/{ids[0]}"), ("POST", f"/{ids[0]}/resolve")):
        r = await client.request(method, f"{a}{path}", headers=user.headers)
        assert r.status_code == 403 and r.json() == {"error": "This action is not allowed"}
    for bad in ("999999", "abc"):
        r = await client.get(f"{a}/{bad}", headers=admin.headers)
        assert r.status_code == 404 and r.json() == {"error": "Record not found"}
    assert (await Report.get(pk=int(ids[0]))).action_taken_at is None


async def test_an_action_tells_the_user_and_is_audited(client: httpx.AsyncClient, db: str) -> None:
    from fedisora.services import reports

    admin = await _admin(client)
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    bobs = await _clip(client, bob)
    report = await reports.file_report(alice.account, bob.account, status_ids=[int(bobs)])

    await reports.take_action(report, "delete", admin.account, "please read the rules")
    assert (await Clip.get(pk=int(bobs))).deleted_at is not None
    with pytest.raises(Exception, match="reopen it first"):
        await reports.take_action(report, "dismiss", admin.account)
    warning = await AccountWarning.get(account_id=bob.account.pk)
    assert warning.action == "delete_statuses" and warning.status_ids == [int(bobs)]
    assert warning.report_id == report.pk

    # Bob reads it as Mastodon 4.3's moderation_warning, in both notification APIs.
    r = await client.get("/api/v1/notifications", headers=bob.headers)
    assert r.status_code == 200
    [note] = [n for n in r.json() if n["type"] == "moderation_warning"]
    assert note["moderation_warning"]["action"] == "delete_statuses"
    assert note["moderation_warning"]["text"] == "please read the rules"
    assert note["moderation_warning"]["status_ids"] == [bobs]
    assert note["account"]["id"] == str(bob.account.pk) and note["status"] is None
    r = await client.get("/api/v2/notifications", headers=bob.headers)
    groups = [g for g in r.json()["notification_groups"] if g["type"] == "moderation_warning"]
    assert groups[0]["moderation_warning"]["id"] == str(warning.pk)

    logged = await AuditEntry.filter(target_type="report", target_id=str(report.pk))
    assert [(e.action, e.actor_label) for e in logged] == [("report.delete", "@boss")]
    assert "1 of 1" in logged[0].detail
    resolved = await Report.get(pk=report.pk)
    assert resolved.action_taken_at is not None
    assert resolved.action_taken_by_account_id == admin.account.pk

    # Dismissing tells nobody; suspending through a report suspends and tells.
    second = await reports.file_report(alice.account, bob.account, comment="again")
    await reports.take_action(second, "dismiss", admin.account)
    assert await AccountWarning.filter(account_id=bob.account.pk).count() == 1
    third = await reports.file_report(alice.account, bob.account, comment="and again")
    await reports.take_action(third, "suspend", admin.account)
    assert (await Account.get(pk=bob.account.pk)).suspended_at is not None
    kinds = await AccountWarning.filter(account_id=bob.account.pk).order_by("id")
    assert [w.action for w in kinds] == ["delete_statuses", "suspend"]
    assert (
        await Notification.filter(
            recipient_id=bob.account.pk, type=NotificationType.MODERATION_WARNING
        ).count()
        == 2
    )
    actions = [e.action for e in await AuditEntry.all().order_by("id")]
    assert actions[-3:] == ["report.resolve", "account.suspend", "report.suspend"]


async def test_account_action_resolves_its_report(client: httpx.AsyncClient, db: str) -> None:
    admin = await _admin(client)
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    r = await client.post(
        "/api/v1/reports", data={"account_id": str(bob.account.pk)}, headers=alice.headers
    )
    report_id = r.json()["id"]
    a = f"/api/v1/admin/accounts/{alice.account.pk}/action"
    r = await client.post(a, data={"type": "none", "report_id": report_id}, headers=admin.headers)
    assert r.status_code == 422 and "not about @alice" in r.json()["error"]
    b = f"/api/v1/admin/accounts/{bob.account.pk}/action"
    r = await client.post(b, data={"type": "none", "report_id": "999999"}, headers=admin.headers)
    assert r.status_code == 404
    assert (await Report.get(pk=int(report_id))).action_taken_at is None
    r = await client.post(
        b,
        data={"type": "disable", "report_id": report_id, "text": "no more"},
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    assert (await Report.get(pk=int(report_id))).action_taken_at is not None
    warning = await AccountWarning.get(account_id=bob.account.pk)
    assert (warning.action, warning.text, warning.report_id) == (
        "disable",
        "no more",
        int(report_id),
    )


async def test_forwarding_queues_a_flag_from_the_instance_actor(
    client: httpx.AsyncClient, db: str, delivering: None
) -> None:
    alice = await login(client, await local_account("alice"))
    fan = await remote_account("fan", "remote.example")
    clip = await Clip.create(
        account=fan, uri="https://remote.example/users/fan/statuses/1", local=False
    )
    r = await client.post(
        "/api/v1/reports",
        json={
            "account_id": str(fan.pk),
            "status_ids": [str(clip.pk)],
            "comment": "not nice",
            "forward": True,
        },
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["forwarded"] is True
    instance = await create_instance_actor()
    [sent] = await Delivery.filter(sender_id=instance.pk)
    assert sent.inbox_url == "https://remote.example/inbox"
    flag = sent.payload
    assert flag["type"] == "Flag" and flag["actor"] == instance.uri
    assert flag["object"] == [fan.uri, clip.uri] and flag["content"] == "not nice"
    assert "alice" not in str(flag)  # the reporter stays ours to know
    report = await Report.get(pk=int(r.json()["id"]))
    assert report.uri == flag["id"] and sent.activity_id == flag["id"]

    # Without forward, or about a local account, nothing is sent.
    r = await client.post(
        "/api/v1/reports",
        data={"account_id": str(fan.pk), "forward": "false"},
        headers=alice.headers,
    )
    assert r.status_code == 200 and r.json()["forwarded"] is False
    assert await Delivery.filter(sender_id=instance.pk).count() == 1
