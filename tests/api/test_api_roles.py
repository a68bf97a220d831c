"""Moderators in Mastodon's API: their Role entity, the admin account and report endpoints
open to them (not on staff accounts, not deleting data), domain blocks closed to them."""

from __future__ import annotations

import dataclasses

import httpx
from apihelpers import PASSWORD, app_token, login
from factories import local_account, remote_account

from fedisora.models import Account, AuditEntry, DomainBlock, User
from fedisora.services import audit, reports, roles

SCOPES = "read write admin:read admin:write"


async def test_a_moderator_in_the_admin_api(client: httpx.AsyncClient, db: str) -> None:
    boss = await local_account("boss", admin=True)
    mod = await local_account("mod")
    await roles.set_role(mod, "moderator", by=audit.CLI)
    bob = await local_account("bob")
    fan = await remote_account("fan", "remote.example")
    report = await reports.file_report(bob, fan, comment="spam")
    h = (await login(client, mod, SCOPES, app_scopes=SCOPES)).headers
    a = "/api/v1/admin/accounts"

    me = (await client.get("/api/v1/accounts/verify_credentials", headers=h)).json()
    # Mastodon's bits: view_dashboard 1<<3, manage_reports 1<<4, manage_users 1<<10
    assert me["role"] == {
        "id": "2",
        "name": "Moderator",
        "color": "",
        "permissions": str(8 | 16 | 1024),
        "highlighted": True,
    }
    r = await client.get(f"{a}/{boss.pk}", headers=h)
    assert r.status_code == 200 and r.json()["role"]["name"] == "Admin"
    assert r.json()["role"]["permissions"] == "1"
    r = await client.get(f"{a}/{bob.pk}", headers=h)
    assert r.json()["role"]["id"] == "-99" and r.json()["role"]["highlighted"] is False
    staff = await client.get("/api/v2/admin/accounts?permissions=staff", headers=h)
    assert sorted(e["username"] for e in staff.json()) == ["boss", "mod"]
    v1 = await client.get(f"{a}?staff=true", headers=h)
    assert sorted(e["username"] for e in v1.json()) == ["boss", "mod"]

    # accounts and reports are theirs
    r = await client.post(f"{a}/{bob.pk}/action", data={"type": "suspend"}, headers=h)
    assert r.status_code == 200
    assert (await client.post(f"{a}/{bob.pk}/unsuspend", headers=h)).status_code == 200
    r = await client.get("/api/v1/admin/reports", headers=h)
    assert r.status_code == 200 and [e["id"] for e in r.json()] == [str(report.pk)]
    r = await client.post(f"/api/v1/admin/reports/{report.pk}/assign_to_self", headers=h)
    assert r.status_code == 200 and r.json()["assigned_account"]["username"] == "mod"

    # ... staff accounts, deleting data and domain blocks are not: refused, nothing changed
    r = await client.post(f"{a}/{boss.pk}/action", data={"type": "suspend"}, headers=h)
    assert r.status_code == 403 and "moderator's or an admin's account" in r.json()["error"]
    await client.post(f"{a}/{bob.pk}/action", data={"type": "suspend"}, headers=h)
    r = await client.delete(f"{a}/{bob.pk}", headers=h)
    assert r.status_code == 403 and r.json() == {"error": "This action is not allowed"}
    assert await User.filter(account_id=bob.pk).exists()
    for method, path in (
        ("GET", "/api/v1/admin/domain_blocks"),
        ("POST", "/api/v1/admin/domain_blocks"),
        ("GET", "/api/v1/admin/domain_allows"),
        ("POST", "/api/v1/admin/domain_allows"),
    ):
        r = await client.request(method, path, headers=h, data={"domain": "spam.example"})
        assert r.status_code == 403, path
        assert r.json() == {"error": "This action is not allowed"}
    assert not await DomainBlock.exists()
    assert (await Account.get(pk=boss.pk)).suspended_at is None
    actions = await AuditEntry.filter(actor_label="@mod").order_by("id")
    assert [e.action for e in actions] == [
        "account.suspend",
        "account.unsuspend",
        "report.assign",
        "account.suspend",
    ]

    # moderators approve sign-ups, so they hear of them, as admins do
    app = client.app  # type: ignore[attr-defined]
    app.state.settings = dataclasses.replace(app.state.settings, registrations="approval")
    form = {
        "username": "newbie",
        "email": "newbie@example.com",
        "password": PASSWORD,
        "agreement": "true",
        "reason": "I film birds",
    }
    r = await client.post("/api/v1/accounts", data=form, headers=await app_token(client))
    assert r.status_code == 200, r.text
    r = await client.get("/api/v1/notifications", headers=h)
    assert [n["account"]["username"] for n in r.json() if n["type"] == "admin.sign_up"] == [
        "newbie"
    ]
    newbie = await Account.get(username="newbie")
    r = await client.post(f"{a}/{newbie.pk}/approve", headers=h)
    assert r.status_code == 200 and r.json()["approved"] is True

    # a user who is made a moderator has the admin API at once; one made a user, no more
    await roles.set_role(mod, "user", by=audit.CLI)
    r = await client.get("/api/v1/admin/reports", headers=h)
    assert r.status_code == 403 and r.json() == {"error": "This action is not allowed"}
