// For You's signals from the feed player, sent in batches to POST /feedback (web/for_you.py,
// the same service as the API's POST /api/fedisora/v1/feedback). Logged-in pages only (the
// page's CSRF token authenticates the batch with the session cookie).
//
// Per clip that becomes the current one: an "impression"; while it is current, the media
// time it played ("watch", in ms, loops included), "complete" once it played to its end (a
// loop wrapped around, or it was left within 0.3 s of its end), a "replay" per further loop,
// and a "skip" when it was left within 2 s without finishing. Events are queued and sent
// every 15 s, at 20 queued, and when the page is hidden or left (fetch with keepalive, so
// the request outlives the page; the token travels in the body too, as a beacon's would).

const ENDPOINT = "/feedback";
const FLUSH_MS = 15000;
const BATCH = 20;
const MAX_EVENTS = 100; // the server's limit per batch
const SKIP_MS = 2000;
const END_SLACK = 0.3; // seconds before the end that count as the end
const MAX_REPLAYS = 5;
const MAX_WATCH_MS = 3600000;

export class FeedbackRecorder {
  static forPage(token) {
    return token ? new FeedbackRecorder(token) : null;
  }

  constructor(token) {
    this.token = token;
    this.queue = [];
    this.view = null;
    this.paused = null; // the article whose view the hidden page ended
    setInterval(() => this.flush(), FLUSH_MS);
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) this.leave();
      else if (this.paused) this.start(this.paused, { resumed: true });
    });
    window.addEventListener("pagehide", () => this.leave());
  }

  // *article* is the clip in view now: the previous one's view ends.
  start(article, { resumed = false } = {}) {
    if (this.view && this.view.article === article) return;
    this.finish();
    this.paused = null;
    const id = article && article.dataset.clipId;
    if (!id) return;
    if (!resumed) this.push({ clip_id: id, type: "impression" });
    const video = article.querySelector(".reel-video");
    const view = { article, id, video, resumed, since: performance.now(), watched: 0, loops: 0 };
    view.last = video ? video.currentTime : 0;
    if (video) {
      view.onTime = () => this.tick(view);
      video.addEventListener("timeupdate", view.onTime);
    }
    this.view = view;
  }

  tick(view) {
    const video = view.video;
    if (!video || !video.getAttribute("src")) return; // detached: its time means nothing
    const now = video.currentTime;
    if (now >= view.last) {
      view.watched += now - view.last;
    } else {
      const end = video.duration || view.last;
      view.watched += Math.max(0, end - view.last) + now;
      view.loops += 1;
    }
    view.last = now;
  }

  finish() {
    const view = this.view;
    if (!view) return;
    this.view = null;
    if (view.video) {
      this.tick(view);
      view.video.removeEventListener("timeupdate", view.onTime);
    }
    const duration = view.video ? view.video.duration : NaN;
    const atEnd = Number.isFinite(duration) && view.last >= duration - END_SLACK;
    const completed = view.loops > 0 || atEnd;
    const ms = Math.min(MAX_WATCH_MS, Math.round(view.watched * 1000));
    if (ms > 0) this.push({ clip_id: view.id, type: "watch", watch_ms: ms });
    if (completed) this.push({ clip_id: view.id, type: "complete" });
    for (let i = 1; i < Math.min(view.loops, MAX_REPLAYS + 1); i++) {
      this.push({ clip_id: view.id, type: "replay" });
    }
    if (!view.resumed && !completed && performance.now() - view.since < SKIP_MS) {
      this.push({ clip_id: view.id, type: "skip" });
    }
  }

  // The page is hidden or left: end the view, send what is queued now.
  leave() {
    if (this.view) this.paused = this.view.article;
    this.finish();
    this.flush();
  }

  push(event) {
    this.queue.push(event);
    if (this.queue.length >= BATCH) this.flush();
  }

  flush() {
    while (this.queue.length) {
      const events = this.queue.splice(0, MAX_EVENTS);
      fetch(ENDPOINT, {
        method: "POST",
        body: JSON.stringify({ csrf: this.token, events }),
        headers: { "Content-Type": "application/json", "X-CSRF-Token": this.token },
        credentials: "same-origin",
        keepalive: true,
      }).catch(() => {
        /* offline: these reports are lost, which only makes For You learn a little less */
      });
    }
  }
}
