"""The profile (grid and tabs), notifications and search pages in a real browser (Debian's
Chromium): axe-core finds no serious or critical violation at phone and desktop sizes, in the
dark and the light theme; the grid never scrolls sideways on a phone; screenshots."""

from __future__ import annotations

from typing import Any

from browserhelpers import Site, assert_accessible, screenshot

from fedisora.services import follows, interactions

NO_SIDEWAYS = "() => document.documentElement.scrollWidth <= window.innerWidth"


async def test_profile_notifications_and_search_pages(
    site: Site, new_context: Any, page_errors: list[str]
) -> None:
    ann = await site.user()
    bob = await site.user()
    carol = await site.user()
    clips = [await site.clip(ann, f"a lighthouse in a storm #sea take {n}") for n in range(5)]
    await site.clip(bob, "a remix of the storm", remix_of=clips[0])
    for fan in (bob, carol):
        await interactions.like(fan, clips[0])
        await follows.follow(fan, ann)
    await interactions.comment(bob, clips[1], f"@{ann.username} what light")

    for kind, scheme in (("phone", "dark"), ("desktop", "light")):
        context = await new_context(kind, color_scheme=scheme)
        await site.login(context, ann.username)
        page = await context.new_page()
        for path, name, ready in (
            (f"/@{ann.username}", "profile", "ul.clip-grid article.grid-card"),
            (f"/@{ann.username}/followers", "profile-followers", "li.account-row"),
            (f"/@{bob.username}/remixes", "profile-remixes", "ul.clip-grid article.grid-card"),
            ("/notifications", "notifications", "li.note"),
            ("/search?q=sea", "search", "ul.clip-grid article.grid-card"),
            ("/tags/sea", "tag", "ul.clip-grid article.grid-card"),
        ):
            response = await page.goto(path)
            assert response is not None and response.status == 200, path
            await page.locator(ready).first.wait_for()
            assert await page.evaluate(NO_SIDEWAYS), f"{path} scrolls sideways ({kind})"
            await assert_accessible(page, f"{path} ({kind})")
            await screenshot(page, name)
        # the grouped notification reads as a sentence
        await page.goto("/notifications")
        liked = page.locator('li.note[data-type="favourite"] .note-text')
        assert "and 1 other" not in (await liked.inner_text())
        assert "liked your clip" in (await liked.inner_text())
    assert page_errors == []


async def test_settings_create_drafts_and_signup_pages(
    site: Site, new_context: Any, page_errors: list[str]
) -> None:
    ann = await site.user()
    await site.clip(ann, "a clip to export")
    for kind, scheme in (("phone", "dark"), ("desktop", "light")):
        visitor = await (await new_context(kind, color_scheme=scheme)).new_page()
        for path, name in (
            ("/signup", "signup"),
            ("/login", "login"),
            ("/provenance", "provenance"),
        ):
            await visitor.goto(path)
            assert await visitor.evaluate(NO_SIDEWAYS), f"{path} scrolls sideways ({kind})"
            await assert_accessible(visitor, f"{path} ({kind})")
            await screenshot(visitor, name)
        context = await new_context(kind, color_scheme=scheme)
        await site.login(context, ann.username)
        page = await context.new_page()
        for path, name in (
            ("/settings", "settings"),
            ("/settings/profile", "settings-profile"),
            ("/settings/apps", "settings-apps"),
            ("/settings/password", "settings-password"),
            ("/settings/export", "settings-export"),
            ("/create", "create"),
            ("/drafts", "drafts"),
        ):
            response = await page.goto(path)
            assert response is not None and response.status == 200, path
            assert await page.evaluate(NO_SIDEWAYS), f"{path} scrolls sideways ({kind})"
            await assert_accessible(page, f"{path} ({kind})")
            await screenshot(page, name)
    assert page_errors == []


