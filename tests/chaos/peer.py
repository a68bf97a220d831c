"""A scripted remote instance on 127.0.0.1 for the chaos suite: it serves its actors, records
every activity delivered to it, sends signed activities to fedisora, and can go down (its
port then refuses connections) and come back on the same port.

It answers as Mastodon does where fedisora looks (actor documents, WebFinger, the notes it
sent); its activities are written out here by hand in Mastodon's shapes, not built by the
code under test. Media URLs answer 404, so fedisora labels its clips ``unverified`` at
once. It runs its HTTP server (uvicorn) in a thread of its own, so that the test's event
loop blocking for a moment never makes it miss a delivery.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from throwaway import free_port

from activitypub import keys
from activitypub.signatures import Request as SignedRequest
from activitypub.signatures import sign_request

AS = "https://www.w3.org/ns/activitystreams"
PUBLIC = f"{AS}#Public"
ACTIVITY_JSON = "application/activity+json"


def id_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


@dataclass(frozen=True)
class Received:
    """One POST to one of the peer's inboxes."""

    activity_id: str
    type: str
    object_id: str | None  # the object's id (the inner activity's, for Accept and Undo)
    actor: str
    at: float  # time.monotonic() in the test process


@dataclass
class Actor:
    name: str
    uri: str
    key: Any  # an RSA private key

    @property
    def key_id(self) -> str:
        return f"{self.uri}#main-key"


