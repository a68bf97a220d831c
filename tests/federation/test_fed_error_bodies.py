"""What the inbox tells an unauthenticated sender: about its request, never about our lookups.

A signed POST whose ``keyId`` named a private host once came back 401 with the server's DNS
answer in the body ("localhost resolves to a non-public address (127.0.0.1)"): anyone could
use the inbox as a resolver oracle. Now every key that cannot be fetched gets one and the
same answer, whatever the fetch met, and the details go to the log. The real SSRF-guarded
client is used (pinned connections, loopback refused): nothing is ever connected to.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from factories import local_account
from fedhelpers import DOMAIN, make_remote

from activitypub import keys
from activitypub.signatures import Request, sign_request
from fedisora.config import Settings
from fedisora.federation.context import Federation, set_federation
from fedisora.federation.http import PeerClient
from fedisora.federation.verify import UNKNOWN_KEY
from fedisora.models import InboxItem

INTERNAL = ("127.0.0.1", "::1", "10.1.2.3", "resolve", "non-public", "errno", "refus", "localhost")


@pytest.fixture
async def guarded(db: str, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the production peer client: SSRF guard on, loopback refused."""
    from fedisora import urls
    from fedisora.app import create_app

    urls.configure(settings)
    fed = Federation(settings, PeerClient(insecure=False, timeout=5.0))
    set_federation(fed)
    app = create_app(settings, run_work=False, manage_db=False)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=f"https://{DOMAIN}") as http:
            yield http
    finally:
        await fed.aclose()
        set_federation(None)


def _signed_as(key_id: str, activity: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(activity).encode()
    headers = {"content-type": "application/activity+json"}
    request = Request("POST", f"https://{DOMAIN}/inbox", headers, body)
    headers.update(sign_request(request, key_id, keys.generate_ed25519_key(), now=time.time()))
    return body, headers


@pytest.mark.parametrize(
    "actor",
    [
        "https://localhost/users/x",  # a name that resolves to loopback
        "https://127.0.0.1/users/x",
        "https://10.1.2.3/users/x",
        "https://[::1]/users/x",
        "http://fedisora.example/users/x",  # plain http: refused before any lookup
    ],
)
async def test_unfetchable_keys_get_one_answer_and_the_details_are_logged(
    guarded: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, actor: str
) -> None:
    ann = await local_account("ann")
    activity = {
        "id": f"{actor}#follows/1",
        "type": "Follow",
        "actor": actor,
        "object": ann.uri,
    }
    body, headers = _signed_as(f"{actor}#main-key", activity)
    with caplog.at_level(logging.INFO, logger="fedisora.federation"):
        r = await guarded.post("/inbox", content=body, headers=headers)
    assert r.status_code == 401
    assert r.json() == {"error": f"signature: {UNKNOWN_KEY}"}
    assert not any(word in r.text.lower() for word in INTERNAL), r.text
    # Why it failed is for the admin: in the log.
    logged = " ".join(rec.getMessage() for rec in caplog.records)
    assert f"cannot get key {actor}#main-key" in logged
    assert await InboxItem.all().count() == 0


async def test_a_key_of_another_actor_is_refused_without_naming_it(
    guarded: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    ann = await local_account("ann")
    rita = await make_remote("rita")
    mallory = "https://remote.example/users/mallory"
    activity = {"id": f"{mallory}#f/1", "type": "Follow", "actor": mallory, "object": ann.uri}
    body, headers = rita.signed(f"https://{DOMAIN}/inbox", activity)
    with caplog.at_level(logging.WARNING, logger="fedisora.federation"):
        r = await guarded.post("/inbox", content=body, headers=headers)
    assert r.status_code == 401
    assert r.json() == {
        "error": "the signing key is not the actor's, and no proof of the actor's is attached"
    }
    assert f"signed by {rita.uri}, not by the actor {mallory}" in caplog.text
    assert await InboxItem.all().count() == 0
