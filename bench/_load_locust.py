"""The users of ``bench/load.py``, for locust (run by it: ``locust -f bench/_load_locust.py
--headless ...`` with ``FEDISORA_LOAD_CONFIG`` naming the JSON file it wrote).

* :class:`Visitor` (most users): reads the public and home timelines, clip pages (the web
  page) and statuses (the API), and now and then likes, comments on a clip or follows (or
  unfollows) an account, as a signed-in client with its own token.
* :class:`Peer`: a remote server's actors sending signed activities to the inbox (new clips
  and likes of local clips), as the loopback peer ``bench/load.py`` serves (their keys).
* :class:`Listener`: holds the public stream (server-sent events) open, ``LISTEN`` seconds
  at a time, counting the clips it receives.

Each user talks to one web process (user *n* to ``webs[n % len(webs)]``), with the
instance's ``Host`` (as a load balancer in front would pass it on). Requests are named by
route class, which is what the report groups by.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from locust import HttpUser, between, constant, events, task

from activitypub.signatures import Request as SignedRequest
from activitypub.signatures import sign_request

CONFIG: dict[str, Any] = json.loads(Path(os.environ["FEDISORA_LOAD_CONFIG"]).read_text())
WEBS: list[str] = CONFIG["webs"]
DOMAIN: str = CONFIG["domain"]
LISTEN = float(CONFIG.get("listen_seconds", 20))
AS = "https://www.w3.org/ns/activitystreams"
PUBLIC = f"{AS}#Public"
_users = itertools.count()
_ids = itertools.count(1)
_RUN = f"{os.getpid()}-{int(time.time())}"
STREAMED = {"events": 0, "streams": 0}


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _write_counts(environment: Any, **_: Any) -> None:
    out = os.environ.get("FEDISORA_LOAD_COUNTS")
    if out:
        Path(out).write_text(json.dumps(STREAMED))


class _Base(HttpUser):
    abstract = True
    host = WEBS[0]
    wait_time = constant(0)

    def on_start(self) -> None:
        n = next(_users)
        self.n = n
        self.client.base_url = WEBS[n % len(WEBS)]
        self.client.headers["Host"] = DOMAIN
        self.rng = random.Random(n)


class Visitor(_Base):
    weight = 8

    def on_start(self) -> None:
        super().on_start()
        account = CONFIG["users"][self.n % len(CONFIG["users"])]
        self.me = str(account["id"])
        self.client.headers["Authorization"] = f"Bearer {self.rng.choice(account['tokens'])}"

    def _clip(self) -> dict[str, Any]:
        clips: list[dict[str, Any]] = CONFIG["clips"]
        return self.rng.choice(clips)

    @task(30)
    def public_timeline(self) -> None:
        self.client.get("/api/v1/timelines/public?limit=20", name="timeline")

    @task(10)
    def home_timeline(self) -> None:
        self.client.get("/api/v1/timelines/home?limit=20", name="timeline")

    @task(20)
    def clip_page(self) -> None:
        self.client.get(self._clip()["path"], name="clip page", headers={"Authorization": ""})

    @task(10)
    def status(self) -> None:
        self.client.get(f"/api/v1/statuses/{self._clip()['id']}", name="clip page")

    @task(8)
    def like(self) -> None:
        clip = self._clip()["id"]
        verb = "favourite" if self.rng.random() < 0.8 else "unfavourite"
        self.client.post(f"/api/v1/statuses/{clip}/{verb}", name="like")

    @task(4)
    def comment(self) -> None:
        clip = self._clip()["id"]
        self.client.post(
            "/api/v1/statuses",
            data={"status": f"load comment {next(_ids)}", "in_reply_to_id": clip},
            name="comment",
        )

    @task(2)
    def follow(self) -> None:
        others = [str(a) for a in CONFIG["accounts"] if str(a) != self.me]
        target = self.rng.choice(others)
        verb = "follow" if self.rng.random() < 0.7 else "unfollow"
        self.client.post(f"/api/v1/accounts/{target}/{verb}", name="follow")


class Peer(_Base):
    """A remote server sends a few activities a second per actor, not as fast as it can."""

    weight = 1
    wait_time = between(0.2, 0.6)

    def on_start(self) -> None:
        super().on_start()
        actors = CONFIG["peer"]["actors"]
        self.actor = actors[self.n % len(actors)]
        key = serialization.load_pem_private_key(self.actor["pem"].encode(), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        self.key = key

    def _send(self, activity: dict[str, Any]) -> None:
        body = json.dumps(activity).encode()
        url = f"http://{DOMAIN}/inbox"
        headers = {"content-type": "application/activity+json", "host": DOMAIN}
        headers.update(
            sign_request(
                SignedRequest("POST", url, headers, body),
                f"{self.actor['uri']}#main-key",
                self.key,
                now=time.time(),
            )
        )
        self.client.post("/inbox", data=body, headers=headers, name="inbox")

    @task(2)
    def clip(self) -> None:
        uri, base = self.actor["uri"], CONFIG["peer"]["base"]
        n = f"{_RUN}-{next(_ids)}"
        note = {
            "id": f"{uri}/statuses/load-{n}",
            "type": "Note",
            "attributedTo": uri,
            "published": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "url": f"{base}/@{self.actor['name']}/load-{n}",
            "to": [PUBLIC],
            "cc": [f"{uri}/followers"],
            "sensitive": False,
            "summary": None,
            "inReplyTo": None,
            "content": f"<p>a peer clip {n}</p>",
            "attachment": [
                {
                    "type": "Document",
                    "mediaType": "video/mp4",
                    "url": f"{base}/media/load-{n}.mp4",
                    "width": 64,
                    "height": 112,
                }
            ],
        }
        self._send(
            {
                "@context": AS,
                "id": f"{note['id']}/activity",
                "type": "Create",
                "actor": uri,
                "published": note["published"],
                "to": note["to"],
                "cc": note["cc"],
                "object": note,
            }
        )

    @task(3)
    def like(self) -> None:
        clip = random.choice(CONFIG["clips"])["uri"]
        n = f"{_RUN}-{next(_ids)}"
        uri = self.actor["uri"]
        self._send(
            {
                "@context": AS,
                "id": f"{uri}#likes/load-{n}",
                "type": "Like",
                "actor": uri,
                "object": clip,
            }
        )


class Listener(_Base):
    fixed_count = int(CONFIG.get("listeners", 4))

    @task
    def listen(self) -> None:
        """The public stream for LISTEN seconds; the time to its headers is what is timed."""
        STREAMED["streams"] += 1
        until = time.monotonic() + LISTEN
        try:
            with self.client.get(
                "/api/v1/streaming/public",
                name="stream (open)",
                stream=True,
                timeout=(10, 5),
                catch_response=True,
            ) as r:
                if r.status_code != 200:
                    r.failure(f"status {r.status_code}")
                    return
                r.success()
                for line in r.iter_lines():
                    if line.startswith(b"event: update"):
                        STREAMED["events"] += 1
                    if time.monotonic() > until:
                        break
        except Exception:  # a read timeout with nothing to say (no clip in 5 s): listen again
            pass
