"""Signing up in the browser: open, approval (a reason, a waiting page, a login that says
so) and closed (the admin's message), with the same rules as the client API."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from webhelpers import PASSWORD, browser, form_csrf

from fedisora.config import Settings
from fedisora.models import Account, User


def _with(transport: httpx.ASGITransport, **changes: object) -> None:
    app = transport.app
    app.state.settings = dataclasses.replace(app.state.settings, **changes)  # type: ignore[attr-defined]


def _form(page: str, **extra: str) -> dict[str, str]:
    return {
        "csrf": form_csrf(page),
        "username": "newbie",
        "email": "newbie@example.com",
        "password": PASSWORD,
        "confirm_password": PASSWORD,
        "agreement": "yes",
        **extra,
    }


async def test_open_sign_up_logs_the_new_account_in(web: httpx.ASGITransport) -> None:
    async with browser(web) as http:
        page = await http.get("/signup")
        assert page.status_code == 200
        assert 'name="reason"' not in page.text  # no reason asked on an open server
        r = await http.post("/signup", data=_form(page.text))
        assert r.status_code == 303 and r.headers["location"] == "/"
        home = await http.get("/")
        assert "@newbie" in home.text
        # Logged in: the sign-up page sends them home.
        again = await http.get("/signup")
        assert again.status_code == 303 and again.headers["location"] == "/"
    user = await User.get(email="newbie@example.com")
    assert user.approved and user.signup_reason == ""


async def test_sign_up_refusals_are_shown_in_the_form(web: httpx.ASGITransport) -> None:
    async with browser(web) as http:
        page = await http.get("/signup")
        cases = [
            ({"confirm_password": "something else"}, 422, "The two passwords differ."),
            ({"agreement": ""}, 422, "accept the server&#39;s rules"),
            ({"username": "bad name"}, 422, "username must be 1-30 letters"),
            ({"email": "not-an-address"}, 422, "is not a valid e-mail address"),
            ({"password": "short", "confirm_password": "short"}, 422, "password must be"),
        ]
        for changes, status, message in cases:
            r = await http.post("/signup", data=_form(page.text, **changes))
            assert r.status_code == status, (changes, r.text)
            assert message in r.text, changes
            assert 'role="alert"' in r.text
            # What was typed stays (the passwords do not).
            if "username" not in changes:
                assert 'value="newbie"' in r.text
            assert PASSWORD not in r.text
        forged = _form(page.text, csrf="forged")
        r = await http.post("/signup", data=forged)
        assert r.status_code == 403 and "The form expired" in r.text
    assert not await Account.filter(username="newbie").exists()


async def test_taken_names_are_refused(web: httpx.ASGITransport) -> None:
    async with browser(web) as first:
        page = await first.get("/signup")
        assert (await first.post("/signup", data=_form(page.text))).status_code == 303
    async with browser(web) as second:
        page = await second.get("/signup")
        r = await second.post("/signup", data=_form(page.text, email="other@example.com"))
        assert r.status_code == 409 and "is taken" in r.text
        r = await second.post("/signup", data=_form(page.text, username="other"))
        assert r.status_code == 409 and "already registered" in r.text


async def test_approval_sign_up_waits_and_the_login_says_so(web: httpx.ASGITransport) -> None:
    _with(web, registrations="approval", registrations_message="We review sign-ups daily.")
    async with browser(web) as http:
        page = await http.get("/signup")
        assert 'name="reason"' in page.text and "We review sign-ups daily." in page.text
        r = await http.post("/signup", data=_form(page.text))
        assert r.status_code == 422 and "reason is required" in r.text
        r = await http.post("/signup", data=_form(page.text, reason="I make clips of birds"))
        assert r.status_code == 303 and r.headers["location"] == "/signup/pending"
        waiting = await http.get("/signup/pending")
        assert "waiting for approval" in waiting.text
        # Not logged in: the home page offers the login.
        assert "@newbie" not in (await http.get("/")).text
        login = await http.get("/login")
        r = await http.post(
            "/login",
            data={"csrf": form_csrf(login.text), "login": "newbie", "password": PASSWORD},
        )
        assert r.status_code == 403 and "waiting for approval" in r.text
        # A wrong password learns nothing about the account.
        r = await http.post(
            "/login",
            data={"csrf": form_csrf(login.text), "login": "newbie", "password": "wrong one!"},
        )
        assert r.status_code == 401 and "do not match" in r.text
    user = await User.get(email="newbie@example.com")
    assert not user.approved and user.signup_reason == "I make clips of birds"
    # Once approved, the same login works.
    user.approved = True
    await user.save()
    async with browser(web) as http:
        login = await http.get("/login")
        r = await http.post(
            "/login",
            data={"csrf": form_csrf(login.text), "login": "newbie", "password": PASSWORD},
        )
        assert r.status_code == 303


async def test_closed_sign_ups_show_the_admins_message(web: httpx.ASGITransport) -> None:
    _with(web, registrations="closed", registrations_message="Invite only: ask on the forum.")
    async with browser(web) as http:
        page = await http.get("/signup")
        assert page.status_code == 200
        assert "Invite only: ask on the forum." in page.text
        assert 'action="/signup"' not in page.text
        login = await http.get("/login")  # a form token of this browser's
        r = await http.post("/signup", data=_form(login.text))
        assert r.status_code == 403 and "Invite only" in r.text
    assert not await Account.filter(username="newbie").exists()


async def test_sign_ups_are_limited_per_address(web: httpx.ASGITransport) -> None:
    async with browser(web) as http:
        page = await http.get("/signup")
        statuses = []
        for n in range(6):
            r = await http.post(
                "/signup",
                data=_form(page.text, username=f"user{n}", email=f"user{n}@example.com"),
            )
            statuses.append(r.status_code)
            http.cookies.clear()  # a sign-up logs in: start over as a visitor
            page = await http.get("/signup")
        assert statuses == [303] * 5 + [429]
        assert "Too many sign-ups" in r.text and "X-RateLimit-Limit" in r.headers
    assert await Account.filter(username__startswith="user").count() == 5


@pytest.mark.parametrize("value", ["x" * 1001, "bad\x00text"])
def test_the_registrations_message_is_checked(value: str) -> None:
    from fedisora.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="FEDISORA_REGISTRATIONS_MESSAGE"):
        load_settings({"FEDISORA_REGISTRATIONS_MESSAGE": value, "FEDISORA_SECRET_KEY": "s" * 40})
    assert isinstance(load_settings({"FEDISORA_SECRET_KEY": "s" * 40}), Settings)


async def test_hashtags_picked_at_sign_up_start_the_for_you_feed(
    web: httpx.ASGITransport,
) -> None:
    from fedisora.for_you import signals

    async with browser(web) as http:
        page = await http.get("/signup")
        assert 'name="tags"' in page.text
        r = await http.post("/signup", data=_form(page.text, tags="#sea #no-dashes"))
        assert r.status_code == 422 and "is not a hashtag" in r.text
        assert 'value="#sea #no-dashes"' in r.text  # kept, to be corrected
        r = await http.post("/signup", data=_form(page.text, tags="#Sea, cats  #sea"))
        assert r.status_code == 303
    account = await Account.get(username="newbie")
    assert (await signals.settings_of(account)).tags == ["sea", "cats"]
