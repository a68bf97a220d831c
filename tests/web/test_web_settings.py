"""/settings: the user sees their browser sessions and ends any of them, and changes their
password, which ends every other session and revokes every app token of the account (as
Mastodon's change_password! does); refused changes change nothing."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from factories import local_account
from webhelpers import PASSWORD, browser, form_csrf, log_in, logged_in

from fedisora.models import (
    OAuthAccessToken,
    OAuthApplication,
    OAuthAuthorizationCode,
    User,
    WebSession,
    utcnow,
)
from fedisora.services.passwords import PasswordGuard, verify_password

HTML = {"accept": "text/html"}
NEW = "a brand new passphrase"


async def is_logged_in(http: httpx.AsyncClient) -> bool:
    r = await http.get("/feed", headers=HTML)
    return r.status_code == 200


def session_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-session-id="(\d+)"', page)]


async def app_token(http: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    r = await http.post(
        "/api/v1/apps", data={"client_name": "App", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}
    )
    app = r.json()
    r = await http.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "username": username,
            "password": password,
        },
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


async def test_the_settings_list_sessions_and_end_them(web: httpx.ASGITransport) -> None:
    await local_account("ann")
    await local_account("bob")
    async with browser(web) as anon:
        r = await anon.get("/settings", headers=HTML)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/settings"
        assert (await anon.post("/settings/sessions/others/end", data={})).status_code == 401
    async with (
        logged_in(web, "ann") as laptop,
        logged_in(web, "ann") as phone,
        logged_in(web, "ann") as tablet,
        logged_in(web, "bob") as bobs,
    ):
        page = await laptop.get("/settings", headers=HTML)
        assert page.status_code == 200
        ids = session_ids(page.text)
        assert len(ids) == 3 and "this browser" in page.text
        assert "End all other sessions (2)" in page.text
        csrf = form_csrf(page.text)
        bobs_id = (await WebSession.get(user__account__username="bob")).pk
        # Someone else's session, or a forged form: refused, nothing ends.
        r = await laptop.post(f"/settings/sessions/{bobs_id}/end", data={"csrf": csrf})
        assert r.status_code == 404
        r = await laptop.post(f"/settings/sessions/{ids[-1]}/end", data={"csrf": "forged"})
        assert r.status_code == 403
        r = await laptop.post("/settings/sessions/nope/end", data={"csrf": csrf})
        assert r.status_code == 404
        assert await WebSession.all().count() == 4
        # End the phone's session.
        phone_id = (await WebSession.filter(user__account__username="ann").order_by("id"))[1].pk
        r = await laptop.post(f"/settings/sessions/{phone_id}/end", data={"csrf": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/settings"
        assert not await is_logged_in(phone) and await is_logged_in(tablet)
        # End all the others: the tablet goes, the laptop and bob stay.
        r = await laptop.post("/settings/sessions/others/end", data={"csrf": csrf})
        assert r.status_code == 303
        assert not await is_logged_in(tablet)
        assert await is_logged_in(laptop) and await is_logged_in(bobs)
        page = await laptop.get("/settings", headers=HTML)
        assert len(session_ids(page.text)) == 1 and "End all other sessions" not in page.text
        # Ending this browser's own session is logging out.
        (mine,) = session_ids(page.text)
        r = await laptop.post(f"/settings/sessions/{mine}/end", data={"csrf": csrf})
        assert r.status_code == 303 and not await is_logged_in(laptop)
    assert await WebSession.all().count() == 1  # bob's


async def test_changing_the_password_ends_other_sessions_and_revokes_app_tokens(
    web: httpx.ASGITransport,
) -> None:
    ann = await local_account("ann")
    await local_account("bob")
    async with (
        logged_in(web, "ann") as here,
        logged_in(web, "ann") as elsewhere,
        logged_in(web, "bob") as bobs,
    ):
        token = await app_token(here, "ann")
        bobs_token = await app_token(bobs, "bob")
        code = await OAuthAuthorizationCode.create(
            code="unused-code",
            application=await OAuthApplication.first(),
            account=ann,
            redirect_uri="urn:ietf:wg:oauth:2.0:oob",
            scopes="read",
            expires_at=utcnow() + timedelta(minutes=10),
        )
        me = "/api/v1/accounts/verify_credentials"
        assert (await here.get(me, headers={"Authorization": f"Bearer {token}"})).status_code == 200
        before = (await User.get(account_id=ann.pk)).password_hash
        page = await here.get("/settings/password", headers=HTML)
        csrf = form_csrf(page.text)
        form = {
            "csrf": csrf,
            "current_password": PASSWORD,
            "new_password": NEW,
            "confirm_password": NEW,
        }
        # Refused changes change nothing.
        for bad, status, message in (
            ({"current_password": "wrong"}, 401, "current password is not right"),
            ({"confirm_password": NEW + "!"}, 422, "do not match"),
            ({"new_password": "short", "confirm_password": "short"}, 422, "8 to 1024"),
            ({"new_password": "ann", "confirm_password": "ann"}, 422, "8 to 1024"),
            (
                {"new_password": "Ann@Example.com", "confirm_password": "Ann@Example.com"},
                422,
                "cannot be your username or e-mail address",
            ),
            ({"new_password": " " * 9, "confirm_password": " " * 9}, 422, "only spaces"),
            ({"csrf": "forged"}, 403, "form expired"),
        ):
            r = await here.post("/settings/password", data={**form, **bad})
            assert r.status_code == status, (bad, r.text)
            assert message in r.text
            assert (await User.get(account_id=ann.pk)).password_hash == before
            assert await is_logged_in(elsewhere)
            assert not await OAuthAccessToken.filter(revoked_at__not_isnull=True).exists()
        r = await here.post("/settings/password", data=form)
        assert r.status_code == 200, r.text
        assert "Your password is changed. 1 other session ended, and 1 app token revoked" in (
            r.text
        )
        # This browser stays; the other one and the app's token are out, bob is untouched.
        assert await is_logged_in(here) and not await is_logged_in(elsewhere)
        r = await here.get(me, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401
        r = await bobs.get(me, headers={"Authorization": f"Bearer {bobs_token}"})
        assert r.status_code == 200 and await is_logged_in(bobs)
        assert (await OAuthAuthorizationCode.get(pk=code.pk)).expires_at <= utcnow()
    # The old password opens nothing, the new one does.
    async with browser(web) as later:
        page = await later.get("/login")
        r = await later.post(
            "/login", data={"login": "ann", "password": PASSWORD, "csrf": form_csrf(page.text)}
        )
        assert r.status_code == 401
        await log_in(later, "ann", NEW)


async def test_the_password_change_counts_against_the_password_guard(
    web: httpx.ASGITransport,
) -> None:
    ann = await local_account("ann")
    async with logged_in(web, "ann") as http:
        web.app.state.password_guard = PasswordGuard(per_ip=100, per_account=2)  # type: ignore[attr-defined]
        csrf = form_csrf((await http.get("/settings/password")).text)
        form = {"csrf": csrf, "new_password": NEW, "confirm_password": NEW}
        for _ in range(2):
            r = await http.post("/settings/password", data={**form, "current_password": "x"})
            assert r.status_code == 401
        r = await http.post("/settings/password", data={**form, "current_password": PASSWORD})
        assert r.status_code == 429 and "Too many failed password attempts" in r.text
        assert int(r.headers["retry-after"]) > 0
    assert verify_password(PASSWORD, (await User.get(account_id=ann.pk)).password_hash)