async def test_the_admin_pages_on_a_phone_for_an_admin_and_a_moderator(
    site: Site, new_context: Any, page_errors: list[str]
) -> None:
    """Every page of the admin nav at phone size: nothing scrolls sideways, each has its
    heading; an admin blocks a domain through the form and finds it in the audit log; a
    moderator sees only the pages moderators may use, is refused the others, and limits a
    reported account from the report's page (audited)."""
    from fedisora.models import Account, AuditEntry
    from fedisora.services import reports

    boss = await site.user(admin=True)
    mod = await site.user(moderator=True)
    ann, bob = await site.user(), await site.user()
    clip = await site.clip(ann, "a reported clip")
    report = await reports.file_report(
        bob, ann, status_ids=[clip.pk], comment="spam", category="spam"
    )

    admin = await new_context("phone")
    await site.login(admin, boss.username)
    page = await admin.new_page()
    await page.goto("/admin")
    nav = page.get_by_role("navigation", name="Admin")
    hrefs = [await link.get_attribute("href") for link in await nav.get_by_role("link").all()]
    for expected in ("/admin/domains", "/admin/settings", "/admin/audit", "/admin/reports"):
        assert expected in hrefs, hrefs
    for href in hrefs:
        assert href is not None
        response = await page.goto(href)
        assert response is not None and response.status == 200, href
        assert await page.locator("h1").count() >= 1, href
        assert await page.evaluate(NO_SIDEWAYS), href
        await screenshot(page, "admin" + href.replace("/admin", "").replace("/", "-") or "")
    await page.goto("/admin/domains")
    await page.fill('form[action="/admin/domains/blocks"] input[name="domain"]', "spam.example")
    async with page.expect_navigation():
        await page.click('form[action="/admin/domains/blocks"] button[type="submit"]')
    assert "spam.example" in await page.content()
    await page.goto("/admin/audit")
    assert "spam.example" in await page.locator("main").inner_text()
    await assert_accessible(page, "admin audit log")

    moderator = await new_context("phone")
    await site.login(moderator, mod.username)
    page = await moderator.new_page()
    await page.goto("/admin")
    nav = page.get_by_role("navigation", name="Admin")
    shown = {await link.get_attribute("href") for link in await nav.get_by_role("link").all()}
    assert "/admin/reports" in shown and "/admin/accounts" in shown
    assert not shown & {"/admin/domains", "/admin/settings", "/admin/audit", "/admin/policy"}
    for refused in ("/admin/domains", "/admin/settings", "/admin/audit"):
        response = await page.goto(refused)
        assert response is not None and response.status == 403, refused
        assert "admins" in await page.locator("main").inner_text()
    forbidden = "the server responded with a status of 403"  # the refusals just asked for
    assert len([e for e in page_errors if forbidden in e]) == 3, page_errors
    page_errors[:] = [e for e in page_errors if forbidden not in e]
    await page.goto(f"/admin/reports/{report.pk}")
    assert await page.evaluate(NO_SIDEWAYS)
    await screenshot(page, "admin-report-moderator")
    async with page.expect_navigation():
        await page.get_by_role("button", name=f"Limit (silence) @{ann.username}").click()
    assert (await Account.get(pk=ann.pk)).silenced_at is not None
    assert await AuditEntry.filter(actor_id=mod.pk, action="report.silence").count() == 1
    assert page_errors == []


