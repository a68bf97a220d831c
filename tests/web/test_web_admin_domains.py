"""/admin/domains: an admin blocks, edits and removes domains, allows domains, imports a CSV
(malformed lines by line number; the rest imported, or nothing) and exports one; every form
needs the CSRF token, and every change is in the audit log."""

from __future__ import annotations

import httpx
from factories import local_account, remote_account
from webhelpers import form_csrf, logged_in

from fedisora.ids import new_id
from fedisora.models import AuditEntry, Clip, DomainAllow, DomainBlock
from fedisora.services import posts

CSV = "\n".join(
    [
        "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate",
        "good.example,suspend,true,false,spam,false",
        "bad domain,silence,false,false,,false",
        "fine.example,silence,false,false,,true",
        "fedisora.test,suspend,false,false,,false",
    ]
)


async def test_block_edit_remove(web: httpx.ASGITransport) -> None:
    await local_account("boss", admin=True)
    async with logged_in(web, "boss") as admin:
        page = await admin.get("/admin/domains")
        assert page.status_code == 200
        assert 'href="/admin/domains"' in page.text  # the admin nav
        token = form_csrf(page.text)
        fields = {"domain": "Spam.Example", "severity": "silence", "reject_media": "on"}
        r = await admin.post("/admin/domains/blocks", data=fields)
        assert r.status_code == 403  # no CSRF token
        r = await admin.post("/admin/domains/blocks", data={**fields, "csrf": "forged"})
        assert r.status_code == 403
        assert await DomainBlock.all().count() == 0
        r = await admin.post(
            "/admin/domains/blocks", data={**fields, "csrf": token, "public_comment": "spam"}
        )
        assert r.status_code == 303
        block = await DomainBlock.get(domain="spam.example")
        assert (block.severity, block.reject_media, block.obfuscate) == ("silence", True, False)
        assert "spam.example" in (await admin.get("/admin/domains")).text
        for domain, message in (
            ("fedisora.test", "own domain"),
            ("no such thing", "not a valid domain"),
            ("spam.example", "already blocked"),
        ):
            r = await admin.post(
                "/admin/domains/blocks",
                data={"domain": domain, "severity": "suspend", "csrf": token},
            )
            assert r.status_code == 422 and message in r.text
        edit = await admin.get(f"/admin/domains/blocks/{block.pk}")
        assert edit.status_code == 200 and 'name="public_comment"' in edit.text
        r = await admin.post(
            f"/admin/domains/blocks/{block.pk}",
            data={"csrf": token, "severity": "suspend", "obfuscate": "on"},
        )
        assert r.status_code == 303
        block = await DomainBlock.get(pk=block.pk)
        assert (block.severity, block.reject_media, block.obfuscate) == ("suspend", False, True)
        r = await admin.post(
            f"/admin/domains/blocks/{block.pk}", data={"csrf": token, "severity": "x"}
        )
        assert r.status_code == 422
        r = await admin.post(f"/admin/domains/blocks/{block.pk}/delete", data={})
        assert r.status_code == 403
        r = await admin.post(f"/admin/domains/blocks/{block.pk}/delete", data={"csrf": token})
        assert r.status_code == 303
        assert await DomainBlock.all().count() == 0
        assert (await admin.get("/admin/domains/blocks/999")).status_code == 404
        # Allows.
        r = await admin.post(
            "/admin/domains/allows", data={"csrf": token, "domain": "friends.example"}
        )
        assert r.status_code == 303
        allow = await DomainAllow.get(domain="friends.example")
        r = await admin.post(f"/admin/domains/allows/{allow.pk}/delete", data={"csrf": token})
        assert r.status_code == 303 and await DomainAllow.all().count() == 0
        audit = (await admin.get("/admin/audit", params={"action": "domain_block."})).text
        assert "domain_block.create" in audit and "domain_block.delete" in audit
    actions = [
        str(a) for a in await AuditEntry.all().order_by("id").values_list("action", flat=True)
    ]
    assert actions == [
        "domain_block.create",
        "domain_block.update",
        "domain_block.delete",
        "domain_allow.create",
        "domain_allow.delete",
    ]


