"""A clip's cameos on the wire: built into the Note (a Mention per person, the person named in
the content, ``cameos`` with each signed grant) and read back, malformed entries kept.

Fixed vectors: the grant is the one of docs/fep-likeness-consent.md (Ed25519 seed 00..1f).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from activitypub import consent, objects

OWNER_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ALICE = "https://alice.example/users/alice"
BOB = "https://bob.example/users/bob"
CAROL = "https://carol.example/users/carol"
PUBLISHED = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)
CLIP = "https://bob.example/users/bob/clips/1"


def _grant(grantee: str = BOB, grant_id: str = "https://alice.example/likeness/grants/1") -> Any:
    doc = consent.build_grant(
        grant_id=grant_id,
        owner=ALICE,
        grantee=grantee,
        scope="publish",
        restrictions_digest=consent.restrictions_digest(""),
        published=PUBLISHED,
    )
    return consent.sign_grant(doc, OWNER_KEY, key_id=f"{ALICE}#ed25519-key", created=PUBLISHED)


def _note(*, content: str = "<p>dunes</p>", mentions: Any = (), cameos: Any = ()) -> dict[str, Any]:
    info = objects.NoteInfo(
        id=CLIP,
        attributed_to=BOB,
        content=content,
        published="2026-12-06T18:00:00Z",
        to=[objects.PUBLIC],
        cc=["https://bob.example/users/bob/followers", ALICE],
        language="en",
        video=objects.VideoInfo(url="https://bob.example/media/1.mp4"),
        mentions=mentions,
        cameos=cameos,
    )
    return objects.note_document(info)


ALICE_CAMEO = objects.CameoInfo(
    actor=ALICE, name="@alice@alice.example", consent=_grant(), url="https://alice.example/@alice"
)


def test_a_clip_with_a_cameo_names_the_person_and_carries_the_signed_grant() -> None:
    doc = _note(cameos=[ALICE_CAMEO])
    assert doc["tag"] == [{"type": "Mention", "href": ALICE, "name": "@alice@alice.example"}]
    assert doc["cameos"] == [{"type": "Cameo", "actor": ALICE, "consent": _grant()}]
    assert doc["cameos"][0]["consent"]["id"] == "https://alice.example/likeness/grants/1"
    # Servers that know nothing of cameos show a video post naming the person (Mastodon's
    # mention markup), in content and contentMap alike.
    expected = (
        '<p>dunes</p><p>With <span class="h-card" translate="no"><a '
        'href="https://alice.example/@alice" class="u-url mention">@<span>alice</span></a>'
        "</span></p>"
    )
    assert doc["content"] == expected
    assert doc["contentMap"] == {"en": expected}
    terms = doc["@context"][1]
    assert terms["cameos"] == {"@id": "fedisora:cameos", "@container": "@set"}
    assert terms["consent"] == {"@id": "fedisora:consent", "@type": "@id"}
    assert terms["Cameo"] == "fedisora:Cameo"


def test_a_person_mentioned_in_the_caption_is_not_named_twice() -> None:
    content = '<p>with <a href="https://alice.example/@alice">@alice</a></p>'
    doc = _note(content=content, mentions=[(ALICE, "@alice@alice.example")], cameos=[ALICE_CAMEO])
    assert doc["tag"] == [{"type": "Mention", "href": ALICE, "name": "@alice@alice.example"}]
    assert doc["content"] == content


def test_names_are_escaped_in_the_content() -> None:
    odd = objects.CameoInfo(
        actor=CAROL, name="@<b>carol</b>@carol.example", consent=_grant(), url='https://c/"x'
    )
    doc = _note(cameos=[odd])
    assert "<span>&lt;b&gt;carol&lt;/b&gt;</span>" in doc["content"]
    assert 'href="https://c/&quot;x"' in doc["content"]


def test_a_clip_without_cameos_is_unchanged() -> None:
    doc = _note()
    assert "cameos" not in doc
    assert doc["content"] == "<p>dunes</p>"
    assert objects.parse_note(doc).cameos == ()


def test_cameos_read_back() -> None:
    parsed = objects.parse_note(_note(cameos=[ALICE_CAMEO]))
    assert parsed.mentions == (ALICE,)
    assert parsed.cameos == (
        objects.ParsedCameo(
            actor=ALICE,
            consent_id="https://alice.example/likeness/grants/1",
            consent=_grant(),
        ),
    )


def test_a_consent_given_by_id_only_is_read_as_its_id() -> None:
    doc = _note()
    doc["cameos"] = {"type": "Cameo", "actor": {"id": ALICE}, "consent": "https://a/g/1"}
    assert objects.parse_cameos(doc) == (objects.ParsedCameo(ALICE, "https://a/g/1", None),)


@pytest.mark.parametrize(
    ("cameos", "problem"),
    [
        (["https://alice.example/users/alice"], "a cameo that is not an object"),
        ([{"consent": {"id": "https://a/g/1"}}], "a cameo without an actor"),
        ([{"actor": ALICE}], f"the cameo of {ALICE} carries no consent"),
        ([{"actor": ALICE, "consent": {"type": "LikenessAuthorization"}}], "carries no consent"),
        ([{"actor": 7, "consent": "https://a/g/1"}], "a cameo without an actor"),
        ([{"actor": ALICE, "consent": "x" * 3000}], "carries no consent"),
        ([{"actor": ALICE, "consent": "https://a/g/1"}] * 9, "more than 8 cameos"),
    ],
)
def test_malformed_cameos_are_kept_with_their_problem(cameos: Any, problem: str) -> None:
    """Never dropped: a clip with a malformed cameo is refused, not shown without it."""
    doc = _note()
    doc["cameos"] = cameos
    parsed = objects.parse_note(doc).cameos
    assert parsed
    assert problem in parsed[0].problem


def test_a_null_cameos_is_none() -> None:
    doc = _note()
    doc["cameos"] = None
    assert objects.parse_cameos(doc) == ()
