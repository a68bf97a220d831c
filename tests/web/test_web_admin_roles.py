"""Roles in the admin pages: moderators work on reports, accounts and the likeness queue but
not on the instance's settings; admins change roles (never leaving no admin); the account
list searches and filters; an admin's one-time password reset link, end to end."""

from __future__ import annotations

import re

import httpx
import pytest
from factories import local_account, remote_account
from webhelpers import browser, form_csrf, log_in, logged_in

from fedisora.cli import CommandError, build_parser, change_role
from fedisora.models import (
    Account,
    AuditEntry,
    DomainBlock,
    PasswordReset,
    PolicyTerm,
    Report,
    User,
    WebSession,
    utcnow,
)
from fedisora.services import audit, reports, roles

ACCT = r'<strong class="account-acct">@([\w.@-]+)</strong>'


async def _actions(actor: str) -> list[tuple[str, str, str]]:
    rows = await AuditEntry.filter(actor_label=actor).order_by("id")
    return [(r.action, r.target_label, r.detail) for r in rows]


async def test_a_moderator_moderates_but_does_not_run_the_instance(
    web: httpx.ASGITransport,
) -> None:
    boss = await local_account("boss", admin=True)
    mod = await local_account("mod")
    await roles.set_role(mod, "moderator", by=audit.CLI)
    bob = await local_account("bob")
    fan = await remote_account("fan", "remote.example")
    report = await reports.file_report(bob, fan, comment="spam")
    about_boss = await reports.file_report(bob, boss, comment="mean")

    async with logged_in(web, "mod") as m:
        overview = await m.get("/admin")
        assert overview.status_code == 200
        nav = re.search(r'<nav class="admin-nav".*?</nav>', overview.text, re.S)
        assert nav is not None
        links = re.findall(r'href="([^"]+)"', nav.group(0))
        assert "/admin/accounts" in links and "/admin/reports" in links
        assert "/admin/likenesses" in links
        for hidden in ("/admin/domains", "/admin/policy", "/admin/audit", "/admin/invites"):
            assert hidden not in links
        assert 'href="/admin"' in overview.text  # the header's link, for staff
        for page in ("/admin/accounts", "/admin/reports", "/admin/likenesses"):
            assert (await m.get(page)).status_code == 200, page
        for page in ("/admin/domains", "/admin/policy", "/admin/audit", "/admin/invites"):
            r = await m.get(page)
            assert r.status_code == 403 and "this page is for instance admins" in r.text, page
        listing = (await m.get("/admin/accounts")).text
        token = form_csrf(listing)
        # admin-only posts are refused, nothing changes
        r = await m.post("/admin/domains/blocks", data={"csrf": token, "domain": "spam.example"})
        assert r.status_code == 403
        r = await m.post("/admin/policy/add", data={"csrf": token, "list": "x", "term": "y"})
        assert r.status_code == 403
        assert not await DomainBlock.exists() and not await PolicyTerm.exists()
        for path, form in (
            (f"/admin/accounts/{bob.pk}/role", {"role": "admin"}),
            (f"/admin/accounts/{bob.pk}/password-reset", {}),
            (f"/admin/accounts/{bob.pk}/delete", {"confirm": "bob"}),
        ):
            r = await m.post(path, data={"csrf": token, **form})
            assert r.status_code == 403 and "instance admins" in r.text, path
        assert not (await User.get(account_id=bob.pk)).is_admin
        assert not await PasswordReset.exists()
        # no role form or reset button for a moderator
        assert "/role" not in listing and "password-reset" not in listing

        # accounts: a user, and a remote account, are theirs to suspend and unsuspend
        for target in (bob, fan):
            for action in ("suspend", "unsuspend"):
                r = await m.post(f"/admin/accounts/{target.pk}/{action}", data={"csrf": token})
                assert r.status_code == 303, (target.username, action, r.text)
        # ... and to limit (silence) or mark sensitive, and lift either, from the list
        assert f'action="/admin/accounts/{bob.pk}/silence"' in listing
        assert f'action="/admin/accounts/{bob.pk}/sensitive"' in listing
        for action, field, done in (
            ("silence", "silenced_at", True),
            ("sensitive", "sensitized_at", True),
            ("unsilence", "silenced_at", False),
            ("unsensitive", "sensitized_at", False),
        ):
            r = await m.post(f"/admin/accounts/{bob.pk}/{action}", data={"csrf": token})
            assert r.status_code == 303, (action, r.text)
            assert (getattr(await Account.get(pk=bob.pk), field) is not None) is done, action
        r = await m.post(f"/admin/accounts/{bob.pk}/silence", data={})  # no CSRF token
        assert r.status_code == 403 and (await Account.get(pk=bob.pk)).silenced_at is None
        assert [a for a, *_ in await _actions("@mod") if a.startswith("account.")][-4:] == [
            "account.silence",
            "account.sensitive",
            "account.unsilence",
            "account.unsensitive",
        ]
        # ... an admin is not
        assert f'action="/admin/accounts/{boss.pk}/suspend"' not in listing
        r = await m.post(f"/admin/accounts/{boss.pk}/silence", data={"csrf": token})
        assert r.status_code == 403 and (await Account.get(pk=boss.pk)).silenced_at is None
        r = await m.post(f"/admin/accounts/{boss.pk}/suspend", data={"csrf": token})
        assert r.status_code == 403 and "Moderators cannot act on a moderator" in r.text
        assert (await Account.get(pk=boss.pk)).suspended_at is None

        # reports: assign, act
        base = f"/admin/reports/{report.pk}"
        assert (await m.post(f"{base}/assign", data={"csrf": token})).status_code == 303
        r = await m.post(f"{base}/suspend", data={"csrf": token})
        assert r.status_code == 303
        assert (await Account.get(pk=fan.pk)).suspended_at is not None
        r = await m.post(f"/admin/reports/{about_boss.pk}/suspend", data={"csrf": token})
        assert r.status_code == 403 and "Moderators cannot act on a moderator" in r.text
        assert (await Account.get(pk=boss.pk)).suspended_at is None
        assert (await Report.get(pk=about_boss.pk)).action_taken_at is None

    done = await _actions("@mod")
    assert [a[:2] for a in done[:4]] == [
        ("account.suspend", "@bob"),
        ("account.unsuspend", "@bob"),
        ("account.suspend", "@fan@remote.example"),
        ("account.unsuspend", "@fan@remote.example"),
    ]
    later = {a[0] for a in done[4:]}
    assert {"report.assign", "account.suspend", "report.suspend"} <= later

    # a plain user sees none of it
    async with logged_in(web, "bob") as b:
        r = await b.get("/admin/accounts")
        assert r.status_code == 403 and "moderators and admins" in r.text
        assert 'href="/admin"' not in (await b.get("/settings")).text


