"""The pure JSON-LD shapes of activitypub.objects, against fixed values and real peers' shapes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activitypub import objects
from activitypub._base58 import b58decode

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "activitypub"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def test_objects_module_is_pure() -> None:
    script = (
        "import json, sys, activitypub.objects\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    loaded = set(json.loads(out.stdout))
    assert loaded.isdisjoint({"tortoise", "httpx", "starlette", "fedisora"})


def _clip_note(**overrides: Any) -> objects.NoteInfo:
    video = objects.VideoInfo(
        url="https://a.example/media/clips/1.mp4",
        name="a red fox jumping over snow",
        width=256,
        height=448,
        blurhash="LEHV6nWB2yk8pyo0adR*.7kCMdnj",
        poster_url="https://a.example/media/clips/1.jpg",
        size=123456,
        duration=3.5,
        sha256_hex=hashlib.sha256(b"video bytes").hexdigest(),
        provenance=objects.ProvenanceInfo("sha256:abc123", "trusted"),
    )
    values: dict[str, Any] = {
        "id": "https://a.example/users/ann/clips/7",
        "attributed_to": "https://a.example/users/ann",
        "content": "<p>fox <a href='https://a.example/tags/snow'>#snow</a></p>",
        "published": "2026-01-02T03:04:05Z",
        "to": [objects.PUBLIC],
        "cc": ["https://a.example/users/ann/followers"],
        "url": "https://a.example/@ann/7",
        "sensitive": True,
        "language": "en",
        "video": video,
        "hashtags": [("snow", "https://a.example/tags/snow")],
        "mentions": [("https://b.example/users/bob", "@bob@b.example")],
        "quote": "https://b.example/users/bob/clips/3",
    }
    values.update(overrides)
    return objects.NoteInfo(**values)


def test_clip_note_shape() -> None:
    doc = objects.note_document(_clip_note())
    terms = doc["@context"][1]
    assert doc["@context"][0] == objects.AS_CONTEXT
    assert terms["sensitive"] == "as:sensitive"
    assert terms["aiGenerated"] == "fedisora:aiGenerated"
    assert terms["fedisora"] == objects.FEDISORA_NS
    assert terms["quote"]["@id"] == "https://w3id.org/fep/044f#quote"
    assert doc["type"] == "Note"
    assert doc["sensitive"] is True
    assert doc["contentMap"] == {"en": doc["content"]}
    assert doc["aiGenerated"] is True
    assert doc["provenance"] == {
        "type": "C2PAManifest",
        "provenanceState": "trusted",
        "manifestDigest": "sha256:abc123",
    }
    [attachment] = doc["attachment"]
    assert attachment["type"] == "Document"
    assert attachment["mediaType"] == "video/mp4"
    assert attachment["name"] == "a red fox jumping over snow"
    assert (attachment["width"], attachment["height"]) == (256, 448)
    assert attachment["icon"]["url"] == "https://a.example/media/clips/1.jpg"
    assert attachment["duration"] == "PT3.5S"
    assert attachment["size"] == 123456
    assert attachment["aiGenerated"] is True
    # FEP-1311: multibase (z = base58btc) of a sha2-256 multihash (0x12, length 0x20).
    decoded = b58decode(attachment["digestMultibase"][1:])
    assert decoded == b"\x12\x20" + hashlib.sha256(b"video bytes").digest()
    tags = {t["type"]: t for t in doc["tag"]}
    assert tags["Hashtag"] == {
        "type": "Hashtag",
        "href": "https://a.example/tags/snow",
        "name": "#snow",
    }
    assert tags["Mention"]["href"] == "https://b.example/users/bob"
    assert doc["quote"] == "https://b.example/users/bob/clips/3"
    assert tags["Link"]["href"] == doc["quote"]  # FEP-e232 fallback
    json.dumps(doc)  # serialisable as is


def test_comment_note_has_in_reply_to_and_no_attachment() -> None:
    doc = objects.note_document(
        _clip_note(video=None, in_reply_to="https://b.example/clips/1", quote=None)
    )
    assert doc["inReplyTo"] == "https://b.example/clips/1"
    assert doc["attachment"] == []
    assert "aiGenerated" not in doc


def test_round_trip_through_parse_note() -> None:
    parsed = objects.parse_note(objects.note_document(_clip_note()))
    assert parsed.id == "https://a.example/users/ann/clips/7"
    assert parsed.attributed_to == "https://a.example/users/ann"
    assert parsed.sensitive is True
    assert parsed.language == "en"
    assert parsed.hashtags == ("snow",)
    assert parsed.mentions == ("https://b.example/users/bob",)
    assert parsed.quote == "https://b.example/users/bob/clips/3"
    assert parsed.ai_generated is True
    assert parsed.manifest_digest == "sha256:abc123"
    assert parsed.video is not None
    assert parsed.video.duration == 3.5
    assert parsed.video.poster_url == "https://a.example/media/clips/1.jpg"
    assert objects.visibility_of(parsed.to, parsed.cc, "https://a.example/users/ann/followers") == (
        "public"
    )


def test_mastodon_video_note() -> None:
    note = objects.parse_note(fixture("mastodon_create_note_video.json")["object"])
    assert note.type == "Note"
    assert note.attributed_to == "https://mastodon.example/users/alice"
    assert note.sensitive is True
    assert note.language == "en"
    assert note.hashtags == ("seavideo",)
    assert note.in_reply_to is None
    assert note.ai_generated is None  # Mastodon sends no AI marker
    assert note.video is not None
    assert note.video.url.endswith("/original/0a1b2c3d4e5f6a7b.mp4")
    assert note.video.media_type == "video/mp4"
    assert (note.video.width, note.video.height) == (720, 1280)
    assert note.video.blurhash == "UMF~gVof0Kj[~qayRjayM{ayofj[M{fQWBj["
    assert note.video.name == "Slow waves rolling onto a beach at sunset"
    assert objects.html_to_text(note.content_html) == "Waves at dusk #SeaVideo"


def test_loops_video_note() -> None:
    note = objects.parse_note(fixture("loops_create_note_video.json")["object"])
    assert note.video is not None
    assert note.video.duration == 14.0
    assert note.hashtags == ("skate", "loops")
    assert note.url == "https://loops.example/v/aBcDeF12"


def test_peertube_video_picks_person_and_largest_mp4() -> None:
    note = objects.parse_note(fixture("peertube_video.json"))
    assert note.type == "Video"
    assert note.attributed_to == "https://peertube.example/accounts/bob"
    assert note.video is not None
    assert note.video.url.endswith("-1080.mp4")
    assert (note.video.width, note.video.height, note.video.size) == (1920, 1080, 9123456)
    assert note.video.duration == 30.0
    assert note.video.poster_url == "https://peertube.example/lazy-static/thumbnails/9c9de5e8.jpg"
    assert note.hashtags == ("timelapse",)
    assert objects.visibility_of(
        note.to, note.cc, "https://peertube.example/accounts/bob/followers"
    ) == ("public")


def test_mastodon_actor() -> None:
    actor = objects.parse_actor(fixture("mastodon_actor.json"))
    assert actor.id == "https://mastodon.example/users/alice"
    assert actor.username == "alice"
    assert actor.shared_inbox == "https://mastodon.example/inbox"
    assert actor.public_key_id == "https://mastodon.example/users/alice#main-key"
    assert actor.public_key_pem is not None and "BEGIN PUBLIC KEY" in actor.public_key_pem
    assert actor.featured == "https://mastodon.example/users/alice/collections/featured"
    assert actor.icon_url is not None and actor.icon_url.endswith(".png")
    assert actor.indexable is False and actor.discoverable is True
    assert objects.html_to_text(actor.summary_html) == "I post #art and cats."


def test_actor_document_with_multikey_parses_back() -> None:
    info = objects.ActorInfo(
        id="https://a.example/users/ann",
        type="Person",
        username="ann",
        name="Ann",
        summary="",
        url="https://a.example/@ann",
        inbox="https://a.example/users/ann/inbox",
        outbox="https://a.example/users/ann/outbox",
        followers="https://a.example/users/ann/followers",
        following="https://a.example/users/ann/following",
        featured="https://a.example/users/ann/collections/featured",
        shared_inbox="https://a.example/inbox",
        public_key_id="https://a.example/users/ann#main-key",
        public_key_pem="-----BEGIN PUBLIC KEY-----\nX\n-----END PUBLIC KEY-----\n",
        published="2026-01-01T00:00:00Z",
        ed25519_key_id="https://a.example/users/ann#ed25519-key",
        ed25519_multibase="z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",
        manually_approves_followers=True,
    )
    doc = objects.actor_document(info)
    assert doc["assertionMethod"] == [
        {
            "id": "https://a.example/users/ann#ed25519-key",
            "type": "Multikey",
            "controller": "https://a.example/users/ann",
            "publicKeyMultibase": "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",
        }
    ]
    assert "https://w3id.org/security/multikey/v1" in doc["@context"]
    back = objects.parse_actor(doc)
    assert back.ed25519_multibase == info.ed25519_multibase
    assert back.manually_approves_followers is True
    assert back.shared_inbox == "https://a.example/inbox"


@pytest.mark.parametrize(
    ("visibility", "expected_to", "expected_cc"),
    [
        ("public", [objects.PUBLIC], ["F", "M"]),
        ("unlisted", ["F"], [objects.PUBLIC, "M"]),
        ("private", ["F"], ["M"]),
        ("direct", ["M"], []),
    ],
)
def test_addressing_round_trip(
    visibility: str, expected_to: list[str], expected_cc: list[str]
) -> None:
    to, cc = objects.addressing(visibility, "F", ["M"])
    assert (to, cc) == (expected_to, expected_cc)
    assert objects.visibility_of(to, cc, "F") == visibility


def test_parse_rejects_what_it_cannot_use() -> None:
    with pytest.raises(objects.InvalidObject):
        objects.parse_note({"type": "Note", "attributedTo": "https://x.example/u"})
    with pytest.raises(objects.InvalidObject):
        objects.parse_note({"type": "Note", "id": "https://x.example/1"})
    with pytest.raises(objects.InvalidObject):
        objects.parse_note({"type": "Tombstone", "id": "https://x.example/1"})
    with pytest.raises(objects.InvalidObject):
        objects.parse_actor({"type": "Note", "id": "https://x.example/1", "inbox": "x"})
    with pytest.raises(objects.InvalidObject):
        objects.parse_actor(
            {
                "type": "Person",
                "id": "https://x.example/u",
                "inbox": "https://x.example/u/inbox",
                "publicKey": {"id": "k", "owner": "https://evil.example/u", "publicKeyPem": "p"},
            }
        )


def test_activities_and_durations() -> None:
    inner = objects.activity("Like", "https://a.example/l/1", "A", "O", context=False)
    undo = objects.activity("Undo", "https://a.example/l/1#undo", "A", inner)
    assert undo["@context"] == objects.OBJECT_CONTEXT
    assert "@context" not in undo["object"]
    assert undo["object"]["type"] == "Like"
    assert objects.tombstone("X") == {"id": "X", "type": "Tombstone", "formerType": "Note"}
    assert objects.iso_duration(14) == "PT14S"
    assert objects.parse_iso_duration("PT1M3.5S") == 63.5
    assert objects.parse_iso_duration("30s") is None
    assert objects.same_origin("https://a.example/x", "https://a.example:443/y") is True
    assert objects.same_origin("https://a.example/x", "http://a.example/y") is False
    assert objects.same_origin("https://a.example/x", "https://a.example.evil/y") is False


def test_over_long_values_do_not_reach_the_database() -> None:
    long_url = "https://x.example/" + "a" * 3000
    note = objects.parse_note(
        {
            "id": "https://x.example/1",
            "type": "Note",
            "attributedTo": "https://x.example/u",
            "url": long_url,
            "attachment": [
                {
                    "type": "Document",
                    "mediaType": "video/mp4",
                    "url": "https://x.example/v.mp4",
                    "blurhash": "L" * 500,
                    "icon": {"type": "Image", "url": long_url},
                }
            ],
        }
    )
    assert note.url is None
    assert note.video is not None
    assert note.video.blurhash is None and note.video.poster_url is None
    with pytest.raises(objects.InvalidObject):
        objects.parse_note(
            {
                "id": "https://x.example/1",
                "type": "Note",
                "attributedTo": "https://x.example/u",
                "attachment": [{"type": "Document", "mediaType": "video/mp4", "url": long_url}],
            }
        )
    with pytest.raises(objects.InvalidObject):
        objects.parse_note(
            {
                "id": "https://x.example/2",
                "type": "Note",
                "attributedTo": "https://x.example/u",
                "inReplyTo": long_url,
            }
        )


@pytest.mark.parametrize(
    "bad",
    [
        "javascript:alert(1)",
        "data:text/html,<b>x</b>",
        "https://",
        "//x.example/a",
        "ftp://x.example/a",
        "https://x.example/a b",
        "https://x.example/\n",
    ],
)
def test_only_http_urls_are_kept_from_remote_objects(bad: str) -> None:
    """What a peer names as a link, an image or a video ends up in clients' hrefs and
    players: anything but an absolute http(s) URL is dropped (a video: the object is
    refused, since a clip without its video is nothing)."""
    actor = objects.parse_actor(
        {
            "id": "https://x.example/u",
            "type": "Person",
            "inbox": "https://x.example/u/inbox",
            "url": bad,
            "icon": {"type": "Image", "url": bad},
            "image": {"type": "Image", "url": bad},
        }
    )
    assert actor.url is None and actor.icon_url is None and actor.image_url is None
    video = {"type": "Document", "mediaType": "video/mp4", "url": "https://x.example/v.mp4"}
    note = objects.parse_note(
        {
            "id": "https://x.example/1",
            "type": "Note",
            "attributedTo": "https://x.example/u",
            "url": bad,
            "attachment": [dict(video, icon={"type": "Image", "url": bad})],
        }
    )
    assert note.url is None
    assert note.video is not None and note.video.poster_url is None
    with pytest.raises(objects.InvalidObject, match="http"):
        objects.parse_note(
            {
                "id": "https://x.example/2",
                "type": "Note",
                "attributedTo": "https://x.example/u",
                "attachment": [dict(video, url=bad)],
            }
        )
    good = objects.parse_actor(
        {
            "id": "https://x.example/u",
            "type": "Person",
            "inbox": "https://x.example/i",
            "url": "HTTPS://x.example/@u",
            "icon": "http://x.example/a.png",
        }
    )
    assert good.url == "HTTPS://x.example/@u" and good.icon_url == "http://x.example/a.png"


_url_parts = st.sampled_from(
    [
        "https",
        "HTTP",
        "http",
        "",
        "https://",
        "://",
        "a.example",
        "A.Example",
        ":443",
        ":80",
        ":x",
        "@",
        "u@",
        "/",
        "?",
        "#",
        "[::1]",
        "\t",
        " ",
        "evil",
        "x",
        ".",
        ":",
    ]
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(_url_parts, max_size=8).map("".join), st.lists(_url_parts, max_size=8).map("".join))
def test_the_same_origin_shortcut_agrees_with_comparing_parsed_urls(a: str, b: str) -> None:
    """same_origin skips parsing *a* when it begins with *b*'s scheme and authority; the
    answer must be the one comparing both parsed URLs gives."""

    def parsed(url: str) -> tuple[str, str | None, int | None]:
        objects._origin.cache_clear()
        return objects._origin(url)

    for first, second in ((a, b), (b + a, b), (b, b + a)):
        expected = parsed(first)[1] is not None and parsed(first) == parsed(second)
        assert objects.same_origin(first, second) is expected, (first, second)
