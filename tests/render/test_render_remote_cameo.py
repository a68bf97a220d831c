"""A cameo of a remote owner through the render queue: consent is a grant of theirs this
instance verified and stored; the worker fetches the owner's stills from their instance
(a scripted peer here), signed and naming the grant, for the one job, deletes them after
it, and each use goes out to the owner as a ``LikenessUse``. The two-instance flow is
tests/federation/test_fed_likeness_grants.py."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from factories import local_account
from PIL import Image

from activitypub import consent, keys
from fedisora.federation import likeness as fl
from fedisora.federation.context import Federation, set_federation
from fedisora.federation.http import PeerClient
from fedisora.models import Account, ConsentCheck, OutboxEvent, RenderJob, utcnow
from fedisora.work.runner import InProcessRunner
from render.service import publish_render, submit_render

REMOTE = "https://remote.example"
OWNER = f"{REMOTE}/users/rita"
GRANT = f"{REMOTE}/likeness/grants/1"


def png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (96, 96), color).save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class OwnerServer:
    """The owner's instance: their actor, and the stills of the grant (or *stills_status*)."""

    actor: dict[str, Any]
    key: ed25519.Ed25519PrivateKey
    stills_status: int = 200
    fed: Federation | None = None
    fetched: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if url == OWNER:
            return httpx.Response(200, json=self.actor)
        if url.startswith(fl.references_url(GRANT)):
            self.fetched.append(request)
            if self.stills_status != 200:
                return httpx.Response(self.stills_status, json={"error": "revoked"})
            if url == fl.references_url(GRANT):
                items = [fl.references_url(GRANT, i) for i in range(2)]
                return httpx.Response(
                    200, json={"type": "OrderedCollection", "orderedItems": items}
                )
            color = (200, 40, 40) if url.endswith("/0") else (40, 40, 200)
            return httpx.Response(200, content=png(color), headers={"content-type": "image/png"})
        return httpx.Response(404, json={"error": "not found"})


@pytest.fixture
async def owner_server(db: str, render_settings: Any) -> AsyncIterator[OwnerServer]:
    from fedisora import urls

    key = keys.generate_ed25519_key()
    actor = {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": OWNER,
        "type": "Person",
        "preferredUsername": "rita",
        "inbox": f"{OWNER}/inbox",
        "assertionMethod": [
            {
                "id": f"{OWNER}#ed25519-key",
                "type": "Multikey",
                "controller": OWNER,
                "publicKeyMultibase": keys.public_key_to_multibase(key.public_key()),
            }
        ],
    }
    server = OwnerServer(actor, key)
    urls.configure(render_settings)
    fed = Federation(
        render_settings, PeerClient(insecure=True, transport=httpx.MockTransport(server))
    )
    set_federation(fed)  # the worker's get_federation(settings) finds it
    server.fed = fed
    try:
        yield server
    finally:
        await fed.aclose()
        set_federation(None)


async def _granted(server: OwnerServer, bob: Account) -> Account:
    rita = await Account.create(
        username="rita",
        domain="remote.example",
        uri=OWNER,
        inbox_uri=f"{OWNER}/inbox",
        shared_inbox_uri=f"{REMOTE}/inbox",
    )
    now = utcnow().replace(microsecond=0)
    doc = consent.build_grant(
        grant_id=GRANT,
        owner=OWNER,
        grantee=bob.uri,
        scope="publish",
        restrictions_digest=consent.restrictions_digest(""),
        published=now,
    )
    signed = consent.sign_grant(doc, server.key, key_id=f"{OWNER}#ed25519-key", created=now)
    assert server.fed is not None
    await fl.store_grant(server.fed, bob, rita, signed)
    return rita


async def _notices() -> list[str]:
    rows = await OutboxEvent.filter(kind=fl.EVENT).order_by("id")
    return [
        r.data["activity"]["summary"] for r in rows if r.data["activity"]["type"] == "LikenessUse"
    ]


async def test_a_remote_cameo_renders_with_stills_fetched_for_the_job(
    render_settings: Any, render_engine: Any, owner_server: OwnerServer
) -> None:
    bob = await local_account("bob")
    rita = await _granted(owner_server, bob)
    job = await submit_render(
        bob,
        {"prompt": "rita waving", "seconds": 0.5, "cameos": [rita.pk]},
        settings=render_settings,
        engine=render_engine,
    )
    assert await _notices() == ["requested"]
    assert owner_server.fetched == []  # nothing fetched before the worker renders
    await InProcessRunner(render_engine, queues=("render",), concurrency=1).drain(60)
    job = await RenderJob.get(pk=job.pk)
    assert job.state == "ready", job.last_error
    assert job.spec["consent_refs"] == [GRANT]
    # Fetched signed by this instance, naming the grant; gone once the job rendered.
    assert len(owner_server.fetched) == 3
    for request in owner_server.fetched:
        assert "signature" in request.headers
        assert str(request.url).startswith(fl.references_url(GRANT))
    assert not fl.references_dir(render_settings, job.pk).exists()
    [fetch] = await ConsentCheck.filter(stage="fetch")
    assert fetch.allowed and fetch.render_job_id == job.pk and fetch.owner_id == rita.pk
    assert await _notices() == ["requested", "draft"]
    await publish_render(bob, job, engine=render_engine)
    assert await _notices() == ["requested", "draft", "published"]


async def test_stills_refused_by_the_owner_fail_the_job_and_the_owner_is_told(
    render_settings: Any, render_engine: Any, owner_server: OwnerServer
) -> None:
    bob = await local_account("bob")
    rita = await _granted(owner_server, bob)
    job = await submit_render(
        bob,
        {"prompt": "rita waving", "seconds": 0.5, "cameos": [rita.pk]},
        settings=render_settings,
        engine=render_engine,
    )
    owner_server.stills_status = 410  # revoked at the owner's instance meanwhile
    await InProcessRunner(render_engine, queues=("render",), concurrency=1).drain(60)
    job = await RenderJob.get(pk=job.pk)
    assert job.state == "failed" and job.output_id is None
    assert "cameo refused" in job.last_error and "410" in job.last_error
    assert job.gpu_seconds == 0
    assert not fl.references_dir(render_settings, job.pk).exists()
    [fetch] = await ConsentCheck.filter(stage="fetch")
    assert not fetch.allowed and "410" in fetch.reason
    assert await _notices() == ["requested", "refused"]
