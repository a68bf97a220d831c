"""The vertical feed in a real browser (Debian's Chromium): keyboard-only navigation, the
reading path without JavaScript, liking, and axe-core with screenshots at phone and desktop
sizes."""

from __future__ import annotations

from typing import Any

from browserhelpers import Site, assert_accessible, screenshot
from playwright.async_api import Page

from fedisora.models import Follow, Like

PLAYING = """(id) => {
  const v = document.querySelector(`article[data-clip-id="${id}"] video`);
  return !!v && !v.paused && v.currentTime > 0;
}"""
FOCUSED = "() => document.activeElement && document.activeElement.dataset.clipId"


async def playing(page: Page) -> list[str]:
    """The clips whose video is playing now."""
    found: list[str] = await page.evaluate(
        """() => [...document.querySelectorAll('article.reel')]
            .filter(a => { const v = a.querySelector('video'); return v && !v.paused; })
            .map(a => a.dataset.clipId)"""
    )
    return found


async def live_videos(page: Page) -> int:
    count: int = await page.evaluate(
        "() => [...document.querySelectorAll('video')].filter(v => v.getAttribute('src')).length"
    )
    return count


async def test_keyboard_only_navigation_moves_focus_and_the_playing_clip(
    site: Site, desktop: Page, page_errors: list[str]
) -> None:
    ann = await site.user()
    clips = [await site.clip(ann, f"clip {n} #keys") for n in range(8)]
    ids = [str(c.pk) for c in reversed(clips)]  # newest first
    await site.login(desktop.context, ann.username)
    page = desktop
    await page.goto("/?tab=local")
    await page.wait_for_function(PLAYING, arg=ids[0])
    assert await playing(page) == [ids[0]]

    async def press(key: str, expected: str) -> None:
        await page.keyboard.press(key)
        await page.wait_for_function(f"() => ({FOCUSED})() === '{expected}'")
        await page.wait_for_function(PLAYING, arg=expected)
        assert await playing(page) == [expected], key
        # scrolled to it: its top at the top of the feed (smooth scrolling settles there)
        await page.wait_for_function(
            """(id) => {
              const a = document.querySelector(`article[data-clip-id='${id}']`);
              const feed = document.querySelector('[data-reels]');
              return Math.abs(a.getBoundingClientRect().top - feed.getBoundingClientRect().top) < 2;
            }""",
            arg=expected,
        )

    await press("j", ids[1])
    await press("ArrowDown", ids[2])
    await press("PageDown", ids[3])
    await press("j", ids[4])
    await press("k", ids[3])
    await press("ArrowUp", ids[2])
    await press("PageUp", ids[1])
    # never more than five videos hold a source (the current one and two either side)
    assert await live_videos(page) <= 5
    await press("j", ids[2])
    await press("j", ids[3])
    await press("j", ids[4])
    await press("j", ids[5])
    assert await live_videos(page) <= 5
    assert page_errors == []


async def test_reading_without_javascript(
    site: Site, new_context: Any, page_errors: list[str]
) -> None:
    ann = await site.user()
    clips = [await site.clip(ann, f"no script {n}") for n in range(11)]
    newest = [str(c.pk) for c in reversed(clips)]
    context = await new_context("phone", java_script_enabled=False)
    page = await context.new_page()
    await page.goto("/explore")
    articles = page.locator("article.reel")
    assert await articles.count() == 10
    assert await articles.first.get_attribute("data-clip-id") == newest[0]
    first_video = articles.first.locator("video")
    # The first clip plays by itself (muted, no controls: it starts sooner); its page has a
    # player with controls and sound, linked from the clip without JavaScript.
    assert await first_video.get_attribute("autoplay") is not None
    assert await first_video.is_visible()
    controls = articles.first.get_by_role("link", name="Sound and controls: open the clip")
    assert await controls.is_visible()
    assert await articles.nth(1).locator("video").get_attribute("controls") is not None
    # the clips after the first (in a <noscript>, shown as they are) are full reels too
    heights = await page.evaluate(
        "() => [...document.querySelectorAll('article.reel')].map(a => a.offsetHeight)"
    )
    assert heights[0] > 400 and set(heights) == {heights[0]}
    assert await articles.first.get_by_text("no script 10").is_visible()
    await controls.click()
    await page.wait_for_url(f"**/{newest[0]}")
    assert await page.locator("video[controls]").count() == 1
    await page.go_back()
    older = page.get_by_role("link", name="Older clips")
    assert await older.count() == 1
    await older.click()
    await page.wait_for_url("**max_id=*")
    assert await page.locator(f'article[data-clip-id="{newest[10]}"]').count() == 1
    assert page_errors == []


