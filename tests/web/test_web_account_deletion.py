"""Moderating accounts from the web pages: the admin's suspend and unsuspend buttons, the
admin's delete action and a user's own deletion, each behind the session's CSRF token (the
deletions behind a confirmation step too)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from factories import local_account, remote_account
from webhelpers import log_in

from fedisora.app import create_app
from fedisora.config import load_settings
from fedisora.federation import install, uninstall
from fedisora.models import Account, Delivery, User
from fedisora.services import follows
from fedisora.services.account_deletion import is_deleted

PASSWORD = "correct horse battery"


@pytest.fixture
async def web(db: str, tmp_path: Path) -> AsyncIterator[httpx.ASGITransport]:
    settings = load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": str(tmp_path),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_DATABASE_URL": db,
        }
    )
    yield httpx.ASGITransport(app=create_app(settings, run_work=False, manage_db=False))


def browser(transport: httpx.ASGITransport) -> httpx.AsyncClient:
    """A browser of its own: its own cookie jar (session)."""
    return httpx.AsyncClient(
        transport=transport, base_url="https://fedisora.test", headers={"accept": "text/html"}
    )


async def _log_in(http: httpx.AsyncClient, login: str) -> None:
    await log_in(http, login, PASSWORD)


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


async def test_admin_deletes_an_account_after_confirming(db: str, web: httpx.ASGITransport) -> None:
    boss = await local_account("boss", admin=True)
    bob = await local_account("bob")
    async with browser(web) as anon:
        assert (await anon.get("/admin/accounts")).status_code == 401
        assert (await anon.get(f"/admin/accounts/{bob.pk}/delete")).status_code == 401
    async with browser(web) as carol:
        await local_account("carol")
        await _log_in(carol, "carol")
        assert (await carol.get("/admin/accounts")).status_code == 403
        # Even with a valid token of its own session, a non-admin cannot delete.
        token = _csrf((await carol.get("/settings/delete")).text)
        r = await carol.post(
            f"/admin/accounts/{bob.pk}/delete", data={"csrf": token, "confirm": "bob"}
        )
        assert r.status_code == 403 and "admins" in r.text

    async with browser(web) as admin:
        await _log_in(admin, "boss")
        listing = await admin.get("/admin/accounts")
        assert listing.status_code == 200
        assert f'href="/admin/accounts/{bob.pk}/delete"' in listing.text
        assert f'href="/admin/accounts/{boss.pk}/delete"' not in listing.text  # not oneself
        for bad in (str(2**63), "\u00b2", "9" * 5000):  # no row id: 404, not a 500
            assert (await admin.get(f"/admin/accounts/{bad}/delete")).status_code == 404
        page = await admin.get(f"/admin/accounts/{bob.pk}/delete")
        assert page.status_code == 200 and "cannot be undone" in page.text
        token = _csrf(page.text)
        url = f"/admin/accounts/{bob.pk}/delete"

        # The confirmation step: no token, a foreign token, the wrong name: nothing happens.
        assert (await admin.post(url, data={"confirm": "bob"})).status_code == 403
        r = await admin.post(url, data={"csrf": "forged", "confirm": "bob"})
        assert r.status_code == 403
        r = await admin.post(url, data={"csrf": token, "confirm": "alice"})
        assert r.status_code == 400 and "Type the username bob" in r.text
        assert await User.filter(account_id=bob.pk).exists()

        r = await admin.post(url, data={"csrf": token, "confirm": "@bob"})
        assert r.status_code == 200 and "@bob is deleted" in r.text
        assert await is_deleted(await Account.get(pk=bob.pk))
        listing = await admin.get("/admin/accounts")
        assert "deleted" in listing.text
        assert f'href="/admin/accounts/{bob.pk}/delete"' not in listing.text

        r = await admin.post(
            f"/admin/accounts/{boss.pk}/delete", data={"csrf": token, "confirm": "boss"}
        )
        assert r.status_code == 403 and "/settings/delete" in r.text
        assert (await admin.get("/admin/accounts/999999/delete")).status_code == 404
    async with browser(web) as bobs:
        csrf = _csrf((await bobs.get("/login")).text)
        r = await bobs.post("/login", data={"login": "bob", "password": PASSWORD, "csrf": csrf})
        assert r.status_code == 401  # his login is gone


async def test_users_delete_their_own_account_with_their_password(
    db: str, web: httpx.ASGITransport
) -> None:
    bob = await local_account("bob")
    async with browser(web) as anon:
        r = await anon.get("/settings/delete")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/settings/delete"
        assert (await anon.post("/settings/delete", data={"password": PASSWORD})).status_code == 401

    async with browser(web) as http:
        await _log_in(http, "bob")
        page = await http.get("/settings/delete")
        assert page.status_code == 200 and "Delete your account @bob" in page.text
        token = _csrf(page.text)
        r = await http.post("/settings/delete", data={"password": PASSWORD})
        assert r.status_code == 403  # no CSRF token
        r = await http.post("/settings/delete", data={"csrf": token, "password": "wrong one"})
        assert r.status_code == 401 and "password is not right" in r.text
        assert await User.filter(account_id=bob.pk).exists()

        r = await http.post("/settings/delete", data={"csrf": token, "password": PASSWORD})
        assert r.status_code == 200 and "Your account @bob is deleted" in r.text
        assert await is_deleted(await Account.get(pk=bob.pk))
        # Logged out: the session no longer names the account.
        r = await http.get("/settings/delete")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_a_stale_session_of_a_deleted_account_authenticates_nothing(
    db: str, web: httpx.ASGITransport
) -> None:
    await local_account("boss", admin=True)
    bob = await local_account("bob", admin=True)
    async with browser(web) as bobs:
        await _log_in(bobs, "bob")
        assert (await bobs.get("/admin")).status_code == 200
        async with browser(web) as admin:
            await _log_in(admin, "boss")
            token = _csrf((await admin.get(f"/admin/accounts/{bob.pk}/delete")).text)
            r = await admin.post(
                f"/admin/accounts/{bob.pk}/delete", data={"csrf": token, "confirm": "bob"}
            )
            assert r.status_code == 200
        # bob's browser still has its old session cookie: it names no session any more, and
        # the answer deletes it.
        r = await bobs.get("/admin")
        assert r.status_code == 401
        assert "fedisora_session" not in bobs.cookies
        assert (await bobs.get("/settings/delete")).status_code == 303


async def test_the_only_admin_cannot_delete_themselves(db: str, web: httpx.ASGITransport) -> None:
    boss = await local_account("boss", admin=True)
    async with browser(web) as http:
        await _log_in(http, "boss")
        token = _csrf((await http.get("/settings/delete")).text)
        r = await http.post("/settings/delete", data={"csrf": token, "password": PASSWORD})
        assert r.status_code == 409 and "only admin" in r.text
    assert not await is_deleted(await Account.get(pk=boss.pk))


async def test_admin_suspends_and_unsuspends_from_the_account_list(
    db: str, web: httpx.ASGITransport
) -> None:
    boss = await local_account("boss", admin=True)
    bob = await local_account("bob")
    fan = await remote_account("fan", "remote.example")
    suspend = f"/admin/accounts/{bob.pk}/suspend"
    unsuspend = f"/admin/accounts/{bob.pk}/unsuspend"
    async with browser(web) as carol:
        await local_account("carol")
        await _log_in(carol, "carol")
        token = _csrf((await carol.get("/settings/delete")).text)
        r = await carol.post(suspend, data={"csrf": token})
        assert r.status_code == 403 and "admins" in r.text

    install(None)  # events are processed as they commit, as the app's runner does
    try:
        await follows.follow(fan, bob)
        async with browser(web) as admin:
            await _log_in(admin, "boss")
            listing = (await admin.get("/admin/accounts")).text
            assert f'action="{suspend}"' in listing and f'action="{unsuspend}"' not in listing
            assert f'action="/admin/accounts/{boss.pk}/suspend"' not in listing  # not oneself
            token = _csrf(listing)
            assert (await admin.post(suspend)).status_code == 403  # no CSRF token
            assert (await admin.post(suspend, data={"csrf": "forged"})).status_code == 403
            assert (await Account.get(pk=bob.pk)).suspended_at is None

            r = await admin.post(suspend, data={"csrf": token})
            assert r.status_code == 303 and r.headers["location"] == "/admin/accounts"
            assert (await Account.get(pk=bob.pk)).suspended_at is not None
            listing = (await admin.get("/admin/accounts")).text
            assert "suspended" in listing and f'action="{unsuspend}"' in listing
            assert f'action="{suspend}"' not in listing

            r = await admin.post(unsuspend, data={"csrf": token})
            assert r.status_code == 303
            assert (await Account.get(pk=bob.pk)).suspended_at is None
            r = await admin.post(unsuspend, data={"csrf": token})
            assert r.status_code == 403 and "not suspended" in r.text
            r = await admin.post(f"/admin/accounts/{boss.pk}/suspend", data={"csrf": token})
            assert r.status_code == 403 and "your own account" in r.text
            r = await admin.post("/admin/accounts/999999/suspend", data={"csrf": token})
            assert r.status_code == 404

            # The remote follower's server heard both, as the actor's Updates.
            sent = await Delivery.filter(sender_id=bob.pk).order_by("id")
            updates = [d.payload for d in sent if d.payload["type"] == "Update"]
            assert [u["object"].get("suspended") for u in updates] == [True, None]

            # A deleted account has no buttons, and cannot be unsuspended.
            r = await admin.post(
                f"/admin/accounts/{bob.pk}/delete", data={"csrf": token, "confirm": "bob"}
            )
            assert r.status_code == 200
            listing = (await admin.get("/admin/accounts")).text
            assert f'action="{unsuspend}"' not in listing and f'action="{suspend}"' not in listing
            r = await admin.post(unsuspend, data={"csrf": token})
            assert r.status_code == 403 and "cannot be unsuspended" in r.text
            assert await is_deleted(await Account.get(pk=bob.pk))
    finally:
        await uninstall()
