"""How fast does the feed show its first clip? Side by side with a static page, in one run.

Starts a real instance on 127.0.0.1 (``fedisora init``, then the app under uvicorn in one
child process of this script, SQLite, no render worker, no Redis) with clips made through
the real services (the 2-second H.264 fixture ``tests/fixtures/video/tiny.mp4`` and trusted
provenance, as the browser tests make them). The child serves the app exactly as
``fedisora serve`` builds it, plus one bench-only mount, ``/bench-floor/``: a static HTML
page with one ``<video autoplay muted playsinline loop>`` of the feed's first clip (the same
``/media/`` URL). That page is the floor: what any page showing that clip costs, from the
same server process.

Debian's Chromium (``/usr/bin/chromium``, driven by Playwright; never a downloaded browser)
then loads, in a fresh context each run (phone viewport, HTTP cache disabled over CDP), in
turn: the floor, ``/explore`` as a visitor, ``/`` logged in (the For You tab), and static
copies of those two pages as they were served (saved under the floor's mount: same assets,
same clips, no server work for the page). The copies split a feed page's time between the
server (the page next to its copy) and the browser (the copy next to the floor). One more
copy of ``/explore`` has its later clips built at once instead of waiting in a
``<noscript>`` until the first plays (as the feed served them before): what that saves. Per
page, medians over ``--runs`` runs of:

- time to first byte: the navigation's ``responseStart`` (ms from navigation start);
- first clip playing: the first ``playing`` event of a ``<video>`` (ms from navigation start);
- the response body bytes Chromium received until that moment (CDP ``Network.dataReceived``
  up to the ``playing`` event), split into the clip that played and everything else (the page
  and its assets; another clip preloaded before the first plays counts there too).

It prints them in a table with the ratio feed/floor (target: first clip playing <= 1.5x the
floor; the time-to-first-byte ratio is printed for information: a static file is answered
without touching the database, so that ratio says how much of the time the server's page
costs) and "page and assets: X KB (target < 150 KB) + clip Y KB", each with PASS or MISS.
The floor has no text, stylesheet or script; a feed page's own copy costs the browser some
40-65 ms more on the 2-core machines here (software rendering, a fresh renderer each load),
whatever the floor's own time (87-143 ms between runs), so two proposed checks are printed
beside it: each feed page <= 1.5x its own static copy (the server's share), and each copy
<= 1.5x the floor with the app's stylesheet and script linked (what the page's markup costs).

Last, Lighthouse 12.2.3 (npm; 13.x needs Node 22), installed on first use into
``bench/.lighthouse/`` (git-ignored) with ``npm install --prefix bench/.lighthouse
lighthouse@12.2.3``, audits the feed pages with its default mobile emulation, run on Debian's
Chromium (``CHROME_PATH=/usr/bin/chromium``), and the performance, accessibility and best
practices scores are printed (target >= 90 each). When npm or Lighthouse cannot run, it says
why and the other measures still stand.

Run: ``.venv/bin/python bench/web.py`` (``--quick``: 3 runs and Lighthouse on ``/explore``
only; ``--no-lighthouse``; ``--help``). Only 127.0.0.1 is used; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "tests" / "support", ROOT / "tests" / "browser"):
    sys.path.insert(0, str(extra))

HOST = "127.0.0.1"
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
PHONE = {"width": 412, "height": 915}
FLOOR_MOUNT = "/bench-floor"
FLOOR_PAGE = f"{FLOOR_MOUNT}/floor.html"
LIGHTHOUSE_VERSION = "12.2.3"
LIGHTHOUSE_DIR = Path(__file__).resolve().parent / ".lighthouse"
LIGHTHOUSE_CLI = LIGHTHOUSE_DIR / "node_modules" / "lighthouse" / "cli" / "index.js"
TARGET_RATIO = 1.5
TARGET_PAGE_KB = 150.0
TARGET_SCORE = 90
START_TIMEOUT = 60.0
PLAY_TIMEOUT_MS = 30_000
COPIES = ("copy of /explore", "copy of /")
STYLED = "floor + site.css/app.js"
BUILT = "copy of /explore, all built"
REST_OPEN = '<noscript class="reels-rest" data-reels-rest>'


# Set before any page script runs: the first <video> to fire "playing" (a capture listener on
# window sees every element's event), when (ms since the navigation started) and its source.
FIRST_PLAY_SCRIPT = """
window.addEventListener("playing", (event) => {
  if (window.__benchPlay || !(event.target instanceof HTMLMediaElement)) return;
  window.__benchPlay = {at: performance.now(), src: event.target.currentSrc};
}, true);
"""


# --- the server: the app as `fedisora serve` builds it, plus the floor ------------------------


def serve_child(floor_dir: str, port: int) -> None:
    """In the child process: the instance's app with the bench-only static mount in front."""
    import uvicorn
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    from fedisora.app import create_app

    app = create_app()
    app.router.routes.insert(0, Mount(FLOOR_MOUNT, app=StaticFiles(directory=floor_dir)))
    uvicorn.run(
        app,
        host=HOST,
        port=port,
        log_level="warning",
        proxy_headers=False,
        timeout_graceful_shutdown=5,
    )