async def test_admins_change_roles_but_never_leave_no_admin(web: httpx.ASGITransport) -> None:
    boss = await local_account("boss", admin=True)
    bob = await local_account("bob")
    fan = await remote_account("fan", "remote.example")
    async with logged_in(web, "boss") as admin:
        listing = (await admin.get("/admin/accounts")).text
        token = form_csrf(listing)
        assert f'action="/admin/accounts/{bob.pk}/role"' in listing
        r = await admin.post(f"/admin/accounts/{bob.pk}/role", data={"csrf": token})
        assert r.status_code == 422 and "role must be one of" in r.text
        r = await admin.post(f"/admin/accounts/{bob.pk}/role", data={"role": "moderator"})
        assert r.status_code == 403  # no CSRF token
        assert roles.role_of(await User.get(account_id=bob.pk)) == "user"
        r = await admin.post(
            f"/admin/accounts/{bob.pk}/role", data={"csrf": token, "role": "moderator"}
        )
        assert r.status_code == 303
        assert roles.role_of(await User.get(account_id=bob.pk)) == "moderator"
        r = await admin.post(
            f"/admin/accounts/{fan.pk}/role", data={"csrf": token, "role": "admin"}
        )
        assert r.status_code == 404 and "only local accounts have roles" in r.text
        staff = (await admin.get("/admin/accounts", params={"status": "staff"})).text
        assert re.findall(ACCT, staff) == ["boss", "bob"]
        assert '<span class="badge account-role">moderator</span>' in staff

        # the last admin cannot step down
        r = await admin.post(
            f"/admin/accounts/{boss.pk}/role", data={"csrf": token, "role": "moderator"}
        )
        assert r.status_code == 403 and "last admin" in r.text
        assert (await User.get(account_id=boss.pk)).is_admin
        # with another admin they can
        r = await admin.post(
            f"/admin/accounts/{bob.pk}/role", data={"csrf": token, "role": "admin"}
        )
        assert r.status_code == 303
        r = await admin.post(
            f"/admin/accounts/{boss.pk}/role", data={"csrf": token, "role": "moderator"}
        )
        assert r.status_code == 303 and r.headers["location"] == "/admin/accounts"
        assert roles.role_of(await User.get(account_id=boss.pk)) == "moderator"
        # now a moderator: the settings are closed to them at once
        assert (await admin.get("/admin/audit")).status_code == 403
    assert [a[2] for a in await _actions("@boss")] == [
        "user -> moderator",
        "moderator -> admin",
        "admin -> moderator",
    ]


