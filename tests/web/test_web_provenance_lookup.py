"""``/provenance``: the public page that names a copy's origin in words (the service the API
uses), with the form's errors said in the page, never a 500."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from benchlookup import encode, synthetic_clip, transform_file
from fingerprint_clips import fingerprinted_clip
from webhelpers import browser, form_csrf


def _words(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


async def _look_up(http: httpx.AsyncClient, path: Path, csrf: str) -> httpx.Response:
    with path.open("rb") as fh:
        return await http.post(
            "/provenance", data={"csrf": csrf}, files={"file": (path.name, fh, "video/mp4")}
        )


async def test_the_page_names_the_origin_or_says_it_is_unknown(
    web: httpx.ASGITransport, tmp_path: Path
) -> None:
    clip, video = await fingerprinted_clip("alice", 41, tmp_path)
    async with browser(web) as http:
        page = await http.get("/provenance")
        assert page.status_code == 200
        assert 'enctype="multipart/form-data"' in page.text and 'name="file"' in page.text
        csrf = form_csrf(page.text)

        copy = transform_file(video, tmp_path / "copy.mp4", "caption")
        answer = await _look_up(http, copy, csrf)
        assert answer.status_code == 200
        words = _words(answer.text)
        assert "“copy.mp4” is a copy of this clip" in words
        assert "a clip by @alice@fedisora.test on fedisora.test" in words
        assert "made and signed by the render queue of this server" in words
        assert f'href="{clip.url}"' in answer.text

        frames, fps = synthetic_clip(4343)
        unknown = encode(frames, tmp_path / "unknown.mp4", fps)
        answer = await _look_up(http, unknown, csrf)
        assert answer.status_code == 200
        assert "No clip known to this server matches “unknown.mp4”" in _words(answer.text)

        text = tmp_path / "notes.mp4"
        text.write_text("not a video")
        answer = await _look_up(http, text, csrf)
        assert answer.status_code == 422
        assert "The file is not a video this server can read" in _words(answer.text)

        answer = await http.post("/provenance", data={"csrf": csrf})
        assert answer.status_code == 422 and "Choose a video file" in _words(answer.text)
        answer = await _look_up(http, copy, "forged")
        assert answer.status_code == 403 and "The form expired" in _words(answer.text)


async def test_a_clip_a_peer_named_says_so(
    web: httpx.ASGITransport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clip unknown here that a peer named (fedisora.federation.peer_lookup) is shown with
    the peer's name: its answer, not this server's."""
    from fedisora.federation import peer_lookup
    from fedisora.services.fingerprints import Match

    named = Match(
        url="https://peer.example/@zed/1",
        uri="https://peer.example/c/1",
        status_id=None,
        instance="peer.example",
        author="zed@peer.example",
        provenance="trusted",
        score=0.9,
        via="peer.example",
    )

    async def ask(query: object, settings: object, **kwargs: object) -> list[Match]:
        return [named]

    monkeypatch.setattr(peer_lookup, "ask_peers", ask)
    frames, fps = synthetic_clip(4444)
    unknown = encode(frames, tmp_path / "elsewhere.mp4", fps)
    async with browser(web) as http:
        csrf = form_csrf((await http.get("/provenance")).text)
        answer = await _look_up(http, unknown, csrf)
    assert answer.status_code == 200
    words = _words(answer.text)
    assert "a clip by @zed@peer.example on peer.example: a 90&nbsp;% match" in words
    assert (
        "Provenance: made and signed by the render queue of that server (C2PA manifest) "
        "(as peer.example says: this server did not know the clip and asked peer.example)."
    ) in words
    assert 'href="https://peer.example/@zed/1"' in answer.text
