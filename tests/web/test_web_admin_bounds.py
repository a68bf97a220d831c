"""The admin pages list a bounded number of rows: accounts a page at a time, the busiest
delivery hosts only (an instance may have thousands of each)."""

from __future__ import annotations

import re

import httpx
import pytest
from factories import local_account
from webhelpers import logged_in

from fedisora.models import Account, Delivery
from web import accounts as admin_accounts
from web import routes as web_routes

ACCT = r'<strong class="account-acct">@(\w+)</strong>'


async def test_admin_accounts_page_by_page(
    web: httpx.ASGITransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    await local_account("boss", admin=True)
    for name in ("ann", "bob", "cat", "dan"):
        await local_account(name)
    monkeypatch.setattr(admin_accounts, "ADMIN_PAGE", 2)
    async with logged_in(web, "boss") as admin:
        first = (await admin.get("/admin/accounts")).text
        assert re.findall(ACCT, first) == ["boss", "ann"]
        found = re.search(r'<a rel="next" href="(/admin/accounts\?after=\d+)">', first)
        assert found is not None
        second = (await admin.get(found.group(1))).text
        assert re.findall(ACCT, second) == ["bob", "cat"]
        found = re.search(r'<a rel="next" href="(/admin/accounts\?after=\d+)">', second)
        assert found is not None
        last = (await admin.get(found.group(1))).text
        assert re.findall(ACCT, last) == ["dan"]
        assert 'rel="next"' not in last and 'href="/admin/accounts">First accounts' in last
        bad = await admin.get("/admin/accounts", params={"after": "nope"})
        assert bad.status_code == 400


async def test_the_overview_shows_the_busiest_delivery_hosts(
    web: httpx.ASGITransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    boss = await local_account("boss", admin=True)
    sender = await Account.get(pk=boss.pk)
    for host, count in (("quiet.example", 1), ("busy.example", 3), ("busier.example", 4)):
        for n in range(count):
            await Delivery.create(
                sender=sender,
                inbox_url=f"https://{host}/inbox",
                host=host,
                activity_id=f"https://x/{host}/{n}",
                payload={},
                state="pending",
            )
    monkeypatch.setattr(web_routes, "ADMIN_HOSTS", 2)
    async with logged_in(web, "boss") as admin:
        page = (await admin.get("/admin")).text
    assert "busier.example" in page and "busy.example" in page
    assert "quiet.example" not in page