async def test_the_role_command(db: str) -> None:
    args = build_parser().parse_args(["role", "@bob", "moderator"])
    assert (args.username, args.role, args.func.__name__) == ("@bob", "moderator", "cmd_role")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["role", "bob", "owner"])
    await local_account("boss", admin=True)
    await local_account("bob")
    assert await change_role("@bob", "moderator") == "@bob is now a moderator (was a user)"
    assert await change_role("BOB", "moderator") == "@bob is already a moderator"
    assert await change_role("bob", "admin") == "@bob is now an admin (was a moderator)"
    assert await change_role("boss", "user") == "@boss is now a user (was an admin)"
    with pytest.raises(CommandError, match="last admin"):
        await change_role("bob", "user")
    with pytest.raises(CommandError, match="no local account @ghost"):
        await change_role("ghost", "admin")
    rows = await AuditEntry.filter(action="account.role").order_by("id")
    assert [(r.actor_label, r.target_label, r.detail) for r in rows] == [
        ("cli", "@bob", "user -> moderator"),
        ("cli", "@bob", "moderator -> admin"),
        ("cli", "@boss", "admin -> user"),
    ]


async def test_search_and_filters(web: httpx.ASGITransport) -> None:
    await local_account("boss", admin=True)
    await local_account("ann", display_name="Annie Lennox")
    await local_account("bob")
    await User.filter(account__username="bob").update(email="robert@mail.example")
    carl = await local_account("carl")
    await local_account("dora", approved=False, signup_reason="I make clips")
    await remote_account("fan", "remote.example")
    await remote_account("eve", "other.example", display_name="Eve")
    async with logged_in(web, "boss") as admin:
        token = form_csrf((await admin.get("/admin/accounts")).text)
        await admin.post(f"/admin/accounts/{carl.pk}/suspend", data={"csrf": token})

        async def found(**params: str) -> list[str]:
            r = await admin.get("/admin/accounts", params=params)
            assert r.status_code == 200, r.text
            return re.findall(ACCT, r.text)

        assert await found() == [
            "boss",
            "ann",
            "bob",
            "carl",
            "dora",
            "fan@remote.example",
            "eve@other.example",
        ]
        assert await found(status="local") == ["boss", "ann", "bob", "carl", "dora"]
        assert await found(status="remote") == ["fan@remote.example", "eve@other.example"]
        assert await found(status="pending") == ["dora"]
        assert await found(status="suspended") == ["carl"]
        assert await found(status="staff") == ["boss"]
        assert await found(q="lennox") == ["ann"]  # display name
        assert await found(q="robert@mail") == ["bob"]  # e-mail
        assert await found(q="other.example") == ["eve@other.example"]  # domain
        assert await found(q="@fan@remote") == ["fan@remote.example"]  # name@domain
        assert await found(q="example", status="pending") == ["dora"]  # with a filter
        assert await found(q="fan", status="local") == []
        assert await found(q="nobody-at-all") == []
        page = (await admin.get("/admin/accounts", params={"q": "nobody"})).text
        assert "No account matches" in page and 'value="nobody"' in page
        pending = (await admin.get("/admin/accounts", params={"status": "pending"})).text
        assert "Reason: I make clips" in pending
        for bad in ({"status": "everyone"}, {"q": "x" * 201}, {"after": "x"}):
            assert (await admin.get("/admin/accounts", params=bad)).status_code == 400
        # no table to overflow on a phone: one card per account
        assert "<table" not in (await admin.get("/admin/accounts")).text


