"""Registrations in the browser: sign-ups waiting for approval reviewed by an admin, and
invite links (created, used, refused when expired, used up or revoked, and who may make
them)."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import httpx
from factories import local_account
from webhelpers import PASSWORD, browser, form_csrf, logged_in

from fedisora.models import Account, AuditEntry, Follow, Invite, User, utcnow


def _with(transport: httpx.ASGITransport, **changes: object) -> None:
    app = transport.app
    app.state.settings = dataclasses.replace(app.state.settings, **changes)  # type: ignore[attr-defined]


def _form(page: str, name: str = "newbie", **extra: str) -> dict[str, str]:
    return {
        "csrf": form_csrf(page),
        "username": name,
        "email": f"{name}@example.com",
        "password": PASSWORD,
        "confirm_password": PASSWORD,
        "agreement": "yes",
        **extra,
    }


async def _login(http: httpx.AsyncClient, name: str) -> httpx.Response:
    page = await http.get("/login")
    return await http.post(
        "/login", data={"csrf": form_csrf(page.text), "login": name, "password": PASSWORD}
    )


async def test_an_admin_approves_and_rejects_sign_ups_in_the_browser(
    web: httpx.ASGITransport,
) -> None:
    _with(web, registrations="approval")
    boss = await local_account("boss", admin=True)
    for name in ("newbie", "spammer"):
        async with browser(web) as http:
            page = await http.get("/signup")
            r = await http.post(
                "/signup", data=_form(page.text, name, reason=f"{name}: I film birds")
            )
            assert r.status_code == 303 and r.headers["location"] == "/signup/pending"
            r = await _login(http, name)
            assert r.status_code == 403 and "waiting for approval" in r.text

    async with logged_in(web, "boss") as admin:
        # The admin is notified, with a link to the sign-ups waiting.
        notes = await admin.get("/notifications")
        assert "signed up and waits for approval" in notes.text
        assert 'href="/admin/accounts?status=pending"' in notes.text
        # The full list says "pending", not "active", for them.
        listing = await admin.get("/admin/accounts")
        rows = {
            m.group(1): m.group(2)
            for m in re.finditer(
                r'account-acct">@(\w+)</strong>.*?<dd class="account-state">(\w+)',
                listing.text,
                re.S,
            )
        }
        assert rows == {"boss": "active", "newbie": "pending", "spammer": "pending"}
        waiting = await admin.get("/admin/accounts?status=pending")
        assert waiting.status_code == 200
        assert "Reason: newbie: I film birds" in waiting.text
        assert "Waiting for approval (2)" in waiting.text
        assert 'account-acct">@boss<' not in waiting.text
        newbie = await Account.get(username="newbie")
        spammer = await Account.get(username="spammer")
        # A forged form changes nothing.
        r = await admin.post(f"/admin/accounts/{newbie.pk}/approve", data={"csrf": "forged"})
        assert r.status_code == 403
        assert not (await User.get(account_id=newbie.pk)).approved
        csrf = form_csrf(waiting.text)
        r = await admin.post(f"/admin/accounts/{newbie.pk}/approve", data={"csrf": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/admin/accounts?status=pending"
        # Approving again is a clear refusal page.
        r = await admin.post(f"/admin/accounts/{newbie.pk}/approve", data={"csrf": csrf})
        assert r.status_code == 403 and "not waiting for approval" in r.text
        r = await admin.post(f"/admin/accounts/{spammer.pk}/reject", data={"csrf": csrf})
        assert r.status_code == 303
        after = await admin.get("/admin/accounts?status=pending")
        assert "No sign-up is waiting for approval." in after.text
        r = await admin.get("/admin/accounts?status=weird")
        assert r.status_code == 400

    async with browser(web) as http:
        assert (await _login(http, "newbie")).status_code == 303  # approved: in
    async with browser(web) as http:
        r = await _login(http, "spammer")  # rejected: gone, an unknown login
        assert r.status_code == 401 and "waiting" not in r.text
    assert not await Account.filter(username="spammer").exists()
    logged = await AuditEntry.filter(action__startswith="account.").order_by("id")
    assert [(e.action, e.target_label, e.actor_id) for e in logged] == [
        ("account.approve", "@newbie", boss.pk),
        ("account.reject", "@spammer", boss.pk),
    ]


async def test_an_invite_signs_up_while_closed_until_used_up(web: httpx.ASGITransport) -> None:
    _with(web, registrations="closed", registrations_message="Invite only.")
    await local_account("boss", admin=True)
    async with logged_in(web, "boss") as admin:
        page = await admin.get("/settings/invites")
        assert page.status_code == 200 and "Create an invite link" in page.text
        r = await admin.post(
            "/settings/invites",
            data={
                "csrf": form_csrf(page.text),
                "max_uses": "1",
                "expires_in": "86400",
                "autofollow": "yes",
            },
        )
        assert r.status_code == 303
        code = r.headers["location"].split("created=")[1]
        shown = await admin.get(r.headers["location"])
        assert f"https://fedisora.test/invite/{code}" in shown.text
        invite = await Invite.get(code=code)
        assert invite.max_uses == 1 and invite.autofollow and invite.expires_at is not None
        assert await AuditEntry.filter(action="invite.create", target_id=str(invite.pk)).exists()

    async with browser(web) as http:
        closed = await http.get("/signup")
        assert "Invite only." in closed.text and 'action="/signup"' not in closed.text
        page = await http.get(f"/invite/{code}")
        assert page.status_code == 200
        assert "You were invited by @boss" in page.text
        assert f'action="/invite/{code}"' in page.text and 'name="reason"' not in page.text
        r = await http.post(f"/invite/{code}", data=_form(page.text, "guest"))
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert "@guest" in (await http.get("/")).text  # logged in at once: no approval
    guest = await Account.get(username="guest")
    assert (await User.get(account_id=guest.pk)).approved
    boss = await Account.get(username="boss")
    assert await Follow.filter(follower_id=guest.pk, target_id=boss.pk).exists()  # autofollow
    assert (await Invite.get(code=code)).uses == 1

    async with browser(web) as http:
        r = await http.get(f"/invite/{code}")
        assert r.status_code == 410 and "used as many times as it allows" in r.text
        r = await http.get("/invite/nosuchcode")
        assert r.status_code == 404 and "This invite link is not valid" in r.text
        r = await http.get("/invite/bad%20code%00")
        assert r.status_code == 404
    assert not await Account.filter(username="second").exists()


async def test_expired_and_revoked_invites_are_refused(web: httpx.ASGITransport) -> None:
    _with(web, registrations="approval")
    boss = await local_account("boss", admin=True)
    expired = await Invite.create(
        code="expired1", creator=boss, expires_at=utcnow() - timedelta(minutes=1)
    )
    live = await Invite.create(code="live1", creator=boss)
    async with browser(web) as http:
        page = await http.get("/signup")  # a form token of this browser's
        r = await http.get(f"/invite/{expired.code}")
        assert r.status_code == 410 and "This invite has expired" in r.text
        r = await http.post(f"/invite/{expired.code}", data=_form(page.text, "late"))
        assert r.status_code == 410
        invite_page = await http.get(f"/invite/{live.code}")
        assert invite_page.status_code == 200
    # Revoked (by an admin, from the admin list) between showing the form and sending it.
    async with logged_in(web, "boss") as admin:
        listing = await admin.get("/admin/invites")
        assert "live1" in listing.text and "expired1" in listing.text
        assert "expired" in listing.text
        r = await admin.post(
            f"/admin/invites/{live.pk}/revoke", data={"csrf": form_csrf(listing.text)}
        )
        assert r.status_code == 303
    assert await AuditEntry.filter(action="invite.revoke", target_id=str(live.pk)).exists()
    async with browser(web) as http:
        page = await http.get("/signup")
        r = await http.post(f"/invite/{live.code}", data=_form(page.text, "late"))
        assert r.status_code == 410 and "This invite was revoked" in r.text
    assert not await Account.filter(username="late").exists()
    assert (await Invite.get(pk=live.pk)).uses == 0


async def test_who_may_create_invites(web: httpx.ASGITransport) -> None:
    await local_account("boss", admin=True)
    await local_account("carol")
    async with logged_in(web, "carol") as carol:
        page = await carol.get("/settings/invites")
        assert page.status_code == 200
        assert "Only this server's admins can create invites." in page.text
        assert 'name="max_uses"' not in page.text
        csrf = form_csrf((await carol.get("/settings")).text)
        r = await carol.post("/settings/invites", data={"csrf": csrf, "max_uses": "1"})
        assert r.status_code == 403 and "Only this server" in r.text
        assert not await Invite.exists()
        r = await carol.get("/admin/invites")
        assert r.status_code == 403

        _with(web, invites="users")
        page = await carol.get("/settings/invites")
        r = await carol.post(
            "/settings/invites",
            data={"csrf": form_csrf(page.text), "max_uses": "none", "expires_in": "none"},
        )
        assert r.status_code == 303
        invite = await Invite.get(creator__username="carol")
        assert invite.max_uses is None and invite.expires_at is None
        # Bad choices are refused, clearly.
        r = await carol.post(
            "/settings/invites",
            data={"csrf": form_csrf(page.text), "max_uses": "7", "expires_in": "none"},
        )
        assert r.status_code == 422 and "max_uses must be one of" in r.text
        r = await carol.post(
            "/settings/invites",
            data={"csrf": form_csrf(page.text), "max_uses": "x" * 50, "expires_in": "none"},
        )
        assert r.status_code == 422
        # She revokes her own; a user's invites are not audited (only admins' are).
        r = await carol.post(
            f"/settings/invites/{invite.pk}/revoke", data={"csrf": form_csrf(page.text)}
        )
        assert r.status_code == 303
        assert (await Invite.get(pk=invite.pk)).revoked
        page = await carol.get("/settings/invites")
        assert "revoked" in page.text
    assert not await AuditEntry.filter(action__startswith="invite.").exists()
    # Another user cannot revoke hers (it is not theirs: not found).
    other = await Invite.create(code="bossinv", creator=await Account.get(username="boss"))
    await local_account("dave")
    async with logged_in(web, "dave") as dave:
        page = await dave.get("/settings/invites")
        r = await dave.post(
            f"/settings/invites/{other.pk}/revoke", data={"csrf": form_csrf(page.text)}
        )
        assert r.status_code == 404
    assert not (await Invite.get(pk=other.pk)).revoked
    async with browser(web) as http:
        r = await http.get("/settings/invites")
        assert r.status_code == 303 and "/login" in r.headers["location"]
