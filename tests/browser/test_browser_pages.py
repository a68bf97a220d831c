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
        for path, name in (("/signup", "signup"), ("/login", "login")):
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
