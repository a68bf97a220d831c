"""Helpers of the browser tests (tests/browser/conftest.py has the fixtures).

- :class:`Served`: a real instance (``fedisora serve``) on a loopback port, one per test
  session (per xdist worker), with its own SQLite database in its own data directory.
- :class:`Site`: rows in that instance's database made through the real services from the
  test process (accounts, clips with a real playable video and a trusted render manifest),
  and logging a browser context in through the login form.
- :func:`screenshot` writes ``test-artifacts/screenshots/<name>-<width>x<height>.png``
  (git-ignored); :func:`assert_accessible` runs axe-core and fails on serious or critical
  violations.
"""

from __future__ import annotations

import itertools
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page, ViewportSize

from fedisora.config import Settings
from fedisora.models import Account, Clip, MediaFile, MediaKind
from fedisora.services import posts
from fedisora.services.accounts import create_local_account

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
TINY_VIDEO = ROOT / "tests" / "fixtures" / "video" / "tiny.mp4"
"""A 2-second 64x112 H.264 MP4 (16 frames) that Debian's Chromium plays."""
PASSWORD = "correct horse battery"
PHONE: ViewportSize = {"width": 412, "height": 915}
DESKTOP: ViewportSize = {"width": 1366, "height": 900}
VIEWPORTS: dict[str, ViewportSize] = {"phone": PHONE, "desktop": DESKTOP}
SERIOUS = ("serious", "critical")

_names = itertools.count(1)


@dataclass
class Served:
    """The instance the browser talks to."""

    url: str
    env: dict[str, str]
    settings: Settings
    data_dir: Path
    log: Path


@dataclass
class Site:
    """Make rows in the served instance's database (the test process is connected to it
    while a test runs) and log browsers in."""

    served: Served
    made: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.served.url

    def name(self, prefix: str = "user") -> str:
        """A username no other test of the session used (the instance lives all session)."""
        return f"{prefix}{next(_names)}"

    async def user(
        self, username: str | None = None, *, admin: bool = False, moderator: bool = False
    ) -> Account:
        """A local account whose password is :data:`PASSWORD`."""
        from fedisora.models import User

        username = username or self.name()
        account = await create_local_account(username, f"{username}@example.com", PASSWORD)
        if admin or moderator:
            await User.filter(account_id=account.pk).update(is_admin=admin, is_moderator=moderator)
        return account

    async def video(self, author: Account, *, sound: bool = False) -> MediaFile:
        """A finished render of *author*'s: the real tiny MP4 in the media directory, with
        the provenance the render queue records for a clip it signed (as
        ``tests/support/factories.rendered_video``; the C2PA signing itself is tested in
        tests/render)."""
        relative = f"clips/browser-{next(_names)}.mp4"
        target = self.served.settings.media_root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(TINY_VIDEO, target)
        return await MediaFile.create(
            account=author,
            kind=MediaKind.VIDEO,
            file=relative,
            content_type="video/mp4",
            width=64,
            height=112,
            duration=2.0,
            fps=8.0,
            frames=16,
            size=target.stat().st_size,
            provenance={
                "state": "trusted",
                "local": True,
                "manifest_digest": "sha256:test",
                # what a render's signed claim says of its sound (LTX-2 renders it)
                "claim": {"audio": sound},
            },
        )

    async def clip(
        self, author: Account, caption: str = "", *, sound: bool = False, **kwargs: Any
    ) -> Clip:
        """A published clip of *author*'s (``posts.post_clip``: the real service); *sound*:
        its claim says it has a sound track."""
        video = await self.video(author, sound=sound)
        return await posts.post_clip(author, video, caption=caption, **kwargs)

    async def login(self, context: BrowserContext, username: str) -> None:
        """Log *context* in as *username* through the login form (its cookies then hold the
        session, for every page of the context). It lands on the settings page, not the
        feed: a feed page served counts its clips as shown to the viewer (For You serves
        other clips on the next first page), and a test's own first visit to ``/`` must be
        its first."""
        page = await context.new_page()
        try:
            await page.goto(f"{self.url}/login?next=/settings")
            await page.fill('input[name="login"]', username)
            await page.fill('input[name="password"]', PASSWORD)
            async with page.expect_navigation():
                await page.click('button[type="submit"]:has-text("Log in")')
            assert "/login" not in page.url, await page.content()
        finally:
            await page.close()


def viewport_label(page: Page) -> str:
    size = page.viewport_size or {"width": 0, "height": 0}
    return f"{size['width']}x{size['height']}"


async def screenshot(page: Page, name: str) -> Path:
    """A screenshot of *page* as ``test-artifacts/screenshots/<name>-<w>x<h>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^\w.-]+", "-", name)
    path = SCREENSHOTS / f"{safe}-{viewport_label(page)}.png"
    await page.screenshot(path=str(path))
    return path


async def assert_accessible(page: Page, what: str = "") -> None:
    """axe-core on *page* as it is now: fails on any serious or critical violation, naming
    the rule, its help text and the offending elements."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in SERIOUS]
    report = "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']}\n"
        + "".join(f"    {n['target']}: {n.get('failureSummary', '')[:200]}\n" for n in v["nodes"])
        for v in bad
    )
    assert not bad, f"axe on {what or page.url} ({viewport_label(page)}):\n{report}"
