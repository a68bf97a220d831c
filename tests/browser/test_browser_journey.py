"""A newcomer's whole journey in a real browser: sign up, create a clip while the progress
bar moves, publish it; a second person finds it in the feed, likes it, comments on it and
remixes it; the first person sees it all in their notifications. The served instance renders
with the tiny offline model, on the CPU, through its real render queue."""

from __future__ import annotations

import re
from typing import Any

from browserhelpers import PASSWORD, Site, assert_accessible, screenshot
from playwright.async_api import Page

from fedisora.models import Clip, Comment, Like


async def _render_and_publish(page: Page, prompt: str, caption: str) -> list[str]:
    """On /create (already open): submit *prompt*, wait until the clip is ready, publish it
    with *caption*; the progress bar's values seen (with :data:`WATCH_PROGRESS`), in order."""
    await page.get_by_label("Prompt", exact=True).fill(prompt)
    await page.locator("#seconds").fill("1")
    await page.get_by_role("button", name="Create").click()
    await page.wait_for_url(re.compile(r"/renders/\d+$"))
    await page.locator("#ready-heading").wait_for(timeout=120_000)
    seen: list[str] = await page.evaluate(
        "() => JSON.parse(sessionStorage.getItem('progress-seen') || '[]')"
    )
    await screenshot(page, "render-ready")
    await page.get_by_label("Caption", exact=True).fill(caption)
    await page.get_by_role("button", name="Publish").click()
    await page.wait_for_url(re.compile(r"/@[^/]+/\d+$"))
    return seen


# Records every value the progress bar shows, in the page's session storage (the render
# page reloads itself when the render ends): what a person watching it would have seen.
WATCH_PROGRESS = """
(() => {
  const seen = () => JSON.parse(sessionStorage.getItem('progress-seen') || '[]');
  const note = (bar) => {
    const values = seen();
    const value = bar.getAttribute('aria-valuenow');
    if (values[values.length - 1] !== value) {
      values.push(value);
      sessionStorage.setItem('progress-seen', JSON.stringify(values));
    }
  };
  document.addEventListener('DOMContentLoaded', () => {
    const bar = document.querySelector('[data-progress-bar]');
    if (!bar) return;
    note(bar);
    new MutationObserver(() => note(bar)).observe(bar, { attributes: true });
  });
})();
"""


async def test_sign_up_create_publish_then_a_stranger_likes_comments_and_remixes(
    site: Site, new_context: Any, page_errors: list[str]
) -> None:
    name = site.name()
    # 1. Sign up on a phone.
    phone_context = await new_context("phone")
    await phone_context.add_init_script(WATCH_PROGRESS)
    phone = await phone_context.new_page()
    await phone.goto("/signup")
    await assert_accessible(phone, "/signup")
    await screenshot(phone, "signup")
    await phone.get_by_label("Username").fill(name)
    await phone.get_by_label("E-mail").fill(f"{name}@example.com")
    await phone.get_by_label("Password (at least 8 characters)").fill(PASSWORD)
    await phone.get_by_label("Password again").fill(PASSWORD)
    await phone.get_by_label("I accept this server's rules").check()
    await phone.get_by_role("button", name="Sign up").click()
    await phone.wait_for_url(re.compile(r"/$"))
    # 2. Create a clip from the tab bar, watching the progress bar move, and publish it.
    await phone.get_by_role("navigation", name="Main").get_by_role("link", name="Create").click()
    await phone.wait_for_url(re.compile(r"/create$"))
    await assert_accessible(phone, "/create")
    await screenshot(phone, "create")
    seen = await _render_and_publish(phone, "a red kite over dunes", "my first clip #journey")
    # the bar moved: from the start, through steps between, to the end
    assert seen[0] == "0" and seen[-1] == "100", seen
    assert any(0 < int(value) < 100 for value in seen), seen
    clip = await Clip.filter(account__username=name, local=True).order_by("-id").first()
    assert clip is not None and clip.caption == "my first clip #journey"
    await assert_accessible(phone, "a clip page")
    await screenshot(phone, "clip")

    # 3. Someone else, on a desktop, swipes to it in the local feed.
    other = await site.user()
    context = await new_context("desktop")
    await site.login(context, other.username)
    page = await context.new_page()
    await page.goto("/?tab=local")
    article = page.locator(f'article[data-clip-id="{clip.pk}"]')
    await article.wait_for()
    await article.focus()
    like = article.get_by_role("button", name="Like")
    await like.click()
    await article.locator('button.action-like[aria-pressed="true"]').wait_for()
    assert await Like.filter(account_id=other.pk, clip_id=clip.pk).exists()
    # ... comments on it ...
    await article.get_by_role("link", name="Comment").click()
    await page.wait_for_url(re.compile(rf"/@{name}/{clip.pk}#comments$"))
    await page.get_by_label("Add a comment").fill(f"Beautiful, @{name}!")
    await page.get_by_role("button", name="Comment", exact=True).click()
    await page.locator("article.comment", has_text="Beautiful").wait_for()
    assert await Comment.filter(clip_id=clip.pk, account_id=other.pk).exists()
    await assert_accessible(page, "a clip page with a comment (desktop)")
    await screenshot(page, "clip")
    # ... and remixes it.
    await page.locator(".clip-actions").get_by_role("link", name="Remix").click()
    await page.wait_for_url(re.compile(rf"/create\?remix_of={clip.pk}$"))
    await page.get_by_text("my first clip").first.wait_for()  # the source is shown
    await _render_and_publish(page, "the same kite, at night", "a night version")
    remix = await Clip.filter(account_id=other.pk, remix_of_id=clip.pk).first()
    assert remix is not None

    # 4. The first person sees all of it in their notifications, in words, with links.
    await (
        phone.get_by_role("navigation", name="Main")
        .get_by_role("link", name="Notifications")
        .click()
    )
    await phone.wait_for_url(re.compile(r"/notifications$"))
    notes = phone.locator(".note-list")
    for words in ("liked your clip", "mentioned you in", "remixed your clip in"):
        await notes.get_by_text(words).first.wait_for()
        assert await notes.get_by_text(other.username).count() >= 1
    await phone.get_by_role("link", name="their remix").first.click()
    await phone.wait_for_url(re.compile(rf"/@{other.username}/{remix.pk}$"))
    assert await phone.get_by_text("a night version").count() >= 1
    assert page_errors == []
