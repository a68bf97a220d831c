"""E-mail confirmation where mail is configured (FEDISORA_SMTP_URL): a sign-up (web or API)
is stored unconfirmed and its mail queued as a work row; the mail reaches a real SMTP
server on loopback (retried later when it is down, not lost); logging in is refused until
the link is followed; a used, expired or unknown link is refused with a message."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from factories import local_account
from smtp_sink import free_port, smtp_sink
from webhelpers import DOMAIN, PASSWORD, browser, form_csrf

from fedisora.config import Settings, load_settings
from fedisora.models import EmailConfirmation, OutgoingMail, User, utcnow
from fedisora.services import mail
from fedisora.work.engine import AdvanceResult, Engine

PORT = free_port()


@pytest.fixture
def settings(db: str, tmp_path: Path) -> Settings:
    return load_settings(
        {
            "FEDISORA_DOMAIN": DOMAIN,
            "FEDISORA_DATA_DIR": str(tmp_path),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_DATABASE_URL": db,
            "FEDISORA_SMTP_URL": f"smtp://127.0.0.1:{PORT}",
            "FEDISORA_SMTP_FROM": "hello@fedisora.test",
        }
    )


async def _login(http: httpx.AsyncClient, name: str) -> httpx.Response:
    page = await http.get("/login")
    return await http.post(
        "/login", data={"csrf": form_csrf(page.text), "login": name, "password": PASSWORD}
    )


def _link(message: object) -> str:
    body = str(message)
    found = re.search(rf"https://{re.escape(DOMAIN)}(/auth/confirm/[\w-]+)", body)
    assert found is not None, body
    return found.group(1)


async def test_a_sign_up_confirms_its_address_by_mail_before_logging_in(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    shift = timedelta(0)

    def clock() -> datetime:
        return utcnow() + shift

    engine = Engine(mail.machines(settings), context={"settings": settings}, clock=clock)
    await local_account("oldtimer")  # made before (or without) mail: confirmed
    async with browser(web) as http:
        page = await http.get("/signup")
        r = await http.post(
            "/signup",
            data={
                "csrf": form_csrf(page.text),
                "username": "newbie",
                "email": "newbie@example.com",
                "password": PASSWORD,
                "confirm_password": PASSWORD,
                "agreement": "yes",
            },
        )
        assert r.status_code == 303 and r.headers["location"] == "/auth/confirm/sent"
        assert "Check your mail" in (await http.get("/auth/confirm/sent")).text
        user = await User.get(email="newbie@example.com")
        assert user.email_confirmed is False
        row = await OutgoingMail.get(user_id=user.pk)
        assert row.state == "pending" and row.to_address == "newbie@example.com"

        # The SMTP server is down: the mail waits for a later attempt, its token dropped.
        assert await engine.advance("outgoing_mails", row.pk) == AdvanceResult.RETRY
        await row.refresh_from_db()
        assert row.state == "pending" and row.attempts == 1
        assert "Connection" in row.last_error or "refused" in row.last_error.lower()
        assert row.next_attempt_at is not None and row.next_attempt_at > utcnow()
        assert await EmailConfirmation.all().count() == 0

        # Logging in is refused, saying why and offering the mail again.
        r = await _login(http, "newbie")
        assert r.status_code == 403
        assert "not confirmed yet" in r.text
        assert 'href="/auth/confirm?login=newbie"' in r.text
        assert (await _login(http, "oldtimer")).status_code == 303
        await http.post("/logout", data={"csrf": form_csrf((await http.get("/logout")).text)})

        with smtp_sink(PORT) as sink:
            # Not due yet; then, past its back-off, sent.
            assert await engine.advance("outgoing_mails", row.pk) == AdvanceResult.SKIPPED
            shift = mail.RETRY[0] + timedelta(seconds=1)
            assert await engine.advance("outgoing_mails", row.pk) == AdvanceResult.MOVED
            await row.refresh_from_db()
            assert row.state == "sent" and row.sent_at is not None
            assert len(sink.messages) == 1
            sent = sink.messages[0]
            assert sent["To"] == "newbie@example.com" and sent["From"] == "hello@fedisora.test"
            assert "Confirm your e-mail address on fedisora" in str(sent["Subject"])
            first = _link(sent)
            # A sent mail is never sent again.
            assert await engine.advance("outgoing_mails", row.pk) == AdvanceResult.SKIPPED

            # Asking for the mail again (the login page's link): a second mail, new link.
            page = await http.get("/auth/confirm?login=newbie")
            assert 'value="newbie"' in page.text
            r = await http.post(
                "/auth/confirm", data={"csrf": form_csrf(page.text), "login": "newbie"}
            )
            assert r.status_code == 303 and r.headers["location"] == "/auth/confirm/sent"
            again = await OutgoingMail.get(user_id=user.pk, state="pending")
            assert await engine.advance("outgoing_mails", again.pk) == AdvanceResult.MOVED
            second = _link(sink.messages[1])
            assert second != first
        # Only hashes are stored.
        assert first.rsplit("/", 1)[1] not in {c.token_hash for c in await EmailConfirmation.all()}

        r = await http.get("/auth/confirm/not-a-token")
        assert r.status_code == 404 and "not valid" in r.text
        r = await http.get(first)
        assert r.status_code == 200 and "newbie@example.com is confirmed" in r.text
        assert 'href="/login"' in r.text and "Log out" not in r.text  # nobody logged in
        r = await http.get(first)
        assert r.status_code == 410 and "used already" in r.text
        await EmailConfirmation.filter(used_at=None).update(expires_at=utcnow())
        r = await http.get(second)
        assert r.status_code == 410 and "expired" in r.text
        assert (await _login(http, "newbie")).status_code == 303

        # Asking for mails again is limited per client address (5 per 30 minutes).
        page = await http.get("/auth/confirm")
        for _ in range(4):
            r = await http.post("/auth/confirm", data={"csrf": form_csrf(page.text), "login": "x"})
            assert r.status_code == 303
        r = await http.post("/auth/confirm", data={"csrf": form_csrf(page.text), "login": "x"})
        assert r.status_code == 429 and "Too many mails" in r.text and "Retry-After" in r.headers


async def test_an_api_sign_up_confirms_by_mail_and_the_password_grant_waits(
    web: httpx.ASGITransport,
) -> None:
    async with browser(web) as http:
        r = await http.post(
            "/api/v1/apps",
            data={
                "client_name": "t",
                "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
                "scopes": "read write",
            },
        )
        app = r.json()
        creds = {"client_id": app["client_id"], "client_secret": app["client_secret"]}
        r = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "scope": "read write", **creds},
        )
        app_token = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = await http.post(
            "/api/v1/accounts",
            headers=app_token,
            data={
                "username": "apinew",
                "email": "apinew@example.com",
                "password": PASSWORD,
                "agreement": "true",
            },
        )
        assert r.status_code == 200, r.text
        user_token = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert await OutgoingMail.filter(to_address="apinew@example.com").count() == 1
        r = await http.get("/api/v1/accounts/verify_credentials", headers=user_token)
        assert r.status_code == 403 and "confirmed e-mail" in r.json()["error"]
        r = await http.get("/api/v1/emails/check_confirmation", headers=user_token)
        assert r.status_code == 200 and r.json() is False
        r = await http.post("/api/v1/emails/confirmations", headers=user_token)
        assert r.status_code == 200 and r.json() == {}
        # One is on its way already: no second mail.
        assert await OutgoingMail.filter(to_address="apinew@example.com").count() == 1
        r = await http.post(
            "/oauth/token",
            data={
                "grant_type": "password",
                "username": "apinew",
                "password": PASSWORD,
                "scope": "read",
                **creds,
            },
        )
        assert r.status_code == 400
        assert r.json()["error"] == "invalid_grant"
        assert "not confirmed yet" in r.json()["error_description"]
        assert "https://fedisora.test/auth/confirm" in r.json()["error_description"]
