// fedisora in the browser: one plain ES module, no build step, no dependencies.
// Everything here enhances server-rendered pages that work without it (web/feed.py).
//
// Primitives other pages can use:
// - <form data-enhance ...>: posted with fetch (the CSRF token as the X-CSRF-Token header
//   besides the form's own field, and X-Fedisora-Partial: 1); the HTML fragment answered
//   replaces the form, and every other form with the same data-enhance-key. A refusal's
//   fragment shows in #flash; a redirect to /login is followed.
// - partial(url): GET a URL as a fragment (X-Fedisora-Partial: 1); returns a
//   DocumentFragment.
// - flash(textOrFragment, {error}): a message in the page's polite status region.
// - <a data-share href=...>: the Web Share API, else the link is copied.
// - [data-reels]: the vertical feed (FeedPlayer): one IntersectionObserver plays the clip in
//   view (and sees the [data-feed-more] link: infinite scroll); j/k, arrows and
//   PageUp/PageDown move between clips; at most five videos keep a source.
// - [data-stream] / [data-poll]: the feed's "N new" live region, filled from the server-sent
//   events of data-stream (EventSource, "new" events carrying the fragment), or by fetching
//   data-poll every 30 s where EventSource is missing or the stream is refused for good
//   (204 without streaming, 429 over the limit). Only the region changes: the feed stays.
// - [data-badge]: a tab's count (new notifications), fetched from its URL after load and
//   every minute.
// - For You's signals: the FeedPlayer tells a FeedbackRecorder (feedback.js) which clip is
//   in view; it sends impressions, watch time, completions, replays and skips in batches.

import { FeedbackRecorder } from "./feedback.js";

export const PARTIAL_HEADERS = { "X-Fedisora-Partial": "1" };
const SOUND_KEY = "fedisora.sound";
const LIVE_AROUND = 2; // videos keep their source within 2 clips of the current: 5 at most
const POLL_MS = 30000;
const BADGE_MS = 60000;

document.documentElement.classList.add("js");

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") || "" : "";
}

function fragmentOf(html) {
  const template = document.createElement("template");
  template.innerHTML = html.trim();
  return template.content;
}

export async function partial(url) {
  const response = await fetch(url, { headers: PARTIAL_HEADERS, credentials: "same-origin" });
  if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
  return fragmentOf(await response.text());
}

let flashTimer = 0;
export function flash(message, { error = false } = {}) {
  const region = document.getElementById("flash");
  if (!region) return;
  let content = message;
  if (typeof message === "string") {
    const p = document.createElement("p");
    p.textContent = message;
    if (error) p.className = "error";
    content = p;
  }
  region.replaceChildren(content);
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => region.replaceChildren(), 6000);
}

// --- enhanced forms ------------------------------------------------------------------------

export async function submitEnhanced(form) {
  if (form.dataset.pending) return; // a double tap posts once
  form.dataset.pending = "1";
  const buttons = [...form.querySelectorAll("button")];
  buttons.forEach((b) => b.setAttribute("aria-busy", "true"));
  const hadFocus = form.contains(document.activeElement);
  try {
    const response = await fetch(form.action, {
      method: (form.getAttribute("method") || "post").toUpperCase(),
      body: new FormData(form),
      headers: { ...PARTIAL_HEADERS, "X-CSRF-Token": csrfToken() },
      credentials: "same-origin",
    });
    if (response.redirected && new URL(response.url).pathname === "/login") {
      window.location.assign(response.url); // not logged in (or the session ended)
      return;
    }
    const body = fragmentOf(await response.text());
    if (!response.ok) {
      flash(body.childElementCount ? body : `Refused (${response.status}).`, { error: true });
      return;
    }
    const fresh = body.firstElementChild;
    const key = form.dataset.enhanceKey;
    const targets = key
      ? [...document.querySelectorAll(`form[data-enhance-key="${CSS.escape(key)}"]`)]
      : [form];
    for (const target of targets) {
      if (!fresh) {
        target.remove();
        continue;
      }
      const copy = fresh.cloneNode(true);
      target.replaceWith(copy);
      if (target === form && hadFocus) copy.querySelector("button")?.focus();
    }
  } catch (err) {
    flash("The server could not be reached; try again.", { error: true });
  } finally {
    delete form.dataset.pending;
    buttons.forEach((b) => b.removeAttribute("aria-busy"));
  }
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-enhance")) return;
  event.preventDefault();
  submitEnhanced(form);
});

