"""The registration services under load and from the command line: an invite's uses under
concurrent sign-ups, a failed sign-up giving its use back, ``fedisora approve|reject``."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from factories import local_account
from instance import cli_fails, cli_ok, fedisora, free_port, instance_env

from fedisora.config import Settings, load_settings
from fedisora.errors import Conflict, Forbidden
from fedisora.models import Account, AuditEntry, Invite, User
from fedisora.services import audit
from fedisora.services.invites import InviteUnusable
from fedisora.services.signup import approve, reject, sign_up

PASSWORD = "correct horse battery"


def _settings(mode: str = "closed") -> Settings:
    return load_settings({"FEDISORA_SECRET_KEY": "s" * 40, "FEDISORA_REGISTRATIONS": mode})


async def _join(code: str, name: str) -> Account:
    return await sign_up(
        _settings(),
        username=name,
        email=f"{name}@example.com",
        password=PASSWORD,
        agreement=True,
        invite_code=code,
    )


async def test_concurrent_sign_ups_never_exceed_an_invites_uses(db: str) -> None:
    boss = await local_account("boss", admin=True)
    await Invite.create(code="three", creator=boss, max_uses=3)
    results = await asyncio.gather(
        *(_join("three", f"guest{n}") for n in range(8)), return_exceptions=True
    )
    joined = [r for r in results if isinstance(r, Account)]
    refused = [r for r in results if not isinstance(r, Account)]
    assert len(joined) == 3, results
    assert all(isinstance(r, InviteUnusable) for r in refused), refused
    assert (await Invite.get(code="three")).uses == 3
    assert await Account.filter(username__startswith="guest").count() == 3
    assert await User.filter(email__startswith="guest", approved=True).count() == 3


async def test_a_failed_sign_up_gives_its_use_back(db: str) -> None:
    boss = await local_account("boss", admin=True)
    await Invite.create(code="once", creator=boss, max_uses=1)
    with pytest.raises(Conflict):
        await _join("once", "boss")  # the name is taken: nothing is written
    assert (await Invite.get(code="once")).uses == 0
    await _join("once", "guest")
    assert (await Invite.get(code="once")).uses == 1
    with pytest.raises(InviteUnusable, match="used as many times"):
        await _join("once", "another")


async def test_approve_and_reject_refuse_accounts_not_waiting(db: str) -> None:
    active = await local_account("active")
    waiting = await local_account("waiting", approved=False, signup_reason="let me in")
    with pytest.raises(Forbidden, match="not waiting for approval"):
        await approve(active, by=audit.CLI)
    with pytest.raises(Forbidden, match="not waiting for approval"):
        await reject(active, by=audit.CLI)
    assert await User.filter(account_id=active.pk).exists()
    # Approve and reject racing: one wins, the other is refused, nothing half done.
    results = await asyncio.gather(
        approve(waiting, by=audit.CLI), reject(waiting, by=audit.CLI), return_exceptions=True
    )
    failures = [r for r in results if isinstance(r, Exception)]
    assert len(failures) == 1 and isinstance(failures[0], Forbidden), results
    logged = await AuditEntry.filter(action__in=["account.approve", "account.reject"])
    assert len(logged) == 1 and logged[0].actor_label == "cli"
    if logged[0].action == "account.approve":
        assert (await User.get(account_id=waiting.pk)).approved
    else:
        assert not await Account.filter(pk=waiting.pk).exists()


async def test_approve_and_reject_commands(db: str, tmp_path: Path) -> None:
    env = instance_env(
        tmp_path,
        free_port(),
        FEDISORA_DOMAIN="fedisora.test",
        FEDISORA_DATABASE_URL=db,
        FEDISORA_SECRET_KEY="s" * 40,
    )

    async def run(*args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(fedisora, list(args), env)

    first = await local_account("first", approved=False, signup_reason="birds")
    await local_account("second", approved=False, signup_reason="spam")
    await local_account("member")

    cli_fails(await run("approve", "nobody"), "error: no local account @nobody")
    cli_fails(await run("approve", "member"), "error: @member is already approved")
    out = cli_ok(await run("approve", "@First"))
    assert "approved @first: it can log in now" in out
    assert (await User.get(account_id=first.pk)).approved
    cli_fails(await run("reject", "first"), "is already approved")
    out = cli_ok(await run("reject", "second"))
    assert "rejected @second: the account is deleted" in out
    assert not await Account.filter(username="second").exists()
    logged = await AuditEntry.filter(action__startswith="account.").order_by("id")
    assert [(e.action, e.target_label, e.actor_label, e.detail) for e in logged] == [
        ("account.approve", "@first", "cli", "reason given: birds"),
        ("account.reject", "@second", "cli", "reason given: spam"),
    ]
    usage = await run("approve")
    assert usage.returncode == 2 and "username" in usage.stderr