async def test_password_reset_link_end_to_end(
    web: httpx.ASGITransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    await local_account("boss", admin=True)
    bob = await local_account("bob")
    async with logged_in(web, "bob") as old_browser, logged_in(web, "boss") as admin:
        assert await WebSession.filter(user__account_id=bob.pk).count() == 1
        token = form_csrf((await admin.get("/admin/accounts")).text)
        r = await admin.post(f"/admin/accounts/{bob.pk}/password-reset")
        assert r.status_code == 403 and not await PasswordReset.exists()  # no CSRF token
        first = await admin.post(f"/admin/accounts/{bob.pk}/password-reset", data={"csrf": token})
        r = await admin.post(f"/admin/accounts/{bob.pk}/password-reset", data={"csrf": token})
        assert r.status_code == 200 and "works once, for 24 hours" in r.text
        link = re.search(
            r'<code class="reset-link">https://[^/]+(/password-reset/[^<]+)</code>', r.text
        )
        old = re.search(r"(/password-reset/[^<]+)</code>", first.text)
        assert link is not None and old is not None
        url, old_url = link.group(1), old.group(1)
        assert await PasswordReset.filter(used_at=None).count() == 1  # the newer voids the older

        async with browser(web) as owner:
            r = await owner.get(old_url)
            assert r.status_code == 404 and "not valid" in r.text
            assert (await owner.get("/password-reset/nonsense")).status_code == 404
            page = await owner.get(url)
            assert page.status_code == 200 and "@bob" in page.text
            form = {"csrf": form_csrf(page.text)}
            r = await owner.post(
                url, data={**form, "new_password": "n" * 12, "confirm_password": "x" * 12}
            )
            assert r.status_code == 422 and "do not match" in r.text
            r = await owner.post(
                url, data={**form, "new_password": "short", "confirm_password": "short"}
            )
            assert r.status_code == 422 and "8 to 1024 characters" in r.text
            r = await owner.post(url, data={"new_password": "n" * 12, "confirm_password": "n" * 12})
            assert r.status_code == 403  # no CSRF token
            new = "a brand new password"
            r = await owner.post(url, data={**form, "new_password": new, "confirm_password": new})
            assert r.status_code == 200 and "is set" in r.text
            # single use
            r = await owner.post(url, data={**form, "new_password": new, "confirm_password": new})
            assert r.status_code == 410 and "already used" in r.text
            assert (await owner.get(url)).status_code == 410
            await log_in(owner, "bob", new)

        # the old session is over; the old password too
        assert (await old_browser.get("/settings")).status_code in (303, 401)
        assert await WebSession.filter(user__account_id=bob.pk).count() == 1  # the new login
        async with browser(web) as other:
            page = await other.get("/login")
            r = await other.post(
                "/login",
                data={
                    "login": "bob",
                    "password": "correct horse battery",
                    "csrf": form_csrf(page.text),
                },
            )
            assert r.status_code == 401

        # an expired link is refused with a message
        r = await admin.post(f"/admin/accounts/{bob.pk}/password-reset", data={"csrf": token})
        late = re.search(r"(/password-reset/[^<]+)</code>", r.text)
        assert late is not None
        await PasswordReset.filter(used_at=None).update(expires_at=utcnow())
        async with browser(web) as owner:
            r = await owner.get(late.group(1))
            assert r.status_code == 410 and "has expired" in r.text
    assert [a[:2] for a in await _actions("@boss")] == [
        ("account.password_reset_link", "@bob"),
        ("account.password_reset_link", "@bob"),
        ("account.password_reset_link", "@bob"),
    ]
    used = await _actions("@bob")
    assert [a[:2] for a in used] == [("account.password_reset", "@bob")]
    assert used[0][2].startswith("1 sessions ended")