// --- share ---------------------------------------------------------------------------------

document.addEventListener("click", async (event) => {
  const link = event.target instanceof Element ? event.target.closest("a[data-share]") : null;
  if (!link) return;
  event.preventDefault();
  const url = link.href;
  const title = link.dataset.shareTitle || document.title;
  if (navigator.share) {
    try {
      await navigator.share({ title, url });
    } catch (_) {
      /* the person closed the share sheet */
    }
    return;
  }
  try {
    await navigator.clipboard.writeText(url);
    flash("Link copied.");
  } catch (_) {
    window.location.assign(url);
  }
});

// --- sound (remembered) --------------------------------------------------------------------

function soundChosen() {
  try {
    return localStorage.getItem(SOUND_KEY);
  } catch (_) {
    return null;
  }
}

export function soundOn() {
  return soundChosen() === "on";
}

export function setSound(on) {
  try {
    localStorage.setItem(SOUND_KEY, on ? "on" : "off");
  } catch (_) {
    /* private mode: this page only */
  }
  document.querySelectorAll(".reel-video").forEach((v) => (v.muted = !on));
  document
    .querySelectorAll(".action-sound")
    .forEach((b) => b.setAttribute("aria-pressed", on ? "true" : "false"));
}

// --- the vertical feed ---------------------------------------------------------------------

const reducedMotion = () => window.matchMedia("(prefers-reduced-motion: reduce)").matches;

export class FeedPlayer {
  constructor(scroller) {
    this.scroller = scroller;
    this.feed = scroller.querySelector('[role="feed"]');
    this.current = null;
    this.loading = false;
    this.feedback = FeedbackRecorder.forPage(csrfToken()); // logged in only
    this.visible = new IntersectionObserver((entries) => this.onIntersect(entries), {
      root: scroller,
      threshold: 0.6,
    });
    this.articles().forEach((a) => this.adopt(a));
    // The page's other clips wait in a <noscript> (web/templates/timeline.html) until the
    // first one plays or the viewer moves: then they join the feed.
    this.rest = this.feed.querySelector(":scope > noscript[data-reels-rest]");
    if (this.rest) this.revealLater();
    this.watchMore();
    scroller.addEventListener("focusin", (event) => {
      const article = event.target.closest && event.target.closest("article.reel");
      if (article && article !== this.current) this.activate(article);
    });
    const first = this.articles()[0];
    if (first) this.activate(first);
  }

  articles() {
    return [...this.feed.querySelectorAll(":scope > article")];
  }

  revealLater() {
    const reveal = () => this.revealRest();
    const video = this.feed.querySelector(":scope > article .reel-video");
    if (video) video.addEventListener("playing", () => setTimeout(reveal, 0), { once: true });
    setTimeout(reveal, video ? 1500 : 0); // a clip that cannot play (or is behind a warning)
    const opts = { once: true, passive: true, capture: true };
    for (const type of ["keydown", "pointerdown", "touchstart", "wheel"]) {
      window.addEventListener(type, reveal, opts);
    }
    this.scroller.addEventListener("scroll", reveal, { once: true, passive: true });
  }

  // The markup in the <noscript> is the server's own (escaped) HTML, inert text while
  // scripts run: parsed here into the feed's next articles.
  revealRest() {
    const rest = this.rest;
    if (!rest || !rest.isConnected) return;
    this.rest = null;
    const articles = [...fragmentOf(rest.textContent).children].filter((a) =>
      a.matches("article.reel"),
    );
    rest.replaceWith(...articles);
    articles.forEach((a) => this.adopt(a));
    if (this.current) this.recycle();
  }

