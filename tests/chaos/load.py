"""The mixed load the faults land in, and the ledger of what it was told succeeded.

A few clients run side by side until stopped, each drawing its next operation from its own
seeded random stream: post a clip (a finished video, with an ``Idempotency-Key``), comment,
like, follow, render, publish a finished render, upload a still, and, as the remote peer,
send a clip, a reply or a like to fedisora's inbox. Every write the server acknowledged
(an HTTP 2xx, a 202 from the inbox) goes into the :class:`Ledger`, which the invariants
check afterwards. Like real clients, they retry a request that got no answer or a 5xx a few
times (with the same ``Idempotency-Key``); what never got a 2xx is not in the ledger.

The operations a client chooses are fixed by the seed; which of them the server
acknowledges, and when, depends on how the faults land.
"""

from __future__ import annotations

import asyncio
import io
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from peer import ChaosPeer
from rig import ChaosRig, LoadUser

RENDERS = "/api/fedisora/v1/renders"
RETRIES = 4
STILL: bytes | None = None


def still_png() -> bytes:
    """A small PNG input still (made once)."""
    global STILL
    if STILL is None:
        import numpy as np
        from PIL import Image

        x = np.linspace(0, 255, 96, dtype=np.uint8)
        pixels = np.stack(np.broadcast_arrays(x[None, :], x[::-1, None], x[None, :] // 2), -1)
        out = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(pixels), "RGB").save(out, format="PNG")
        STILL = out.getvalue()
    return STILL


async def submit_render(rig: ChaosRig, ledger: Ledger, prompt: str) -> str:
    """Ask for a render as the first load user (outside the load's own); its job id."""
    user = rig.users[0]
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.post(
            f"{rig.url}{RENDERS}", headers=user.headers(), json={"prompt": prompt, "seconds": 0.5}
        )
    assert r.status_code == 202, r.text
    job = str(r.json()["id"])
    ledger.renders.add(job)
    return job


@dataclass(frozen=True)
class Inbound:
    """An activity the peer sent and fedisora acknowledged (202)."""

    type: str  # Like, Create (clip), Reply (a Create of a comment), Follow
    object: str  # the liked/followed URI, or the new note's id
    actor: str = ""


@dataclass
class Ledger:
    """Acknowledged writes (ids as the API gives them, strings) and what was seen."""

    posts: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> status id
    comments: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> status id
    likes: set[tuple[str, str]] = field(default_factory=set)  # (account id, status id)
    follows: set[tuple[str, str]] = field(default_factory=set)  # (account id, account id)
    renders: set[str] = field(default_factory=set)  # render job ids
    published: dict[str, str] = field(default_factory=dict)  # render job id -> status id
    uploads: set[str] = field(default_factory=set)  # media ids
    inbound: dict[str, Inbound] = field(default_factory=dict)  # activity id -> what
    peer_follows: set[tuple[str, str]] = field(default_factory=set)  # (actor, account id) sent
    outcomes: Counter[str] = field(default_factory=Counter)  # "op status" -> count
    # What clients may act on: statuses (id, uri), local and the peer's, and accounts.
    clips: list[tuple[str, str]] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)

    def server_errors(self) -> int:
        return sum(n for k, n in self.outcomes.items() if k.split()[-1].startswith("5"))


