"""Fixtures of the browser tests: Debian's Chromium driven by Playwright (async API, on the
session's event loop), against a real instance served on loopback.

- ``served`` (session): ``fedisora init`` + ``fedisora serve`` on a free 127.0.0.1 port, its
  own data directory and SQLite database, rendering with the tiny offline model on the CPU
  (its render worker idles until a test creates a clip); its log is printed when a test
  fails to reach it.
  One per test process (xdist worker); the suite sends each module whole to one process
  (``--dist loadscope``), so the browser tests start at most one per module.
- ``site`` (per test): the test process connected to the served instance's database:
  ``await site.user()``, ``await site.clip(author, "caption")``,
  ``await site.login(context, username)`` (:class:`browserhelpers.Site`).
- ``chromium`` (session): ONE browser per test session (per xdist worker), launched from
  ``/usr/bin/chromium`` (never a downloaded one).
- ``new_context`` (per test): ``await new_context("phone" | "desktop",
  java_script_enabled=True, **playwright_options)``: a fresh context (its own cookies and
  storage) at 412x915 (a phone, touch) or 1366x900, its ``base_url`` the instance; closed
  after the test. ``phone`` and ``desktop`` are a page in such a context.
  Every page of these contexts records its console errors and uncaught exceptions in
  ``page_errors`` (a list the test can assert empty).

Screenshots: ``browserhelpers.screenshot(page, name)``; accessibility:
``browserhelpers.assert_accessible(page)``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from browserhelpers import PHONE, VIEWPORTS, Served, Site
from instance import ROOT, fedisora, free_port, instance_env, serving
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from fedisora.config import load_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

NewContext = Callable[..., Awaitable[BrowserContext]]


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("browser-instance")
    port = free_port()
    # Eighty denoising steps (the tiny model's default is two): a render a person can watch
    # move, still a few seconds on the CPU.
    env = instance_env(data, port, FEDISORA_RENDER_STEPS="80")
    init = fedisora(["init", "--admin-password", "admin-password-1"], env)
    assert init.returncode == 0, init.stderr
    log = data / "serve.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "fedisora", "serve"),
                *("--host", "127.0.0.1", "--port", str(port)),
            ],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    with serving(proc, url, lambda: log.read_text()[-3000:]):
        yield Served(url, env, load_settings(env), data, log)


@pytest.fixture
async def site(served: Served) -> AsyncIterator[Site]:
    """The served instance's database, open in this process for the test."""
    from fedisora import urls
    from fedisora.db import close_db, init_db

    urls.configure(served.settings)
    await init_db(served.settings)
    try:
        yield Site(served)
    finally:
        await close_db()


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: scripts/test installs Debian's chromium package")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def page_errors() -> list[str]:
    """Console errors and uncaught exceptions of every page the test's contexts opened."""
    return []


@pytest.fixture
async def new_context(
    chromium: Browser, served: Served, page_errors: list[str]
) -> AsyncIterator[NewContext]:
    made: list[BrowserContext] = []

    async def make(
        kind: str = "phone", *, java_script_enabled: bool = True, **options: Any
    ) -> BrowserContext:
        viewport = VIEWPORTS[kind]
        phone = viewport == PHONE
        context = await chromium.new_context(
            viewport=viewport,
            base_url=served.url,
            java_script_enabled=java_script_enabled,
            is_mobile=phone,
            has_touch=phone,
            device_scale_factor=1,
            **options,
        )

        def watch(page: Page) -> None:
            page.on(
                "console",
                lambda m: page_errors.append(f"console: {m.text}") if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: page_errors.append(f"exception: {e}"))
            # which request failed (the console's line names no URL), and the instance's log
            # at that moment (its traceback)
            page.on(
                "response",
                lambda r: (
                    page_errors.append(
                        f"response: {r.status} {r.request.method} {r.url}\n"
                        f"serve.log ends: {served.log.read_text(errors='replace')[-4000:]}"
                    )
                    if r.status >= 500
                    else None
                ),
            )

        context.on("page", watch)
        made.append(context)
        return context

    try:
        yield make
    finally:
        for context in made:
            await context.close()


@pytest.fixture
async def phone(new_context: NewContext) -> Page:
    return await (await new_context("phone")).new_page()


@pytest.fixture
async def desktop(new_context: NewContext) -> Page:
    return await (await new_context("desktop")).new_page()
