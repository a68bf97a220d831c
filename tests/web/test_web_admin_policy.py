"""The prompt policy in the browser: admins list, add and remove protected names at
/admin/policy (CSRF-checked, audited), others are refused, and the create form refuses a
prompt naming one with the rule, keeping what was typed."""

from __future__ import annotations

import re

import httpx
from factories import local_account
from webhelpers import form_csrf, logged_in

from fedisora.models import AuditEntry, PolicyTerm, RenderJob


def _alert(page: str) -> str:
    found = re.search(r'role="alert"[^>]*>(.*?)</(?:p|div)>', page, re.S)
    assert found is not None, page[:3000]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()


async def test_admins_add_and_remove_terms_and_each_change_is_audited(
    web: httpx.ASGITransport,
) -> None:
    boss = await local_account("boss", admin=True)
    async with logged_in(web, "boss") as admin:
        page = await admin.get("/admin/policy")
        assert page.status_code == 200
        assert '<a href="/admin/policy">Prompt policy</a>' in page.text
        assert (
            "Public figures (0)" in page.text and "Protected characters and works (0)" in page.text
        )
        csrf = form_csrf(page.text)
        r = await admin.post(
            "/admin/policy/add",
            data={
                "csrf": csrf,
                "list": "public_figure",
                "term": " Taylor  Swift ",
                "note": "asked",
            },
        )
        assert r.status_code == 303, r.text
        r = await admin.post(
            "/admin/policy/add",
            data={"csrf": csrf, "list": "protected_work", "term": "Mickey Mouse"},
        )
        assert r.status_code == 303
        page = (await admin.get("/admin/policy")).text
        assert "<strong>Taylor Swift</strong>" in page and "— asked" in page
        assert "<strong>Mickey Mouse</strong>" in page and "Public figures (1)" in page

        # Refusals keep what was typed and change nothing.
        r = await admin.post(
            "/admin/policy/add",
            data={"csrf": csrf, "list": "public_figure", "term": "TAYLOR-SWIFT", "note": "again"},
        )
        assert r.status_code == 422
        assert "has “Taylor Swift” already" in _alert(r.text)
        assert 'value="TAYLOR-SWIFT"' in r.text and 'value="again"' in r.text
        r = await admin.post(
            "/admin/policy/add", data={"csrf": csrf, "list": "public_figure", "term": "Al"}
        )
        assert r.status_code == 422 and "at least 3 letters" in _alert(r.text)
        r = await admin.post(
            "/admin/policy/add", data={"csrf": csrf, "list": "villains", "term": "Darth Vader"}
        )
        assert r.status_code == 422 and "No such policy list" in _alert(r.text)
        r = await admin.post(
            "/admin/policy/add", data={"csrf": "forged", "list": "public_figure", "term": "Ann Lee"}
        )
        assert r.status_code == 403
        assert await PolicyTerm.all().count() == 2

        mickey = await PolicyTerm.get(term="Mickey Mouse")
        r = await admin.post(f"/admin/policy/{mickey.pk}/remove", data={"csrf": "forged"})
        assert r.status_code == 403
        r = await admin.post(f"/admin/policy/{mickey.pk}/remove", data={"csrf": csrf})
        assert r.status_code == 303
        r = await admin.post(f"/admin/policy/{mickey.pk}/remove", data={"csrf": csrf})
        assert r.status_code == 404
        r = await admin.post("/admin/policy/x/remove", data={"csrf": csrf})
        assert r.status_code == 404
        page = (await admin.get("/admin/policy")).text
        assert "Mickey Mouse" not in page and "Protected characters and works (0)" in page
        audit_page = (await admin.get("/admin/audit", params={"action": "policy."})).text
        assert "policy.remove" in audit_page and "policy.add" in audit_page

    entries = await AuditEntry.filter(action__startswith="policy.").order_by("id")
    assert [(e.actor_id, e.action, e.target_type, e.target_label, e.detail) for e in entries] == [
        (boss.pk, "policy.add", "policy_term", "Taylor Swift", "public_figure"),
        (boss.pk, "policy.add", "policy_term", "Mickey Mouse", "protected_work"),
        (boss.pk, "policy.remove", "policy_term", "Mickey Mouse", "protected_work"),
    ]
    swift = await PolicyTerm.get(term="Taylor Swift")
    assert swift.created_by_id == boss.pk and swift.source == "admin" and swift.note == "asked"


async def test_others_cannot_see_or_change_the_lists(web: httpx.ASGITransport) -> None:
    await local_account("bob")
    async with logged_in(web, "bob") as bob:
        assert (await bob.get("/admin/policy")).status_code == 403
        settings_page = (await bob.get("/settings")).text
        r = await bob.post(
            "/admin/policy/add",
            data={"csrf": form_csrf(settings_page), "list": "public_figure", "term": "Bob Dylan"},
        )
        assert r.status_code == 403
    async with httpx.AsyncClient(transport=web, base_url="https://fedisora.test") as visitor:
        assert (await visitor.get("/admin/policy")).status_code == 401
        r = await visitor.post("/admin/policy/1/remove", data={})
        assert r.status_code == 401
    assert await PolicyTerm.all().count() == 0


async def test_the_create_form_refuses_a_protected_name_and_keeps_the_input(
    web: httpx.ASGITransport,
) -> None:
    from fedisora.services import audit, prompt_policy

    await prompt_policy.add_term(audit.CLI, "public_figure", "Taylor Swift")
    await local_account("alice")
    async with logged_in(web, "alice") as http:
        page = await http.get("/create")
        token = re.search(r'name="form_token" value="([^"]+)"', page.text)
        assert token is not None
        hidden = {"csrf": form_csrf(page.text), "form_token": token.group(1)}
        prompt = "T.a y-lor  Sw1ft singing in the rain"
        r = await http.post(
            "/create",
            data={**hidden, "prompt": prompt, "seconds": "2"},
            files={"still": ("", b"", "")},
        )
        assert r.status_code == 422
        assert _alert(r.text) == (
            "This prompt names a protected public figure (rule: public figures: “Taylor Swift”)"
        )
        assert f">{prompt}</textarea>" in r.text and 'value="2"' in r.text
        assert token.group(1) in r.text
        assert await RenderJob.all().count() == 0
        r = await http.post(
            "/create",
            data={**hidden, "prompt": "a swift taylor-made suit", "seconds": "1"},
            files={"still": ("", b"", "")},
        )
        assert r.status_code == 303, r.text[:2000]
        assert await RenderJob.all().count() == 1
