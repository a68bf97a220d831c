"""Browser sessions live on the server (fedisora/services/sessions.py, web/sessions.py): the
cookie is a random token naming a row, so logging out, a suspension, disabling the login or
an idle month end the session for good, and a replayed cookie opens nothing. The login form
carries a CSRF token (login CSRF), and a login never reuses a token."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import httpx
from factories import local_account
from webhelpers import PASSWORD, browser, form_csrf, log_in, logged_in

from fedisora.models import Account, WebSession, utcnow
from fedisora.services.account_deletion import disable_login, suspend_account, unsuspend_account
from fedisora.services.sessions import IDLE_LIMIT

HTML = {"accept": "text/html"}


async def is_logged_in(http: httpx.AsyncClient) -> bool:
    r = await http.get("/feed", headers=HTML)
    assert r.status_code in (200, 303), r.text
    return r.status_code == 200


def replay(web: httpx.ASGITransport, cookie: str) -> httpx.AsyncClient:
    """Another browser that sends only *cookie* as its session cookie."""
    http = browser(web)
    http.cookies.set("fedisora_session", cookie, domain="fedisora.test")
    return http


async def test_a_login_is_a_row_and_the_cookie_only_its_random_token(
    web: httpx.ASGITransport,
) -> None:
    ann = await local_account("ann")
    async with browser(web) as http:
        http.headers["user-agent"] = "TestBrowser/1.0 \x01(control)"
        await log_in(http, "ann")
        cookie = http.cookies["fedisora_session"]
    (row,) = await WebSession.all()
    assert row.key_hash == hashlib.sha256(cookie.encode()).hexdigest()  # only the hash is kept
    # 32 random bytes, nothing else (starlette's cookie was signed base64 JSON with the id).
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", cookie), cookie
    user = await row.user
    assert user.account_id == ann.pk
    assert row.user_agent == "TestBrowser/1.0 (control)" and row.ip == "127.0.0.1"


async def test_logging_out_ends_the_session_and_the_old_cookie_opens_nothing(
    web: httpx.ASGITransport,
) -> None:
    await local_account("ann")
    async with logged_in(web, "ann") as http:
        cookie = http.cookies["fedisora_session"]
        # A GET (a link, another site's <img>) does not log out.
        r = await http.get("/logout", headers=HTML)
        assert r.status_code == 200 and "Log out @ann" in r.text
        assert await is_logged_in(http)
        r = await http.post("/logout", data={"csrf": "forged"})
        assert r.status_code == 403 and await is_logged_in(http)
        r = await http.post("/logout", data={"csrf": form_csrf(r.text)})
        assert r.status_code == 303 and "fedisora_session" not in http.cookies
        assert not await is_logged_in(http)
    assert await WebSession.all().count() == 0
    async with replay(web, cookie) as thief:
        r = await thief.get("/feed", headers=HTML)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        assert 'fedisora_session=""' in r.headers["set-cookie"]  # told to drop it
        assert (await thief.get("/admin", headers=HTML)).status_code == 401


async def test_suspending_or_disabling_an_account_ends_its_sessions(
    web: httpx.ASGITransport,
) -> None:
    bob = await local_account("bob")
    cat = await local_account("cat")
    async with logged_in(web, "bob") as bobs, logged_in(web, "cat") as cats:
        async with logged_in(web, "bob") as bobs_phone:
            assert await WebSession.all().count() == 3
            await suspend_account(bob)
            assert not await is_logged_in(bobs) and not await is_logged_in(bobs_phone)
            assert await is_logged_in(cats)
            # Unsuspending brings the account back, not the sessions.
            await unsuspend_account(await Account.get(pk=bob.pk))
            assert not await is_logged_in(bobs)
        await disable_login(cat)
        assert not await is_logged_in(cats)
    assert await WebSession.all().count() == 0


async def test_an_idle_session_is_over(web: httpx.ASGITransport) -> None:
    await local_account("dan")
    async with logged_in(web, "dan") as http:
        await WebSession.all().update(last_seen_at=utcnow() - IDLE_LIMIT - timedelta(minutes=1))
        assert not await is_logged_in(http)
    assert await WebSession.all().count() == 0


async def test_a_session_in_use_is_seen_and_its_cookie_renewed(web: httpx.ASGITransport) -> None:
    await local_account("eve")
    async with logged_in(web, "eve") as http:
        long_ago = utcnow() - timedelta(days=3)
        await WebSession.all().update(last_seen_at=long_ago, ip="192.0.2.9")
        r = await http.get("/feed", headers=HTML)
        assert r.status_code == 200 and "fedisora_session=" in r.headers["set-cookie"]
        assert r.headers["cache-control"] == "private"
        row = await WebSession.get()
        assert row.last_seen_at > long_ago and row.ip == "127.0.0.1"
        r = await http.get("/feed", headers=HTML)  # seen just now: nothing written or sent
        assert "set-cookie" not in r.headers


async def test_the_login_form_needs_its_csrf_token_and_a_login_never_reuses_a_token(
    web: httpx.ASGITransport,
) -> None:
    await local_account("fay")
    await local_account("gil")
    async with browser(web) as http:
        # Posted from another site: no CSRF cookie, no token.
        r = await http.post("/login", data={"login": "fay", "password": PASSWORD})
        assert r.status_code == 403 and "form expired" in r.text
        page = await http.get("/login")
        assert "fedisora_csrf" in http.cookies
        r = await http.post("/login", data={"login": "fay", "password": PASSWORD, "csrf": "x"})
        assert r.status_code == 403
        assert await WebSession.all().count() == 0
        r = await http.post(
            "/login", data={"login": "fay", "password": PASSWORD, "csrf": form_csrf(page.text)}
        )
        assert r.status_code == 303
        first = http.cookies["fedisora_session"]
        # Logging in again (as someone else) ends the first session.
        await log_in(http, "gil")
        second = http.cookies["fedisora_session"]
        assert second != first
        (row,) = await WebSession.all()
        assert row.key_hash == hashlib.sha256(second.encode()).hexdigest()
        r = await http.get("/", headers=HTML)
        assert "@gil" in r.text
    async with replay(web, first) as old:
        assert not await is_logged_in(old)


async def test_a_login_form_next_is_a_path_here(web: httpx.ASGITransport) -> None:
    await local_account("hal")
    async with browser(web) as http:
        for target, expected in (
            ("/feed", "/feed"),
            ("https://evil.example/", "/"),
            ("//evil.example/", "/"),
            ("/\\evil.example/", "/"),
        ):
            page = await http.get("/login", params={"next": target})
            r = await http.post(
                "/login",
                data={
                    "login": "hal",
                    "password": PASSWORD,
                    "csrf": form_csrf(page.text),
                    "next": target,
                },
            )
            assert r.status_code == 303 and r.headers["location"] == expected, target


async def test_hostile_login_input_is_a_clear_refusal(web: httpx.ASGITransport) -> None:
    """A NUL (which PostgreSQL refuses in a query) is refused by the input boundary (400)
    before any password check; an over-long name or bytes that are not UTF-8 are an ordinary
    failed login (401). Never a 500, and no one is logged in."""
    await local_account("ivy")
    async with browser(web) as http:
        csrf = form_csrf((await http.get("/login")).text)
        for login, password, status in (
            ("ivy\x00", PASSWORD, 400),
            ("ivy", "\x00" + PASSWORD, 400),
            ("i" * 10_000, PASSWORD, 401),
            ("ivy@example.com\x00", "x", 400),
        ):
            r = await http.post("/login", data={"login": login, "password": password, "csrf": csrf})
            assert r.status_code == status, (login[:20], r.status_code)
        body = f"login=ivy%ED%A0%80&password=x&csrf={csrf}".encode()
        r = await http.post(
            "/login",
            content=body,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 401  # read with U+FFFD for the bad bytes: a wrong name
    assert await WebSession.all().count() == 0
