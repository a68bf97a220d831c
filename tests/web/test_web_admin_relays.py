"""``/admin/relays`` (issue 19, point 4): admins list, add and remove relays through
:mod:`fedisora.services.relays`; a refusal is a message in the page with the URL kept; the
page is the admins' (moderators and others refused), its forms need the CSRF token, and each
change is audited. (Following a relay through a scripted peer: tests/federation/
test_fed_relays.py.)"""

from __future__ import annotations

import httpx
from factories import local_account
from webhelpers import form_csrf, logged_in

from fedisora.models import AuditEntry, Delivery, Relay, RelayState, User


async def test_admins_list_refuse_and_remove_relays(web: httpx.ASGITransport) -> None:
    await local_account("boss", admin=True)
    mod = await local_account("mod")
    await User.filter(account_id=mod.pk).update(is_moderator=True)
    row = await Relay.create(
        inbox_url="https://relay.example/inbox",
        actor_uri="https://relay.example/actor",
        follow_uri="https://fedisora.test/relays/abc",
        state=RelayState.ACCEPTED,
    )
    async with logged_in(web, "mod") as http:
        assert (await http.get("/admin/relays")).status_code == 403
    async with logged_in(web, "boss") as http:
        page = await http.get("/admin/relays")
        assert page.status_code == 200
        assert "https://relay.example/inbox" in page.text and "Accepted" in page.text
        assert 'href="/admin/relays"' in page.text  # in the admin nav
        csrf = form_csrf(page.text)
        # a private address is refused, the URL kept in the form
        r = await http.post(
            "/admin/relays", data={"csrf": csrf, "url": "https://127.0.0.1:1/inbox"}
        )
        assert r.status_code == 422 and "refused" in r.text
        assert 'value="https://127.0.0.1:1/inbox"' in r.text
        r = await http.post("/admin/relays", data={"csrf": csrf, "url": "<script>x</script>"})
        assert r.status_code == 422 and "<script>x" not in r.text
        assert await Relay.all().count() == 1
        # no CSRF token: refused, nothing removed
        r = await http.post(f"/admin/relays/{row.pk}/remove", data={})
        assert r.status_code == 403 and await Relay.exists()
        r = await http.post(f"/admin/relays/{row.pk}/remove", data={"csrf": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/admin/relays"
        assert not await Relay.exists()
        [undo] = await Delivery.all()
        assert undo.payload["type"] == "Undo" and undo.inbox_url == "https://relay.example/inbox"
        assert await AuditEntry.filter(action="relay.remove").count() == 1
        r = await http.post(f"/admin/relays/{row.pk}/remove", data={"csrf": csrf})
        assert r.status_code == 404
        assert (
            await http.post("/admin/relays/nope/remove", data={"csrf": csrf})
        ).status_code == 404
