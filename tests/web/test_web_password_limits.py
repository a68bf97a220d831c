"""Every password check of the app counts against one guard, per client IP and per account:
the web login, the OAuth password grant and the confirmation of an account deletion answer
429 (a page saying when to retry, or an OAuth error) once the failures are spent, before any
hashing, and the refused request changes nothing."""

from __future__ import annotations

import httpx
from factories import local_account
from webhelpers import PASSWORD, browser, form_csrf, logged_in

from fedisora.config import Settings
from fedisora.models import OAuthAccessToken, User
from fedisora.ratelimits import MemoryStore
from fedisora.services import audit, instance_settings
from fedisora.services.passwords import PasswordGuard, guard_for

HTML = {"accept": "text/html"}


def at(web: httpx.ASGITransport, ip: str) -> httpx.ASGITransport:
    """The same app, reached from client address *ip*."""
    return httpx.ASGITransport(app=web.app, client=(ip, 40000))


async def login_form(http: httpx.AsyncClient, login: str, password: str) -> httpx.Response:
    page = await http.get("/login")
    form = {"login": login, "password": password}
    if 'name="csrf"' in page.text:
        form["csrf"] = form_csrf(page.text)
    return await http.post("/login", data=form)


async def test_web_login_is_limited_per_ip_and_per_account(web: httpx.ASGITransport) -> None:
    await local_account("ann")
    await local_account("ben")
    guard = web.app.state.password_guard = PasswordGuard(per_ip=3, per_account=4)  # type: ignore[attr-defined]
    async with browser(at(web, "198.51.100.1")) as one:
        for name in ("ann", "ben", "nobody"):
            r = await login_form(one, name, "wrong password")
            assert r.status_code == 401 and "do not match" in r.text
        # The address has no failures left: even the right password is refused, unhashed.
        r = await login_form(one, "ann", PASSWORD)
        assert r.status_code == 429, r.text
        assert "Too many failed password attempts" in r.text and "try again in" in r.text
        assert int(r.headers["retry-after"]) > 0
        assert "fedisora_session" not in one.cookies
    # Another address may still log in to ann, until ann's own failures are spent.
    async with browser(at(web, "198.51.100.2")) as two:
        for _ in range(3):
            r = await login_form(two, "ann", "wrong password")
            assert r.status_code == 401
    async with browser(at(web, "198.51.100.3")) as three:
        r = await login_form(three, "ann@example.com", PASSWORD)  # the same account by e-mail
        assert r.status_code == 429
        r = await login_form(three, "ben", PASSWORD)  # ben is not ann
        assert r.status_code == 303
    assert guard.per_ip == 3


async def test_the_oauth_password_grant_and_the_web_share_one_limit(
    web: httpx.ASGITransport,
) -> None:
    ann = await local_account("ann")
    web.app.state.password_guard = PasswordGuard(per_ip=100, per_account=2)  # type: ignore[attr-defined]
    async with browser(at(web, "198.51.100.7")) as http:
        r = await http.post(
            "/api/v1/apps", data={"client_name": "s", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}
        )
        app = r.json()
        grant = {
            "grant_type": "password",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "username": "ann",
            "password": "wrong password",
        }
        r = await http.post("/oauth/token", data=grant)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        r = await login_form(http, "ann", "wrong password")
        assert r.status_code == 401
        r = await http.post("/oauth/token", data={**grant, "password": PASSWORD})
        assert r.status_code == 429, r.text
        assert r.json()["error_description"].startswith("Too many failed password attempts")
        assert int(r.headers["retry-after"]) > 0
    assert not await OAuthAccessToken.filter(account_id=ann.pk).exists()


async def test_the_deletion_confirmation_is_limited_and_refusal_deletes_nothing(
    web: httpx.ASGITransport,
) -> None:
    cat = await local_account("cat")
    async with logged_in(web, "cat") as http:
        web.app.state.password_guard = PasswordGuard(per_ip=100, per_account=2)  # type: ignore[attr-defined]
        page = await http.get("/settings/delete", headers=HTML)
        csrf = form_csrf(page.text)
        for _ in range(2):
            r = await http.post("/settings/delete", data={"csrf": csrf, "password": "nope"})
            assert r.status_code == 401 and "not right" in r.text
        r = await http.post("/settings/delete", data={"csrf": csrf, "password": PASSWORD})
        assert r.status_code == 429 and "Too many failed password attempts" in r.text
        assert "retry-after" in r.headers
    assert await User.filter(account_id=cat.pk).exists()


async def test_login_limits_saved_by_an_admin_apply_at_once_without_redis(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    """Without Redis the app's guard counts in the app's memory store, under the limits in
    force at each attempt, as it does in Redis: a ``login_ip`` limit saved through the
    instance settings (what ``/admin/settings`` calls) applies to the next login, with no
    restart, and so does its removal."""
    await local_account("ann")
    store = web.app.state.rate_limits  # type: ignore[attr-defined]
    assert isinstance(store, MemoryStore)
    async with browser(at(web, "198.51.100.7")) as http:
        r = await login_form(http, "ann", "wrong password")
        assert r.status_code == 401  # the default, 25 failures in 5 minutes: room left
        assert guard_for(web.app.state).store is store  # type: ignore[attr-defined]
        await instance_settings.save(settings, audit.CLI, {"rate_limits": "login_ip=2/5m"})
        for _ in range(2):  # a changed limit counts afresh
            r = await login_form(http, "ann", "wrong password")
            assert r.status_code == 401
        r = await login_form(http, "ann", PASSWORD)
        assert r.status_code == 429 and "Too many failed password attempts" in r.text
        assert 0 < int(r.headers["retry-after"]) <= 300
        await instance_settings.save(settings, audit.CLI, {"rate_limits": ""})
        r = await login_form(http, "ann", PASSWORD)
        assert r.status_code == 303