@contextlib.contextmanager
def server(data_dir: Path, floor_dir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """``fedisora init`` in *data_dir*, then the child server; yields its URL and env."""
    from instance import fedisora, free_port, instance_env, serving

    port = free_port()
    env = instance_env(data_dir, port)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    init = fedisora(["init", "--admin-password", "bench-admin-password-1"], env, timeout=300)
    if init.returncode != 0:
        raise SystemExit(f"fedisora init failed:\n{init.stderr}")
    log = data_dir / "serve.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-child", str(floor_dir), "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://{HOST}:{port}"
    with serving(proc, url, lambda: log.read_text()[-3000:], START_TIMEOUT):
        yield url, env


async def make_content(url: str, env: dict[str, str], data_dir: Path, clips: int) -> str:
    """Accounts and clips in the instance's database, through the real services (the browser
    tests' :class:`browserhelpers.Site`); returns the viewer's username (who follows the
    first author and likes a few clips, so For You's trending part has something)."""
    from browserhelpers import Served, Site

    from fedisora import urls
    from fedisora.config import load_settings
    from fedisora.db import close_db, init_db
    from fedisora.services import follows, interactions

    settings = load_settings(env)
    urls.configure(settings)
    await init_db(settings)
    try:
        site = Site(Served(url, env, settings, data_dir, data_dir / "serve.log"))
        viewer = await site.user("viewer")
        authors = [await site.user(f"author{n}") for n in range(1, 4)]
        await follows.follow(viewer, authors[0])
        made = []
        for n in range(clips):
            author = authors[n % len(authors)]
            caption = f"Clip {n + 1}: a lighthouse at dusk, waves below #bench #fedisora"
            made.append(await site.clip(author, caption))
        for clip in made[::3]:
            await interactions.like(viewer, clip)
        return str(viewer.username)
    finally:
        await close_db()


def write_floor(url: str, floor_dir: Path) -> str:
    """The floor page, playing the first clip of ``/explore`` (the same ``/media/`` URL)."""
    page = httpx.get(f"{url}/explore", timeout=30)
    page.raise_for_status()
    found = re.search(r'<video[^>]*\ssrc="([^"]+)"', page.text)
    if found is None:
        raise SystemExit("/explore shows no <video>: no clip to measure")
    src = found.group(1).replace("&amp;", "&")
    (floor_dir / "floor.html").write_text(
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>floor</title>\n</head>\n<body>\n"
        f'<video autoplay muted playsinline loop src="{src}"></video>\n'
        "</body>\n</html>\n"
    )
    # The same floor with only the app's stylesheet and script linked as every page links
    # them (no app markup): what a styled page costs the browser before any content of its own.
    (floor_dir / "floor-styled.html").write_text(
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>floor</title>\n"
        '<link rel="stylesheet" href="/static/site.css">\n'
        '<script type="module" src="/static/app.js"></script>\n</head>\n<body>\n'
        f'<video autoplay muted playsinline loop src="{src}"></video>\n'
        "</body>\n</html>\n"
    )
    return src


# --- one page load in Chromium -----------------------------------------------------------------


@dataclass
class Load:
    ttfb: float
    play: float
    page_bytes: int
    clip_bytes: int
    resources: dict[str, int] = field(default_factory=dict)


async def load_once(browser: Any, url: str, storage: dict[str, Any] | None) -> Load:
    """One fresh context (a phone, HTTP cache disabled) loading *url* until a clip plays."""
    context = await browser.new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        device_scale_factor=1,
        storage_state=storage,
    )
    try:
        await context.add_init_script(FIRST_PLAY_SCRIPT)
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        requests: dict[str, str] = {}
        received: list[tuple[str, float, int]] = []  # request id, monotonic s, body bytes
        clock: dict[str, float] = {}

        def sent(event: dict[str, Any]) -> None:
            requests[event["requestId"]] = event["request"]["url"]
            if "offset" not in clock and event.get("type") == "Document":
                clock["offset"] = event["wallTime"] - event["timestamp"]

        def data(event: dict[str, Any]) -> None:
            received.append((event["requestId"], event["timestamp"], event["dataLength"]))

        cdp.on("Network.requestWillBeSent", sent)
        cdp.on("Network.dataReceived", data)
        await cdp.send("Network.enable")
        await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        await page.goto(url, wait_until="commit", timeout=PLAY_TIMEOUT_MS)
        await page.wait_for_function("() => window.__benchPlay", timeout=PLAY_TIMEOUT_MS)
        seen = await page.evaluate(
            """() => ({
                play: window.__benchPlay,
                origin: performance.timeOrigin,
                ttfb: performance.getEntriesByType("navigation")[0].responseStart,
            })"""
        )
        await asyncio.sleep(0.3)  # the CDP events of the bytes before "playing" arrive
        if "offset" not in clock:
            raise RuntimeError(f"no document request seen for {url}")
        played_at = (seen["origin"] + seen["play"]["at"]) / 1000 - clock["offset"]
        clip_src = seen["play"]["src"]
        resources: dict[str, int] = {}
        page_bytes = clip_bytes = 0
        for request_id, at, size in received:
            if at > played_at:
                continue
            where = requests.get(request_id, "?")
            if not where.startswith(("http:", "https:")):
                continue  # data: URLs (the media controls' own icons) are not transfers
            resources[where] = resources.get(where, 0) + size
            if where == clip_src:
                clip_bytes += size
            else:
                page_bytes += size
        return Load(seen["ttfb"], seen["play"]["at"], page_bytes, clip_bytes, resources)
    finally:
        await context.close()


