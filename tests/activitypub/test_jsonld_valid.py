"""Every document shape fedisora builds is strict JSON-LD (issue 19, point 1).

Each builder of ``activitypub`` (actors, clips as Note and as PeerTube Video, comments,
collections, every activity, quote stamps, likeness consent objects and the activities
around them) is expanded with pyld over the bundled contexts (tests/fixtures/jsonld, never
fetched); a term that is dropped or expands to a blank node, an undefined type, or a JSON-LD
error (a protected term redefined) fails the test with the document and the term named.
The same documents as the running instance serves and sends them (from database rows) are
checked in tests/federation/test_fed_jsonld.py.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from jsonld_check import NotBundled, assert_valid, bundled_loader, problems
from pyld import jsonld

from activitypub import consent, integrity, keys, objects
from fedisora.federation import cameo_clips, likeness

A = "https://a.example"
ANN = f"{A}/users/ann"
BOB = "https://b.example/users/bob"
CLIP = f"{ANN}/clips/7"
OWNER_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLISHED = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)


def _actor(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": ANN,
        "type": "Person",
        "username": "ann",
        "name": "Ann",
        "summary": "<p>foxes</p>",
        "url": f"{A}/@ann",
        "inbox": f"{ANN}/inbox",
        "outbox": f"{ANN}/outbox",
        "followers": f"{ANN}/followers",
        "following": f"{ANN}/following",
        "featured": f"{ANN}/featured",
        "shared_inbox": f"{A}/inbox",
        "public_key_id": f"{ANN}#main-key",
        "public_key_pem": keys.public_key_to_pem(keys.generate_rsa_key().public_key()),
        "published": "2026-01-01T00:00:00Z",
        "ed25519_key_id": f"{ANN}#ed25519-key",
        "ed25519_multibase": keys.public_key_to_multibase(OWNER_KEY.public_key()),
        "icon_url": f"{A}/media/avatars/ann.png",
        "image_url": f"{A}/media/headers/ann.jpg",
        "manually_approves_followers": True,
        "also_known_as": ("https://old.example/users/ann",),
    }
    values.update(overrides)
    return objects.actor_document(objects.ActorInfo(**values))


def _grant(grantee: str = BOB) -> dict[str, Any]:
    doc = consent.build_grant(
        grant_id=f"{A}/likeness/grants/1",
        owner=ANN,
        grantee=grantee,
        scope="publish",
        restrictions_digest=consent.restrictions_digest("never in ads"),
        published=PUBLISHED,
        expires=datetime(2027, 1, 6, tzinfo=UTC),
        max_uses=1,
    )
    return consent.sign_grant(doc, OWNER_KEY, key_id=f"{ANN}#ed25519-key", created=PUBLISHED)


def _revocation(revoked: str) -> dict[str, Any]:
    doc = consent.build_revocation(
        revocation_id=f"{A}/likeness/revocations/1",
        owner=ANN,
        revoked=revoked,
        published=PUBLISHED,
        take_down=True,
    )
    return consent.sign_revocation(doc, OWNER_KEY, key_id=f"{ANN}#ed25519-key", created=PUBLISHED)


def _clip_info(**overrides: Any) -> objects.NoteInfo:
    video = objects.VideoInfo(
        url=f"{A}/media/clips/7.mp4",
        name="a red fox jumping over snow",
        width=256,
        height=448,
        blurhash="LEHV6nWB2yk8pyo0adR*.7kCMdnj",
        poster_url=f"{A}/media/clips/7.jpg",
        size=123456,
        duration=3.5,
        sha256_hex=hashlib.sha256(b"video bytes").hexdigest(),
        provenance=objects.ProvenanceInfo("sha256:abc123", "trusted"),
        fps=24.0,
        poster_width=256,
        poster_height=448,
    )
    values: dict[str, Any] = {
        "id": CLIP,
        "attributed_to": ANN,
        "content": "<p>fox <a href='https://a.example/tags/snow'>#snow</a></p>",
        "published": "2026-01-02T03:04:05Z",
        "updated": "2026-01-02T04:04:05Z",
        "to": [objects.PUBLIC],
        "cc": [f"{ANN}/followers"],
        "url": f"{A}/@ann/7",
        "summary": "snow",
        "sensitive": True,
        "language": "en",
        "video": video,
        "hashtags": [("snow", f"{A}/tags/snow")],
        "mentions": [(BOB, "@bob@b.example")],
        "quote": "https://b.example/users/bob/clips/3",
        "replies": f"{CLIP}/replies",
        "likes": f"{CLIP}/likes",
        "shares": f"{CLIP}/shares",
        "cameos": [
            objects.CameoInfo(
                actor="https://c.example/users/cy",
                name="@cy@c.example",
                consent=_grant(ANN),
                url="https://c.example/@cy",
            )
        ],
        "extra": {
            "quoteAuthorization": f"{A}/stamps/1",
            "interactionPolicy": {
                "canQuote": {"automaticApproval": [objects.PUBLIC]},
            },
            "canCameo": None,
        },
    }
    values.update(overrides)
    return objects.NoteInfo(**values)


def _comment() -> dict[str, Any]:
    return objects.note_document(
        objects.NoteInfo(
            id=f"{ANN}/comments/9",
            attributed_to=ANN,
            content="<p>lovely</p>",
            published="2026-01-02T05:00:00Z",
            to=[objects.PUBLIC],
            cc=[f"{ANN}/followers", BOB],
            in_reply_to="https://b.example/users/bob/clips/3",
            mentions=[(BOB, "@bob@b.example")],
            language="en",
        )
    )


def _nested(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "@context"}


def _documents() -> dict[str, Any]:
    """Every shape, named; activities nest what the delivery code nests."""
    note = objects.note_document(_clip_info())
    comment = _comment()
    follow = objects.activity("Follow", f"{ANN}#follows/1", ANN, BOB, context=False)
    like = objects.activity("Like", f"{ANN}#likes/1", ANN, CLIP, context=False)
    boost = objects.activity("Announce", f"{ANN}/boosts/1", ANN, CLIP, context=False)
    block = objects.activity("Block", f"{ANN}#blocks/1", ANN, BOB, context=False)
    quote_request = objects.activity(
        "QuoteRequest",
        f"{ANN}/quote-requests/1",
        ANN,
        "https://b.example/users/bob/clips/3",
        instrument=CLIP,
        context=False,
    )
    stamp = objects.quote_authorization(f"{A}/stamps/1", ANN, BOB + "/clips/9", CLIP)
    request = likeness.cameo_request(f"{A}/likeness/requests/1", BOB, ANN, accept_restrictions=True)
    grant = _grant()
    docs: dict[str, Any] = {
        "actor": _actor(),
        "suspended actor": _actor(suspended=True, summary="", icon_url=None, image_url=None),
        "instance actor": _actor(
            id=f"{A}/actor", type="Application", username=A[8:], ed25519_key_id=None
        ),
        "clip as Note": note,
        "clip as Note, no video fields": objects.note_document(
            _clip_info(video=objects.VideoInfo(url=f"{A}/media/clips/7.mp4"), cameos=())
        ),
        "clip as PeerTube Video": objects.video_document(_clip_info()),
        "comment": comment,
        "collection": objects.collection(f"{ANN}/followers", 3),
        "collection with first": objects.collection(f"{ANN}/outbox", 3, first=f"{ANN}/outbox?p=1"),
        "collection page": objects.collection(
            f"{ANN}/outbox?page=true",
            1,
            items=[objects.activity("Create", f"{CLIP}/activity", ANN, _nested(note))],
            part_of=f"{ANN}/outbox",
            next_page=f"{ANN}/outbox?page=true&max_id=3",
        ),
        "unordered collection page": objects.collection(
            f"{CLIP}/likes?page=1", 1, items=[ANN], ordered=False, part_of=f"{CLIP}/likes"
        ),
        "quote stamp": stamp,
        "Create{Note}": objects.activity(
            "Create", f"{CLIP}/activity", ANN, _nested(note), to=note["to"], cc=note["cc"]
        ),
        "Update{Note}": objects.activity("Update", f"{CLIP}/updates/1", ANN, _nested(note)),
        "Create{comment}": objects.activity("Create", f"{ANN}/c/9/a", ANN, _nested(comment)),
        "Delete{Tombstone}": objects.activity(
            "Delete",
            f"{CLIP}#delete",
            ANN,
            objects.tombstone(CLIP, "Note", "2026-01-03T00:00:00Z"),
            to=[objects.PUBLIC],
        ),
        "Delete{actor}": objects.activity("Delete", f"{ANN}#delete", ANN, ANN),
        "Update{actor}": objects.with_context(
            objects.activity("Update", f"{ANN}#updates/1", ANN, _nested(_actor()), context=False),
            objects.ACTOR_CONTEXT,
        ),
        "Follow": objects.activity("Follow", follow["id"], ANN, BOB),
        "Accept{Follow}": objects.activity("Accept", f"{BOB}#accepts/1", BOB, follow),
        "Reject{Follow}": objects.activity("Reject", f"{BOB}#rejects/1", BOB, follow),
        "Undo{Follow}": objects.activity("Undo", f"{ANN}#follows/1/undo", ANN, follow),
        "Like": objects.activity("Like", like["id"], ANN, CLIP),
        "Undo{Like}": objects.activity("Undo", f"{ANN}#likes/1/undo", ANN, like),
        "Announce": objects.activity(
            "Announce", boost["id"], ANN, CLIP, to=[objects.PUBLIC], published=note["published"]
        ),
        "Undo{Announce}": objects.activity("Undo", f"{ANN}/boosts/1/undo", ANN, boost),
        "Block": objects.activity("Block", block["id"], ANN, BOB),
        "Undo{Block}": objects.activity("Undo", f"{ANN}#blocks/1/undo", ANN, block),
        "Flag": objects.activity(
            "Flag", f"{A}/reports/1", f"{A}/actor", [BOB, CLIP], content="spam"
        ),
        "Move": objects.activity(
            "Move", f"{ANN}#moves/1", ANN, ANN, target="https://new.example/users/ann"
        ),
        "QuoteRequest": objects.activity(
            "QuoteRequest", quote_request["id"], ANN, quote_request["object"], instrument=CLIP
        ),
        "Accept{QuoteRequest} with stamp": objects.activity(
            "Accept", f"{BOB}#accepts/q1", BOB, quote_request, result=_nested(stamp)
        ),
        "Reject{QuoteRequest}": objects.activity("Reject", f"{BOB}#rejects/q1", BOB, quote_request),
        "likeness grant": grant,
        "likeness revocation of a grant": _revocation(grant["id"]),
        "likeness revocation of the whole likeness": _revocation(ANN),
        "CameoRequest": request,
        "Accept{CameoRequest} with the grant": likeness.answer_activity(
            "Accept", f"{A}/likeness/answers/1", ANN, _nested(request), grant=grant
        ),
        "Reject{CameoRequest}": likeness.answer_activity(
            "Reject", f"{A}/likeness/answers/2", ANN, _nested(request), summary="restrictions"
        ),
        "LikenessUse": likeness.likeness_use(
            f"{BOB}/likeness/uses/1", BOB, ANN, grant=grant["id"], kind="published", clip=BOB + "/c"
        ),
        "LikenessUse refused": likeness.likeness_use(
            f"{BOB}/likeness/uses/2", BOB, ANN, grant=grant["id"], kind="refused", reason="revoked"
        ),
        "Offer{grant}": likeness.grant_offer(ANN, grant),
        "Delete{grant} with the revocation": cameo_clips.revocation_activity(
            _revocation(grant["id"]), to=[BOB]
        ),
        "Delete{likeness} with the revocation": cameo_clips.revocation_activity(_revocation(ANN)),
    }
    return docs


DOCUMENTS = _documents()


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_document_is_strict_json_ld(name: str) -> None:
    assert_valid(name, DOCUMENTS[name])


#: The Data Integrity context of a proof-carrying document: v2 is fedisora's
#: (activitypub.integrity); Fedify's actors name v1, whose copy defines a protected
#: ``digestMultibase``.
DI_V2 = integrity.DATA_INTEGRITY_CONTEXT
DI_V1 = "https://w3id.org/security/data-integrity/v1"


def _contexts(value: Any) -> list[Any]:
    """Every context entry named anywhere in *value* (embedded objects' too)."""
    found: list[Any] = []
    if isinstance(value, dict):
        context = value.get("@context")
        found.extend(context if isinstance(context, list) else [context] if context else [])
        for key, item in value.items():
            if key != "@context":
                found.extend(_contexts(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_contexts(item))
    return found


#: v2 with every document; v1 with those that name no Data Integrity context already (one
#: with v2 inside, such as a signed grant, cannot also have v1 around it: the two W3C
#: contexts define ``proof`` differently, both protected).
PROOF_CASES = [(name, DI_V2) for name in sorted(DOCUMENTS)] + [
    (name, DI_V1) for name in sorted(DOCUMENTS) if DI_V2 not in _contexts(DOCUMENTS[name])
]


@pytest.mark.parametrize(("name", "proof_context"), PROOF_CASES)
def test_document_with_a_proof_context_is_strict_json_ld(name: str, proof_context: str) -> None:
    """With a Data Integrity context after ActivityStreams, as a document carrying an
    FEP-8b32 proof has it: no protected term of that context is redefined (a Fedify peer
    failed on our actor with "protected term redefinition: digestMultibase")."""
    doc = dict(DOCUMENTS[name])
    context = doc["@context"] if isinstance(doc["@context"], list) else [doc["@context"]]
    if proof_context not in context:
        context = [context[0], proof_context, *context[1:]]
    doc["@context"] = context
    unsigned = {k: v for k, v in doc.items() if k != "proof"}
    signed = integrity.sign(unsigned, OWNER_KEY, f"{ANN}#ed25519-key", created=PUBLISHED)
    assert_valid(f"{name} with {proof_context} and a proof", signed)


def test_the_proof_cases_cover_both_contexts() -> None:
    assert {"actor", "clip as Note, no video fields", "Create{comment}"} <= {
        name for name, context in PROOF_CASES if context == DI_V1
    }


def test_the_actors_ed25519_key_is_an_assertion_method_to_a_json_ld_reader() -> None:
    [node] = jsonld.expand(_actor(), {"documentLoader": bundled_loader})
    [method] = node["https://w3id.org/security#assertionMethod"]
    assert method["@id"] == f"{ANN}#ed25519-key"
    assert method["@type"] == ["https://w3id.org/security#Multikey"]
    assert method["https://w3id.org/security#controller"] == [{"@id": ANN}]
    assert method["https://w3id.org/security#publicKeyMultibase"][0]["@value"].startswith("z6Mk")
    [key] = node["https://w3id.org/security#publicKey"]
    assert key["@id"] == f"{ANN}#main-key"


def test_the_video_size_is_peertubes_term() -> None:
    """``size`` (bytes of the file) is PeerTube's ``pt:size``, as FEP-1311 names it, on the
    Note's attachment and on the Video's file link alike."""
    [note] = jsonld.expand(DOCUMENTS["clip as Note"], {"documentLoader": bundled_loader})
    [attachment] = note["https://www.w3.org/ns/activitystreams#attachment"]
    assert attachment["https://joinpeertube.org/ns#size"] == [{"@value": 123456}]
    [video] = jsonld.expand(DOCUMENTS["clip as PeerTube Video"], {"documentLoader": bundled_loader})
    file_link = video["https://www.w3.org/ns/activitystreams#url"][1]
    assert file_link["https://joinpeertube.org/ns#size"] == [{"@value": 123456}]


# --- the check itself finds what it must --------------------------------------------------------


def test_the_check_names_an_undefined_term_and_type() -> None:
    doc = {
        "@context": objects.AS_CONTEXT,
        "id": CLIP,
        "type": "Clip",
        "attachment": [{"type": "Document", "size": 3}],
    }
    assert problems(doc) == [
        "term 'size' expands to the blank node _:size (at $.attachment[0].size)",
        "type 'Clip' expands to the blank node _:Clip (at $.type)",
    ]


def test_the_check_names_a_dropped_term() -> None:
    doc = {"@context": [objects.AS_CONTEXT, {"@vocab": None}], "id": CLIP, "sizes": 3}
    assert problems(doc) == ["term 'sizes' is dropped: it is no IRI (at $.sizes)"]


def test_the_check_fails_on_a_protected_term_redefinition() -> None:
    doc = {
        "@context": [
            objects.AS_CONTEXT,
            DI_V1,
            {"digestMultibase": "https://w3id.org/security#digestMultibase"},
        ],
        "id": CLIP,
    }
    with pytest.raises(AssertionError, match=r"protected term redefinition.*digestMultibase"):
        assert_valid("redefined", doc)


def test_the_check_fetches_nothing() -> None:
    doc = {"@context": "https://example.com/ns/context.jsonld", "id": CLIP}
    with pytest.raises(jsonld.JsonLdError) as caught:
        problems(doc)
    cause: BaseException | None = caught.value
    while cause is not None and not isinstance(cause, NotBundled):
        cause = cause.__cause__
    assert isinstance(cause, NotBundled)
