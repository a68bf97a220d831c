"""``RsaSignature2017`` Linked Data signatures (activitypub.ld_signatures): a vector signed by
Fedify (tests/fixtures/ld_signatures/README.md says how it was made) verifies, and so does
what our own signer makes; tampered documents, other keys, other signature types, contexts
that change what a term means and documents too costly to canonicalise are refused with
their reason; members no context defines are not signed, and dropped."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from activitypub import contexts, keys, ld_signatures
from activitypub.errors import InvalidProof, MalformedProof, ProofError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
VECTOR = FIXTURES / "ld_signatures" / "fedify-forwarded-reply.json"
VECTOR_KEY = FIXTURES / "ld_signatures" / "fedify-forwarded-reply.pub.pem"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
BOB = "https://mastodon.example/users/bob"


def _vector() -> dict[str, Any]:
    doc = json.loads(VECTOR.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def _vector_key() -> rsa.RSAPublicKey:
    key = keys.load_public_key_pem(VECTOR_KEY.read_text(encoding="utf-8"))
    assert isinstance(key, rsa.RSAPublicKey)
    return key


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    key = keys.generate_rsa_key()
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def _reply(n: int = 1, **note: Any) -> dict[str, Any]:
    """A Create(Note) reply shaped as Mastodon sends one (its context and members)."""
    status = f"{BOB}/statuses/{n}"
    obj: dict[str, Any] = {
        "id": status,
        "type": "Note",
        "summary": None,
        "inReplyTo": "https://fedisora.example/users/alice/clips/7",
        "published": "2026-12-07T12:00:00Z",
        "url": f"https://mastodon.example/@bob/{n}",
        "attributedTo": BOB,
        "to": [PUBLIC],
        "cc": [f"{BOB}/followers", "https://fedisora.example/users/alice"],
        "sensitive": False,
        "atomUri": status,
        "conversation": "tag:mastodon.example,2026-12-07:objectId=1:objectType=Conversation",
        "content": "<p>what a clip!</p>",
        "contentMap": {"en": "<p>what a clip!</p>"},
        "attachment": [],
        "tag": [{"type": "Mention", "href": "https://fedisora.example/users/alice"}],
    }
    obj.update(note)
    return {
        "@context": [
            "https://www.w3.org/ns/activitystreams",
            {
                "ostatus": "http://ostatus.org#",
                "atomUri": "ostatus:atomUri",
                "conversation": "ostatus:conversation",
                "sensitive": "as:sensitive",
                "toot": "http://joinmastodon.org/ns#",
                "votersCount": "toot:votersCount",
            },
        ],
        "id": f"{status}/activity",
        "type": "Create",
        "actor": BOB,
        "published": "2026-12-07T12:00:00Z",
        "to": [PUBLIC],
        "cc": obj["cc"],
        "object": obj,
    }


def _sign(doc: dict[str, Any], key: rsa.RSAPrivateKey) -> dict[str, Any]:
    return ld_signatures.sign(doc, key, f"{BOB}#main-key", created=datetime.now(UTC))


def _refused(doc: dict[str, Any], key: rsa.RSAPublicKey, reason: str) -> None:
    with pytest.raises(ProofError) as caught:
        ld_signatures.verify(doc, key)
    assert reason in caught.value.reason, caught.value.reason


def test_fedifys_signature_verifies() -> None:
    doc = _vector()
    assert doc["signature"]["type"] == "RsaSignature2017"
    assert doc["signature"]["creator"] == f"{BOB}#main-key"
    key = _vector_key()
    assert ld_signatures.verify(doc, key) == doc
    parsed = ld_signatures.parse(doc)
    assert parsed.creator == f"{BOB}#main-key" and len(parsed.value) == key.key_size // 8


def test_fedifys_signature_is_refused_once_anything_signed_changes(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    key = _vector_key()
    cases: list[tuple[str, Any]] = [
        ("content", lambda d: d["object"].update(content="<p>buy now</p>")),
        ("actor", lambda d: d.update(actor="https://mastodon.example/users/eve")),
        ("audience", lambda d: d["object"].update(to=[f"{BOB}/followers"])),
        ("a member added", lambda d: d["object"].update(summary="spoiler")),
        ("a tag removed", lambda d: d["object"]["tag"].pop()),
        ("created", lambda d: d["signature"].update(created="2020-01-01T00:00:00Z")),
        ("creator", lambda d: d["signature"].update(creator=f"{BOB}#other-key")),
        ("signatureValue", lambda d: d["signature"].update(signatureValue="AAAA" * 86)),
    ]
    for name, change in cases:
        doc = _vector()
        change(doc)
        with pytest.raises(InvalidProof, match="does not match"):
            ld_signatures.verify(doc, key)
        assert name
    # another key than the creator's
    _refused(_vector(), rsa_key.public_key(), "does not match")


def test_our_signature_round_trips_and_is_mastodons(rsa_key: rsa.RSAPrivateKey) -> None:
    doc = _reply()
    signed = _sign(doc, rsa_key)
    assert {k: v for k, v in signed.items() if k != "signature"} == doc
    sig = signed["signature"]
    assert sig["type"] == "RsaSignature2017" and sig["creator"] == f"{BOB}#main-key"
    assert set(sig) == {"type", "creator", "created", "signatureValue"}
    assert ld_signatures.verify(signed, rsa_key.public_key()) == signed
    # Mastodon's steps, written out: the hex digests of the two canonical forms, as ASCII
    options = {"@context": "https://w3id.org/identity/v1", "creator": sig["creator"]}
    options["created"] = sig["created"]
    message = ld_signatures.canonical_hash(options) + ld_signatures.canonical_hash(doc)
    assert len(message) == 128
    rsa_key.public_key().verify(
        base64.b64decode(sig["signatureValue"]),
        message.encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    # re-signing replaces the signature
    again = _sign(signed, rsa_key)
    assert ld_signatures.verify(again, rsa_key.public_key()) == again
    # a signatureValue broken over lines (Ruby's Base64.encode64) reads the same
    value = sig["signatureValue"]
    wrapped = copy.deepcopy(signed)
    wrapped["signature"]["signatureValue"] = "\n".join(
        value[i : i + 60] for i in range(0, len(value), 60)
    )
    ld_signatures.verify(wrapped, rsa_key.public_key())


def test_the_canonical_form_is_urdna2015() -> None:
    nquads = (
        "<https://mastodon.example/users/bob/statuses/1> "
        '<https://www.w3.org/ns/activitystreams#content> "hi" .\n'
        "<https://mastodon.example/users/bob/statuses/1> "
        "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type> "
        "<https://www.w3.org/ns/activitystreams#Note> .\n"
    )
    note = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{BOB}/statuses/1",
        "type": "Note",
        "content": "hi",
    }
    expected = "".join(sorted(nquads.splitlines(keepends=True)))
    assert ld_signatures.canonical_hash(note) == hashlib.sha256(expected.encode()).hexdigest()


def test_other_signature_types_and_shapes_are_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    signed = _sign(_reply(), rsa_key)
    public = rsa_key.public_key()
    for kind in ("RsaSignature2018", "Ed25519Signature2018", None):
        _refused({**signed, "signature": {**signed["signature"], "type": kind}}, public, "type")
    _refused({**signed, "signature": "abc"}, public, "not an object")
    no_creator = {k: v for k, v in signed["signature"].items() if k != "creator"}
    _refused({**signed, "signature": no_creator}, public, "no creator")
    _refused(
        {**signed, "signature": {**signed["signature"], "signatureValue": "!!not base64!!"}},
        public,
        "not base64",
    )
    unsigned = {k: v for k, v in signed.items() if k != "signature"}
    _refused(unsigned, public, "not an object")


def test_a_context_that_changes_what_a_term_means_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    """The graph is what is signed: swapping ``content`` and ``summary`` in the document's
    own context keeps the graph, and the signature, but a reader by name would show the
    reply as its content warning."""
    signed = _sign(_reply(summary=None), rsa_key)
    public = rsa_key.public_key()
    forged = copy.deepcopy(signed)
    forged["@context"][1].update(content="as:summary", summary="as:content")
    forged["object"].update(summary="<p>what a clip!</p>", content=None)
    _refused(forged, public, "another meaning")
    # a nested context doing the same
    nested = copy.deepcopy(signed)
    nested["object"]["@context"] = {"content": "as:summary", "summary": "as:content"}
    nested["object"].update(summary="<p>what a clip!</p>", content=None)
    _refused(nested, public, "another meaning")
    # an @vocab of the document's own: read without it, what it defined is not what was
    # signed (a term read by name could mean anything the vocabulary makes of it)
    with_vocab = _reply(mood="calm")
    with_vocab["@context"] = [*with_vocab["@context"], {"@vocab": "https://vocab.example/"}]
    _refused(_sign(with_vocab, rsa_key), public, "another meaning")


# Mastodon's extension terms as it names them (app/helpers/context_helper.rb): some mean
# other IRIs than fedisora's own definitions of the same names (``canQuote`` is GoToSocial's).
MASTODON_FULL_CONTEXT: list[Any] = [
    "https://www.w3.org/ns/activitystreams",
    "https://w3id.org/security/v1",
    {
        "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
        "sensitive": "as:sensitive",
        "Hashtag": "as:Hashtag",
        "movedTo": {"@id": "as:movedTo", "@type": "@id"},
        "toot": "http://joinmastodon.org/ns#",
        "Emoji": "toot:Emoji",
        "ostatus": "http://ostatus.org#",
        "atomUri": "ostatus:atomUri",
        "inReplyToAtomUri": "ostatus:inReplyToAtomUri",
        "conversation": "ostatus:conversation",
        "focalPoint": {"@container": "@list", "@id": "toot:focalPoint"},
        "blurhash": "toot:blurhash",
        "votersCount": "toot:votersCount",
        "quote": {"@id": "https://w3id.org/fep/044f#quote", "@type": "@id"},
        "quoteUri": "http://fedibird.com/ns#quoteUri",
        "_misskey_quote": "https://misskey-hub.net/ns#_misskey_quote",
        "quoteAuthorization": {
            "@id": "https://w3id.org/fep/044f#quoteAuthorization",
            "@type": "@id",
        },
        "gts": "https://gotosocial.org/ns#",
        "interactionPolicy": {"@id": "gts:interactionPolicy", "@type": "@id"},
        "canQuote": {"@id": "gts:canQuote", "@type": "@id"},
        "automaticApproval": {"@id": "gts:automaticApproval", "@type": "@id"},
        "manualApproval": {"@id": "gts:manualApproval", "@type": "@id"},
        "interactingObject": {"@id": "gts:interactingObject"},
    },
]


def test_mastodons_own_extension_terms_are_read_as_it_defines_them(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    doc = _reply(
        interactionPolicy={"canQuote": {"automaticApproval": [PUBLIC]}},
        quote="https://mastodon.example/users/carol/statuses/9",
        tag=[
            {"type": "Hashtag", "href": "https://mastodon.example/tags/sea", "name": "#sea"},
            {"type": "Emoji", "id": "https://mastodon.example/emojis/1", "name": ":wave:"},
        ],
        attachment=[
            {
                "type": "Document",
                "mediaType": "image/png",
                "url": "https://mastodon.example/media/1.png",
                "blurhash": "UBL_:rOpGG-oBUNG,qRj2so|=eE1w^n4S5NH",
                "focalPoint": [0.0, 0.5],
            }
        ],
    )
    doc["@context"] = MASTODON_FULL_CONTEXT
    signed = _sign(doc, rsa_key)
    assert ld_signatures.verify(signed, rsa_key.public_key()) == signed


def test_an_extension_term_made_another_name_of_a_standard_one_is_refused(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    """``quote`` defined as ``as:inReplyTo`` and the reply's ``inReplyTo`` moved under it: the
    graph, and the signature, stay the same, but a reader by name sees a quote post."""
    doc = _reply()
    signed = _sign(doc, rsa_key)
    forged = copy.deepcopy(signed)
    forged["@context"] = [
        doc["@context"][0],
        {**doc["@context"][1], "quote": {"@id": "as:inReplyTo", "@type": "@id"}},
    ]
    forged["object"]["quote"] = forged["object"].pop("inReplyTo")
    _refused(forged, rsa_key.public_key(), "makes 'quote' mean")
    # fedisora's own terms keep fedisora's meaning whatever the document says
    ours = copy.deepcopy(signed)
    ours["@context"] = [doc["@context"][0], {**doc["@context"][1], "aiGenerated": "as:sensitive"}]
    ours["object"]["aiGenerated"] = ours["object"].pop("sensitive")
    _refused(ours, rsa_key.public_key(), "another meaning")


def test_members_no_context_defines_are_not_signed_and_dropped(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    signed = _sign(_reply(), rsa_key)
    added = copy.deepcopy(signed)
    added["object"]["mood"] = "added by whoever forwarded it"
    added["hiddenMember"] = {"nested": True}
    verified = ld_signatures.verify(added, rsa_key.public_key())
    assert verified == signed
    assert "mood" not in verified["object"] and "hiddenMember" not in verified
    # a type that no context defines is refused: another undefined one verifies the same
    odd = _sign(_reply(type="Chirp"), rsa_key)
    _refused(odd, rsa_key.public_key(), "defined by no context")


def test_keywords_contexts_and_sizes_refused_before_any_key_work(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    public = rsa_key.public_key()
    signed = _sign(_reply(), rsa_key)
    for keyword in ("@graph", "@included", "@reverse"):
        doc = copy.deepcopy(signed)
        doc["object"][keyword] = {"id": "https://mastodon.example/x"}
        _refused(doc, public, keyword)
    unknown = copy.deepcopy(signed)
    unknown["@context"] = [*unknown["@context"], "https://litepub.example/schemas/litepub.jsonld"]
    _refused(unknown, public, "is not known here (nothing is fetched)")
    deep: dict[str, Any] = {"content": "x"}
    for _ in range(40):
        deep = {"type": "Note", "attachment": deep}
    _refused({**signed, "object": deep}, public, "nested too deeply")
    many_blanks = {
        **signed,
        "object": {**signed["object"], "tag": [{"name": f"#{i}"} for i in range(600)]},
    }
    _refused(many_blanks, public, "too many blank nodes")


def test_a_poisoned_graph_is_refused_not_canonicalised_for_ever(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    """Blank nodes that all look alike (a cycle of them) make URDNA2015's n-degree hashing
    explode; such a document is refused past a bound on that work."""
    nodes: list[dict[str, Any]] = [{"@id": f"_:b{i}", "type": "Note"} for i in range(40)]
    for i, node in enumerate(nodes):
        node["inReplyTo"] = [{"@id": f"_:b{(i + 1) % 40}"}, {"@id": f"_:b{(i + 7) % 40}"}]
    doc = {**_sign(_reply(), rsa_key), "object": nodes}
    _refused(doc, rsa_key.public_key(), "too costly")


def test_the_runtime_contexts_are_the_test_fixtures_and_nothing_else_loads() -> None:
    fixtures = FIXTURES / "jsonld"
    for url, name in contexts.BUNDLED.items():
        assert contexts.load(url) is not None
        if (fixtures / name).exists():
            packaged = Path(contexts.__file__).parent / name
            assert packaged.read_bytes() == (fixtures / name).read_bytes(), name
    identity = contexts.load(ld_signatures.IDENTITY_CONTEXT)
    assert identity is not None and identity["@context"]["creator"] == {
        "@id": "dc:creator",
        "@type": "@id",
    }
    assert contexts.load("https://w3id.org/security/v2") is None
    with pytest.raises(MalformedProof, match="nothing is fetched"):
        ld_signatures.canonical_hash({"@context": "https://example.com/ctx", "a": 1})


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(
        ["", "as:content", "@id", "@type", "@list", "@language", "_:b0", "https://x.example/a"]
    )
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    *("@context", "@id", "@type", "@value", "@language", "@list", "@set", "@vocab"),
                    *("id", "type", "content", "to", "tag", "name", "x", "as:name", "_:k"),
                ]
            )
            | st.text(max_size=6),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(body=st.dictionaries(st.text(max_size=8) | st.sampled_from(["@context", "object"]), _JSON))
def test_any_document_is_verified_or_refused_with_a_reason(body: dict[str, Any]) -> None:
    """Whatever a peer sends with a signature, the verifier answers with a ProofError (a
    reason), never another exception."""
    key = _vector_key()
    doc = {**_reply(), **body, "signature": _vector()["signature"]}
    with pytest.raises(ProofError):
        ld_signatures.verify(doc, key)
    contextual = {**body, "@context": body.get("@context", _reply()["@context"])}
    with pytest.raises(ProofError):
        ld_signatures.verify({**contextual, "signature": _vector()["signature"]}, key)
