"""The RemoteMediaCheck machine against a real HTTP peer on loopback, on SQLite and PostgreSQL.

Remote clips arrive through :func:`handle_activity` (the code the inbox machine runs); the
check row stored with each is advanced by an engine running the real machine, whose
PeerClient downloads over real sockets from :class:`LoopbackPeer`. The videos are real clips
rendered by the tiny pipeline and C2PA-signed as a render queue signs them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from factories import local_account, rendered_video
from fedhelpers import DOMAIN, RemoteActor, make_remote
from fedinstances import free_port
from provclips import (
    LoopbackPeer,
    Served,
    encoded_clip,
    sign_clip,
    unsigned_copy,
    with_remote_manifest,
)

from activitypub import objects
from fedisora import urls
from fedisora.api.entities import status_entities
from fedisora.config import Settings
from fedisora.federation.context import Federation
from fedisora.federation.ingest import handle_activity
from fedisora.federation.media_check import (
    REMOTE_MEDIA_GRAPH,
    RETRY_SCHEDULE,
    TooLarge,
    download,
    machines,
)
from fedisora.federation.provenance_check import CHECK_GAVE_UP, FETCH_FAILED, NO_C2PA_DATA
from fedisora.federation.provenance_root import PROVENANCE_ROOT_PATH
from fedisora.models import Clip, MediaFile, RemoteMediaCheck, utcnow
from fedisora.services import posts
from fedisora.work import AdvanceResult, Engine
from render.provenance import InstanceCredentials, SignedVideo, generate_instance_ca

TABLE = "remote_media_checks"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "activitypub"


@pytest.fixture
def origin() -> Iterator[LoopbackPeer]:
    peer = LoopbackPeer().start()
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture
def encoded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encoded_clip(tmp_path_factory)


def engine(settings: Settings, clock: Any = utcnow) -> Engine:
    return Engine(machines(settings), context={"settings": settings}, clock=clock)


def temp_files(settings: Settings) -> list[Path]:
    folder = settings.data_dir / "tmp" / "remote-media"
    return list(folder.iterdir()) if folder.exists() else []


def publish(peer: LoopbackPeer, credentials: InstanceCredentials) -> None:
    peer.files[PROVENANCE_ROOT_PATH] = Served(credentials.root_pem.encode(), PEM)


PEM = "application/x-pem-file"
ROOTS = f"{PROVENANCE_ROOT_PATH}?all=1"  # what a checker asks for: every root, retired too


def fedisora_create(
    author: RemoteActor,
    video_url: str,
    n: int,
    *,
    signed: SignedVideo | None = None,
    sha256_hex: str | None = None,
    size: int | None = None,
    manifest_digest: str | None = None,
) -> dict[str, Any]:
    """A Create(Note) as a fedisora instance federates a clip (the real serializer)."""
    note_id = f"{author.uri}/clips/{n}"
    digest = manifest_digest or (signed.manifest_digest if signed else None)
    video = objects.VideoInfo(
        url=video_url,
        width=64,
        height=112,
        duration=1.0,
        size=size,
        sha256_hex=sha256_hex,
        provenance=objects.ProvenanceInfo(manifest_digest=digest, state="trusted"),
    )
    note = objects.note_document(
        objects.NoteInfo(
            id=note_id,
            attributed_to=author.uri,
            content="<p>a lighthouse in a storm</p>",
            published="2026-01-01T00:00:00Z",
            to=[objects.PUBLIC],
            cc=[f"{author.uri}/followers"],
            video=video,
        ),
        context=False,
    )
    return objects.activity(
        "Create", f"{note_id}/activity", author.uri, note, to=note["to"], cc=note["cc"]
    )


async def receive(fed: Federation, activity: dict[str, Any]) -> tuple[Clip, RemoteMediaCheck]:
    await handle_activity(fed, activity)
    clip = await Clip.get(uri=activity["object"]["id"])
    row = await RemoteMediaCheck.get(media_id=clip.media_id)
    return clip, row


async def media_of(clip: Clip) -> MediaFile:
    return await MediaFile.get(pk=clip.media_id)


async def remote_author(peer: LoopbackPeer, name: str = "rita") -> RemoteActor:
    return await make_remote(name, peer.domain, f"{peer.base}/users/{name}")


async def test_a_fedisora_clip_signed_by_its_origin_is_verified(
    fed: Federation, settings: Settings, origin: LoopbackPeer, encoded: Path, tmp_path: Path
) -> None:
    from render.encode import sha256_file

    ca = generate_instance_ca(origin.domain)
    publish(origin, ca)
    rita = await remote_author(origin)
    signed = sign_clip(encoded, tmp_path / "1.mp4", ca, instance=origin.domain, creator=rita.uri)
    origin.files["/media/1.mp4"] = Served(signed.path)
    activity = fedisora_create(
        rita,
        f"{origin.base}/media/1.mp4",
        1,
        signed=signed,
        sha256_hex=sha256_file(signed.path),
        size=signed.size,
    )
    clip, row = await receive(fed, activity)
    assert row.state == "pending" and row.origin == origin.domain
    assert row.url == f"{origin.base}/media/1.mp4" and row.clip_uri == clip.uri
    before = (await media_of(clip)).provenance
    assert before["state"] == "unverified" and before["checked_at"] is None

    assert await engine(settings).advance(TABLE, row.pk) is AdvanceResult.MOVED
    assert (await RemoteMediaCheck.get(pk=row.pk)).state == "verified"
    media = await media_of(clip)
    prov = media.provenance
    assert prov["state"] == "verified"
    assert prov["reason"] == f"rendered and signed by {origin.domain}"
    assert datetime.fromisoformat(prov["checked_at"]) <= utcnow()
    assert prov["manifest_digest"] == prov["file_manifest_digest"] == signed.manifest_digest
    assert prov["claim"]["instance"] == origin.domain and prov["claim"]["creator"] == rita.uri
    assert prov["signer"] == f"fedisora signer for {origin.domain}"
    assert media.file is None and media.remote_url == f"{origin.base}/media/1.mp4"
    assert temp_files(settings) == []  # the download is not kept (the proxy streams it)
    assert origin.requests == ["/media/1.mp4", ROOTS]  # roots: manifest seen

    # The label reaches Mastodon clients.
    [entity] = await status_entities(None, [clip])
    fedisora_meta = entity["media_attachments"][0]["meta"]["fedisora"]
    assert fedisora_meta["provenance"] == "verified"
    assert fedisora_meta["provenance_reason"] == prov["reason"]
    assert fedisora_meta["provenance_checked_at"] == prov["checked_at"]
    # Played from this server's media proxy, checked; remote_url says where from.
    assert entity["media_attachments"][0]["remote_url"] == f"{origin.base}/media/1.mp4"
    assert entity["media_attachments"][0]["url"] == urls.current().media_proxy(
        media.pk, "original", f"{origin.base}/media/1.mp4"
    )
    assert prov["file_size"] == signed.size and prov["file_sha256"] == sha256_file(signed.path)

    # A second clip from the same origin: its root comes from the cache.
    second = sign_clip(encoded, tmp_path / "2.mp4", ca, instance=origin.domain, creator=rita.uri)
    origin.files["/media/2.mp4"] = Served(second.path)
    clip2, row2 = await receive(
        fed, fedisora_create(rita, f"{origin.base}/media/2.mp4", 2, signed=second)
    )
    assert await engine(settings).advance(TABLE, row2.pk) is AdvanceResult.MOVED
    assert (await media_of(clip2)).provenance["state"] == "verified"
    assert origin.requests.count(ROOTS) == 1


async def test_a_mastodon_video_without_a_manifest_is_unverified(
    fed: Federation, settings: Settings, origin: LoopbackPeer, encoded: Path, tmp_path: Path
) -> None:
    text = (FIXTURES / "mastodon_create_note_video.json").read_text()
    text = text.replace("https://files.mastodon.example", origin.base)
    text = text.replace("https://mastodon.example", origin.base)
    activity = json.loads(text)
    attachment = activity["object"]["attachment"][0]
    path = attachment["url"].removeprefix(origin.base)
    origin.files[path] = Served(unsigned_copy(encoded, tmp_path / "mastodon.mp4"))
    await make_remote("alice", origin.domain, activity["actor"])

    clip, row = await receive(fed, activity)
    assert await engine(settings).advance(TABLE, row.pk) is AdvanceResult.MOVED
    assert (await RemoteMediaCheck.get(pk=row.pk)).state == "unverified"
    prov = (await media_of(clip)).provenance
    assert prov["state"] == "unverified"
    assert prov["reason"] == "the file carries no C2PA provenance manifest"
    assert prov["checked_at"] is not None
    assert origin.requests == [path]  # no manifest: no root to fetch
    [entity] = await status_entities(None, [clip])
    assert entity["media_attachments"][0]["meta"]["fedisora"]["provenance"] == "unverified"


async def test_a_tampered_file_is_invalid(
    fed: Federation, settings: Settings, origin: LoopbackPeer, encoded: Path, tmp_path: Path
) -> None:
    from render.encode import sha256_file

    ca = generate_instance_ca(origin.domain)
    publish(origin, ca)
    rita = await remote_author(origin)
    signed = sign_clip(encoded, tmp_path / "s.mp4", ca, instance=origin.domain, creator=rita.uri)
    data = bytearray(signed.path.read_bytes())
    data[-200] ^= 0xFF
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(bytes(data))
    origin.files["/media/t.mp4"] = Served(tampered)

    # The note announced the original's digest: the file is not the one announced.
    announced = fedisora_create(
        rita,
        f"{origin.base}/media/t.mp4",
        1,
        signed=signed,
        sha256_hex=sha256_file(signed.path),
    )
    clip, row = await receive(fed, announced)
    await engine(settings).advance(TABLE, row.pk)
    prov = (await media_of(clip)).provenance
    assert (prov["state"], prov["reason"]) == (
        "invalid",
        "the file does not match the note's digestMultibase",
    )
    assert (await RemoteMediaCheck.get(pk=row.pk)).state == "invalid"

    # Without a digest in the note, C2PA's own hashes catch the change.
    clip, row = await receive(
        fed, fedisora_create(rita, f"{origin.base}/media/t.mp4", 2, signed=signed)
    )
    await engine(settings).advance(TABLE, row.pk)
    prov = (await media_of(clip)).provenance
    assert prov["state"] == "invalid"
    assert "assertion.bmffHash.mismatch" in prov["reason"]
    assert "assertion.bmffHash.mismatch" in prov["failures"]
    assert temp_files(settings) == []


async def test_a_manifest_under_a_root_that_is_not_the_origins_is_invalid(
    fed: Federation, settings: Settings, origin: LoopbackPeer, encoded: Path, tmp_path: Path
) -> None:
    publish(origin, generate_instance_ca(origin.domain))
    stranger = generate_instance_ca("stranger.example")
    rita = await remote_author(origin)
    forged = sign_clip(
        encoded, tmp_path / "f.mp4", stranger, instance=origin.domain, creator=rita.uri
    )
    origin.files["/media/f.mp4"] = Served(forged.path)
    clip, row = await receive(
        fed, fedisora_create(rita, f"{origin.base}/media/f.mp4", 1, signed=forged)
    )
    await engine(settings).advance(TABLE, row.pk)
    prov = (await media_of(clip)).provenance
    assert prov["state"] == "invalid"
    assert prov["reason"] == (
        "the manifest is signed by fedisora signer for stranger.example, not under the root "
        f"{origin.domain} publishes or a root this server trusts"
    )

    # A peer publishing no root at all (404): its signed clips cannot be verified either.
    bare = LoopbackPeer().start()
    try:
        ca = generate_instance_ca(bare.domain)
        bob = await remote_author(bare, "bob")
        signed = sign_clip(encoded, tmp_path / "b.mp4", ca, instance=bare.domain, creator=bob.uri)
        bare.files["/media/b.mp4"] = Served(signed.path)
        clip, row = await receive(
            fed, fedisora_create(bob, f"{bare.base}/media/b.mp4", 1, signed=signed)
        )
        await engine(settings).advance(TABLE, row.pk)
        assert (await media_of(clip)).provenance["state"] == "invalid"
        assert bare.requests == ["/media/b.mp4", ROOTS]
    finally:
        bare.stop()


async def test_a_peer_that_is_down_leaves_the_check_retrying(
    fed: Federation, settings: Settings, encoded: Path, tmp_path: Path
) -> None:
    """Connection refused: retried with backoff (not failed, not labelled); once the peer is
    back, the next attempt checks the clip."""
    port = free_port()  # nothing listens here yet
    down = LoopbackPeer(port=port)
    rita = await remote_author(down)
    ca = generate_instance_ca(down.domain)
    signed = sign_clip(encoded, tmp_path / "d.mp4", ca, instance=down.domain, creator=rita.uri)
    clip, row = await receive(
        fed, fedisora_create(rita, f"{down.base}/media/d.mp4", 1, signed=signed)
    )
    now = utcnow()
    assert await engine(settings, lambda: now).advance(TABLE, row.pk) is AdvanceResult.RETRY
    row = await RemoteMediaCheck.get(pk=row.pk)
    assert (row.state, row.attempts) == ("pending", 1)
    assert "ConnectError" in row.last_error
    assert row.next_attempt_at == now + RETRY_SCHEDULE[0]
    prov = (await media_of(clip)).provenance
    assert (prov["state"], prov["reason"]) == ("unverified", "not checked yet")
    # Not due yet: nothing happens.
    assert await engine(settings, lambda: now).advance(TABLE, row.pk) is AdvanceResult.SKIPPED

    publish(down, ca)
    down.files["/media/d.mp4"] = Served(signed.path)
    down.start()
    try:
        later = now + RETRY_SCHEDULE[0] + timedelta(seconds=1)
        result = await engine(settings, lambda: later).advance(TABLE, row.pk)
        assert result is AdvanceResult.MOVED
        assert (await media_of(clip)).provenance["state"] == "verified"
    finally:
        down.stop()


async def test_a_peer_that_stays_down_ends_failed_and_unverified(
    fed: Federation, settings: Settings, encoded: Path
) -> None:
    down = LoopbackPeer(port=free_port())
    rita = await remote_author(down)
    clip, row = await receive(
        fed,
        fedisora_create(rita, f"{down.base}/media/x.mp4", 1, manifest_digest="ab" * 32),
    )
    clock = [utcnow()]
    results = []
    for _ in range(len(RETRY_SCHEDULE) + 3):
        results.append(await engine(settings, lambda: clock[0]).advance(TABLE, row.pk))
        clock[0] += timedelta(hours=7)  # past any retry delay
    assert results[: len(RETRY_SCHEDULE)] == [AdvanceResult.RETRY] * len(RETRY_SCHEDULE)
    assert results[len(RETRY_SCHEDULE)] is AdvanceResult.FAILED
    assert REMOTE_MEDIA_GRAPH["pending"].max_attempts == len(RETRY_SCHEDULE) + 1
    row = await RemoteMediaCheck.get(pk=row.pk)
    assert row.state == "failed"
    prov = (await media_of(clip)).provenance
    assert prov["state"] == "unverified"
    # Public: a fixed reason; why (the connection error) is the admin's, in the row.
    assert prov["reason"] == CHECK_GAVE_UP
    assert "ConnectError" in row.last_error and "ConnectError" not in str(prov)


async def test_refused_urls_and_answers_are_not_retried(
    fed: Federation, settings: Settings, origin: LoopbackPeer, encoded: Path, tmp_path: Path
) -> None:
    rita = await remote_author(origin)
    origin.files["/media/gone.mp4"] = Served(b"gone", "text/plain", status=410)
    origin.files["/media/small.mp4"] = Served(unsigned_copy(encoded, tmp_path / "small.mp4"))
    ftp = f"ftp://{origin.domain}/media/x.mp4"
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        (f"{origin.base}/media/gone.mp4", {}, "unverified", FETCH_FAILED),
        # Reading a note refuses such a video URL now; a row stored before still has one.
        (ftp, {}, "unverified", FETCH_FAILED),
        # The note announced another size: not the file it announced.
        (f"{origin.base}/media/small.mp4", {"size": 12}, "invalid", "the note announced 12"),
    ]
    for n, (url, extra, state, reason) in enumerate(cases, 1):
        if url == ftp:
            clip, row = await receive(fed, fedisora_create(rita, f"{origin.base}/x{n}.mp4", n))
            await MediaFile.filter(pk=clip.media_id).update(remote_url=ftp)
            await RemoteMediaCheck.filter(pk=row.pk).update(url=ftp)
        else:
            clip, row = await receive(fed, fedisora_create(rita, url, n, **extra))
        assert await engine(settings).advance(TABLE, row.pk) is AdvanceResult.MOVED
        prov = (await media_of(clip)).provenance
        assert prov["state"] == state and reason in prov["reason"], prov
        assert "410" not in prov["reason"] and "refusing" not in prov["reason"]
        assert (await RemoteMediaCheck.get(pk=row.pk)).state == state
    assert temp_files(settings) == []


async def test_a_remote_manifest_named_in_the_file_is_never_fetched(
    fed: Federation, settings: Settings, origin: LoopbackPeer, encoded: Path, tmp_path: Path
) -> None:
    """C2PA lets a file point at a manifest kept elsewhere (XMP ``dcterms:provenance``).
    Fetching it would let a peer make this server request any URL past the SSRF guard: the
    check never does, and such a file is not verified."""
    bait = LoopbackPeer().start()  # stands in for an internal service the URL points at
    try:
        rita = await remote_author(origin)
        path = with_remote_manifest(encoded, tmp_path / "x.mp4", f"{bait.base}/m.c2pa")
        origin.files["/media/x.mp4"] = Served(path)
        clip, row = await receive(fed, fedisora_create(rita, f"{origin.base}/media/x.mp4", 1))
        assert await engine(settings).advance(TABLE, row.pk) is AdvanceResult.MOVED
        prov = (await media_of(clip)).provenance
        assert prov["state"] == "unverified"
        assert prov["reason"] == NO_C2PA_DATA  # what the parser said is logged, not shown
        assert bait.requests == []
    finally:
        bait.stop()


async def test_download_streams_to_a_file_and_stops_at_the_limit(
    fed: Federation, origin: LoopbackPeer, encoded: Path, tmp_path: Path
) -> None:
    import hashlib

    origin.files["/v.mp4"] = Served(encoded)
    got = await download(fed.client, f"{origin.base}/v.mp4", tmp_path / "v.mp4")
    data = await anyio.Path(encoded).read_bytes()
    assert await anyio.Path(tmp_path / "v.mp4").read_bytes() == data
    assert (got.size, got.sha256_hex) == (len(data), hashlib.sha256(data).hexdigest())
    with pytest.raises(TooLarge):
        await download(fed.client, f"{origin.base}/v.mp4", tmp_path / "w.mp4", max_bytes=1000)


async def test_a_clip_deleted_before_its_check_is_skipped(
    fed: Federation, settings: Settings, origin: LoopbackPeer
) -> None:
    rita = await remote_author(origin)
    clip, row = await receive(fed, fedisora_create(rita, f"{origin.base}/media/1.mp4", 1))
    await posts.delete_clip(rita.account, clip)
    assert await engine(settings).advance(TABLE, row.pk) is AdvanceResult.MOVED
    assert (await RemoteMediaCheck.get(pk=row.pk)).state == "skipped"
    assert origin.requests == []


async def test_the_provenance_root_is_published_without_the_key(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    missing = await client.get(PROVENANCE_ROOT_PATH)
    assert missing.status_code == 404
    nodeinfo = (await client.get("/nodeinfo/2.1")).json()
    assert "provenanceRoot" not in nodeinfo["metadata"]

    credentials = generate_instance_ca(DOMAIN)
    folder = settings.data_dir / "provenance"
    folder.mkdir(parents=True)
    (folder / "root.pem").write_text(credentials.root_pem)
    (folder / "key.pem").write_text(credentials.key_pem)
    answer = await client.get(PROVENANCE_ROOT_PATH)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/x-pem-file")
    assert answer.text == credentials.root_pem
    assert "PRIVATE KEY" not in answer.text
    for version in ("2.0", "2.1"):
        doc = (await client.get(f"/nodeinfo/{version}")).json()
        assert doc["version"] == version
        assert doc["metadata"]["provenanceRoot"] == f"https://{DOMAIN}{PROVENANCE_ROOT_PATH}"
        assert doc["metadata"]["aiGeneratedMedia"] is True
    assert (await client.get("/nodeinfo/3.0")).status_code == 404

    # Even a key pasted into root.pem by mistake is never served.
    (folder / "root.pem").write_text(credentials.root_pem + credentials.key_pem)
    assert (await client.get(PROVENANCE_ROOT_PATH)).text == credentials.root_pem


async def test_the_web_page_shows_the_label(client: httpx.AsyncClient) -> None:
    from web.pages import templates

    ann = await local_account("ann")
    await posts.post_clip(ann, await rendered_video(ann), caption="made here")
    page = await client.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert 'data-provenance="trusted"' in page.text
    assert "Verified AI provenance" in page.text

    label = templates.env.get_template("_provenance.html").module.provenance_label  # type: ignore[attr-defined]

    def shown(provenance: dict[str, Any]) -> str:
        return str(label(MediaFile(provenance=provenance)))

    checked = {"local": False, "checked_at": "2026-01-01T00:00:00+00:00"}
    assert 'data-provenance="verified"' in shown({**checked, "state": "verified"})
    invalid = shown({**checked, "state": "invalid", "reason": "signed by someone else"})
    assert 'data-provenance="invalid"' in invalid and "signed by someone else" in invalid
    unverified = shown(
        {
            **checked,
            "state": "unverified",
            "reason": "no C2PA manifest",
            "file_manifest_digest": None,
        }
    )
    assert "Unverified: no provenance manifest" in unverified and "checking" not in unverified
    pending = shown({"local": False, "state": "unverified", "checked_at": None})
    assert 'data-provenance="checking"' in pending and "checking…" in pending


async def test_no_room_for_the_download_is_retried_with_a_clear_reason(
    fed: Federation, settings: Settings, origin: LoopbackPeer, encoded: Path, tmp_path: Path
) -> None:
    """This server's disk, not the clip: the check waits for room (the label stays "not
    checked yet"), says why, leaves no partial download, and checks the clip once there is
    room."""
    from throwaway import fill_filesystem, small_filesystem

    from fedisora.federation.media_check import DISK_FULL

    ca = generate_instance_ca(origin.domain)
    publish(origin, ca)
    rita = await remote_author(origin)
    signed = sign_clip(encoded, tmp_path / "1.mp4", ca, instance=origin.domain, creator=rita.uri)
    origin.files["/media/1.mp4"] = Served(signed.path)
    clip, row = await receive(
        fed, fedisora_create(rita, f"{origin.base}/media/1.mp4", 1, signed=signed)
    )
    folder = settings.data_dir / "tmp" / "remote-media"
    with small_filesystem(folder, 256 * 1024):
        fill_filesystem(folder / ".filler")
        now = utcnow()
        assert await engine(settings, lambda: now).advance(TABLE, row.pk) is AdvanceResult.RETRY
        row = await RemoteMediaCheck.get(pk=row.pk)
        assert (row.state, row.attempts, row.last_error) == ("pending", 1, DISK_FULL)
        assert [p.name for p in folder.iterdir()] == [".filler"]
        prov = (await media_of(clip)).provenance
        assert (prov["state"], prov["reason"]) == ("unverified", "not checked yet")

        (folder / ".filler").unlink()
        later = now + RETRY_SCHEDULE[0] + timedelta(seconds=1)
        assert await engine(settings, lambda: later).advance(TABLE, row.pk) is AdvanceResult.MOVED
        assert (await media_of(clip)).provenance["state"] == "verified"