async def test_the_first_clip_plays_before_the_others_are_built(
    site: Site, phone: Page, page_errors: list[str]
) -> None:
    """The first response builds one clip; the page's other clips (inert in a <noscript>)
    join the feed after the first one plays, in order, numbered, and playable."""
    ann = await site.user()
    clips = [await site.clip(ann, f"deferred {n}") for n in range(12)]
    newest = [str(c.pk) for c in reversed(clips)]
    await phone.add_init_script(
        """document.addEventListener('playing', () => {
          if (window.atFirstPlay) return;
          window.atFirstPlay = {
            articles: document.querySelectorAll('[role=feed] > article').length,
            waiting: document.querySelectorAll('[role=feed] > noscript').length,
            // with scripts on, the waiting clips' markup is one text node: never laid out
            laidOut: [...document.querySelectorAll('[role=feed] > noscript')].map((n) => {
              const range = document.createRange();
              range.selectNodeContents(n);
              return range.getClientRects().length;
            }),
          };
        }, true);"""
    )
    await phone.goto("/explore")
    await phone.wait_for_function("() => !!window.atFirstPlay")
    assert await phone.evaluate("() => window.atFirstPlay") == {
        "articles": 1,
        "waiting": 1,
        "laidOut": [0],
    }
    await phone.wait_for_function(
        "() => document.querySelectorAll('[role=feed] > article').length === 10"
    )
    shown = await phone.evaluate(
        """() => [...document.querySelectorAll('[role=feed] > article')]
            .map(a => [a.dataset.clipId, a.getAttribute('aria-posinset')])"""
    )
    assert shown == [[newest[n], str(n + 1)] for n in range(10)]
    # the joined clips are the feed's own: j moves to the second, which plays
    await phone.keyboard.press("j")
    await phone.wait_for_function(PLAYING, arg=newest[1])
    assert page_errors == []


async def test_like_changes_the_button_and_its_count(
    site: Site, phone: Page, page_errors: list[str]
) -> None:
    ann = await site.user()
    bob = await site.user()
    target = await site.clip(bob, "like this one")
    await site.login(phone.context, ann.username)
    await phone.goto("/?tab=local")
    article = phone.locator(f'article[data-clip-id="{target.pk}"]')
    like = article.get_by_role("button", name="Like")
    assert await like.get_attribute("aria-pressed") == "false"
    assert (await like.inner_text()).split()[-1] == "0"
    await like.click()
    pressed = article.locator('button.action-like[aria-pressed="true"]')
    await pressed.wait_for()
    assert (await pressed.inner_text()).split()[-1] == "1"
    assert phone.url.endswith("/?tab=local")  # no navigation: the form was swapped in place
    assert await Like.filter(account_id=ann.pk, clip_id=target.pk).count() == 1
    await pressed.click()
    unpressed = article.locator('button.action-like[aria-pressed="false"]')
    await unpressed.wait_for()
    assert (await unpressed.inner_text()).split()[-1] == "0"
    assert await Like.filter(account_id=ann.pk, clip_id=target.pk).count() == 0
    assert page_errors == []