  adopt(article) {
    const video = article.querySelector(".reel-video");
    const sound = article.querySelector(".action-sound");
    if (sound) {
      sound.hidden = false;
      sound.setAttribute("aria-pressed", soundOn() ? "true" : "false");
      sound.addEventListener("click", () => setSound(!soundOn()));
    }
    if (video) {
      // The page's first clip autoplays before this script runs; from here on the player
      // decides (a fetched page's first clip must not start on its own).
      video.removeAttribute("autoplay");
      video.removeAttribute("controls");
      video.muted = !soundOn();
      video.addEventListener("click", () => this.tap(video));
      const guard = video.closest("details");
      if (guard) {
        guard.addEventListener("toggle", () => {
          if (guard.open) video.setAttribute("controls", "");
          if (article === this.current) this.playCurrent();
        });
      }
    }
    this.visible.observe(article);
  }

  tap(video) {
    if (video.muted && soundChosen() !== "off") {
      // The first tap asks for sound; with sound chosen before, the browser muted this
      // page's autoplay until a gesture: this tap is it.
      setSound(true);
      if (video.paused) video.play().catch(() => {});
      return;
    }
    if (video.paused) video.play().catch(() => {});
    else video.pause();
  }

  onIntersect(entries) {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      if (entry.target.matches("[data-feed-more]")) this.loadMore();
      else if (entry.intersectionRatio >= 0.6) this.activate(entry.target);
    }
  }

  playCurrent() {
    const video = this.current && this.current.querySelector(".reel-video");
    if (!video || video.closest("details:not([open])")) return;
    attach(video);
    video.preload = "auto";
    video.muted = !soundOn();
    video.play().catch(() => {
      if (!video.muted) {
        // Sound needs a gesture on this page first: play muted until the next tap.
        video.muted = true;
        document
          .querySelectorAll(".action-sound")
          .forEach((b) => b.setAttribute("aria-pressed", "false"));
        video.play().catch(() => {});
      }
    });
  }

  activate(article) {
    if (article === this.current) return;
    if (this.feedback) this.feedback.start(article); // before the previous clip is paused
    this.current = article;
    const index = this.recycle();
    this.playCurrent();
    if (!this.rest && this.articles().length - index <= 3) this.loadMore();
  }

  // Pause every clip but the current one; only those within LIVE_AROUND of it keep their
  // video's source (the next one preloads its metadata). Returns the current one's index.
  recycle() {
    const list = this.articles();
    const index = list.indexOf(this.current);
    list.forEach((other, j) => {
      other.toggleAttribute("data-current", j === index);
      const video = other.querySelector(".reel-video");
      if (!video || j === index) return;
      video.pause();
      const distance = Math.abs(j - index);
      if (distance > LIVE_AROUND) detach(video);
      else attach(video);
      video.preload = j === index + 1 ? "metadata" : "none";
    });
    return index;
  }

  move(delta) {
    this.revealRest();
    const list = this.articles();
    if (!list.length) return;
    const from = this.current ? list.indexOf(this.current) : -1;
    const to = Math.max(0, Math.min(list.length - 1, from + delta));
    const target = list[to];
    target.focus({ preventScroll: true });
    target.scrollIntoView({ block: "start", behavior: reducedMotion() ? "auto" : "smooth" });
    this.activate(target);
    if (delta > 0 && to === list.length - 1) this.loadMore();
  }

  // The "Older clips" link is watched by the same observer: in view, the next page loads
  // (it loads earlier too, when the clip in view is three from the end).
  watchMore() {
    const more = this.scroller.querySelector("[data-feed-more]");
    if (more && more.querySelector("a.feed-next")) this.visible.observe(more);
  }

  async loadMore() {
    const more = this.scroller.querySelector("[data-feed-more]");
    const link = more && more.querySelector("a.feed-next");
    if (this.rest) {
      this.revealRest(); // this page's own clips first
      return;
    }
    if (this.loading || !link) return;
    this.loading = true;
    this.feed.setAttribute("aria-busy", "true");
    try {
      const page = await partial(link.href);
      const known = new Set(this.articles().map((a) => a.dataset.clipId));
      const added = [...page.querySelectorAll("article.reel")].filter(
        (a) => !known.has(a.dataset.clipId),
      );
      for (const article of added) {
        this.feed.append(article);
        this.adopt(article);
      }
      const next = page.querySelector("[data-feed-more]");
      this.visible.unobserve(more);
      if (next) more.replaceWith(next);
      else more.remove();
      this.number();
      if (this.current) this.recycle();
      this.watchMore();
    } catch (err) {
      flash("More clips could not be loaded; use the Older clips link.", { error: true });
    } finally {
      this.feed.setAttribute("aria-busy", "false");
      this.loading = false;
    }
  }

  number() {
    const list = this.articles();
    const ended = !this.scroller.querySelector("[data-feed-more] a.feed-next");
    list.forEach((a, i) => {
      a.setAttribute("aria-posinset", String(i + 1));
      a.setAttribute("aria-setsize", ended ? String(list.length) : "-1");
    });
  }
}