async def login_state(browser: Any, url: str, username: str) -> dict[str, Any]:
    """The cookies of a context logged in through the login form (one scrypt check, once)."""
    from browserhelpers import PASSWORD

    context = await browser.new_context(viewport=PHONE)
    try:
        page = await context.new_page()
        await page.goto(f"{url}/login")
        await page.fill('input[name="login"]', username)
        await page.fill('input[name="password"]', PASSWORD)
        async with page.expect_navigation():
            await page.click('button[type="submit"]:has-text("Log in")')
        if "/login" in page.url:
            raise SystemExit(f"could not log {username} in")
        state: dict[str, Any] = await context.storage_state()
        return state
    finally:
        await context.close()


def write_copies(url: str, floor_dir: Path, cookie: str) -> None:
    """Static copies of the two feed pages as served now (same assets, same clips), in the
    floor's directory: loading one costs what the page costs in the browser, without the
    server's work for it."""
    for name, path, headers in (
        ("explore", "/explore", {}),
        ("home", "/", {"Cookie": cookie}),
    ):
        # A For You page served counts its clips as shown, so the next one differs (the
        # clips not served yet, then, all seen, all of them again): the copy is the page
        # the measured loads get, once two in a row show the same clips.
        shown: list[str] = []
        for _ in range(5):
            page = httpx.get(f"{url}{path}", headers=headers, timeout=30)
            page.raise_for_status()
            clips = re.findall(r'data-clip-id="(\d+)"', page.text)
            if clips == shown:
                break
            shown = clips
        (floor_dir / f"copy-{name}.html").write_text(page.text)
        if name == "explore":
            # The same page with its later clips built at once, as the feed served them
            # before they waited in a <noscript> (web/templates/timeline.html): what that
            # deferral saves, measured in the same rounds.
            start = page.text.index(REST_OPEN)
            end = page.text.index("</noscript>", start)
            built = (
                page.text[:start] + page.text[start + len(REST_OPEN) : end] + page.text[end + 11 :]
            )
            (floor_dir / "copy-explore-built.html").write_text(built)