async def test_a_suspended_account_in_the_browser_reads_why_and_appeals(
    site: Site, new_context: Any, page_errors: list[str]
) -> None:
    """A suspended account logs in through the form and lands on its suspension page, on a
    phone and a desktop: the moderator's notice is shown, the page passes axe, nothing scrolls
    sideways; it appeals through the form and the page then says the appeal is waiting."""
    from fedisora.models import Appeal
    from fedisora.services import moderation

    boss = await site.user(admin=True)
    for kind, scheme in (("phone", "dark"), ("desktop", "light")):
        bob = await site.user()
        await moderation.act_on_account(bob, "suspend", by=boss, text="Spam in every comment.")
        context = await new_context(kind, color_scheme=scheme)
        await site.login(context, bob.username)
        page = await context.new_page()
        await page.goto("/")
        assert page.url.endswith("/settings/suspended"), page.url
        main = page.locator("main")
        assert "Your account is suspended" in await main.inner_text()
        assert "Spam in every comment." in await main.inner_text()
        assert await page.evaluate(NO_SIDEWAYS), f"the suspension page scrolls sideways ({kind})"
        await assert_accessible(page, f"suspension page ({kind})")
        await screenshot(page, "suspended")
        # the appeal, through the page's own links and form
        await page.goto("/settings/warnings")
        form = page.locator('form.stack-form[action$="/appeal"]')
        await form.locator("textarea").fill("It was a friend's joke, I removed it.")
        async with page.expect_navigation():
            await form.locator("button[type=submit]").click()
        assert await Appeal.filter(account_id=bob.pk).exists()
        await page.goto("/settings/suspended")
        assert "appeal is waiting" in await page.locator("main").inner_text()
        assert await page.evaluate(NO_SIDEWAYS)
        await assert_accessible(page, f"after the appeal ({kind})")
        await screenshot(page, "suspended-appealed")
    assert page_errors == []


async def test_the_likeness_pages_on_a_phone_and_a_desktop(
    site: Site, new_context: Any, page_errors: list[str]
) -> None:
    """A person's likeness pages (state, registration, policy, requests, grants, uses,
    checks) and another person's profile with its "Request cameo" form: axe finds nothing
    serious, nothing scrolls sideways; a cameo is requested from the profile through its
    form (restrictions ticked) and approved by the owner on her requests page."""
    from likenesses import verified_likeness

    from fedisora.models import LikenessGrant

    for kind, scheme in (("phone", "dark"), ("desktop", "light")):
        ann, bob, newcomer = await site.user(), await site.user(), await site.user()
        await verified_likeness(
            ann,
            site.served.settings,
            audience="approved",
            restrictions="Never in political content <b>please</b>",
        )
        context = await new_context(kind, color_scheme=scheme)
        await site.login(context, bob.username)
        page = await context.new_page()
        await page.goto(f"/@{ann.username}")
        cameo = page.locator("form[action$='/cameo']")
        assert "Never in political content <b>please</b>" in await cameo.inner_text()
        await assert_accessible(page, f"profile with a cameo ({kind})")
        await screenshot(page, "profile-cameo")
        await cameo.get_by_role("checkbox").check()
        async with page.expect_navigation():
            await cameo.get_by_role("button", name="Request cameo").click()
        assert "waiting" in (await page.locator("#cameo").inner_text()).lower()
        assert await page.evaluate(NO_SIDEWAYS)

        owner = await new_context(kind, color_scheme=scheme)
        await site.login(owner, ann.username)
        page = await owner.new_page()
        for path, name in (
            ("/settings/likeness", "likeness"),
            ("/settings/likeness/requests", "likeness-requests"),
            ("/settings/likeness/grants", "likeness-grants"),
            ("/settings/likeness/uses", "likeness-uses"),
            ("/settings/likeness/checks", "likeness-checks"),
            ("/settings/likeness/revoke", "likeness-revoke"),
        ):
            response = await page.goto(path)
            assert response is not None and response.status == 200, path
            assert await page.evaluate(NO_SIDEWAYS), f"{path} scrolls sideways ({kind})"
            await assert_accessible(page, f"{path} ({kind})")
            await screenshot(page, name)
        await page.goto("/settings/likeness/requests")
        incoming = page.locator("form[action$='/approve']")
        async with page.expect_navigation():
            await incoming.get_by_role("button").first.click()
        assert await LikenessGrant.filter(owner_id=ann.pk, grantee_id=bob.pk).exists()
        await page.goto("/settings/likeness/grants")
        assert bob.username in await page.locator("main").inner_text()

        fresh = await new_context(kind, color_scheme=scheme)
        await site.login(fresh, newcomer.username)
        page = await fresh.new_page()
        await page.goto("/settings/likeness")
        await assert_accessible(page, f"likeness registration ({kind})")
        await screenshot(page, "likeness-new")
    assert page_errors == []