async def test_feed_accessibility_and_screenshots(
    site: Site, new_context: Any, page_errors: list[str]
) -> None:
    ann = await site.user()
    bob = await site.user()
    for n in range(3):
        await site.clip(bob, f"a lighthouse in a storm #sea take {n} with @{ann.username}")
    # the phone in the dark theme, the desktop in the light one: axe checks both palettes
    for kind, scheme in (("phone", "dark"), ("desktop", "light")):
        visitor = await (await new_context(kind, color_scheme=scheme)).new_page()
        await visitor.goto("/explore")
        await visitor.locator("article.reel").first.wait_for()
        await assert_accessible(visitor, f"/explore ({kind})")
        await screenshot(visitor, "explore")

        context = await new_context(kind, color_scheme=scheme)
        await site.login(context, ann.username)
        page = await context.new_page()
        await page.goto("/")
        await page.locator("article.reel").first.wait_for()
        await assert_accessible(page, f"/ ({kind})")
        await screenshot(page, "feed")
    assert page_errors == []


async def test_infinite_scroll_appends_the_next_page(
    site: Site, phone: Page, page_errors: list[str]
) -> None:
    ann = await site.user()
    clips = [await site.clip(ann, f"scroll {n}") for n in range(13)]
    newest = [str(c.pk) for c in reversed(clips)]
    await phone.goto("/explore")
    articles = phone.locator('[role="feed"] > article')
    # the page's other nine clips join the first once it plays (web/templates/timeline.html)
    await phone.wait_for_function(
        "() => document.querySelectorAll('[role=feed] > article').length === 10"
    )
    assert await phone.locator("[role=feed] > noscript").count() == 0
    await articles.nth(8).scroll_into_view_if_needed()
    await phone.wait_for_function(
        "() => document.querySelectorAll('[role=feed] > article').length > 10"
    )
    assert await phone.locator('[role="feed"]').get_attribute("aria-busy") == "false"
    eleventh = articles.nth(10)
    assert await eleventh.get_attribute("data-clip-id") == newest[10]
    assert await eleventh.get_attribute("aria-posinset") == "11"
    ids = await phone.evaluate(
        "() => [...document.querySelectorAll('[role=feed] > article')].map(a => a.dataset.clipId)"
    )
    assert len(ids) == len(set(ids))  # each clip once
    assert await live_videos(phone) <= 5
    assert page_errors == []


async def test_the_shell_on_other_pages(
    site: Site, new_context: Any, page_errors: list[str]
) -> None:
    boss = await site.user(admin=True)
    ann = await site.user()
    await site.clip(ann, "on my profile")
    for kind in ("phone", "desktop"):
        context = await new_context(kind)
        await site.login(context, boss.username)
        page = await context.new_page()
        for path, name in (
            ("/admin", "admin"),
            ("/admin/settings", "admin settings"),
            (f"/@{ann.username}", "profile"),
            ("/settings", "settings"),
        ):
            await page.goto(path)
            # the header stays one line, the page never scrolls sideways (tables scroll in
            # their own box)
            header = await page.locator(".site-header").bounding_box()
            assert header is not None and header["height"] <= 60, (path, kind, header)
            assert await page.evaluate(
                "() => document.documentElement.scrollWidth <= window.innerWidth"
            ), (path, kind)
            tabbar = await page.locator(".tabbar").bounding_box()
            assert tabbar is not None
            if kind == "phone":  # a bottom tab bar
                assert tabbar["y"] + tabbar["height"] == 915, tabbar
            else:  # in the header row
                assert tabbar["y"] < 10, tabbar
            await screenshot(page, name)
        assert await page.get_by_role("link", name="Admin").count() == 1
    member = await new_context("phone")
    await site.login(member, ann.username)
    mine = await member.new_page()
    await mine.goto("/settings")
    assert await mine.get_by_role("link", name="Admin").count() == 0
    for name in ("Home", "Explore", "Create", "Notifications", "Profile"):
        assert (
            await mine.get_by_role("navigation", name="Main").get_by_role("link", name=name).count()
            == 1
        ), name
    assert page_errors == []