function detach(video) {
  const src = video.getAttribute("src");
  if (!src) return;
  video.dataset.src = src;
  video.removeAttribute("src");
  video.load(); // frees the decoder and the buffered media
}

function attach(video) {
  if (!video.getAttribute("src") && video.dataset.src) video.setAttribute("src", video.dataset.src);
}

function typing(target) {
  return (
    target instanceof Element &&
    (target.closest("input, textarea, select, [contenteditable]") !== null)
  );
}

const NEXT_KEYS = new Set(["j", "ArrowDown", "PageDown"]);
const PREVIOUS_KEYS = new Set(["k", "ArrowUp", "PageUp"]);

function startFeed() {
  const scroller = document.querySelector("[data-reels]");
  if (!scroller) return null;
  const player = new FeedPlayer(scroller);
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) return;
    const delta = NEXT_KEYS.has(event.key) ? 1 : PREVIOUS_KEYS.has(event.key) ? -1 : 0;
    if (!delta) return;
    event.preventDefault();
    player.move(delta);
  });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) document.querySelectorAll(".reel-video").forEach((v) => v.pause());
    else player.playCurrent();
  });
  return player;
}

// Tab badges ([data-badge]: the Notifications tab's count of new ones), filled after load
// and every minute the page is visible; a failed fetch leaves the badge as it was.
function startBadges() {
  const badges = [...document.querySelectorAll("[data-badge]")];
  if (!badges.length) return;
  const refresh = async () => {
    if (document.hidden) return;
    for (const badge of badges) {
      try {
        badge.replaceChildren(await partial(badge.dataset.badge));
      } catch (_) {
        /* offline for now: the next refresh tries again */
      }
    }
  };
  const start = () => {
    refresh();
    setInterval(refresh, BADGE_MS);
  };
  // After the first clip has had its chance to start: the count is never urgent.
  if (document.readyState === "complete") setTimeout(start, 500);
  else window.addEventListener("load", () => setTimeout(start, 500), { once: true });
}

function startNewClips() {
  const region = document.querySelector("[data-poll]");
  if (!region) return;
  const show = (fresh) => {
    if (fresh.textContent.trim() !== region.textContent.trim()) region.replaceChildren(fresh);
  };
  const url = region.dataset.stream;
  if (!url || typeof EventSource === "undefined") {
    startPolling(region, show);
    return;
  }
  const source = new EventSource(url);
  source.addEventListener("new", (event) => show(fragmentOf(event.data)));
  source.addEventListener("error", () => {
    // A dropped connection (or the stream's end after a while) is reopened by the browser;
    // a refused one is CLOSED for good: poll instead.
    if (source.readyState === EventSource.CLOSED) startPolling(region, show);
  });
}

function startPolling(region, show) {
  const url = region.dataset.poll;
  if (!url || region.dataset.polling) return;
  region.dataset.polling = "1";
  setInterval(async () => {
    if (document.hidden) return;
    try {
      show(await partial(url));
    } catch (_) {
      /* offline for now: the next poll tries again */
    }
  }, POLL_MS);
}

// What can wait (the "N new" stream: a request the server answers for as long as the page
// is open) starts once the page's first clip plays, so that it does not compete with the
// clip's own requests (bench/web.py); at once where no clip is starting.
function afterFirstPlay(video, run) {
  if (!video || !video.paused || video.error) {
    run();
    return;
  }
  let done = false;
  const go = () => {
    if (done) return;
    done = true;
    run();
  };
  video.addEventListener("playing", go, { once: true });
  video.addEventListener("error", go, { once: true });
  setTimeout(go, 3000);
}

const firstClip = document.querySelector("[data-reels] .reel-video[autoplay]");
export const feedPlayer = startFeed();
afterFirstPlay(firstClip, startNewClips);
startBadges();