class Load:
    """Clients running operations against *rig* until :meth:`stop`."""

    def __init__(
        self,
        rig: ChaosRig,
        ledger: Ledger,
        seed: str,
        *,
        clients: int = 4,
        peer_sends: bool = True,
        renders: int = 3,
        uploads: bool = False,
        webs: list[str] | None = None,
    ) -> None:
        self.rig = rig
        self.ledger = ledger
        self.seed = seed
        self.clients = clients
        self.peer_sends = peer_sends
        self.render_budget = renders
        self.uploads = uploads
        self.webs = webs or ["web"]  # requests go to these web processes in turn
        self.served: Counter[str] = Counter()  # web process -> requests sent to it
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=3.0))
        self._n = 0

    async def __aenter__(self) -> Load:
        self._tasks = [
            asyncio.create_task(self._client(i), name=f"chaos-load-{i}")
            for i in range(self.clients)
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        self._stop.set()
        if self._tasks:
            results = await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []
            await self._http.aclose()
            for result in results:
                if isinstance(result, BaseException):
                    raise result

    # --- the clients ------------------------------------------------------------------------

    def _base(self) -> str:
        """The next web process's base URL (round robin, as a load balancer would)."""
        web = self.webs[sum(self.served.values()) % len(self.webs)]
        self.served[web] += 1
        return self.rig.url_of(web)

    def _key(self, client: int) -> str:
        self._n += 1
        return f"{self.seed}-{client}-{self._n}"

    async def _client(self, index: int) -> None:
        rng = random.Random(f"{self.seed}:{index}")
        ops = [
            (self._post, 5),
            (self._comment, 3),
            (self._like, 4),
            (self._follow, 1),
            (self._render, 1),
            (self._publish, 1),
        ]
        if self.uploads:
            ops.append((self._upload, 3))
        if self.peer_sends:
            ops.append((self._peer_send, 4))
        funcs, weights = zip(*ops, strict=True)
        while not self._stop.is_set():
            op = rng.choices(funcs, weights)[0]
            user = self.rig.users[rng.randrange(len(self.rig.users))]
            await op(rng, user, index)
            try:
                await asyncio.wait_for(self._stop.wait(), rng.uniform(0.02, 0.12))
            except TimeoutError:
                pass

    async def _call(
        self, name: str, user: LoadUser, method: str, path: str, **kwargs: Any
    ) -> httpx.Response | None:
        """The request, retried after no answer or a 5xx; None if it never got an answer."""
        response: httpx.Response | None = None
        extra = kwargs.pop("headers_extra", {})
        for attempt in range(RETRIES):
            url = f"{self._base()}{path}"
            try:
                headers = {**user.headers(), **extra}
                response = await self._http.request(method, url, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                self.ledger.outcomes[f"{name} {type(exc).__name__}"] += 1
                response = None
            else:
                self.ledger.outcomes[f"{name} {response.status_code}"] += 1
                if response.status_code < 500:
                    return response
            if self._stop.is_set() and attempt >= 1:
                break
            await asyncio.sleep(0.3 * (attempt + 1))
        return response

    @staticmethod
    def _ok(response: httpx.Response | None) -> bool:
        return response is not None and 200 <= response.status_code < 300

    async def _post(self, rng: random.Random, user: LoadUser, client: int) -> None:
        if not user.media:
            return
        media = user.media.pop()
        key = self._key(client)
        r = await self._call(
            "post",
            user,
            "POST",
            "/api/v1/statuses",
            data={"status": f"chaos post [{key}]", "media_ids[]": str(media)},
            headers_extra={"Idempotency-Key": key},
        )
        if self._ok(r):
            assert r is not None
            body = r.json()
            self.ledger.posts[key] = body["id"]
            self.ledger.clips.append((body["id"], body["uri"]))

    async def _comment(self, rng: random.Random, user: LoadUser, client: int) -> None:
        if not self.ledger.clips:
            return
        status_id, _ = rng.choice(self.ledger.clips)
        key = self._key(client)
        r = await self._call(
            "comment",
            user,
            "POST",
            "/api/v1/statuses",
            data={"status": f"chaos comment [{key}]", "in_reply_to_id": status_id},
            headers_extra={"Idempotency-Key": key},
        )
        if self._ok(r):
            assert r is not None
            self.ledger.comments[key] = r.json()["id"]

    async def _like(self, rng: random.Random, user: LoadUser, client: int) -> None:
        if not self.ledger.clips:
            return
        status_id, _ = rng.choice(self.ledger.clips)
        r = await self._call("like", user, "POST", f"/api/v1/statuses/{status_id}/favourite")
        if self._ok(r):
            self.ledger.likes.add((user.id, status_id))

    async def _follow(self, rng: random.Random, user: LoadUser, client: int) -> None:
        targets = [a for a in self.ledger.accounts if a != user.id]
        if not targets:
            return
        target = rng.choice(targets)
        r = await self._call("follow", user, "POST", f"/api/v1/accounts/{target}/follow")
        if self._ok(r):
            self.ledger.follows.add((user.id, target))

    async def _render(self, rng: random.Random, user: LoadUser, client: int) -> None:
        if self.render_budget <= 0:
            return
        self.render_budget -= 1
        # Not retried: a render has no idempotency key, and a retry after a lost answer
        # would be a second render (the client decides, as apps do).
        try:
            r = await self._http.post(
                f"{self._base()}{RENDERS}",
                headers=user.headers(),
                json={"prompt": f"chaos {rng.randrange(10**6)}", "seconds": 0.5},
            )
        except httpx.TransportError as exc:
            self.ledger.outcomes[f"render {type(exc).__name__}"] += 1
            return
        self.ledger.outcomes[f"render {r.status_code}"] += 1
        if self._ok(r):
            self.ledger.renders.add(str(r.json()["id"]))

    async def _publish(self, rng: random.Random, user: LoadUser, client: int) -> None:
        r = await self._call("renders", user, "GET", RENDERS, params={"limit": "40"})
        if not self._ok(r):
            return
        assert r is not None
        ready = [
            j
            for j in r.json()
            if j["state"] == "ready"
            and j.get("media_attachment")
            and str(j["id"]) not in self.ledger.published
        ]
        if not ready:
            return
        job = rng.choice(ready)
        key = self._key(client)
        r = await self._call(
            "publish",
            user,
            "POST",
            "/api/v1/statuses",
            data={"status": f"chaos post [{key}]", "media_ids[]": job["media_attachment"]["id"]},
            headers_extra={"Idempotency-Key": key},
        )
        if self._ok(r):
            assert r is not None
            body = r.json()
            self.ledger.posts[key] = body["id"]
            self.ledger.published[str(job["id"])] = body["id"]
            self.ledger.clips.append((body["id"], body["uri"]))

    async def _upload(self, rng: random.Random, user: LoadUser, client: int) -> None:
        r = await self._call(
            "upload",
            user,
            "POST",
            "/api/v2/media",
            files={"file": ("still.png", still_png(), "image/png")},
        )
        if self._ok(r):
            assert r is not None
            self.ledger.uploads.add(str(r.json()["id"]))

    async def _peer_send(self, rng: random.Random, user: LoadUser, client: int) -> None:
        peer: ChaosPeer = self.rig.peer
        if not peer.is_up:
            return  # a peer that is down sends nothing either
        actor = peer.actors[rng.choice(sorted(peer.actors))]
        local = [(sid, uri) for sid, uri in self.ledger.clips if uri.startswith(self.rig.url)]
        kind = rng.choice(["clip", "like", "reply", "follow"] if local else ["clip", "follow"])
        if kind == "follow":  # a late actor follows a local user it does not follow yet
            pairs = [
                (peer.actors[name], user)
                for name in peer.late_names
                for user in self.rig.users
                if (name, user.id) not in self.ledger.peer_follows
            ]
            if not pairs:
                return
            actor, target = rng.choice(pairs)
            self.ledger.peer_follows.add((actor.name, target.id))
            activity = peer.follow(actor, target.uri)
            what = Inbound("Follow", target.uri, actor.uri)
        elif kind == "clip":
            activity = peer.clip(actor, f"a peer clip {rng.randrange(10**6)}")
            what = Inbound("Create", activity["object"]["id"])
        elif kind == "like":
            _, uri = rng.choice(local)
            activity = peer.like(actor, uri)
            what = Inbound("Like", uri, actor.uri)
        else:
            _, uri = rng.choice(local)
            activity = peer.reply(actor, uri, f"a peer reply {rng.randrange(10**6)}")
            what = Inbound("Reply", activity["object"]["id"])
        for attempt in range(RETRIES):
            try:
                via = self._base()
                status = await peer.send(self._http, self.rig.url, actor, activity, via=via)
            except httpx.TransportError as exc:
                self.ledger.outcomes[f"inbox {type(exc).__name__}"] += 1
            else:
                self.ledger.outcomes[f"inbox {status}"] += 1
                if status == 202:
                    self.ledger.inbound[activity["id"]] = what
                if status < 500:
                    return
            if self._stop.is_set():
                return
            await asyncio.sleep(0.3 * (attempt + 1))
