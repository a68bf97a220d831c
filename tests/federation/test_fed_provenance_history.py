"""Root history over federation: retired roots are published, and a peer trusts them for the
clips of the instance that published them (and only those).

The published bundle is read through the app (ASGI); the checks run the real RemoteMediaCheck
machine against :class:`LoopbackPeer` over real sockets, with real clips rendered by the tiny
pipeline and C2PA-signed as a render queue signs them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fedhelpers import DOMAIN, RemoteActor, make_remote
from provclips import LoopbackPeer, Served, encoded_clip, sign_clip

from activitypub import objects
from fedisora.config import Settings
from fedisora.federation.context import Federation
from fedisora.federation.ingest import handle_activity
from fedisora.federation.media_check import machines
from fedisora.federation.provenance_root import (
    LEGACY_ROOT_CERTIFICATES,
    PEM_TYPE,
    PROVENANCE_ROOT_PATH,
    parse_root_pem,
)
from fedisora.models import Clip, MediaFile, RemoteMediaCheck
from fedisora.work import Engine
from render.instance import record_roots, root_fingerprint, write_credentials
from render.provenance import InstanceCredentials, SignedVideo, generate_instance_ca

TABLE = "remote_media_checks"
ROOTS = f"{PROVENANCE_ROOT_PATH}?all=1"


def _certificates(pem: str) -> list[str]:
    marker = "-----BEGIN CERTIFICATE-----"
    return [marker + part for part in pem.split(marker)[1:]]


# --- what this instance publishes -------------------------------------------------------------


async def test_retired_roots_are_published_after_the_current_one(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    provenance = settings.data_dir / "provenance"
    assert write_credentials(settings).outcome == "created"
    first = (provenance / "root.pem").read_text()
    answer = await client.get(PROVENANCE_ROOT_PATH)
    assert answer.status_code == 200 and answer.text == first

    # The admin replaces the root (`fedisora init --new-provenance-root`).
    assert write_credentials(settings, replace=True).describe().startswith("replaced; 1 ")
    second = (provenance / "root.pem").read_text()
    for path in (PROVENANCE_ROOT_PATH, ROOTS):
        answer = await client.get(path)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith(PEM_TYPE)
        # The current root first: software reading only the first certificate gets it.
        assert answer.text == second + first
        assert "PRIVATE KEY" not in answer.text
    nodeinfo = (await client.get("/nodeinfo/2.1")).json()
    assert nodeinfo["metadata"]["provenanceRoot"] == f"https://{DOMAIN}{PROVENANCE_ROOT_PATH}"

    # More roots than fedisora before root history accepts: the plain URL serves the newest
    # four (what such a peer reads), ``?all=1`` every one.
    older = [generate_instance_ca(DOMAIN).root_pem for _ in range(4)]
    for n, root in enumerate(older):
        record_roots(settings, root)
        history = provenance / "roots" / f"{root_fingerprint(root)}.pem"
        os.utime(history, (1_000_000 + n, 1_000_000 + n))  # recorded long before the others
    plain = (await client.get(PROVENANCE_ROOT_PATH)).text
    everything = (await client.get(ROOTS)).text
    assert _certificates(plain) == [second, first, older[3], older[2]]
    assert len(_certificates(plain)) == LEGACY_ROOT_CERTIFICATES
    with pytest.raises(ValueError):  # what an older peer would have refused whole
        parse_root_pem(everything, limit=LEGACY_ROOT_CERTIFICATES)
    assert parse_root_pem(plain, limit=LEGACY_ROOT_CERTIFICATES) == plain
    assert _certificates(everything) == [second, first, *reversed(older)]
    assert parse_root_pem(everything) == everything

    # Only retired roots left (root.pem gone): they are still published.
    (provenance / "root.pem").unlink()
    assert _certificates((await client.get(ROOTS)).text)[:2] == [second, first]


# --- checking a peer's clips -------------------------------------------------------------------


@pytest.fixture
def peers() -> Iterator[list[LoopbackPeer]]:
    started: list[LoopbackPeer] = []
    try:
        yield started
    finally:
        for peer in started:
            peer.stop()


@pytest.fixture
def encoded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encoded_clip(tmp_path_factory)


def publish(peer: LoopbackPeer, *roots: InstanceCredentials) -> None:
    """*peer* publishes these roots, the current one first (as fedisora does)."""
    bundle = "".join(r.root_pem for r in roots)
    peer.files[PROVENANCE_ROOT_PATH] = Served(bundle.encode(), PEM_TYPE)


_counter = iter(range(1, 1_000_000))


async def check(
    fed: Federation, settings: Settings, author: RemoteActor, host: LoopbackPeer, video: SignedVideo
) -> dict[str, Any]:
    """*author* federates a clip whose video *host* serves; the check's provenance label."""
    n = next(_counter)
    host.files[f"/media/{n}.mp4"] = Served(video.path)
    note_id = f"{author.uri}/clips/{n}"
    note = objects.note_document(
        objects.NoteInfo(
            id=note_id,
            attributed_to=author.uri,
            content="<p>a lighthouse in a storm</p>",
            published="2026-01-01T00:00:00Z",
            to=[objects.PUBLIC],
            cc=[f"{author.uri}/followers"],
            video=objects.VideoInfo(
                url=f"{host.base}/media/{n}.mp4",
                width=64,
                height=112,
                duration=1.0,
                size=video.size,
                provenance=objects.ProvenanceInfo(
                    manifest_digest=video.manifest_digest, state="trusted"
                ),
            ),
        ),
        context=False,
    )
    activity = objects.activity(
        "Create", f"{note_id}/activity", author.uri, note, to=note["to"], cc=note["cc"]
    )
    await handle_activity(fed, activity)
    clip = await Clip.get(uri=note_id)
    row = await RemoteMediaCheck.get(media_id=clip.media_id)
    engine = Engine(machines(settings), context={"settings": settings})
    await engine.advance(TABLE, row.pk)
    provenance: dict[str, Any] = (await MediaFile.get(pk=clip.media_id)).provenance
    return provenance


