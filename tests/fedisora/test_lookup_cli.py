"""``fedisora lookup FILE``: the clip a video is a copy of, through the service the API and the
``/provenance`` page use; exit 0 when named, 1 when unknown or refused (one clear line)."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from benchlookup import encode, synthetic_clip, transform_file
from fingerprint_clips import fingerprinted_clip
from instance import seed_database

from fedisora import urls
from fedisora.cli import main
from fedisora.config import load_settings
from fedisora.db import database


def _main(*argv: str) -> int:
    with ThreadPoolExecutor(1) as pool:  # as the program runs it: a loop of its own
        return pool.submit(main, ["lookup", *argv]).result()


def _seed_clip(env: dict[str, str], folder: Path) -> tuple[str, str, Path]:
    """A fingerprinted public clip in the instance's own database: (status id, url, video)."""

    async def seed() -> tuple[str, str, Path]:
        settings = load_settings(env)
        urls.configure(settings)
        async with database(settings):
            clip, video = await fingerprinted_clip("alice", 51, folder)
        return str(clip.pk), str(clip.url), video

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, seed()).result()


def test_lookup_names_the_clip_or_says_it_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("FEDISORA_DATABASE_URL", "FEDISORA_MEDIA_ROOT", "FEDISORA_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    env = {
        "FEDISORA_DATA_DIR": str(tmp_path / "data"),
        "FEDISORA_DOMAIN": "clips.example",
        "FEDISORA_SECRET_KEY": "k" * 40,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FEDISORA_LOG_LEVEL", "warning")
    seed_database(env)
    status_id, url, video = _seed_clip(env, tmp_path)

    copy = transform_file(video, tmp_path / "copy.mp4", "trim", seed=3)
    assert _main(str(copy)) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{copy}: a copy of {url} by @alice@clips.example (status {status_id}")
    assert "provenance trusted" in out

    assert _main(str(copy), "--json") == 0
    (match,) = json.loads(capsys.readouterr().out)["matches"]
    assert (match["status_id"], match["url"], match["author"]) == (
        status_id,
        url,
        "alice@clips.example",
    )

    frames, fps = synthetic_clip(5151)
    unknown = encode(frames, tmp_path / "unknown.mp4", fps)
    assert _main(str(unknown)) == 1
    assert capsys.readouterr().out == f"{unknown}: no clip known here matches it\n"
    assert _main(str(unknown), "--json") == 1
    assert json.loads(capsys.readouterr().out) == {"matches": []}

    junk = tmp_path / "junk.mp4"
    junk.write_text("no video here")
    for path, message in (
        (junk, "error: the file is not a video this server can read"),
        (tmp_path / "missing.mp4", f"error: {tmp_path / 'missing.mp4'} does not exist"),
    ):
        assert _main(str(path)) == 1
        captured = capsys.readouterr()
        assert captured.err.startswith(message), captured.err
        assert "Traceback" not in captured.err and captured.out == ""
