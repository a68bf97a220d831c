"""Helpers for federation tests: a scripted remote peer and remote actors we can sign as."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from activitypub import keys
from activitypub.signatures import Request, sign_request
from fedisora.config import Settings
from fedisora.models import Account, InboxItem, utcnow
from fedisora.work.machines import build_engine

DOMAIN = "fedisora.test"
REMOTE = "remote.example"


@dataclass
class Peer:
    """A remote server: GET answers from ``documents``; POSTs go to ``handler`` (202 default)."""

    documents: dict[str, Any] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    handler: Callable[[httpx.Request], httpx.Response] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        # A snapshot: a double-knocking client re-signs the same request object.
        snapshot = httpx.Request(
            request.method,
            request.url,
            headers=request.headers.multi_items(),
            content=request.content,
        )
        self.requests.append(snapshot)
        if request.method == "POST":
            if self.handler is not None:
                return self.handler(request)
            return httpx.Response(202)
        url = str(request.url.copy_with(fragment=None))
        doc = self.documents.get(url)
        if doc is None:
            return httpx.Response(404, json={"error": "not found"})
        return httpx.Response(200, json=doc, headers={"content-type": "application/activity+json"})


@dataclass
class RemoteActor:
    """A remote account with a key we hold, so tests can sign as it."""

    account: Account
    private_key: keys.PrivateKey

    @property
    def uri(self) -> str:
        return self.account.uri

    def document(self, private_key: keys.PrivateKey | None = None) -> dict[str, Any]:
        key = private_key or self.private_key
        return {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": self.uri,
            "type": "Person",
            "preferredUsername": self.account.username,
            "inbox": f"{self.uri}/inbox",
            "followers": f"{self.uri}/followers",
            "endpoints": {"sharedInbox": f"https://{self.account.domain}/inbox"},
            "publicKey": {
                "id": f"{self.uri}#main-key",
                "owner": self.uri,
                "publicKeyPem": keys.public_key_to_pem(key.public_key()),
            },
        }

    def signed(
        self,
        url: str,
        activity: dict[str, Any] | bytes,
        *,
        scheme: str = "rfc9421",
        private_key: keys.PrivateKey | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        body = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
        headers = {"content-type": "application/activity+json"}
        request = Request("POST", url, headers, body)
        headers.update(
            sign_request(
                request,
                f"{self.uri}#main-key",
                private_key or self.private_key,
                now=time.time(),
                scheme=scheme,  # type: ignore[arg-type]
            )
        )
        return body, headers


async def make_remote(
    username: str = "rita", domain: str = REMOTE, uri: str | None = None
) -> RemoteActor:
    """A cached remote account (fetched just now) whose private key the test holds."""
    key = keys.generate_rsa_key()
    uri = uri or f"https://{domain}/users/{username}"
    account = await Account.create(
        username=username,
        domain=domain,
        uri=uri,
        inbox_uri=f"{uri}/inbox",
        shared_inbox_uri=f"https://{domain}/inbox",
        followers_uri=f"{uri}/followers",
        public_key_id=f"{uri}#main-key",
        public_key_pem=keys.public_key_to_pem(key.public_key()),
        fetched_at=utcnow(),
    )
    return RemoteActor(account, key)


async def post_inbox(
    client: httpx.AsyncClient,
    sender: RemoteActor,
    activity: dict[str, Any],
    path: str = "/inbox",
) -> httpx.Response:
    """POST *activity* to our inbox at *path* (the shared ``/inbox`` unless told), HTTP-signed
    by *sender*; the response, for the caller to check."""
    body, headers = sender.signed(f"https://{DOMAIN}{path}", activity)
    return await client.post(path, content=body, headers=headers)


async def process_inbox(settings: Settings) -> list[str]:
    """Advance every received inbox item once, oldest first, as the inbox worker would; the
    states of all inbox items afterwards, in id order."""
    engine = build_engine(settings, providers=["fedisora.federation.inbox:machines"])
    engine.context["settings"] = settings
    for row in await InboxItem.filter(state="received").order_by("id"):
        await engine.advance("inbox_items", row.pk)
    return [i.state for i in await InboxItem.all().order_by("id")]


def stamp_doc(stamp: str, author: str, quoting: str, quoted: str) -> dict[str, Any]:
    """A FEP-044f ``QuoteAuthorization`` as a peer serves it (written out here, not built by
    the code under test)."""
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": stamp,
        "type": "QuoteAuthorization",
        "attributedTo": author,
        "interactingObject": quoting,
        "interactionTarget": quoted,
    }
