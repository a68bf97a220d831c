"""Mastodon's admin API for accounts: suspend, then delete; scopes, roles and bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from apihelpers import PASSWORD, app_token, login
from factories import local_account, remote_account, rendered_video

from fedisora.federation import install, uninstall
from fedisora.models import Account, AuditEntry, Clip, Delivery, User, utcnow
from fedisora.services import follows

ADMIN_SCOPES = "read write admin:read admin:write"


async def _admin_login(client: httpx.AsyncClient, account: Account, scope: str) -> dict[str, str]:
    """Headers with a password-grant token with *scope*, from an app allowed admin scopes."""
    return (await login(client, account, scope, app_scopes=ADMIN_SCOPES)).headers


@pytest.fixture
async def delivering(db: str) -> AsyncIterator[None]:
    """The federation listener on, as the app's lifespan installs it."""
    install(None)
    try:
        yield
    finally:
        await uninstall()


async def test_suspend_then_delete(client: httpx.AsyncClient, db: str, delivering: None) -> None:
    admin = await _admin_login(client, await local_account("boss", admin=True), ADMIN_SCOPES)
    bob = await login(client, await local_account("bob"))
    fan = await remote_account("fan", "remote.example")
    await follows.follow(fan, bob.account)
    r = await client.post(
        "/api/v1/statuses",
        data={"status": "hello", "media_ids[]": str((await rendered_video(bob.account)).pk)},
        headers=bob.headers,
    )
    assert r.status_code == 200, r.text
    clip_id = r.json()["id"]
    base = f"/api/v1/admin/accounts/{bob.account.pk}"

    r = await client.get(base, headers=admin)
    assert r.status_code == 200
    entity = r.json()
    assert entity["username"] == "bob" and entity["email"] == "bob@example.com"
    assert entity["suspended"] is False and entity["account"]["acct"] == "bob"

    # Mastodon's order: deleting an account that is not suspended is refused.
    r = await client.delete(base, headers=admin)
    assert r.status_code == 403 and "suspend it first" in r.json()["error"]
    assert await User.filter(account_id=bob.account.pk).exists()

    r = await client.post(f"{base}/action", data={"type": "suspend"}, headers=admin)
    assert r.status_code == 200 and r.json() == {}
    assert (await client.get(base, headers=admin)).json()["suspended"] is True
    r = await client.get("/api/v1/accounts/verify_credentials", headers=bob.headers)
    assert r.status_code == 401  # a suspended account's tokens stop working
    assert await Clip.filter(pk=int(clip_id), deleted_at=None).exists()  # content stays

    r = await client.delete(base, headers=admin)
    assert r.status_code == 200, r.text
    gone = r.json()
    assert gone["id"] == str(bob.account.pk) and gone["suspended"] is True
    assert gone["email"] is None and gone["confirmed"] is False  # no login left

    # Nothing authenticates; the content and the profile are gone; the name stays taken.
    r = await client.get("/api/v1/accounts/verify_credentials", headers=bob.headers)
    assert r.status_code == 401 and r.json() == {"error": "The access token is invalid"}
    r = await client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "client_id": bob.client_id,
            "client_secret": bob.client_secret,
            "username": "bob",
            "password": PASSWORD,
        },
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert (await client.get(f"/api/v1/statuses/{clip_id}")).status_code == 404
    assert (await client.get(f"/api/v1/accounts/{bob.account.pk}")).status_code == 404
    signup = await client.post(
        "/api/v1/accounts",
        data={
            "username": "bob",
            "email": "other@example.com",
            "password": "a long password",
            "agreement": "true",
        },
        headers=await app_token(client, "write"),
    )
    assert signup.status_code == 409 and "taken" in signup.json()["error"]
    # The remote follower's server heard of the suspension (the actor's Update saying
    # ``suspended``), then of the deletion (the single Delete of the actor).
    sent = await Delivery.filter(sender_id=bob.account.pk).order_by("id")
    # The follow's Accept and the clip's Create before; after them, only the actor's.
    assert [d.payload["type"] for d in sent] == ["Accept", "Create", "Update", "Delete"]
    assert sent[2].payload["object"]["suspended"] is True
    delete = sent[-1]
    assert delete.activity_id == f"{bob.account.uri}#delete"
    assert delete.payload["object"] == bob.account.uri
    assert delete.inbox_url == "https://remote.example/inbox"
    # Both actions are in the audit log, by the admin whose token took them.
    logged = await AuditEntry.filter(target_id=str(bob.account.pk)).order_by("id")
    assert [(e.action, e.actor_label, e.target_label) for e in logged] == [
        ("account.suspend", "@boss", "@bob"),
        ("account.delete", "@boss", "@bob"),
    ]

    # Repeating the DELETE is harmless: the same answer, nothing sent twice.
    r = await client.delete(base, headers=admin)
    assert r.status_code == 200 and r.json()["suspended"] is True
    assert await Delivery.filter(activity_id=delete.activity_id).count() == 1