async def measure(
    url: str, viewer: str, runs: int, floor_dir: Path
) -> tuple[dict[str, list[Load]], str]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            state = await login_state(browser, url, viewer)
            cookie = "; ".join(f"{c['name']}={c['value']}" for c in state["cookies"])
            write_copies(url, floor_dir, cookie)
            pages: dict[str, tuple[str, dict[str, Any] | None]] = {
                "floor": (f"{url}{FLOOR_PAGE}", None),
                "/explore": (f"{url}/explore", None),
                "/ (For You)": (f"{url}/", state),
                COPIES[0]: (f"{url}{FLOOR_MOUNT}/copy-explore.html", None),
                COPIES[1]: (f"{url}{FLOOR_MOUNT}/copy-home.html", None),
                STYLED: (f"{url}{FLOOR_MOUNT}/floor-styled.html", None),
                BUILT: (f"{url}{FLOOR_MOUNT}/copy-explore-built.html", None),
            }
            loads: dict[str, list[Load]] = {name: [] for name in pages}
            for target, storage in pages.values():  # warm-up, not counted
                await load_once(browser, target, storage)
            for n in range(runs):
                for name, (target, storage) in pages.items():
                    loads[name].append(await load_once(browser, target, storage))
                print(f"run {n + 1}/{runs} done", flush=True)
            return loads, cookie
        finally:
            await browser.close()


# --- Lighthouse ---------------------------------------------------------------------------------


