"""Sign-ups that wait for approval through the client API: Mastodon's admin list, approve and
reject (scopes, roles, bad input), invites from the API, the instance's registration info."""

from __future__ import annotations

import dataclasses

import httpx
from apihelpers import PASSWORD, app_token, login, register_app
from factories import local_account, remote_account

from fedisora.models import Account, AuditEntry, Invite, Notification, OAuthAccessToken, User

ADMIN_SCOPES = "read write admin:read admin:write"


def _with(client: httpx.AsyncClient, **changes: object) -> None:
    app = client.app  # type: ignore[attr-defined]
    app.state.settings = dataclasses.replace(app.state.settings, **changes)


async def _sign_up(client: httpx.AsyncClient, name: str, **extra: str) -> httpx.Response:
    headers = await app_token(client, "read write")
    form = {
        "username": name,
        "email": f"{name}@example.com",
        "password": PASSWORD,
        "agreement": "true",
        **extra,
    }
    return await client.post("/api/v1/accounts", data=form, headers=headers)


async def _password_grant(client: httpx.AsyncClient, username: str) -> httpx.Response:
    client_id, secret = await register_app(client)
    return await client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "client_id": client_id,
            "client_secret": secret,
            "username": username,
            "password": PASSWORD,
            "scope": "read",
        },
    )


async def test_pending_sign_ups_are_listed_approved_and_rejected(
    client: httpx.AsyncClient,
) -> None:
    _with(client, registrations="approval")
    boss_account = await local_account("boss", admin=True)
    boss = (await login(client, boss_account, ADMIN_SCOPES, app_scopes=ADMIN_SCOPES)).headers
    await remote_account("far", "remote.example")
    r = await _sign_up(client, "newbie")
    assert r.status_code == 422 and "reason is required" in r.json()["error"]
    for name in ("newbie", "spammer"):
        r = await _sign_up(client, name, reason=f"{name} wants to make clips")
        assert r.status_code == 200, r.text
    newbie = await Account.get(username="newbie")
    spammer = await Account.get(username="spammer")
    # Both wait: the login says so.
    r = await _password_grant(client, "newbie")
    assert r.status_code == 400 and "waiting for approval" in r.json()["error_description"]

    # The admins were told (Mastodon's admin.sign_up), with the account that signed up.
    r = await client.get("/api/v1/notifications", headers=boss)
    signups = [n for n in r.json() if n["type"] == "admin.sign_up"]
    assert {n["account"]["username"] for n in signups} == {"newbie", "spammer"}

    # v1 with the pending flag (as Mastodon.py's admin_accounts_v1 sends it) and status=.
    for query in ("pending=true", "status=pending", "local=true&pending=true"):
        r = await client.get(f"/api/v1/admin/accounts?{query}", headers=boss)
        assert r.status_code == 200, r.text
        listed = r.json()
        assert [a["username"] for a in listed] == ["spammer", "newbie"], query
        assert listed[1]["approved"] is False
        assert listed[1]["invite_request"] == "newbie wants to make clips"
    r = await client.get("/api/v2/admin/accounts?status=pending&origin=local", headers=boss)
    assert [a["username"] for a in r.json()] == ["spammer", "newbie"]
    r = await client.get("/api/v1/admin/accounts?active=true", headers=boss)
    assert {a["username"] for a in r.json()} == {"boss", "far"}  # pending ones are not active
    r = await client.get("/api/v1/admin/accounts?remote=true", headers=boss)
    assert [a["username"] for a in r.json()] == ["far"]
    r = await client.get("/api/v2/admin/accounts?permissions=staff", headers=boss)
    assert [a["username"] for a in r.json()] == ["boss"]
    r = await client.get("/api/v1/admin/accounts?status=sleeping", headers=boss)
    assert r.status_code == 422 and "status must be one of" in r.json()["error"]

    # Approve one: it can log in.
    r = await client.post(f"/api/v1/admin/accounts/{newbie.pk}/approve", headers=boss)
    assert r.status_code == 200, r.text
    assert r.json()["approved"] is True and r.json()["username"] == "newbie"
    assert (await _password_grant(client, "newbie")).status_code == 200
    # Approving it again (or any account not waiting) is a clear refusal.
    r = await client.post(f"/api/v1/admin/accounts/{newbie.pk}/approve", headers=boss)
    assert r.status_code == 403 and "not waiting for approval" in r.json()["error"]
    r = await client.post(f"/api/v1/admin/accounts/{newbie.pk}/reject", headers=boss)
    assert r.status_code == 403 and "not waiting for approval" in r.json()["error"]
    assert await User.filter(account_id=newbie.pk).exists()
    r = await client.post(f"/api/v1/admin/accounts/{boss_account.pk}/approve", headers=boss)
    assert r.status_code == 403
    r = await client.post("/api/v1/admin/accounts/999999/approve", headers=boss)
    assert r.status_code == 404

    # Reject the other: the account goes (login, token, notifications), its name is free.
    assert await OAuthAccessToken.filter(account_id=spammer.pk).exists()  # from the sign-up
    r = await client.post(f"/api/v1/admin/accounts/{spammer.pk}/reject", headers=boss)
    assert r.status_code == 200, r.text
    assert r.json()["username"] == "spammer" and r.json()["approved"] is False
    assert not await Account.filter(pk=spammer.pk).exists()
    assert not await User.filter(account_id=spammer.pk).exists()
    assert not await OAuthAccessToken.filter(account_id=spammer.pk).exists()
    assert not await Notification.filter(from_account_id=spammer.pk).exists()
    r = await _password_grant(client, "spammer")
    assert r.status_code == 400 and "credentials were incorrect" in r.text  # gone: unknown
    r = await client.get("/api/v1/admin/accounts?pending=true", headers=boss)
    assert r.json() == []
    r = await _sign_up(client, "spammer", reason="a second try")
    assert r.status_code == 200  # the name and e-mail are free again

    entries = await AuditEntry.filter(action__in=["account.approve", "account.reject"]).order_by(
        "id"
    )
    assert [(e.action, e.target_label, e.actor_id) for e in entries] == [
        ("account.approve", "@newbie", boss_account.pk),
        ("account.reject", "@spammer", boss_account.pk),
    ]
    assert entries[1].detail == "reason given: spammer wants to make clips"