async def test_a_clip_signed_under_a_retired_root_of_its_origin_is_verified(
    fed: Federation,
    settings: Settings,
    peers: list[LoopbackPeer],
    encoded: Path,
    tmp_path: Path,
) -> None:
    origin = LoopbackPeer().start()
    peers.append(origin)
    rita = await make_remote("rita", origin.domain, f"{origin.base}/users/rita")
    old, new = generate_instance_ca(origin.domain), generate_instance_ca(origin.domain)
    publish(origin, new, old)  # the origin replaced its root; the old one stays published

    before = sign_clip(encoded, tmp_path / "old.mp4", old, instance=origin.domain, creator=rita.uri)
    after = sign_clip(encoded, tmp_path / "new.mp4", new, instance=origin.domain, creator=rita.uri)
    for signed in (before, after):
        prov = await check(fed, settings, rita, origin, signed)
        assert prov["state"] == "verified", prov
        assert prov["reason"] == f"rendered and signed by {origin.domain}"
    assert origin.requests.count(ROOTS) == 1  # fetched once, all roots at once

    # A root the origin never published: invalid, also after asking the origin again.
    never = generate_instance_ca(origin.domain)
    forged = sign_clip(encoded, tmp_path / "f.mp4", never, instance=origin.domain, creator=rita.uri)
    prov = await check(fed, settings, rita, origin, forged)
    assert prov["state"] == "invalid"
    assert "not under the root" in prov["reason"]
    assert origin.requests.count(ROOTS) == 2  # the cached roots were asked for again, once


async def test_a_peer_vouches_only_for_its_own_clips_with_its_retired_roots(
    fed: Federation,
    settings: Settings,
    own_ca: InstanceCredentials,
    peers: list[LoopbackPeer],
    encoded: Path,
    tmp_path: Path,
) -> None:
    x, y = LoopbackPeer().start(), LoopbackPeer().start()
    peers.extend([x, y])
    x_old, x_new, y_root = (generate_instance_ca(p.domain) for p in (x, x, y))
    publish(x, x_new, x_old)
    publish(y, y_root)
    yann = await make_remote("yann", y.domain, f"{y.base}/users/yann")
    xena = await make_remote("xena", x.domain, f"{x.base}/users/xena")

    # X's retired root, used by someone holding its old key to sign a clip claiming Y, posted
    # from Y: X's roots count only for X's clips.
    as_y = sign_clip(encoded, tmp_path / "y.mp4", x_old, instance=y.domain, creator=yann.uri)
    prov = await check(fed, settings, yann, y, as_y)
    assert prov["state"] == "invalid"
    assert "not under the root" in prov["reason"]
    assert x.requests == []  # X was not even asked
    # Posted from X but naming Y as its maker: refused as well.
    prov = await check(fed, settings, xena, x, as_y)
    assert prov["state"] == "invalid"
    assert f"says {y.domain!r} rendered it" in prov["reason"]

    # This instance's own retired root does not vouch for another instance's clip either.
    retired = generate_instance_ca(DOMAIN)
    record_roots(settings, retired.root_pem)
    leaked = sign_clip(encoded, tmp_path / "l.mp4", retired, instance=y.domain, creator=yann.uri)
    prov = await check(fed, settings, yann, y, leaked)
    assert prov["state"] == "invalid"
    assert "not under the root" in prov["reason"]


async def test_roots_cached_before_the_origin_replaced_its_root_are_fetched_again(
    fed: Federation,
    settings: Settings,
    peers: list[LoopbackPeer],
    encoded: Path,
    tmp_path: Path,
) -> None:
    origin = LoopbackPeer().start()
    peers.append(origin)
    rita = await make_remote("rita", origin.domain, f"{origin.base}/users/rita")
    old = generate_instance_ca(origin.domain)
    publish(origin, old)
    first = sign_clip(encoded, tmp_path / "1.mp4", old, instance=origin.domain, creator=rita.uri)
    assert (await check(fed, settings, rita, origin, first))["state"] == "verified"

    new = generate_instance_ca(origin.domain)
    publish(origin, new, old)  # replaced while its old roots sit in this server's cache
    second = sign_clip(encoded, tmp_path / "2.mp4", new, instance=origin.domain, creator=rita.uri)
    prov = await check(fed, settings, rita, origin, second)
    assert prov["state"] == "verified", prov
    assert origin.requests.count(ROOTS) == 2
    # The refreshed roots are cached: the next clip under either root needs no fetch.
    third = sign_clip(encoded, tmp_path / "3.mp4", old, instance=origin.domain, creator=rita.uri)
    assert (await check(fed, settings, rita, origin, third))["state"] == "verified"
    assert origin.requests.count(ROOTS) == 2
