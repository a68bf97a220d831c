"""An unmodified Mastodon.py reviews sign-ups on a real running instance whose sign-ups need
approval: ``create_account`` with a reason, ``admin_accounts_v1``/``admin_accounts_v2`` with
``status="pending"``, ``admin_account_approve`` and ``admin_account_reject``."""

from __future__ import annotations

from pathlib import Path

import httpx
import mastodon
import pytest
from instance import running_instance

PASSWORD = "a long password 1"
ADMIN_SCOPES = ["read", "write", "admin:read", "admin:write"]


def _password_grant(url: str, cid: str, secret: str, login: str) -> httpx.Response:
    """The password grant as Mastodon.py sends it, to read the message it does not pass on."""
    return httpx.post(
        f"{url}/oauth/token",
        data={
            "grant_type": "password",
            "client_id": cid,
            "client_secret": secret,
            "username": login,
            "password": PASSWORD,
            "scope": "read",
        },
        timeout=30,
    )


def test_mastodonpy_approves_and_rejects_sign_ups(tmp_path: Path) -> None:
    with running_instance(tmp_path / "data", FEDISORA_REGISTRATIONS="approval") as instance:
        cid, secret = mastodon.Mastodon.create_app(
            "signups", api_base_url=instance.url, scopes=ADMIN_SCOPES
        )

        def app() -> mastodon.Mastodon:
            return mastodon.Mastodon(
                api_base_url=instance.url, client_id=cid, client_secret=secret, request_timeout=30
            )

        assert app().instance_v2().registrations.approval_required is True
        for name in ("alice", "mallory"):
            app().create_account(
                name,
                PASSWORD,
                f"{name}@example.com",
                agreement=True,
                reason=f"{name} here",
                scopes=["read", "write"],
            )
        with pytest.raises(mastodon.MastodonIllegalArgumentError, match="invalid_grant"):
            app().log_in("alice@example.com", PASSWORD, scopes=["read"], allow_http=True)
        said = _password_grant(instance.url, cid, secret, "alice@example.com")
        assert said.status_code == 400 and "waiting for approval" in said.text

        admin = app()
        admin.log_in("admin", instance.admin_password, scopes=ADMIN_SCOPES, allow_http=True)
        # (Mastodon.py declares v1's answer a single AdminAccount: the items stay dicts.)
        pending = admin.admin_accounts_v1(status="pending")
        assert [a["username"] for a in pending] == ["mallory", "alice"]
        assert pending[1]["invite_request"] == "alice here" and pending[1]["approved"] is False
        pending = admin.admin_accounts_v2(origin="local", status="pending")
        assert {a.username for a in pending} == {"alice", "mallory"}
        alice_id, mallory_id = pending[1].id, pending[0].id
        if pending[0].username == "alice":
            alice_id, mallory_id = mallory_id, alice_id

        approved = admin.admin_account_approve(alice_id)
        assert approved.approved is True and approved.username == "alice"
        rejected = admin.admin_account_reject(mallory_id)
        assert rejected.username == "mallory"
        with pytest.raises(mastodon.MastodonAPIError, match="not waiting for approval"):
            admin.admin_account_approve(alice_id)
        assert admin.admin_accounts_v1(status="pending") == []

        alice = app()
        alice.log_in("alice@example.com", PASSWORD, scopes=["read"], allow_http=True)
        assert alice.me().username == "alice"
        said = _password_grant(instance.url, cid, secret, "mallory@example.com")
        assert said.status_code == 400 and "credentials were incorrect" in said.text  # gone