@dataclass
class ChaosPeer:
    """The remote instance. :meth:`up` and :meth:`down` start and stop its server."""

    names: tuple[str, ...] = ("peer0", "peer1", "peer2")  # follow every local user at once
    late_names: tuple[str, ...] = tuple(f"late{n}" for n in range(6))  # follow under load
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    actors: dict[str, Actor] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        for name in (*self.names, *self.late_names):
            self.actors[name] = Actor(name, f"{self.base}/users/{name}", keys.generate_rsa_key())

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        return f"http://{self.domain}"

    @property
    def is_up(self) -> bool:
        return self._server is not None

    # --- serving ----------------------------------------------------------------------------

    def up(self) -> None:
        assert self._server is None, "the peer is up already"
        config = uvicorn.Config(
            self._app(),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=1,
            ws="none",
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="chaos-peer", daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the chaos peer did not start on port {self.port}")
            time.sleep(0.02)
        self._server, self._thread = server, thread

    def down(self) -> None:
        """Stop answering: the port refuses connections until :meth:`up`."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(20)

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/users/{name}", self._actor),
                Route("/users/{name}/statuses/{n}", self._note),
                Route("/inbox", self._inbox, methods=["POST"]),
                Route("/users/{name}/inbox", self._inbox, methods=["POST"]),
                Route("/.well-known/webfinger", self._webfinger),
            ]
        )

    def actor_document(self, actor: Actor) -> dict[str, Any]:
        return {
            "@context": [AS, "https://w3id.org/security/v1"],
            "id": actor.uri,
            "type": "Person",
            "preferredUsername": actor.name,
            "name": f"Chaos {actor.name}",
            "inbox": f"{actor.uri}/inbox",
            "outbox": f"{actor.uri}/outbox",
            "followers": f"{actor.uri}/followers",
            "following": f"{actor.uri}/following",
            "endpoints": {"sharedInbox": f"{self.base}/inbox"},
            "publicKey": {
                "id": actor.key_id,
                "owner": actor.uri,
                "publicKeyPem": keys.public_key_to_pem(actor.key.public_key()),
            },
        }

    async def _actor(self, request: Request) -> Response:
        actor = self.actors.get(request.path_params["name"])
        if actor is None:
            return JSONResponse({"error": "not found"}, 404)
        return _activity_json(self.actor_document(actor))

    async def _note(self, request: Request) -> Response:
        note = self.notes.get(f"{self.base}{request.url.path}")
        if note is None:
            return JSONResponse({"error": "not found"}, 404)
        return _activity_json(note)

    async def _webfinger(self, request: Request) -> Response:
        resource = request.query_params.get("resource", "")
        name = resource.removeprefix("acct:").split("@", 1)[0]
        actor = self.actors.get(name)
        if actor is None or resource != f"acct:{name}@{self.domain}":
            return JSONResponse({"error": "not found"}, 404)
        return JSONResponse(
            {
                "subject": resource,
                "links": [{"rel": "self", "type": ACTIVITY_JSON, "href": actor.uri}],
            },
            media_type="application/jrd+json",
        )

    async def _inbox(self, request: Request) -> Response:
        at = time.monotonic()
        try:
            activity = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error": "not JSON"}, 400)
        inner = activity.get("object")
        object_id = id_of(inner)
        with self._lock:
            self.received.append(
                Received(
                    activity_id=str(activity.get("id")),
                    type=str(activity.get("type")),
                    object_id=object_id,
                    actor=str(id_of(activity.get("actor"))),
                    at=at,
                )
            )
        return Response(status_code=202)

    # --- what it received -------------------------------------------------------------------

    def receipts(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def by_activity_id(self) -> dict[str, list[Received]]:
        found: dict[str, list[Received]] = defaultdict(list)
        for r in self.receipts():
            found[r.activity_id].append(r)
        return found

    # --- sending ----------------------------------------------------------------------------

    def _next(self) -> int:
        return next(self._ids)

    def follow(self, actor: Actor, target_uri: str) -> dict[str, Any]:
        return {
            "@context": AS,
            "id": f"{self.base}/{actor.name}/follows/{self._next()}",
            "type": "Follow",
            "actor": actor.uri,
            "object": target_uri,
        }

    def like(self, actor: Actor, object_uri: str) -> dict[str, Any]:
        return {
            "@context": AS,
            "id": f"{actor.uri}#likes/{self._next()}",
            "type": "Like",
            "actor": actor.uri,
            "object": object_uri,
        }

    def _create(self, actor: Actor, note: dict[str, Any]) -> dict[str, Any]:
        self.notes[note["id"]] = {"@context": AS, **note}
        return {
            "@context": AS,
            "id": f"{note['id']}/activity",
            "type": "Create",
            "actor": actor.uri,
            "published": note["published"],
            "to": note["to"],
            "cc": note["cc"],
            "object": note,
        }

    def _note_base(self, actor: Actor, text: str) -> dict[str, Any]:
        n = self._next()
        note_id = f"{actor.uri}/statuses/{n}"
        return {
            "id": note_id,
            "type": "Note",
            "attributedTo": actor.uri,
            "published": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "url": f"{self.base}/@{actor.name}/{n}",
            "to": [PUBLIC],
            "cc": [f"{actor.uri}/followers"],
            "sensitive": False,
            "summary": None,
            "inReplyTo": None,
            "content": f"<p>{text}</p>",
        }

    def clip(self, actor: Actor, text: str) -> dict[str, Any]:
        """A Create(Note) with one video, as Mastodon federates a video post."""
        note = self._note_base(actor, text)
        note["attachment"] = [
            {
                "type": "Document",
                "mediaType": "video/mp4",
                "url": f"{self.base}/media/{note['id'].rsplit('/', 1)[1]}.mp4",
                "name": text,
                "width": 64,
                "height": 112,
            }
        ]
        return self._create(actor, note)

    def reply(self, actor: Actor, in_reply_to: str, text: str) -> dict[str, Any]:
        """A Create(Note) replying to *in_reply_to* (a comment, for fedisora)."""
        note = self._note_base(actor, text)
        note["inReplyTo"] = in_reply_to
        return self._create(actor, note)

    async def send(
        self,
        client: httpx.AsyncClient,
        target_base: str,
        actor: Actor,
        activity: dict[str, Any],
        *,
        path: str = "/inbox",
        via: str | None = None,
    ) -> int:
        """POST *activity*, signed as *actor* (RFC 9421, as Mastodon 4.5 sends), to
        *target_base* + *path*; return the status (raises httpx errors). *via*: the base URL
        of the web process to send it through (another of the instance's web processes, as
        a load balancer would: the request keeps the instance's Host)."""
        body = json.dumps(activity).encode()
        url = f"{target_base}{path}"
        headers = {"content-type": ACTIVITY_JSON}
        if via is not None and via != target_base:
            headers["host"] = httpx.URL(target_base).netloc.decode("ascii")
        headers.update(
            sign_request(
                SignedRequest("POST", url, headers, body),
                actor.key_id,
                actor.key,
                now=time.time(),
            )
        )
        sent_to = url if via is None else f"{via}{path}"
        response = await client.post(sent_to, content=body, headers=headers)
        return response.status_code


def _activity_json(doc: dict[str, Any]) -> Response:
    return Response(json.dumps(doc), media_type=ACTIVITY_JSON)
