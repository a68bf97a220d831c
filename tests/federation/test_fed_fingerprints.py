"""The ``fingerprint`` extension property of a clip's video: its shape and parsing (pure), and a
received clip's fingerprint stored with it (Create) or later (Update), so that a copy of a clip
made elsewhere is named here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from benchlookup import encode, synthetic_clip, transform_file
from fedhelpers import make_remote

from activitypub import objects
from fedisora.config import Settings
from fedisora.federation.context import Federation
from fedisora.federation.ingest import handle_activity
from fedisora.models import Clip, Fingerprint, FingerprintChunk
from fedisora.services import fingerprints
from render.fingerprint import RATE, VARIANTS, fingerprint_file, hashes_to_hex


def _info(hashes: str = "ab" * 32 * VARIANTS, rate: float = RATE, variants: int = VARIANTS) -> Any:
    return objects.FingerprintInfo(pdq_hashes=hashes, frame_rate=rate, variants=variants)


def _note(
    note_id: str, author: str, fingerprint: Any = None, published: str = "2026-12-01T10:00:00Z"
) -> dict[str, Any]:
    info = objects.NoteInfo(
        id=note_id,
        attributed_to=author,
        content="<p>waves</p>",
        published=published,
        to=[objects.PUBLIC],
        cc=[f"{author}/followers"],
        url=note_id,
        video=objects.VideoInfo(
            url=f"{note_id}/video.mp4", width=160, height=96, fingerprint=fingerprint
        ),
    )
    return objects.note_document(info)


def test_fingerprint_property_shape_and_round_trip() -> None:
    doc = _note("https://remote.example/c/1", "https://remote.example/users/zed", _info())
    attachment = doc["attachment"][0]
    assert attachment["fingerprint"] == {
        "type": "VideoFingerprint",
        "frameRate": RATE,
        "variants": VARIANTS,
        "pdqHashes": "ab" * 32 * VARIANTS,
    }
    terms = doc["@context"][1]
    assert terms["fingerprint"] == "fedisora:fingerprint"
    assert terms["pdqHashes"] == "fedisora:pdqHashes"
    assert terms["fedisora"] == objects.FEDISORA_NS
    parsed = objects.parse_note(doc)
    assert parsed.video is not None and parsed.video.fingerprint == _info()
    assert "fingerprint" not in _note("https://remote.example/c/2", "https://r/u")["attachment"][0]


@pytest.mark.parametrize(
    "value",
    [
        {"type": "Fingerprint", "frameRate": 8, "variants": 2, "pdqHashes": "ab" * 64},
        {"type": "VideoFingerprint", "frameRate": 8, "variants": 2, "pdqHashes": "zz" * 64},
        {"type": "VideoFingerprint", "frameRate": 8, "variants": 2, "pdqHashes": "ab" * 63},
        {"type": "VideoFingerprint", "frameRate": 8, "variants": 2, "pdqHashes": ""},
        {"type": "VideoFingerprint", "frameRate": True, "variants": 2, "pdqHashes": "ab" * 64},
        {"type": "VideoFingerprint", "frameRate": 8, "variants": 0, "pdqHashes": "ab" * 64},
        {
            "type": "VideoFingerprint",
            "frameRate": 8,
            "variants": 2,
            "pdqHashes": "ab" * (objects.MAX_FINGERPRINT_HEX // 2 + 64),
        },
        "ab" * 64,
    ],
)
def test_a_malformed_fingerprint_is_dropped_not_the_clip(value: Any) -> None:
    assert objects.parse_fingerprint(value) is None
    doc = _note("https://remote.example/c/3", "https://remote.example/users/zed")
    doc["attachment"][0]["fingerprint"] = value
    parsed = objects.parse_note(doc)
    assert parsed.video is not None and parsed.video.fingerprint is None


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frames, fps = synthetic_clip(77)
    return encode(frames, tmp_path_factory.mktemp("remote") / "clip.mp4", fps)


async def test_received_fingerprints_name_remote_clips(
    federation: Federation, settings: Settings, clip_file: Path, tmp_path: Path
) -> None:
    zed = await make_remote("zed")
    hashes = hashes_to_hex(fingerprint_file(clip_file).hashes)
    note = _note("https://remote.example/c/10", zed.account.uri, _info(hashes))
    create = objects.activity(
        "Create", f"{note['id']}/activity", zed.account.uri, note, to=note["to"], cc=note["cc"]
    )
    await handle_activity(federation, create)
    clip = await Clip.get(uri=note["id"])
    row = await Fingerprint.get(clip_id=clip.pk)
    assert (row.state, row.origin, row.hashes) == ("done", "remote", hashes)
    assert await FingerprintChunk.filter(fingerprint_id=row.pk).count() > 0

    copy = transform_file(clip_file, tmp_path / "copy.mp4", "reencode")
    (match,) = await fingerprints.lookup_file(copy, settings)
    assert (match.uri, match.url, match.status_id) == (clip.uri, clip.url, str(clip.pk))
    assert (match.instance, match.author) == ("remote.example", "zed@remote.example")
    assert match.provenance == "unverified"  # its manifest is checked once its video is fetched

    # A clip received without one learns it from an Update (computed after its Create).
    later = _note("https://remote.example/c/11", zed.account.uri, None, "2026-12-02T10:00:00Z")
    await handle_activity(
        federation,
        objects.activity("Create", f"{later['id']}/activity", zed.account.uri, later),
    )
    second = await Clip.get(uri=later["id"])
    assert not await Fingerprint.filter(clip_id=second.pk).exists()
    updated = _note(later["id"], zed.account.uri, _info(hashes), "2026-12-02T10:00:00Z")
    await handle_activity(
        federation,
        objects.activity("Update", f"{later['id']}/updates/fingerprint", zed.account.uri, updated),
    )
    stored = await Fingerprint.get(clip_id=second.pk)
    assert (stored.state, stored.hashes) == ("done", hashes)
    found = await fingerprints.lookup_file(copy, settings)
    assert {m.uri for m in found} == {clip.uri, second.uri}
    assert found[0].uri == clip.uri  # the same score: the older clip (the original) first

    # A fingerprint made otherwise (another sampling rate) is not comparable: not stored.
    other = _note("https://remote.example/c/12", zed.account.uri, _info(hashes, rate=2.0))
    await handle_activity(
        federation, objects.activity("Create", f"{other['id']}/activity", zed.account.uri, other)
    )
    third = await Clip.get(uri=other["id"])
    assert not await Fingerprint.filter(clip_id=third.pk).exists()


async def test_a_miss_asks_at_most_four_peers_and_keeps_their_sound_answers(
    federation: Federation, settings: Settings, peer: Any, clip_file: Path, tmp_path: Path
) -> None:
    """The peers asked are the domains whose fingerprints are held here, the most first, at
    most four; each is sent the copy's fingerprint (not the file); an answer's malformed
    entries, a peer that fails and a peer's nonsense are left out; matches say ``via``."""
    import json
    import re

    import httpx
    import numpy as np

    from fedisora.federation import peer_lookup
    from render.fingerprint import QUERY_WIRE_TYPE

    rng = np.random.default_rng(7)
    for n, domain in enumerate(["p1.example", "p2.example", "p3.example", "p4.example"] * 2):
        actor = await make_remote(f"u{n}", domain=domain)
        hashes = hashes_to_hex(rng.integers(0, 256, (4, VARIANTS, 32), dtype=np.uint8))
        note = _note(f"https://{domain}/c/{n}", actor.account.uri, _info(hashes))
        await handle_activity(
            federation, objects.activity("Create", f"{note['id']}/a", actor.account.uri, note)
        )
    actor = await make_remote("lone", domain="p5.example")  # one fingerprint: the fifth
    note = _note("https://p5.example/c/9", actor.account.uri, _info("cd" * 32 * VARIANTS))
    await handle_activity(
        federation, objects.activity("Create", f"{note['id']}/a", actor.account.uri, note)
    )
    known = await Clip.get(uri="https://p2.example/c/1")
    first = await Clip.get(uri="https://p1.example/c/0")

    def answer(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host == "p1.example":
            good = {
                "url": "https://p1.example/@u0/1",
                "uri": "https://p1.example/c/0",
                "status_id": "99",
                "instance": "p1.example",
                "author": "u0@p1.example",
                "provenance": "trusted",
                "score": 0.8,
            }
            return httpx.Response(
                200,
                json={
                    "matches": [
                        good,
                        {**good, "uri": "javascript:alert(1)"},
                        {**good, "score": "high"},
                        {**good, "uri": "https://p1.example/c/x", "score": 7, "provenance": "?"},
                        "nonsense",
                    ]
                },
            )
        if host == "p2.example":  # names a clip received here too: its status id here
            return httpx.Response(
                200,
                json={
                    "matches": [
                        {
                            "url": known.url,
                            "uri": known.uri,
                            "status_id": "1",
                            "instance": "p2.example",
                            "author": "u1@p2.example",
                            "provenance": "trusted",
                            "score": 0.5,
                        }
                    ]
                },
            )
        if host == "p3.example":
            return httpx.Response(500, json={"error": "down"})
        return httpx.Response(200, content=b"<html>not json</html>")

    peer.handler = answer
    peer_lookup._peers.clear()
    frames, fps = synthetic_clip(1234)
    unknown = encode(frames, tmp_path / "unknown.mp4", fps)
    found = await fingerprints.lookup_file(unknown, settings)

    asked = [r for r in peer.requests if r.method == "POST"]
    assert sorted(r.url.host for r in asked) == [f"p{i}.example" for i in range(1, 5)]
    for request in asked:
        assert request.url.path == "/api/fedisora/v1/provenance/lookup"
        body = json.loads(request.content)
        assert body["fingerprint"]["type"] == QUERY_WIRE_TYPE
        assert re.fullmatch(r"[0-9a-f]+", body["fingerprint"]["pdqHashes"])
    assert [(m.uri, m.via, m.status_id, m.score, m.provenance) for m in found] == [
        ("https://p1.example/c/x", "p1.example", None, 1.0, "unknown"),
        ("https://p1.example/c/0", "p1.example", str(first.pk), 0.8, "trusted"),
        (known.uri, "p2.example", str(known.pk), 0.5, "trusted"),
    ]

    # Without peers asked (a peer's own question): nothing.
    peer.requests.clear()
    assert await fingerprints.lookup_file(unknown, settings, ask_peers=False) == []
    assert not [r for r in peer.requests if r.method == "POST"]


async def test_a_slow_peer_is_given_up_on_time() -> None:
    """A peer that does not answer within the timeout is left out, not waited for."""
    import asyncio
    import time

    import httpx

    from fedisora.federation import peer_lookup
    from fedisora.federation.http import PeerClient

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200, json={"matches": []})

    client = PeerClient(insecure=True, transport=httpx.MockTransport(slow))
    try:
        started = time.monotonic()
        found = await peer_lookup._ask(client, "slow.example", "https://slow.example", b"{}", 0.5)
        assert found == [] and time.monotonic() - started < 5
    finally:
        await client.aclose()
