"""A suspended account logs in to a restricted session, as on Mastodon
(fedisora/services/sessions.py ``is_restricted``, the gate in web/sessions.py): it sees why it
was suspended, reads its warnings, appeals, exports its clips and logs out; every other page
sends it to its suspension (a GET) or refuses it (a POST, 403), and apps get no token for it.
Once its appeal is approved it works in full again."""

from __future__ import annotations

import re

import httpx
from factories import local_account, remote_account, rendered_video
from webhelpers import PASSWORD, browser, form_csrf, log_in, logged_in

from fedisora.models import (
    Account,
    AccountWarning,
    Appeal,
    AuditEntry,
    Clip,
    Comment,
    Like,
    Notification,
    User,
    WebSession,
)
from fedisora.services import moderation, posts, reports

SUSPENDED = "/settings/suspended"


async def _register_app(http: httpx.AsyncClient) -> tuple[str, str]:
    r = await http.post(
        "/api/v1/apps",
        data={"client_name": "t", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "read"},
    )
    assert r.status_code == 200, r.text
    return r.json()["client_id"], r.json()["client_secret"]


async def _password_grant(
    http: httpx.AsyncClient, app: tuple[str, str], login: str
) -> httpx.Response:
    return await http.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "client_id": app[0],
            "client_secret": app[1],
            "username": login,
            "password": PASSWORD,
            "scope": "read",
        },
    )


async def test_a_suspended_account_reads_why_appeals_and_is_back_once_approved(
    web: httpx.ASGITransport,
) -> None:
    boss = await local_account("boss", admin=True)
    alice = await local_account("alice")
    bob = await local_account("bob")
    clip = await posts.post_clip(alice, await rendered_video(alice), caption="a calm sea")
    async with httpx.AsyncClient(transport=web, base_url="https://fedisora.test") as api:
        app = await _register_app(api)
        r = await _password_grant(api, app, "bob")
        assert r.status_code == 200
        old_token = {"Authorization": f"Bearer {r.json()['access_token']}"}

        report = await reports.file_report(alice, bob, comment="spam")
        await reports.take_action(report, "suspend", boss, "Spam in every comment.")
        assert (await Account.get(pk=bob.pk)).suspended_at is not None

        # The API refuses the account: its old token, and any new one.
        r = await api.get("/api/v1/accounts/verify_credentials", headers=old_token)
        assert r.status_code == 401
        r = await _password_grant(api, app, "bob")
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        assert "suspended" in r.json()["error_description"]

        async with logged_in(web, "bob") as http:  # the web login works
            assert await WebSession.filter(user__account_id=bob.pk).count() == 1
            r = await http.get("/")
            assert r.status_code == 303 and r.headers["location"] == SUSPENDED
            page = await http.get(SUSPENDED)
            assert page.status_code == 200
            assert "Your account is suspended" in page.text
            assert "Spam in every comment." in page.text  # the moderator's notice
            assert 'href="/settings/warnings#warning-' in page.text
            assert 'href="/create"' not in page.text and 'href="/admin"' not in page.text
            token = form_csrf(page.text)

            # Every other page goes to the suspension; every other action is refused.
            for path in (
                "/create",
                "/settings/profile",
                "/settings",
                "/feed",
                "/notifications",
                "/explore",
                f"/@alice/{clip.pk}",
                "/admin",
                "/settings/delete",
                "/oauth/authorize?client_id=x",
            ):
                r = await http.get(path)
                assert r.status_code == 303 and r.headers["location"] == SUSPENDED, path
            for path, data in (
                (f"/clips/{clip.pk}/like", {}),
                (f"/@alice/{clip.pk}/comments", {"text": "hello"}),
                ("/create", {"prompt": "a storm at sea"}),
                ("/settings/profile", {"display_name": "Bob!"}),
                (f"/accounts/{alice.pk}/follow", {}),
                ("/settings/delete", {"password": PASSWORD}),
            ):
                r = await http.post(path, data={"csrf": token, **data})
                assert r.status_code == 403, path
                assert "Your account is suspended" in r.text, path
                assert f'href="{SUSPENDED}"' in r.text
            assert not await Like.filter(account_id=bob.pk).exists()
            assert not await Comment.filter(account_id=bob.pk).exists()
            assert not await Clip.filter(account_id=bob.pk).exists()
            assert (await Account.get(pk=bob.pk)).display_name != "Bob!"
            assert await User.filter(account_id=bob.pk).exists()
            # The API knows nothing of the browser's session: anonymous there.
            r = await http.get("/api/v1/accounts/verify_credentials")
            assert r.status_code == 401

            # Its clips can be exported.
            r = await http.get("/settings/export")
            assert r.status_code == 200 and 'href="/settings/export.zip"' in r.text
            r = await http.get("/settings/export.zip")
            assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
            assert r.content.startswith(b"PK")

            # The appeal: CSRF checked, filed once.
            page = await http.get("/settings/warnings")
            assert page.status_code == 200 and "Your account was suspended" in page.text
            warning_id = int(re.findall(r'id="warning-(\d+)"', page.text)[0])
            appeal_path = f"/settings/warnings/{warning_id}/appeal"
            r = await http.post(appeal_path, data={"text": "It was not spam."})
            assert r.status_code == 403
            assert not await Appeal.exists()
            r = await http.post(
                appeal_path, data={"csrf": form_csrf(page.text), "text": "It was not spam."}
            )
            assert r.status_code == 303
            appeal = await Appeal.get(account_id=bob.pk)
            page = await http.get(SUSPENDED)
            assert "Your appeal is waiting" in page.text

            # A moderator approves it: the same session works in full again.
            async with logged_in(web, "boss") as admin:
                decide = (await admin.get("/admin/appeals")).text
                assert "It was not spam." in decide
                r = await admin.post(
                    f"/admin/appeals/{appeal.pk}/approve", data={"csrf": form_csrf(decide)}
                )
                assert r.status_code == 303
            assert (await Account.get(pk=bob.pk)).suspended_at is None
            r = await http.get("/create")
            assert r.status_code == 200
            r = await http.get(SUSPENDED)
            assert r.status_code == 200 and "Your account is not suspended" in r.text
            page = (await http.get(f"/@alice/{clip.pk}")).text
            r = await http.post(f"/clips/{clip.pk}/like", data={"csrf": form_csrf(page)})
            assert r.status_code in (200, 303)
            assert await Like.filter(account_id=bob.pk, clip_id=clip.pk).exists()

        async with logged_in(web, "bob") as http:  # a new login is a full one
            assert (await http.get("/settings/profile")).status_code == 200
        r = await _password_grant(api, app, "bob")
        assert r.status_code == 200