async def test_import_all_or_nothing_and_the_rest_then_export(web: httpx.ASGITransport) -> None:
    await local_account("boss", admin=True)
    async with logged_in(web, "boss") as admin:
        token = form_csrf((await admin.get("/admin/domains")).text)
        files = {"file": ("blocks.csv", CSV.encode(), "text/csv")}
        r = await admin.post("/admin/domains/import", data={"mode": "all"}, files=files)
        assert r.status_code == 403
        r = await admin.post(
            "/admin/domains/import", data={"csrf": token, "mode": "all"}, files=files
        )
        assert r.status_code == 422
        assert "Nothing was imported" in r.text
        assert "Line 3:" in r.text and "Line 5:" in r.text and "Line 2:" not in r.text
        assert await DomainBlock.all().count() == 0
        r = await admin.post(
            "/admin/domains/import", data={"csrf": token, "mode": "rest"}, files=files
        )
        assert r.status_code == 200
        assert "Imported: 2 new" in r.text and "Line 3:" in r.text and "Line 5:" in r.text
        assert sorted(str(d) for d in await DomainBlock.all().values_list("domain", flat=True)) == [
            "fine.example",
            "good.example",
        ]
        r = await admin.post(
            "/admin/domains/import",
            data={"csrf": token, "mode": "rest"},
            files={"file": ("x.csv", b"\xff\xfe\x00bad", "text/csv")},
        )
        assert r.status_code == 422 and "not UTF-8" in r.text
        r = await admin.post(
            "/admin/domains/import", data={"csrf": token, "mode": "maybe"}, files=files
        )
        assert r.status_code == 422
        exported = await admin.get("/admin/domains/export")
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        assert "attachment" in exported.headers["content-disposition"]
        lines = exported.text.splitlines()
        assert lines == [
            "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate",
            "fine.example,silence,false,false,,true",
            "good.example,suspend,true,false,spam,false",
        ]
        # Round trip through the page: removed, imported from the export, the same again.
        await DomainBlock.all().delete()
        r = await admin.post(
            "/admin/domains/import",
            data={"csrf": token, "mode": "all"},
            files={"file": ("e.csv", exported.content, "text/csv")},
        )
        assert r.status_code == 200 and "Imported: 2 new" in r.text
        assert (await admin.get("/admin/domains/export")).text == exported.text


async def test_only_admins(web: httpx.ASGITransport) -> None:
    await local_account("bob")
    async with logged_in(web, "bob") as bob:
        assert (await bob.get("/admin/domains")).status_code == 403
        assert (await bob.get("/admin/domains/export")).status_code == 403
        r = await bob.post("/admin/domains/blocks", data={"domain": "x.example"})
        assert r.status_code == 403
    async with httpx.AsyncClient(transport=web, base_url="https://fedisora.test") as anon:
        assert (await anon.get("/admin/domains")).status_code == 401
    assert await DomainBlock.all().count() == 0


async def test_silenced_domain_leaves_the_federated_feed(web: httpx.ASGITransport) -> None:
    from web.feed import _public

    await local_account("boss", admin=True)
    clips = {}
    for name, domain in (("loud", "loud.example"), ("calm", "calm.example")):
        account = await remote_account(name, domain)
        clips[name] = await posts.store_clip(
            Clip(
                id=new_id(),
                account=account,
                uri=f"{account.uri}/clips/1",
                url=f"{account.uri}/clips/1",
                caption="remote",
                content="<p>remote</p>",
                local=False,
            ),
            account,
        )
    me = await local_account("me")
    pk = new_id()
    mine = await posts.store_clip(
        Clip(id=pk, account=me, uri=f"https://fedisora.test/users/me/clips/{pk}", local=True), me
    )
    before = {c.pk for c in (await _public(None, None, local=False)).clips}
    assert {clips["loud"].pk, clips["calm"].pk, mine.pk} <= before
    async with logged_in(web, "boss") as admin:
        token = form_csrf((await admin.get("/admin/domains")).text)
        r = await admin.post(
            "/admin/domains/blocks",
            data={"csrf": token, "domain": "loud.example", "severity": "silence"},
        )
        assert r.status_code == 303
    after = {c.pk for c in (await _public(None, None, local=False)).clips}
    assert clips["loud"].pk not in after and {clips["calm"].pk, mine.pk} <= after