async def test_sound_is_off_until_a_tap_and_then_remembered(
    site: Site, phone: Page, page_errors: list[str]
) -> None:
    ann = await site.user()
    silent = await site.clip(ann, "a silent one")
    first = await site.clip(ann, "tap for sound", sound=True)
    await phone.goto("/explore")
    quiet = phone.locator(f'article[data-clip-id="{silent.pk}"]')
    assert await quiet.locator(".action-sound").count() == 0  # known silent: no toggle
    assert "No sound" in await quiet.locator(".action-silent").inner_text()
    video = phone.locator(f'article[data-clip-id="{first.pk}"] video')
    await phone.wait_for_function(PLAYING, arg=str(first.pk))
    assert await video.evaluate("v => v.muted") is True  # autoplay is muted
    assert await video.get_attribute("controls") is None  # the feed's own controls
    await video.tap()  # the first tap asks for sound
    assert await video.evaluate("v => v.muted") is False
    assert await phone.evaluate("() => localStorage.getItem('fedisora.sound')") == "on"
    sound = phone.locator(f'article[data-clip-id="{first.pk}"] .action-sound')
    assert await sound.get_attribute("aria-pressed") == "true"
    await video.tap()  # then a tap pauses
    assert await video.evaluate("v => v.paused") is True
    await video.tap()  # and plays again
    await phone.wait_for_function(PLAYING, arg=str(first.pk))
    await phone.reload()
    await phone.wait_for_function(PLAYING, arg=str(first.pk))
    assert await phone.evaluate("() => localStorage.getItem('fedisora.sound')") == "on"
    if await video.evaluate("v => v.muted"):
        # Chromium lets a page play sound only after a gesture on it: the first tap (and
        # only one) brings the remembered sound back, without pausing.
        assert await sound.get_attribute("aria-pressed") == "false"
        await video.tap()
    assert await video.evaluate("v => v.muted") is False  # remembered
    assert await video.evaluate("v => v.paused") is False
    assert await sound.get_attribute("aria-pressed") == "true"
    await sound.click()
    assert await video.evaluate("v => v.muted") is True
    assert await phone.evaluate("() => localStorage.getItem('fedisora.sound')") == "off"
    assert page_errors == []


async def test_follow_from_the_feed_updates_every_clip_of_the_author(
    site: Site, desktop: Page, page_errors: list[str]
) -> None:
    ann = await site.user()
    bob = await site.user()
    for n in range(2):
        await site.clip(bob, f"follow me {n}")
    await site.login(desktop.context, ann.username)
    await desktop.goto("/?tab=local")
    buttons = desktop.get_by_role("button", name=f"Follow @{bob.username}")
    assert await buttons.count() == 2
    await buttons.first.click()
    following = desktop.get_by_role("button", name=f"Following @{bob.username}")
    await desktop.wait_for_function(
        "(n) => [...document.querySelectorAll('.follow-button[aria-pressed=true]')]"
        ".filter(b => b.textContent.includes(n)).length === 2",
        arg=f"@{bob.username}",
    )
    assert await following.count() == 2
    assert await Follow.filter(follower_id=ann.pk, target_id=bob.pk).exists()
    assert page_errors == []


