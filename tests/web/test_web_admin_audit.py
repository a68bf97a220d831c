"""The audit log: moderation actions from the web pages, the API's services and the command
line are written by the services, and admins read and filter them at /admin/audit."""

from __future__ import annotations

import re

import httpx
from factories import local_account
from webhelpers import logged_in

from fedisora.models import Account, AuditEntry
from fedisora.services import audit
from fedisora.services.account_deletion import suspend_account, unsuspend_account


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def _rows(page: str) -> list[list[str]]:
    """The table's rows, each cell's text without tags."""
    rows = re.findall(r"<tr>\s*<td>(.*?)</tr>", page, re.S)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.split(r"</td>\s*<td>", r)] for r in rows]


async def test_web_suspensions_are_logged_and_shown(web: httpx.ASGITransport) -> None:
    boss = await local_account("boss", admin=True)
    bob = await local_account("bob")
    async with logged_in(web, "boss") as admin:
        token = _csrf((await admin.get("/admin/accounts")).text)
        for action in ("suspend", "unsuspend"):
            r = await admin.post(f"/admin/accounts/{bob.pk}/{action}", data={"csrf": token})
            assert r.status_code == 303
        # Refused actions log nothing: not suspended, so no second unsuspend.
        r = await admin.post(f"/admin/accounts/{bob.pk}/unsuspend", data={"csrf": token})
        assert r.status_code == 403
        page = (await admin.get("/admin/audit")).text
        rows = _rows(page)
        assert [r[1:4] for r in rows] == [
            ["@boss", "account.unsuspend", "@bob"],
            ["@boss", "account.suspend", "@bob"],
        ]
        only = _rows((await admin.get("/admin/audit", params={"action": "account.suspend"})).text)
        assert [r[2] for r in only] == ["account.suspend"]
        family = _rows((await admin.get("/admin/audit", params={"action": "account."})).text)
        assert len(family) == 2
        by_target = await admin.get("/admin/audit", params={"target": f"account:{bob.pk}"})
        assert len(_rows(by_target.text)) == 2
        by_boss = await admin.get("/admin/audit", params={"actor": "@BOSS"})
        assert len(_rows(by_boss.text)) == 2
        nobody = (await admin.get("/admin/audit", params={"actor": "ghost"})).text
        assert "There is no local account @ghost" in nobody and _rows(nobody) == []
        assert (await admin.get("/admin/audit", params={"max_id": "x"})).status_code == 400
        long = await admin.get("/admin/audit", params={"action": "a" * 400})
        assert long.status_code == 400
    entries = await AuditEntry.filter(actor_id=boss.pk).count()
    assert entries == 2


async def test_only_admins_read_the_log(web: httpx.ASGITransport) -> None:
    await local_account("bob")
    async with logged_in(web, "bob") as bob:
        assert (await bob.get("/admin/audit")).status_code == 403
    async with httpx.AsyncClient(transport=web, base_url="https://fedisora.test") as visitor:
        assert (await visitor.get("/admin/audit")).status_code == 401


async def test_the_command_line_is_an_actor_and_no_actor_logs_nothing(
    web: httpx.ASGITransport,
) -> None:
    await local_account("boss", admin=True)
    bob = await local_account("bob")
    await suspend_account(bob, by=audit.CLI)
    await unsuspend_account(bob, by=audit.CLI)
    await suspend_account(bob)  # not moderation (no actor): not logged
    rows = await AuditEntry.all().order_by("id").values_list("actor_label", "action")
    assert rows == [("cli", "account.suspend"), ("cli", "account.unsuspend")]
    page = await audit.entries(action="account.suspend")
    assert [e.actor_id for e in page.entries] == [None]


async def test_the_log_pages_newest_first(web: httpx.ASGITransport) -> None:
    boss = await local_account("boss", admin=True)
    me = await Account.get(pk=boss.pk)
    for n in range(5):
        await audit.record(me, "instance.settings", audit.target("setting", n, f"rule {n}"))
    first = await audit.entries(limit=2)
    assert [e.target_label for e in first.entries] == ["rule 4", "rule 3"]
    assert first.older is not None
    second = await audit.entries(limit=2, max_id=first.older)
    assert [e.target_label for e in second.entries] == ["rule 2", "rule 1"]
    last = await audit.entries(limit=2, max_id=second.older)
    assert [e.target_label for e in last.entries] == ["rule 0"] and last.older is None
    assert await audit.actions() == ["instance.settings"]