async def test_bad_requests_are_clear_json_errors(client: httpx.AsyncClient, db: str) -> None:
    boss = await local_account("boss", admin=True)
    admin = await _admin_login(client, boss, ADMIN_SCOPES)
    bob = await local_account("bob")
    fan = await remote_account("fan", "remote.example")
    a = "/api/v1/admin/accounts"

    # No token, a token without admin scopes, a non-admin's token with them.
    r = await client.delete(f"{a}/{bob.pk}")
    assert r.status_code == 401 and r.json() == {"error": "The access token is invalid"}
    plain = await _admin_login(client, boss, "read write")
    r = await client.delete(f"{a}/{bob.pk}", headers=plain)
    assert r.status_code == 403
    assert r.json() == {"error": "This action is outside the authorized scopes"}
    read_only = await _admin_login(client, boss, "admin:read")
    r = await client.post(f"{a}/{bob.pk}/action", data={"type": "suspend"}, headers=read_only)
    assert r.status_code == 403 and "scopes" in r.json()["error"]
    assert (await client.get(f"{a}/{bob.pk}", headers=read_only)).status_code == 200
    mallory = await _admin_login(client, await local_account("mallory"), ADMIN_SCOPES)
    for method, path in (("GET", ""), ("DELETE", ""), ("POST", "/action")):
        r = await client.request(method, f"{a}/{bob.pk}{path}", headers=mallory)
        assert r.status_code == 403 and r.json() == {"error": "This action is not allowed"}

    # Unknown ids, and the instance actor, which is no account here.
    for bad in ("999999", "abc"):
        r = await client.delete(f"{a}/{bad}", headers=admin)
        assert r.status_code == 404 and r.json() == {"error": "Record not found"}
        r = await client.post(f"{a}/{bad}/action", data={"type": "suspend"}, headers=admin)
        assert r.status_code == 404
    from fedisora.services.accounts import create_instance_actor

    instance = await create_instance_actor()
    assert (await client.get(f"{a}/{instance.pk}", headers=admin)).status_code == 404

    # Actions: unknown types, one's own account (silence and sensitive: their own tests).
    r = await client.post(f"{a}/{bob.pk}/action", data={"type": "obliterate"}, headers=admin)
    assert r.status_code == 422 and "type must be one of" in r.json()["error"]
    r = await client.post(f"{a}/{boss.pk}/action", data={"type": "silence"}, headers=admin)
    assert r.status_code == 403 and "own account" in r.json()["error"]
    r = await client.post(f"{a}/{boss.pk}/action", data={"type": "suspend"}, headers=admin)
    assert r.status_code == 403 and "own account" in r.json()["error"]
    r = await client.delete(f"{a}/{boss.pk}", headers=admin)
    assert r.status_code == 403 and "own account" in r.json()["error"]

    # An unsuspended account, then a (suspended) remote one.
    r = await client.delete(f"{a}/{bob.pk}", headers=admin)
    assert r.status_code == 403 and "suspend it first" in r.json()["error"]
    r = await client.post(f"{a}/{fan.pk}/action", data={"type": "suspend"}, headers=admin)
    assert r.status_code == 200
    r = await client.delete(f"{a}/{fan.pk}", headers=admin)
    assert r.status_code == 422 and "only local accounts" in r.json()["error"]
    r = await client.post(f"{a}/{fan.pk}/action", data={"type": "disable"}, headers=admin)
    assert r.status_code == 422 and "only local accounts" in r.json()["error"]

    # None of that changed bob; "disable" stops his login without suspending him.
    assert (await Account.get(pk=bob.pk)).suspended_at is None
    assert await User.filter(account_id=bob.pk, disabled=False).exists()
    r = await client.post(f"{a}/{bob.pk}/action", json={"type": "disable"}, headers=admin)
    assert r.status_code == 200 and r.json() == {}
    entity = (await client.get(f"{a}/{bob.pk}", headers=admin)).json()
    assert entity["disabled"] is True and entity["suspended"] is False