async def test_a_new_clip_shows_as_new_without_moving_the_feed(
    site: Site, desktop: Page, page_errors: list[str]
) -> None:
    ann = await site.user()
    clips = [await site.clip(ann, f"before {n}") for n in range(3)]
    ids = [str(c.pk) for c in reversed(clips)]
    await site.login(desktop.context, ann.username)
    page = desktop
    polled: list[str] = []
    page.on("request", lambda r: polled.append(r.url) if "/feed/new" in r.url else None)
    async with page.expect_request(lambda r: "/feed/stream?" in r.url):
        await page.goto("/?tab=local")  # the live region follows the server-sent events
    await page.keyboard.press("j")
    await page.wait_for_function(f"() => ({FOCUSED})() === '{ids[1]}'")
    await page.evaluate("() => { window.stillHere = true; }")
    where = "() => document.querySelector('[data-reels]').scrollTop"
    await page.wait_for_timeout(800)  # smooth scrolling settles
    top = await page.evaluate(where)

    fresh = await site.clip(ann, "posted while the feed is open")
    notice = page.locator(".new-clips a.new-clips-link")
    await notice.wait_for(timeout=10_000)  # the outbox's sweep (1 s), then the stream
    assert await notice.inner_text() == "1 new clip"
    assert await notice.get_attribute("href") == "/?tab=local"
    # the viewer stayed where they were: same page, same clips, same clip in view
    assert await page.evaluate("() => window.stillHere") is True
    assert await page.evaluate(where) == top
    assert await page.evaluate(FOCUSED) == ids[1]
    assert await page.locator(f'article[data-clip-id="{fresh.pk}"]').count() == 0
    assert polled == []  # streamed, not polled
    await notice.click()
    await page.locator(f'article[data-clip-id="{fresh.pk}"]').wait_for()
    assert page_errors == []


async def test_for_you_explains_learns_from_the_player_and_takes_not_interested(
    site: Site, phone: Page, page_errors: list[str]
) -> None:
    """For You in the browser: each clip says why it is shown; "Not interested" from a clip's
    menu hides it; the player's impression and skip of the clip left within 2 s reach the
    server (POST /feedback) when the page is hidden; the settings page shows what was
    learned, accessibly."""
    from fedisora.models import ClipView
    from fedisora.services import follows

    ann = await site.user()
    bob = await site.user()
    made = [await site.clip(bob, f"a tide pool take {n}") for n in range(3)]
    await follows.follow(ann, bob)
    await site.login(phone.context, ann.username)
    await phone.goto("/")  # For You: a first visit computes the list
    articles = phone.locator("article.reel")
    await articles.first.wait_for()
    # Every clip says why (other tests' clips are on this instance too: trending, new
    # creators); one of bob's, because ann follows him.
    for reason in await articles.locator(".reel-reason").all_text_contents():
        assert reason.strip(), reason
    bobs = phone.locator(",".join(f'article[data-clip-id="{c.pk}"]' for c in made)).first
    said = (await bobs.locator(".reel-reason").text_content() or "").lower()
    assert "follow" in said or bob.username in said, said
    first = await articles.first.get_attribute("data-clip-id")
    await phone.keyboard.press("j")  # the next clip: the first was left within 2 s
    second = articles.nth(1)
    shown = await second.get_attribute("data-clip-id")
    await second.locator("summary", has_text="More").click()
    await second.get_by_role("button", name="Not interested").click()

    async def until(what: Any) -> None:
        for _ in range(50):
            if await what.exists():
                return
            await phone.wait_for_timeout(100)
        assert await what.exists()

    await until(ClipView.filter(account_id=ann.pk, clip_id=shown, hidden=True))
    # The page is hidden (another tab, the phone locked): the batch is sent.
    await phone.evaluate(
        """() => { Object.defineProperty(document, 'hidden', {value: true, configurable: true});
                   document.dispatchEvent(new Event('visibilitychange')); }"""
    )
    await until(ClipView.filter(account_id=ann.pk, clip_id=first, impressions__gt=0, skips__gt=0))

    await phone.goto("/settings/for-you")
    await phone.get_by_role("heading", level=1).wait_for()
    text = await phone.locator("main").inner_text()
    assert f"@{bob.username}" in text, text  # the follow taught it
    await assert_accessible(phone, "/settings/for-you")
    await screenshot(phone, "for-you-settings")
    assert page_errors == []
