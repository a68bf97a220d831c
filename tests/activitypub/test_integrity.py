"""activitypub.integrity: FEP-8b32 Data Integrity proofs, cryptosuite eddsa-jcs-2022.

Checked three ways: the W3C vc-di-eddsa published test vector (signed byte for byte), a
fixed vector of our own, and an independent implementation of the cryptosuite steps
written here (canonical JSON by ``json.dumps`` on ASCII-only documents, ``hashlib``,
``cryptography`` and a base58 of its own), so that a bug in the library path shows.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from activitypub import integrity
from activitypub._base58 import b58decode
from activitypub.errors import ActivityPubError, InvalidProof, MalformedProof, ProofError
from activitypub.keys import generate_rsa_key, public_key_from_multibase, public_key_to_multibase
from activitypub.objects import ActorInfo, actor_document

FIXTURES = Path(__file__).parents[1] / "fixtures" / "data_integrity"

# W3C vc-di-eddsa TestVectors/keyPair.json: secretKeyMultibase is ed25519-priv (0x1300) + seed.
W3C_SECRET = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"
W3C_PUBLIC = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
# TestVectors/eddsa-jcs-2022/canonDocJCS.txt: the unsigned credential after JCS.
W3C_CANONICAL_DOC = (
    '{"@context":["https://www.w3.org/ns/credentials/v2","https://www.w3.org/ns/credentials/'
    'examples/v2"],"credentialSubject":{"alumniOf":"The School of Examples","id":"did:example:'
    'abcdefgh"},"description":"A minimum viable example of an Alumni Credential.","id":"urn:'
    'uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33","issuer":"https://vc.example/issuers/5678",'
    '"name":"Alumni Credential","type":["VerifiableCredential","AlumniCredential"],"validFrom"'
    ':"2023-01-01T00:00:00Z"}'
)

# Our own vector: seed 00 01 .. 1f, an ASCII-only note, a fixed time.
SEED = bytes(range(32))
KEY = ed25519.Ed25519PrivateKey.from_private_bytes(SEED)
PUBLIC = KEY.public_key()
PUBLIC_MULTIBASE = "z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVd"
ALICE = "https://alice.example/users/alice"
METHOD = f"{ALICE}#ed25519-key"
CREATED = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)
NOW = CREATED + timedelta(minutes=1)
DOCUMENT: dict[str, Any] = {
    "@context": [
        "https://www.w3.org/ns/activitystreams",
        "https://w3id.org/security/data-integrity/v2",
    ],
    "id": "https://alice.example/notes/1",
    "type": "Note",
    "attributedTo": ALICE,
    "content": "A fixed vector",
    "to": ["https://www.w3.org/ns/activitystreams#Public"],
    "sensitive": False,
    "n": 42,
}
PROOF_VALUE = (
    "z22qMaF7iNJV8imd7iUnNG3ik33oT7q6AhWrJYjwQV4YTSreen1BwyewC32qKBsGfckCnZ55L9vuhapTkesk7hRrD"
)


# --- an independent implementation of the steps --------------------------------------------

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58(data: bytes) -> str:
    number, out = int.from_bytes(data, "big"), ""
    while number:
        number, digit = divmod(number, 58)
        out = _ALPHABET[digit] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def _canonical(value: Any) -> bytes:
    # RFC 8785 agrees with this on ASCII-only keys and strings, integers, booleans and null.
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert text.isascii()
    return text.encode()


def _independent_hash(document: dict[str, Any], proof: dict[str, Any]) -> bytes:
    config = {k: v for k, v in proof.items() if k != "proofValue"}
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    return (
        hashlib.sha256(_canonical(config)).digest() + hashlib.sha256(_canonical(unsecured)).digest()
    )


def _independent_sign(document: dict[str, Any], seed: bytes, method: str, created: str) -> str:
    config = {
        "@context": document["@context"],
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-jcs-2022",
        "created": created,
        "verificationMethod": method,
        "proofPurpose": "assertionMethod",
    }
    private = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    return "z" + _base58(private.sign(_independent_hash(document, config)))


def _signed(document: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    return integrity.sign(
        DOCUMENT if document is None else document,
        KEY,
        METHOD,
        created=kwargs.pop("created", CREATED),
        **kwargs,
    )


# --- vectors ---------------------------------------------------------------------------------


def test_the_w3c_eddsa_jcs_2022_vector_is_reproduced_exactly() -> None:
    signed = json.loads((FIXTURES / "w3c-eddsa-jcs-2022-signed.json").read_text())
    unsigned = {k: v for k, v in signed.items() if k != "proof"}
    secret = b58decode(W3C_SECRET[1:])
    assert secret[:2] == b"\x80\x26"  # ed25519-priv
    key = ed25519.Ed25519PrivateKey.from_private_bytes(secret[2:])
    assert public_key_to_multibase(key.public_key()) == W3C_PUBLIC

    ours = integrity.sign(
        unsigned,
        key,
        signed["proof"]["verificationMethod"],
        created=datetime(2023, 2, 24, 23, 36, 38, tzinfo=UTC),
    )
    assert ours == signed
    assert ours["proof"]["proofValue"] == (
        "z63t83Y53KfzJ5ZosfKTnqfMcKB2dmTrfjSaQjeNNjAD5srBowQfmWqeRb8rRjmeEuCBEsddF9LsVogtuTsijJKh4"
    )
    assert _canonical(unsigned).decode() == W3C_CANONICAL_DOC

    public = public_key_from_multibase(W3C_PUBLIC)
    assert isinstance(public, ed25519.Ed25519PublicKey)
    proof = integrity.verify(signed, public, now=datetime(2024, 1, 1, tzinfo=UTC))
    assert proof.created == datetime(2023, 2, 24, 23, 36, 38, tzinfo=UTC)
    assert proof.verification_method == signed["proof"]["verificationMethod"]
    assert proof.purpose == "assertionMethod"


def test_our_fixed_vector() -> None:
    assert public_key_to_multibase(PUBLIC) == PUBLIC_MULTIBASE
    signed = _signed()
    assert signed == {
        **DOCUMENT,
        "proof": {
            "type": "DataIntegrityProof",
            "cryptosuite": "eddsa-jcs-2022",
            "created": "2026-12-06T17:00:00Z",
            "verificationMethod": METHOD,
            "proofPurpose": "assertionMethod",
            "@context": DOCUMENT["@context"],
            "proofValue": PROOF_VALUE,
        },
    }
    assert "proof" not in DOCUMENT  # a copy was signed
    proof = integrity.verify(signed, PUBLIC, now=NOW)
    assert proof == integrity.Proof(
        verification_method=METHOD,
        purpose="assertionMethod",
        created=CREATED,
        expires=None,
        value=PROOF_VALUE,
    )


def test_an_independent_implementation_agrees_both_ways() -> None:
    assert _independent_sign(DOCUMENT, SEED, METHOD, "2026-12-06T17:00:00Z") == PROOF_VALUE
    signed = _signed()
    # The library's proof checks out with the independent steps ...
    PUBLIC.verify(
        b58decode(signed["proof"]["proofValue"][1:]), _independent_hash(signed, signed["proof"])
    )
    # ... and a proof made by those steps verifies with the library.
    other = dict(DOCUMENT, content="made elsewhere")
    value = _independent_sign(other, SEED, METHOD, "2026-12-06T17:00:00Z")
    other["proof"] = {**_signed(dict(other))["proof"], "proofValue": value}
    integrity.verify(other, PUBLIC, now=NOW)


_ascii = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _ascii,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_ascii, children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(body=st.dictionaries(_ascii.filter(lambda k: k != "proof"), _json, max_size=6))
def test_any_ascii_document_signs_as_the_independent_steps_do(body: dict[str, Any]) -> None:
    document = {"@context": "https://www.w3.org/ns/activitystreams", **body}
    signed = integrity.sign(document, KEY, METHOD, created=CREATED)
    assert signed["proof"]["proofValue"] == _independent_sign(
        document, SEED, METHOD, "2026-12-06T17:00:00Z"
    )
    integrity.verify(signed, PUBLIC, now=NOW)


def test_non_ascii_text_is_canonicalised_by_rfc8785() -> None:
    # JCS keeps non-ASCII as UTF-8 and sorts keys by UTF-16 code units: U+1F600 is the
    # surrogate pair D83D DE00, so it sorts before U+E000 (by code point it would not).
    document = {"@context": "x", "\U0001f600": "smile", "\ue000": "private", "é": "é"}
    signed = integrity.sign(document, KEY, METHOD, created=CREATED)
    assert integrity.verify(signed, PUBLIC, now=NOW).value == signed["proof"]["proofValue"]
    unsecured = {k: v for k, v in signed.items() if k != "proof"}
    canonical = '{"@context":"x","é":"é","\U0001f600":"smile","\ue000":"private"}'.encode()
    config = {k: v for k, v in signed["proof"].items() if k != "proofValue"}
    digest = hashlib.sha256(_canonical(config)).digest() + hashlib.sha256(canonical).digest()
    PUBLIC.verify(b58decode(signed["proof"]["proofValue"][1:]), digest)
    assert unsecured == document


def test_a_document_without_context_is_signed_without_one() -> None:
    document = {"id": "https://alice.example/x", "type": "Note"}
    signed = integrity.sign(document, KEY, METHOD, created=CREATED)
    assert "@context" not in signed["proof"]
    integrity.verify(signed, PUBLIC, now=NOW)


def test_created_is_written_in_utc_to_the_second() -> None:
    from datetime import timezone

    local = datetime(2026, 12, 6, 19, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert _signed(created=local)["proof"]["created"] == "2026-12-06T17:00:00Z"
    with pytest.raises(ValueError, match="timezone"):
        _signed(created=datetime(2026, 12, 6, 17, 0))


def test_signing_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="already"):
        integrity.sign(_signed(), KEY, METHOD, created=CREATED)


def test_another_purpose_must_be_asked_for() -> None:
    signed = _signed(purpose="authentication")
    with pytest.raises(InvalidProof, match="purpose"):
        integrity.verify(signed, PUBLIC, now=NOW)
    assert integrity.verify(signed, PUBLIC, now=NOW, purpose="authentication").purpose == (
        "authentication"
    )


# --- refusals --------------------------------------------------------------------------------


def _tamper(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    signed = copy.deepcopy(_signed())
    target = signed
    for name in path[:-1]:
        target = target[name]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return signed


_DELETE = object()

MALFORMED = [
    (("proof",), _DELETE, "no proof"),
    (("proof",), "zabc", "not a JSON object"),
    (("proof",), [{"type": "DataIntegrityProof"}], "proof sets"),
    (("proof", "proofValue"), _DELETE, "proofValue"),
    (("proof", "proofValue"), 12, "proofValue"),
    (("proof", "proofValue"), "u" + PROOF_VALUE[1:], "'z' prefix"),
    (("proof", "proofValue"), "z0OIl", "base58"),
    (("proof", "proofValue"), "z" + "2" * 150, "too long"),
    (("proof", "proofValue"), "z2222", "64 bytes"),
    (("proof", "verificationMethod"), _DELETE, "verificationMethod"),
    (("proof", "verificationMethod"), ["x"], "verificationMethod"),
    (("proof", "verificationMethod"), "h" * 3000, "too long"),
    (("proof", "proofPurpose"), None, "proofPurpose"),
    (("proof", "created"), _DELETE, "created"),
    (("proof", "created"), "yesterday", "XSD dateTime"),
    (("proof", "created"), "2026-12-06T17:00:00", "timezone"),
    (("proof", "created"), "2026-12-06", "timezone"),
    (("proof", "created"), 1765040400, "date-time"),
    (("proof", "expires"), "soon", "XSD dateTime"),
]


@pytest.mark.parametrize(("path", "value", "reason"), MALFORMED)
def test_malformed_proofs_are_refused(path: tuple[str, ...], value: Any, reason: str) -> None:
    with pytest.raises(MalformedProof, match=reason) as caught:
        integrity.verify(_tamper(path, value), PUBLIC, now=NOW)
    assert reason.lower() in caught.value.reason.lower()


INVALID = [
    (("proof", "type"), "Ed25519Signature2020", "proof type"),
    (("proof", "type"), _DELETE, "proof type"),
    (("proof", "cryptosuite"), "eddsa-rdfc-2022", "unknown cryptosuite"),
    (("proof", "cryptosuite"), "ecdsa-jcs-2019", "unknown cryptosuite"),
    (("proof", "cryptosuite"), _DELETE, "unknown cryptosuite"),
    (("proof", "proofPurpose"), "authentication", "purpose"),
    # Tampered fields, of the document and of the proof itself: the signature fails.
    (("content",), "A changed vector", "does not verify"),
    (("n",), 43, "does not verify"),
    (("sensitive",), True, "does not verify"),
    (("to",), [], "does not verify"),
    (("extra",), "added", "does not verify"),
    (("attributedTo",), _DELETE, "does not verify"),
    (("proof", "created"), "2026-12-06T16:59:59Z", "does not verify"),
    (("proof", "verificationMethod"), "https://mallory.example/u/m#key", "does not verify"),
    (("proof", "nonce"), "added", "does not verify"),
    (("proof", "proofValue"), "z" + _base58(bytes(64)), "does not verify"),
    # The document's @context differs from the one the proof was made under.
    (("@context",), "https://www.w3.org/ns/activitystreams", "@context"),
    (("@context",), _DELETE, "@context"),
    (("proof", "@context"), ["https://example.org/other"], "@context"),
]


@pytest.mark.parametrize(("path", "value", "reason"), INVALID)
def test_proofs_that_do_not_hold_are_refused(
    path: tuple[str, ...], value: Any, reason: str
) -> None:
    with pytest.raises(InvalidProof, match=reason):
        integrity.verify(_tamper(path, value), PUBLIC, now=NOW)


def test_a_tampered_document_with_a_matching_proof_context_still_fails() -> None:
    # Changing both contexts passes the context check; the signature covers them both.
    context = ["https://www.w3.org/ns/activitystreams", "https://example.org/evil"]
    signed = _tamper(("@context",), context)
    signed["proof"]["@context"] = context
    with pytest.raises(InvalidProof, match="does not verify"):
        integrity.verify(signed, PUBLIC, now=NOW)


def test_a_document_context_extending_the_signed_one_is_refused_by_the_signature() -> None:
    signed = _tamper(("@context",), [*DOCUMENT["@context"], {"extra": "https://x.example/"}])
    with pytest.raises(InvalidProof, match="does not verify"):
        integrity.verify(signed, PUBLIC, now=NOW)


LD_SIGNATURE = {
    "@context": "https://w3id.org/identity/v1",
    "type": "RsaSignature2017",
    "creator": f"{ALICE}#main-key",
    "created": "2026-12-06T17:00:01Z",
    "signatureValue": "bm90IGNoZWNrZWQgaGVyZQ==",
}


def test_a_linked_data_signature_added_after_the_proof_is_left_out() -> None:
    # Fedify's order: the FEP-8b32 proof first, then an RsaSignature2017 over the proven
    # document. Refused before (every activity from a Fedify server got a 401).
    signed = {**_signed(), "signature": LD_SIGNATURE}
    assert integrity.verify(signed, PUBLIC, now=NOW).value == PROOF_VALUE
    # The proof still covers the rest of the document.
    signed["content"] = "changed after signing"
    with pytest.raises(InvalidProof, match="does not verify"):
        integrity.verify(signed, PUBLIC, now=NOW)


def test_a_signature_member_that_was_signed_stays_covered() -> None:
    signed = _signed({**DOCUMENT, "signature": LD_SIGNATURE})
    assert integrity.verify(signed, PUBLIC, now=NOW).value != PROOF_VALUE
    signed["signature"] = {**LD_SIGNATURE, "signatureValue": "b3RoZXI="}  # replaced after
    with pytest.raises(InvalidProof, match="does not verify"):
        integrity.verify(signed, PUBLIC, now=NOW)
    del signed["signature"]  # or taken out
    with pytest.raises(InvalidProof, match="does not verify"):
        integrity.verify(signed, PUBLIC, now=NOW)


def test_only_a_linked_data_signature_is_left_out() -> None:
    # A "signature" member that is no LD signature (no signatureValue) is part of the document.
    signed = {**_signed(), "signature": {"type": "Something", "value": "x"}}
    with pytest.raises(InvalidProof, match="does not verify"):
        integrity.verify(signed, PUBLIC, now=NOW)


def test_another_key_is_refused() -> None:
    other = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))).public_key()
    with pytest.raises(InvalidProof, match="does not verify"):
        integrity.verify(_signed(), other, now=NOW)


def test_an_rsa_key_is_refused() -> None:
    rsa_public: Any = generate_rsa_key().public_key()
    with pytest.raises(InvalidProof, match="Ed25519"):
        integrity.verify(_signed(), rsa_public, now=NOW)
    with pytest.raises(TypeError):
        integrity.sign(DOCUMENT, generate_rsa_key(), METHOD, created=CREATED)  # type: ignore[arg-type]


def test_created_in_the_future_beyond_the_skew_is_refused() -> None:
    signed = _signed(created=NOW + timedelta(minutes=5))
    integrity.verify(signed, PUBLIC, now=NOW)  # exactly at the default skew
    later = _signed(created=NOW + timedelta(minutes=5, seconds=1))
    with pytest.raises(InvalidProof, match="future"):
        integrity.verify(later, PUBLIC, now=NOW)
    integrity.verify(later, PUBLIC, now=NOW, max_skew=timedelta(minutes=10))
    with pytest.raises(InvalidProof, match="future"):
        integrity.verify(
            _signed(), PUBLIC, now=CREATED - timedelta(seconds=1), max_skew=timedelta()
        )


def test_an_old_proof_verifies_and_an_expired_one_does_not() -> None:
    assert integrity.verify(_signed(), PUBLIC, now=CREATED + timedelta(days=3650))
    document = dict(DOCUMENT)
    signed = _signed(document)
    # A proof with an expiry (a member we do not write, but read): re-signed by the steps.
    signed["proof"]["expires"] = "2026-12-07T17:00:00Z"
    config = {k: v for k, v in signed["proof"].items() if k != "proofValue"}
    signed["proof"]["proofValue"] = "z" + _base58(KEY.sign(_independent_hash(signed, config)))
    proof = integrity.verify(signed, PUBLIC, now=NOW)
    assert proof.expires == datetime(2026, 12, 7, 17, 0, tzinfo=UTC)
    with pytest.raises(InvalidProof, match="expired"):
        integrity.verify(signed, PUBLIC, now=datetime(2026, 12, 7, 17, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("not an object", "not a JSON object"),
        (["a", "list"], "not a JSON object"),
        (None, "not a JSON object"),
    ],
)
def test_a_document_that_is_no_object_is_malformed(document: Any, reason: str) -> None:
    with pytest.raises(MalformedProof, match=reason):
        integrity.verify(document, PUBLIC, now=NOW)


def test_an_uncanonicalisable_document_is_malformed() -> None:
    # I-JSON (and so JCS) has no integers beyond 2**53; floats that are no numbers either.
    for value in (2**60, float("nan")):
        signed = _signed()
        signed["n"] = value
        with pytest.raises(MalformedProof, match="canonicalise"):
            integrity.verify(signed, PUBLIC, now=NOW)


def test_a_deep_or_huge_document_is_refused_before_hashing() -> None:
    deep: Any = "bottom"
    for _ in range(40):
        deep = [deep]
    signed = _signed()
    signed["deep"] = deep
    with pytest.raises(MalformedProof, match="too"):
        integrity.verify(signed, PUBLIC, now=NOW)
    signed = _signed()
    signed["wide"] = list(range(20_000))
    with pytest.raises(MalformedProof, match="too"):
        integrity.verify(signed, PUBLIC, now=NOW)


def test_the_errors_are_in_the_one_hierarchy() -> None:
    assert issubclass(MalformedProof, ProofError)
    assert issubclass(InvalidProof, ProofError)
    assert issubclass(ProofError, ActivityPubError)
    assert issubclass(ProofError, ValueError)
    assert ProofError("why").reason == "why"


# --- keys from actor documents -----------------------------------------------------------------


def _actor(**changes: Any) -> dict[str, Any]:
    info = ActorInfo(
        id=ALICE,
        type="Person",
        username="alice",
        name="Alice",
        summary="",
        url="https://alice.example/@alice",
        inbox=f"{ALICE}/inbox",
        outbox=f"{ALICE}/outbox",
        followers=f"{ALICE}/followers",
        following=f"{ALICE}/following",
        featured=f"{ALICE}/featured",
        shared_inbox="https://alice.example/inbox",
        public_key_id=f"{ALICE}#main-key",
        public_key_pem="-----BEGIN PUBLIC KEY-----\n...",
        published="2026-01-01T00:00:00Z",
        ed25519_key_id=METHOD,
        ed25519_multibase=PUBLIC_MULTIBASE,
    )
    doc = actor_document(info)
    doc.update(changes)
    return doc


def test_the_key_comes_from_the_actors_assertion_method() -> None:
    key = integrity.assertion_method_key(_actor(), METHOD)
    integrity.verify(_signed(), key, now=NOW)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"assertionMethod": None}, "lists no Ed25519"),
        ({"assertionMethod": [METHOD]}, "lists no Ed25519"),  # a reference, not embedded
        ({"assertionMethod": [{"id": f"{ALICE}#other", "type": "Multikey"}]}, "lists no"),
        (
            {"assertionMethod": [{"id": METHOD, "type": "JsonWebKey", "controller": ALICE}]},
            "not a Multikey",
        ),
        (
            {
                "assertionMethod": {
                    "id": METHOD,
                    "type": "Multikey",
                    "controller": "https://mallory.example/m",
                    "publicKeyMultibase": PUBLIC_MULTIBASE,
                }
            },
            "not controlled",
        ),
        (
            {"assertionMethod": [{"id": METHOD, "type": "Multikey", "controller": ALICE}]},
            "no publicKeyMultibase",
        ),
        (
            {
                "assertionMethod": [
                    {
                        "id": METHOD,
                        "type": "Multikey",
                        "controller": ALICE,
                        "publicKeyMultibase": public_key_to_multibase(
                            generate_rsa_key().public_key()
                        ),
                    }
                ]
            },
            "not an Ed25519 key",
        ),
        (
            {
                "assertionMethod": [
                    {
                        "id": METHOD,
                        "type": "Multikey",
                        "controller": ALICE,
                        "publicKeyMultibase": "z6Mk0",
                    }
                ]
            },
            "base58",
        ),
    ],
)
def test_an_actor_without_that_ed25519_key_is_refused(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidProof, match=reason):
        integrity.assertion_method_key(_actor(**changes), METHOD)


def test_an_actor_document_that_is_no_actor_is_malformed() -> None:
    with pytest.raises(MalformedProof):
        integrity.assertion_method_key(["not", "an", "actor"], METHOD)
    with pytest.raises(MalformedProof):
        integrity.assertion_method_key({"assertionMethod": []}, METHOD)