async def test_a_suspended_session_logs_out_and_a_disabled_login_stays_refused(
    web: httpx.ASGITransport,
) -> None:
    boss = await local_account("boss", admin=True)
    carl = await local_account("carl")
    dora = await local_account("dora")
    for who in (carl, dora):
        report = await reports.file_report(boss, who)
        await reports.take_action(report, "suspend", boss)
    async with logged_in(web, "carl") as http:
        page = await http.get(SUSPENDED)
        assert page.status_code == 200 and "gave no reason" in page.text
        r = await http.post("/logout", data={"csrf": "forged"})
        assert r.status_code == 403
        r = await http.post("/logout", data={"csrf": form_csrf(page.text)})
        assert r.status_code == 303
        assert (await http.get(SUSPENDED)).headers["location"].startswith("/login")
    assert not await WebSession.filter(user__account_id=carl.pk).exists()

    # Suspended and disabled: no session at all, as before.
    await User.filter(account_id=dora.pk).update(disabled=True)
    async with browser(web) as http:
        page = await http.get("/login")
        r = await http.post(
            "/login", data={"login": "dora", "password": PASSWORD, "csrf": form_csrf(page.text)}
        )
        assert r.status_code == 403 and "disabled" in r.text
    assert not await WebSession.filter(user__account_id=dora.pk).exists()
    # A session made before the login was disabled is over.
    await User.filter(account_id=dora.pk).update(disabled=False)
    async with browser(web) as http:
        await log_in(http, "dora")
        await User.filter(account_id=dora.pk).update(disabled=True)
        r = await http.get(SUSPENDED)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_a_suspension_from_the_admin_accounts_page_is_told_and_can_be_appealed(
    web: httpx.ASGITransport,
) -> None:
    """The account list's buttons go through the path the reports and the admin API take
    (moderation.act_on_account): a local account suspended, limited or marked sensitive
    there gets a warning with the moderator's optional notice, which it reads and appeals;
    a remote account's owner is not ours to tell; a notice too long is refused, nothing done."""
    boss = await local_account("boss", admin=True)
    bob, carl, dora = [await local_account(n) for n in ("bob", "carl", "dora")]
    fan = await remote_account("fan", "remote.example")
    async with logged_in(web, "boss") as admin:
        listing = (await admin.get("/admin/accounts")).text
        token = form_csrf(listing)
        # a notice field on the suspend, limit and mark forms of local accounts only
        for what in ("suspension", "limit", "mark"):
            assert f'aria-label="Notice to @bob with the {what} (optional)"' in listing
        assert "Notice to @fan@remote.example" not in listing
        assert "Notice to @boss" not in listing  # no buttons for oneself

        base = "/admin/accounts"
        r = await admin.post(
            f"{base}/{bob.pk}/suspend", data={"csrf": token, "text": " Spam in every comment. "}
        )
        assert r.status_code == 303
        r = await admin.post(f"{base}/{carl.pk}/silence", data={"csrf": token, "text": "Calm."})
        assert r.status_code == 303
        r = await admin.post(f"{base}/{carl.pk}/sensitive", data={"csrf": token})
        assert r.status_code == 303
        r = await admin.post(f"{base}/{fan.pk}/suspend", data={"csrf": token, "text": "Spam."})
        assert r.status_code == 303
        long = "x" * (moderation.MAX_WARNING + 1)
        r = await admin.post(f"{base}/{dora.pk}/suspend", data={"csrf": token, "text": long})
        assert r.status_code == 422 and "longer than" in r.text
        # the undoing buttons tell nobody
        r = await admin.post(f"{base}/{carl.pk}/unsensitive", data={"csrf": token})
        assert r.status_code == 303

    assert (await Account.get(pk=bob.pk)).suspended_at is not None
    assert (await Account.get(pk=fan.pk)).suspended_at is not None
    row = await Account.get(pk=dora.pk)
    assert row.suspended_at is None
    told = [
        (w.account_id, w.action, w.text, w.report_id)
        for w in await AccountWarning.all().order_by("id")
    ]
    assert told == [
        (bob.pk, "suspend", "Spam in every comment.", None),
        (carl.pk, "silence", "Calm.", None),
        (carl.pk, "sensitive", "", None),
    ]
    for account_id in (bob.pk, carl.pk):
        warnings = await AccountWarning.filter(account_id=account_id)
        notes = await Notification.filter(recipient_id=account_id, type="moderation_warning")
        assert {n.account_warning_id for n in notes} == {w.pk for w in warnings}
    logged = [
        (e.action, e.target_label) for e in await AuditEntry.filter(actor_id=boss.pk).order_by("id")
    ]
    assert logged == [
        ("account.suspend", "@bob"),
        ("account.silence", "@carl"),
        ("account.sensitive", "@carl"),
        ("account.suspend", "@fan@remote.example"),
        ("account.unsensitive", "@carl"),
    ]

    # bob, suspended, reads the notice in his restricted session and appeals it.
    async with logged_in(web, "bob") as http:
        page = await http.get(SUSPENDED)
        assert page.status_code == 200 and "Spam in every comment." in page.text
        assert "gave no reason" not in page.text
        listed = await http.get("/settings/warnings")
        warning_id = int(re.findall(r'id="warning-(\d+)"', listed.text)[0])
        r = await http.post(
            f"/settings/warnings/{warning_id}/appeal",
            data={"csrf": form_csrf(listed.text), "text": "It was not spam."},
        )
        assert r.status_code == 303
    appeal = await Appeal.get(account_id=bob.pk)
    assert appeal.account_warning_id == warning_id
