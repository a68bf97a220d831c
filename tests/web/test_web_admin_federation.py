"""/admin/federation: delivery health per host (pending, failed, last success, back-off),
a page at a time, and "Retry now" (the delivery service, audited); admins only, CSRF on the
form, bad input in words."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
from factories import local_account
from webhelpers import form_csrf, logged_in

from fedisora.federation.context import Federation, set_federation
from fedisora.models import AuditEntry, Delivery, utcnow


def _row(sender_id: int, host: str, state: str, n: int, **values: Any) -> Delivery:
    now = utcnow()
    activity = f"https://fedisora.test/activities/{n}"
    values.setdefault("next_attempt_at", now if state == "pending" else None)
    values.setdefault("state_changed_at", now)
    return Delivery(
        sender_id=sender_id,
        inbox_url=f"https://{host}/inbox",
        host=host,
        activity_id=activity,
        payload={"id": activity, "type": "Like"},
        state=state,
        created_at=now,
        **values,
    )


def _hosts(page: str) -> list[str]:
    return re.findall(r'<li id="host-([^"]+)">', page)


async def test_hosts_paged_and_retry_now(web: httpx.ASGITransport, fed: Federation) -> None:
    set_federation(fed)
    try:
        await _check(web, fed)
    finally:
        set_federation(None)


async def _check(web: httpx.ASGITransport, fed: Federation) -> None:
    await local_account("boss", admin=True)
    sender = await local_account("alice")
    now = utcnow()
    later = now + timedelta(hours=2)
    await Delivery.bulk_create(
        [
            # down.example: one pending backing off, two failed (one of them sent again since).
            _row(sender.pk, "down.example", "pending", 1, next_attempt_at=later, attempts=5),
            _row(sender.pk, "down.example", "failed", 2),
            _row(sender.pk, "down.example", "failed", 3),
            _row(sender.pk, "down.example", "pending", 3, next_attempt_at=later, attempts=1),
            _row(
                sender.pk, "down.example", "delivered", 4, state_changed_at=now - timedelta(hours=3)
            ),
            # fine.example: everything arrived; listed only when searched for.
            _row(sender.pk, "fine.example", "delivered", 5),
            # 55 hosts with a failure each: more than a page.
            *(_row(sender.pk, f"h{i:02}.example", "failed", 100 + i) for i in range(55)),
        ]
    )
    fed.down_hosts["down.example"] = later

    async with logged_in(web, "alice") as someone:
        assert (await someone.get("/admin/federation")).status_code == 403
        page = await someone.get("/create")
        r = await someone.post(
            "/admin/federation/retry",
            data={"csrf": form_csrf(page.text), "host": "down.example"},
        )
        assert r.status_code == 403

    async with logged_in(web, "boss") as admin:
        page = await admin.get("/admin/federation")
        assert page.status_code == 200
        assert "2 deliveries pending" in page.text and "57 failed" in page.text
        hosts = _hosts(page.text)
        assert len(hosts) == 50 and hosts[0] == "down.example" and "fine.example" not in hosts
        more = re.search(r'<a href="(/admin/federation\?after=[^"]+)">More hosts</a>', page.text)
        assert more is not None
        rest = await admin.get(more.group(1).replace("&amp;", "&"))
        assert _hosts(rest.text) == [f"h{i:02}.example" for i in range(49, 55)]
        assert "More hosts" not in rest.text

        entry = re.search(r'<li id="host-down.example">(.*?)</li>', page.text, re.S)
        assert entry is not None
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", entry.group(1)))
        assert "2 pending · 2 failed · 1 delivered in the last day" in text
        assert "last success: 3.0 h ago" in text
        assert "backing off (attempt 5): next attempt in" in text
        assert "found down: waits until" in text and "Retry now" in text

        found = await admin.get("/admin/federation?host=FINE")
        assert _hosts(found.text) == ["fine.example"]
        assert "last success: " in found.text and "none in the last day" not in found.text
        assert "Retry now" not in found.text  # nothing to retry

        token = form_csrf(page.text)
        r = await admin.post("/admin/federation/retry", data={"host": "down.example"})
        assert r.status_code == 403  # no CSRF token
        r = await admin.post(
            "/admin/federation/retry", data={"csrf": token, "host": "down.example"}
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/admin/federation?retried=down.example"
        pending = await Delivery.filter(host="down.example", state="pending").order_by("id")
        assert len(pending) == 3  # activity 2 sent again; activity 3 was pending already
        assert all(p.next_attempt_at is not None and p.next_attempt_at <= utcnow() for p in pending)
        assert pending[2].activity_id.endswith("/2") and pending[2].attempts == 0
        assert await Delivery.filter(host="down.example", state="failed").count() == 2
        assert "down.example" not in fed.down_hosts
        done = await admin.get(r.headers["location"])
        assert "Deliveries to down.example are due now." in done.text
        entry = re.search(r'<li id="host-down.example">(.*?)</li>', done.text, re.S)
        assert entry is not None and "due now" in entry.group(1)

        # Twice: nothing is queued a second time.
        r = await admin.post(
            "/admin/federation/retry", data={"csrf": token, "host": "down.example"}
        )
        assert r.status_code == 303
        assert await Delivery.filter(host="down.example", state="pending").count() == 3

        # Bad input: said in the page.
        for host, words in (
            ("nowhere.example", "no deliveries to nowhere.example"),
            ("", "no deliveries to that host"),
        ):
            r = await admin.post("/admin/federation/retry", data={"csrf": token, "host": host})
            assert r.status_code == 422 and words in r.text
        r = await admin.get("/admin/federation?host=" + "x" * 300)
        assert r.status_code == 400

    audit = await AuditEntry.filter(action="federation.retry").order_by("id")
    assert [(a.actor_label, a.target_type, a.target_id, a.detail) for a in audit] == [
        ("@boss", "host", "down.example", "2 pending made due, 1 failed queued again"),
        ("@boss", "host", "down.example", "0 pending made due, 0 failed queued again"),
    ]
