"""The PeerTube ``Video`` representation of a clip: served to PeerTube fetchers and at
``<clip>/video``; everyone else still gets the ``Note``. Its shape is compared with a
PeerTube video captured as a fixture, and our own parser reads it back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from factories import local_account, rendered_video
from fedhelpers import DOMAIN

from activitypub import objects
from fedisora.models import MediaFile
from fedisora.services import posts

AP = {"Accept": "application/activity+json"}
PEERTUBE = {**AP, "User-Agent": "PeerTube/7.0.1 (+https://peertube.example)"}
FIXTURES = Path(__file__).parents[1] / "fixtures" / "activitypub"


def _peertube_fixture() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / "peertube_video.json").read_text())
    return doc


async def test_peertube_fetcher_gets_a_video_others_get_the_note(
    client: httpx.AsyncClient,
) -> None:
    ann = await local_account("ann")
    media = await rendered_video(ann)
    await MediaFile.filter(pk=media.pk).update(
        size=812_345, poster_file="posters/1.jpg", sha256="ab" * 32
    )
    media = await MediaFile.get(pk=media.pk)
    clip = await posts.post_clip(ann, media, caption="fog over the #valley")
    path = clip.uri.removeprefix(f"https://{DOMAIN}")

    as_note = await client.get(path, headers=AP)
    assert as_note.headers["vary"] == "Accept, User-Agent"
    note = as_note.json()
    assert note["type"] == "Note"
    video = (await client.get(path, headers=PEERTUBE)).json()
    alternate = (await client.get(f"{path}/video", headers=AP)).json()
    assert video == alternate
    assert video["type"] == "Video" and video["id"] == clip.uri
    assert video["duration"] == "PT3S"
    assert video["name"] == "fog over the #valley"
    assert video["attributedTo"] == [{"type": "Person", "id": ann.uri}]
    assert video["to"] == note["to"] and video["cc"] == note["cc"]
    assert video["aiGenerated"] is True
    assert video["provenance"]["manifestDigest"] == "sha256:test"

    html_link, file_link = video["url"]
    assert html_link == {"type": "Link", "mediaType": "text/html", "href": clip.url or clip.uri}
    assert file_link["mediaType"] == "video/mp4"
    assert file_link["href"] == note["attachment"][0]["url"]
    assert (file_link["width"], file_link["height"]) == (256, 448)
    assert file_link["size"] == 812_345 and file_link["fps"] == 16.0
    assert video["icon"] == [
        {
            "type": "Image",
            "mediaType": "image/jpeg",
            "url": note["attachment"][0]["icon"]["url"],
            "width": 256,
            "height": 448,
        }
    ]
    assert video["tag"] == [{"type": "Hashtag", "href": note["tag"][0]["href"], "name": "valley"}]

    # Same keys as a real PeerTube video where they mean the same thing.
    peertube = _peertube_fixture()
    for key in ("duration", "url", "icon", "attributedTo", "commentsEnabled", "sensitive"):
        assert type(video[key]) is type(peertube[key]), key
    assert set(file_link) - {"digestMultibase"} <= set(peertube["url"][1]) | {"type"}
    context_terms = video["@context"][1]
    for term in ("size", "fps", "commentsEnabled", "aiGenerated"):
        assert term in context_terms, term

    parsed = objects.parse_note({k: v for k, v in video.items() if k != "@context"})
    assert parsed.attributed_to == ann.uri
    assert parsed.video is not None
    assert parsed.video.url == file_link["href"]
    assert parsed.video.duration == 3.0


async def test_video_representation_keeps_visibility_rules(client: httpx.AsyncClient) -> None:
    ann = await local_account("ann")
    private = await posts.post_clip(
        ann, await rendered_video(ann), caption="friends only", visibility="private"
    )
    path = private.uri.removeprefix(f"https://{DOMAIN}")
    assert (await client.get(path, headers=PEERTUBE)).status_code == 404
    assert (await client.get(f"{path}/video", headers=AP)).status_code == 404
    assert (await client.get(f"{path}/nothing", headers=AP)).status_code == 404


def test_video_document_needs_a_video_and_shortens_titles() -> None:
    info = objects.NoteInfo(
        id="https://a.example/c/1",
        attributed_to="https://a.example/u/ann",
        content="<p>" + "word " * 60 + "</p>",
        published="2026-01-01T00:00:00Z",
        to=[objects.PUBLIC],
        cc=[],
    )
    try:
        objects.video_document(info)
    except ValueError as exc:
        assert "video" in str(exc)
    else:
        raise AssertionError("a Video without a video file was built")
    with_video = objects.NoteInfo(**{**info.__dict__, "video": objects.VideoInfo(url="u")})
    doc = objects.video_document(with_video, context=False)
    assert len(doc["name"]) == objects.VIDEO_TITLE_LIMIT
    assert doc["name"].endswith("\u2026")
    assert doc["duration"] == "PT0S" and doc["icon"] == []
    assert "@context" not in doc