def lighthouse_ready() -> str | None:
    """None when the pinned Lighthouse is installed (installing it if needed), else why not."""
    if LIGHTHOUSE_CLI.is_file():
        return None
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return "node or npm is not installed"
    print(f"installing lighthouse@{LIGHTHOUSE_VERSION} into {LIGHTHOUSE_DIR} ...", flush=True)
    LIGHTHOUSE_DIR.mkdir(exist_ok=True)
    try:
        done = subprocess.run(
            [npm, "install", "--prefix", str(LIGHTHOUSE_DIR), f"lighthouse@{LIGHTHOUSE_VERSION}"],
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.TimeoutExpired:
        return "npm install took more than 10 minutes"
    if done.returncode != 0 or not LIGHTHOUSE_CLI.is_file():
        return f"npm install failed: {(done.stderr or done.stdout).strip()[-800:]}"
    return None


def lighthouse(url: str, headers: dict[str, str] | None) -> dict[str, float] | str:
    """Lighthouse's mobile scores (0-100) of *url*, or why there are none."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        argv = [
            "node",
            str(LIGHTHOUSE_CLI),
            url,
            "--output=json",
            f"--output-path={report}",
            "--quiet",
            "--only-categories=performance,accessibility,best-practices",
            f"--chrome-flags={' '.join(CHROMIUM_ARGS)}",
            "--max-wait-for-load=60000",
        ]
        if headers:
            argv.append(f"--extra-headers={json.dumps(headers)}")
        env = {**os.environ, "CHROME_PATH": CHROMIUM, "TMPDIR": tmp}
        try:
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            return "Lighthouse took more than 5 minutes"
        if done.returncode != 0 or not report.is_file():
            return f"Lighthouse failed ({done.returncode}): {done.stderr.strip()[-800:]}"
        result = json.loads(report.read_text())
    scores: dict[str, float] = {}
    for key, category in result["categories"].items():
        if category.get("score") is not None:
            scores[key] = round(category["score"] * 100)
    failing = [
        f"{audit['id']} ({audit['score']})"
        for audit in result["audits"].values()
        if audit.get("score") is not None
        and audit["score"] < 0.9
        and audit.get("scoreDisplayMode") in ("binary", "numeric", "metricSavings")
    ]
    if failing:
        print(f"  audits under 0.9 on {url}: {', '.join(sorted(failing))}")
    return scores


# --- the report ----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(loads: dict[str, list[Load]]) -> None:
    def med(name: str, attr: str) -> float:
        return float(statistics.median(getattr(load, attr) for load in loads[name]))

    runs = len(loads["floor"])
    feeds = [name for name in loads if name not in ("floor", STYLED, BUILT, *COPIES)]
    names = ["floor", *feeds]
    print(f"\nmedians over {runs} runs (fresh context each, cache disabled, phone 412x915)")
    header = f"{'':28}" + "".join(f"{name:>14}" for name in names)
    header += "".join(f"{'ratio ' + name.split()[0]:>16}" for name in feeds) + "  target"
    print(header)
    for label, attr, target in (
        ("time to first byte (ms)", "ttfb", "(info)"),
        ("first clip playing (ms)", "play", f"<= {TARGET_RATIO}x"),
    ):
        floor = med("floor", attr)
        row = f"{label:28}" + "".join(f"{med(name, attr):14.1f}" for name in names)
        ratios = [med(name, attr) / floor for name in feeds]
        row += "".join(f"{ratio:15.2f}x" for ratio in ratios)
        row += f"  {target}"
        if attr == "play":
            row += " " + " ".join(verdict(r <= TARGET_RATIO) for r in ratios)
        print(row)
    for name in feeds:
        paired = sorted(f.play / b.play for f, b in zip(loads[name], loads["floor"], strict=True))
        print(
            f"  first clip playing, {name} / the floor of the same round: median "
            f"{statistics.median(paired):.2f}x (min {paired[0]:.2f}x, max {paired[-1]:.2f}x)"
        )
    print(
        "\nwhere the time goes: each feed page next to its static copy (the same HTML, assets "
        "and clips\nfrom the same server, without the server's work for the page):"
    )
    floor_play = med("floor", "play")
    styled = med(STYLED, "play")
    for name, copy in zip(feeds, COPIES, strict=True):
        live, static = med(name, "play"), med(copy, "play")
        paired = sorted(f.play / c.play for f, c in zip(loads[name], loads[copy], strict=True))
        print(
            f"  {name:12} first clip playing {live:6.1f} ms; its copy {static:6.1f} ms = "
            f"{static / floor_play:.2f}x the floor (the browser's work on the page); "
            f"{name} / its copy {live / static:.2f}x (the server's; same round: median "
            f"{statistics.median(paired):.2f}x) <= {TARGET_RATIO}x "
            f"{verdict(live / static <= TARGET_RATIO)} (the proposed checkable target);"
            f"\n  {'':12} its copy / the floor with the app's CSS and JS (below): "
            f"{static / styled:.2f}x <= {TARGET_RATIO}x {verdict(static / styled <= TARGET_RATIO)}"
            " (the page's own markup, proposed with it)"
        )
    paired = sorted(s.play / b.play for s, b in zip(loads[STYLED], loads["floor"], strict=True))
    print(
        f"  the floor with only site.css and app.js linked (no app markup): {styled:6.1f} ms = "
        f"{styled / floor_play:.2f}x the floor "
        f"(same round: median {statistics.median(paired):.2f}x):"
        "\n  what the app's stylesheet and script alone cost the first play"
    )
    built = med(BUILT, "play")
    paired = sorted(c.play / b.play for c, b in zip(loads[COPIES[0]], loads[BUILT], strict=True))
    print(
        f"  the copy of /explore with all its clips built at once (no <noscript>): "
        f"{built:6.1f} ms = {built / floor_play:.2f}x the floor; the copy as served / it: "
        f"{med(COPIES[0], 'play') / built:.2f}x (same round: median "
        f"{statistics.median(paired):.2f}x): what waiting with the later clips saves"
    )
    print("\nbytes received before the first clip plays (response bodies, median run):")
    for name in names:
        page_kb = med(name, "page_bytes") / 1024
        clip_kb = med(name, "clip_bytes") / 1024
        mark = "" if name == "floor" else f"  {verdict(page_kb < TARGET_PAGE_KB)}"
        print(
            f"  {name:12} page and assets: {page_kb:6.1f} KB "
            f"(target < {TARGET_PAGE_KB:.0f} KB) + clip {clip_kb:.1f} KB{mark}"
        )
    for name in feeds:
        last = loads[name][-1]
        listed = ", ".join(
            f"{re.sub(r'^https?://[^/]+', '', where)} {size / 1024:.1f} KB"
            for where, size in sorted(last.resources.items(), key=lambda kv: -kv[1])
        )
        print(f"  {name} (last run): {listed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="loads per page (default 15)")
    parser.add_argument("--clips", type=int, default=12, help="clips in the instance")
    parser.add_argument("--quick", action="store_true", help="3 runs; Lighthouse on /explore")
    parser.add_argument("--no-lighthouse", action="store_true", help="skip Lighthouse")
    parser.add_argument("--serve-child", metavar="FLOOR_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_child:
        serve_child(args.serve_child, args.port)
        return
    if not os.access(CHROMIUM, os.X_OK):
        raise SystemExit(f"{CHROMIUM} is missing (Debian's chromium package)")
    runs = 3 if args.quick else args.runs
    with tempfile.TemporaryDirectory(prefix="fedisora-bench-web-") as tmp:
        data_dir, floor_dir = Path(tmp) / "data", Path(tmp) / "floor"
        data_dir.mkdir()
        floor_dir.mkdir()
        with server(data_dir, floor_dir) as (url, env):
            viewer = asyncio.run(make_content(url, env, data_dir, args.clips))
            clip = write_floor(url, floor_dir)
            print(f"instance {url}: {args.clips} clips; the floor plays {clip}", flush=True)
            print(
                f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (a busy machine "
                "slows the feed, which has more to parse and lay out, more than the floor)",
                flush=True,
            )
            loads, cookie = asyncio.run(measure(url, viewer, runs, floor_dir))
            report(loads)
            if args.no_lighthouse:
                return
            print(f"\nLighthouse {LIGHTHOUSE_VERSION}, mobile emulation (target >= {TARGET_SCORE})")
            why = lighthouse_ready()
            if why is not None:
                print(f"  no Lighthouse scores: {why}")
                return
            audited: list[tuple[str, str, dict[str, str] | None]] = [
                ("/explore", f"{url}/explore", None)
            ]
            if not args.quick:
                home = httpx.get(f"{url}/", headers={"Cookie": cookie}, timeout=30)
                if 'action="/logout"' in home.text:
                    audited.append(("/ (For You)", f"{url}/", {"Cookie": cookie}))
                else:
                    print("  / (For You): not audited, the session cookie did not log in")
            for name, target, headers in audited:
                scores = lighthouse(target, headers)
                if isinstance(scores, str):
                    print(f"  {name}: no scores: {scores}")
                    continue
                print(
                    f"  {name:12} "
                    + "  ".join(
                        f"{key} {scores.get(key, float('nan')):.0f} "
                        f"{verdict(scores.get(key, 0) >= TARGET_SCORE)}"
                        for key in ("performance", "accessibility", "best-practices")
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main()