async def test_approve_and_reject_need_an_admin_and_admin_scopes(
    client: httpx.AsyncClient,
) -> None:
    _with(client, registrations="approval")
    boss_account = await local_account("boss", admin=True)
    waiting = await local_account("waiting", approved=False, signup_reason="hi")
    plain = await login(client, await local_account("plain"), ADMIN_SCOPES, app_scopes=ADMIN_SCOPES)
    reader = await login(client, boss_account, "read admin:read", app_scopes=ADMIN_SCOPES)
    no_admin_scope = await login(client, boss_account, "read write", app_scopes=ADMIN_SCOPES)
    for action in ("approve", "reject"):
        url = f"/api/v1/admin/accounts/{waiting.pk}/{action}"
        r = await client.post(url, headers=plain.headers)  # not an admin
        assert r.status_code == 403 and r.json()["error"] == "This action is not allowed"
        for token in (reader, no_admin_scope):  # an admin without admin:write
            r = await client.post(url, headers=token.headers)
            assert r.status_code == 403, r.text
        r = await client.post(url)
        assert r.status_code == 401
    r = await client.get("/api/v1/admin/accounts?pending=true", headers=plain.headers)
    assert r.status_code == 403
    r = await client.get("/api/v1/admin/accounts?pending=true", headers=no_admin_scope.headers)
    assert r.status_code == 403
    r = await client.get("/api/v1/admin/accounts?pending=true", headers=reader.headers)
    assert [a["username"] for a in r.json()] == ["waiting"]  # admin:read lists
    user = await User.get(account_id=waiting.pk)
    assert not user.approved
    assert not await AuditEntry.filter(action__startswith="account.").exists()
    writer = await login(client, boss_account, "admin:write:accounts", app_scopes=ADMIN_SCOPES)
    r = await client.post(f"/api/v1/admin/accounts/{waiting.pk}/approve", headers=writer.headers)
    assert r.status_code == 200 and r.json()["approved"] is True


async def test_the_api_signs_up_with_an_invite_while_closed(client: httpx.AsyncClient) -> None:
    _with(client, registrations="closed", registrations_message="Invite only, sorry.")
    boss = await local_account("boss", admin=True)
    r = await _sign_up(client, "walkin")
    assert r.status_code == 403 and r.json()["error"] == "Invite only, sorry."
    invite = await Invite.create(code="abcDEF123", creator=boss, max_uses=1)
    r = await _sign_up(client, "guest", invite_code="abcDEF123")
    assert r.status_code == 200, r.text
    user = await User.get(email="guest@example.com")
    assert user.approved  # an invite skips approval
    r = await client.get(
        "/api/v1/accounts/verify_credentials",
        headers={"Authorization": f"Bearer {r.json()['access_token']}"},
    )
    assert r.status_code == 200 and r.json()["username"] == "guest"
    r = await _sign_up(client, "second", invite_code="abcDEF123")
    assert r.status_code == 410 and "used as many times" in r.json()["error"]
    r = await _sign_up(client, "third", invite_code="nope")
    assert r.status_code == 404 and "not valid" in r.json()["error"]
    assert (await Invite.get(pk=invite.pk)).uses == 1


async def test_the_instance_reports_the_registration_mode_and_message(
    client: httpx.AsyncClient,
) -> None:
    _with(client, registrations="approval", registrations_message="We read every reason.")
    v2 = (await client.get("/api/v2/instance")).json()["registrations"]
    assert v2["enabled"] is True and v2["approval_required"] is True
    assert v2["message"] == "We read every reason." and v2["reason_required"] is True
    v1 = (await client.get("/api/v1/instance")).json()
    assert v1["approval_required"] is True and v1["invites_enabled"] is False
    _with(client, registrations="closed", invites="users")
    v2 = (await client.get("/api/v2/instance")).json()["registrations"]
    assert v2["enabled"] is False and v2["message"] == "We read every reason."
    assert (await client.get("/api/v1/instance")).json()["invites_enabled"] is True