async def test_unsuspend(client: httpx.AsyncClient, db: str, delivering: None) -> None:
    boss = await local_account("boss", admin=True)
    admin = await _admin_login(client, boss, ADMIN_SCOPES)
    bob = await login(client, await local_account("bob"))
    fan = await remote_account("fan", "remote.example")
    await follows.follow(fan, bob.account)
    a = "/api/v1/admin/accounts"
    base = f"{a}/{bob.account.pk}"

    r = await client.post(f"{base}/unsuspend", headers=admin)
    assert r.status_code == 403 and r.json() == {"error": "@bob is not suspended"}
    r = await client.post(f"{base}/action", data={"type": "suspend"}, headers=admin)
    assert r.status_code == 200
    assert (await client.get("/api/v1/accounts/lookup?acct=bob")).status_code == 404

    r = await client.post(f"{base}/unsuspend", headers=admin)
    assert r.status_code == 200, r.text
    entity = r.json()  # Mastodon's Admin::Account, as the other admin endpoints answer
    assert entity["id"] == str(bob.account.pk) and entity["username"] == "bob"
    assert entity["suspended"] is False and entity["email"] == "bob@example.com"
    assert entity["account"]["acct"] == "bob"
    r = await client.get("/api/v1/accounts/verify_credentials", headers=bob.headers)
    assert r.status_code == 200  # the token works again
    assert (await client.get("/api/v1/accounts/lookup?acct=bob")).status_code == 200
    # The remote follower's server heard both: the suspended actor, then the full one.
    sent = await Delivery.filter(sender_id=bob.account.pk).order_by("id")
    updates = [d for d in sent if d.payload["type"] == "Update"]
    assert [u.payload["object"].get("suspended") for u in updates] == [True, None]
    assert {u.inbox_url for u in updates} == {"https://remote.example/inbox"}
    r = await client.post(f"{base}/unsuspend", headers=admin)
    assert r.status_code == 403 and "not suspended" in r.json()["error"]

    # Scopes and roles, as for the other admin endpoints; unknown ids; oneself.
    await client.post(f"{base}/action", data={"type": "suspend"}, headers=admin)
    r = await client.post(f"{base}/unsuspend")
    assert r.status_code == 401
    for scope in ("read write", "admin:read"):
        token = await _admin_login(client, boss, scope)
        r = await client.post(f"{base}/unsuspend", headers=token)
        assert r.status_code == 403 and "scopes" in r.json()["error"]
    mallory = await _admin_login(client, await local_account("mallory"), ADMIN_SCOPES)
    r = await client.post(f"{base}/unsuspend", headers=mallory)
    assert r.status_code == 403 and r.json() == {"error": "This action is not allowed"}
    for bad in ("999999", "abc"):
        r = await client.post(f"{a}/{bad}/unsuspend", headers=admin)
        assert r.status_code == 404 and r.json() == {"error": "Record not found"}
    r = await client.post(f"{a}/{boss.pk}/unsuspend", headers=admin)
    assert r.status_code == 403 and "own account" in r.json()["error"]
    assert (await Account.get(pk=bob.account.pk)).suspended_at is not None

    # A deleted account cannot come back.
    assert (await client.delete(base, headers=admin)).status_code == 200
    r = await client.post(f"{base}/unsuspend", headers=admin)
    assert r.status_code == 403
    assert r.json() == {"error": "@bob was deleted: it cannot be unsuspended"}
    assert (await client.get(base, headers=admin)).json()["suspended"] is True


async def test_unsuspend_remote_accounts(
    client: httpx.AsyncClient, db: str, delivering: None
) -> None:
    admin = await _admin_login(client, await local_account("boss", admin=True), ADMIN_SCOPES)
    # (Its server is unreachable: the refetch after unsuspending fails, and is logged.)
    fan = await remote_account("fan", "127.0.0.1:9")
    base = f"/api/v1/admin/accounts/{fan.pk}"
    sent = await Delivery.all().count()

    r = await client.post(f"{base}/action", data={"type": "suspend"}, headers=admin)
    assert r.status_code == 200
    r = await client.post(f"{base}/unsuspend", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["suspended"] is False and r.json()["domain"] == "127.0.0.1:9"
    assert (await Account.get(pk=fan.pk)).fetched_at is None  # refetched on next use
    assert await Delivery.all().count() == sent  # local moderation: nothing federates

    # Suspended by its own server: shown as suspended, but not this instance's to lift.
    await Account.filter(pk=fan.pk).update(origin_suspended_at=utcnow())
    assert (await client.get(base, headers=admin)).json()["suspended"] is True
    r = await client.post(f"{base}/unsuspend", headers=admin)
    assert r.status_code == 403 and "suspended by its own server" in r.json()["error"]
