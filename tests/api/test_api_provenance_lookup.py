"""``POST /api/fedisora/v1/provenance/lookup``: a copy's origin as JSON, best first, empty when
unknown; a missing file, a file that is not a video (422) or one over the limit (413) answer a
JSON error, never a 500."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from benchlookup import encode, synthetic_clip, transform_file
from fingerprint_clips import fingerprinted_clip

from fedisora.boundary.limits import LOOKUP_BODY_LIMIT, body_class
from fedisora.services import fingerprints

LOOKUP = "/api/fedisora/v1/provenance/lookup"


async def _post(client: httpx.AsyncClient, path: Path) -> httpx.Response:
    with path.open("rb") as fh:
        return await client.post(LOOKUP, files={"file": (path.name, fh, "video/mp4")})


async def test_a_copy_is_named_and_an_unknown_clip_is_not(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    clip, video = await fingerprinted_clip("alice", 31, tmp_path)
    await fingerprinted_clip("bob", 32, tmp_path)
    copy = transform_file(video, tmp_path / "copy.mp4", "mirror")

    answer = await _post(client, copy)
    assert answer.status_code == 200, answer.text
    (match,) = answer.json()["matches"]
    assert set(match) == {
        "url",
        "uri",
        "status_id",
        "instance",
        "author",
        "provenance",
        "score",
        "via",
    }
    assert match["via"] is None  # found here
    assert match["status_id"] == str(clip.pk) and match["uri"] == clip.uri
    assert match["url"] == clip.url and match["author"] == "alice@fedisora.test"
    assert match["instance"] == "fedisora.test" and match["provenance"] == "trusted"
    assert 0.35 <= match["score"] <= 1
    assert answer.headers["access-control-allow-origin"] == "*"

    frames, fps = synthetic_clip(4242)
    unknown = encode(frames, tmp_path / "unknown.mp4", fps)
    answer = await _post(client, unknown)
    assert answer.status_code == 200 and answer.json() == {"matches": []}


async def test_bad_uploads_answer_json_errors(
    client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = await client.post(LOOKUP, data={"nothing": "here"})
    assert answer.status_code == 422
    assert answer.json() == {
        "error": "file is required: send the video as multipart/form-data field 'file'"
    }

    text = tmp_path / "notes.mp4"
    text.write_text("these are my notes, not a video")
    answer = await _post(client, text)
    assert answer.status_code == 422
    assert answer.json()["error"].startswith("the file is not a video this server can read")

    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    answer = await _post(client, empty)
    assert answer.status_code == 422 and "empty" in answer.json()["error"]

    frames, fps = synthetic_clip(5)
    video = encode(frames, tmp_path / "big.mp4", fps)
    monkeypatch.setattr(fingerprints, "LOOKUP_SIZE_LIMIT", video.stat().st_size - 1)
    answer = await _post(client, video)
    assert answer.status_code == 413 and "limit for a lookup" in answer.json()["error"]


def test_the_request_boundary_allows_a_lookup_its_video_and_no_more() -> None:
    assert body_class("POST", LOOKUP).limit == LOOKUP_BODY_LIMIT
    assert body_class("POST", "/provenance").limit == LOOKUP_BODY_LIMIT
    assert body_class("POST", LOOKUP).files == 1
    assert LOOKUP_BODY_LIMIT > fingerprints.LOOKUP_SIZE_LIMIT


async def test_a_peer_asks_with_a_fingerprint_and_gets_local_matches(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Another instance sends the copy's fingerprint as JSON (fedisora.federation.peer_lookup):
    the answer is this instance's matches, the same as for the file; malformed ones are 422."""
    from render.fingerprint import query_file, query_to_json

    clip, video = await fingerprinted_clip("carol", 33, tmp_path)
    copy = transform_file(video, tmp_path / "copy.mp4", "caption")
    wire = query_to_json(query_file(copy))
    answer = await client.post(LOOKUP, json={"fingerprint": wire})
    assert answer.status_code == 200, answer.text
    (match,) = answer.json()["matches"]
    assert (match["uri"], match["status_id"], match["via"]) == (clip.uri, str(clip.pk), None)

    frames, fps = synthetic_clip(4343)
    unknown = encode(frames, tmp_path / "unknown.mp4", fps)
    answer = await client.post(LOOKUP, json={"fingerprint": query_to_json(query_file(unknown))})
    assert answer.status_code == 200 and answer.json() == {"matches": []}

    for bad, says in [
        ("ab" * 32, "must be an object of type VideoQueryFingerprint"),
        ({**wire, "frameRate": 8}, "sampled at 16 frames a second"),
        ({**wire, "mirrored": "zz" * 32}, "mirrored is not hex"),
        ({**wire, "upper": wire["upper"][:64]}, "equally long"),
        ({**wire, "pdqHashes": "ab" * 32 * 193}, "at most 192 whole PDQ hashes"),
        ({**wire, "upperMirrored": ""}, "upperMirrored must be a non-empty string"),
    ]:
        answer = await client.post(LOOKUP, json={"fingerprint": bad})
        assert answer.status_code == 422, (bad, answer.text)
        error = answer.json()["error"]
        assert error.startswith("fingerprint: ") and says in error, error
