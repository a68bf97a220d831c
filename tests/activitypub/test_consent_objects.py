"""activitypub.consent: likeness grants and revocations, signed by the owner (FEP-8b32).

Fixed vectors (Ed25519 is deterministic) and every way a consent object can be wrong:
forged, by another key, for another grantee, expired, drafts-only used to publish, an
unknown cryptosuite, a tampered field, a future date, malformed and oversized shapes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from activitypub import consent, integrity
from activitypub._base58 import b58decode
from activitypub.errors import ActivityPubError, ConsentError
from activitypub.objects import OBJECT_TERMS

OWNER_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OWNER_PUBLIC = OWNER_KEY.public_key()
MALLORY_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(100, 132)))
ALICE = "https://alice.example/users/alice"
ALICE_KEY_ID = f"{ALICE}#ed25519-key"
BOB = "https://bob.example/users/bob"
CAROL = "https://carol.example/users/carol"
GRANT_ID = "https://alice.example/likeness/grants/1"
PUBLISHED = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)
EXPIRES = datetime(2027, 1, 6, 17, 0, tzinfo=UTC)
NOW = PUBLISHED + timedelta(hours=1)
RESTRICTIONS = "never in political content"

CONTEXT: list[Any] = [
    "https://www.w3.org/ns/activitystreams",
    "https://w3id.org/security/data-integrity/v2",
    {
        "fedisora": "https://fedisora.org/ns#",
        "gts": "https://gotosocial.org/ns#",
        "interactingObject": {"@id": "gts:interactingObject", "@type": "@id"},
        "LikenessAuthorization": "fedisora:LikenessAuthorization",
        "LikenessRevocation": "fedisora:LikenessRevocation",
        "scope": "fedisora:scope",
        "restrictionsDigest": "fedisora:restrictionsDigest",
        "expires": {
            "@id": "fedisora:expires",
            "@type": "http://www.w3.org/2001/XMLSchema#dateTime",
        },
        "takeDown": "fedisora:takeDown",
        "maxUses": "fedisora:maxUses",
    },
]
GRANT: dict[str, Any] = {
    "@context": CONTEXT,
    "id": GRANT_ID,
    "type": "LikenessAuthorization",
    "attributedTo": ALICE,
    "interactingObject": BOB,
    "scope": "drafts",
    "restrictionsDigest": "zQmWhgTDexCsppR1ogE8H7eNDMsV71t7tjg8GFrzVPwFSH9",
    "published": "2026-12-06T17:00:00Z",
    "expires": "2027-01-06T17:00:00Z",
}
GRANT_PROOF_VALUE = (
    "z52iuXf4xLe1ngNggX83SZ36xC3cEW5Y3UrWQHb7CuGMS6zxkE9dAtPmWPYpCGkDurjpEiXXPFRqJg3S34whKkV6b"
)
#: A single-use grant (the owner approves every use): ``maxUses: 1``, to publish.
SINGLE_USE_GRANT: dict[str, Any] = {
    **{k: v for k, v in GRANT.items() if k != "expires"},
    "scope": "publish",
    "maxUses": 1,
}
SINGLE_USE_PROOF_VALUE = (
    "z3mQjC2K818GD9RZbgEAXxP51GcSutDbdgNYYgTpzRNRKSXbSr2L2PdCxwiaAw4Eos7yaP5KzKFAhUhBTK2QXBqYs"
)
REVOCATION: dict[str, Any] = {
    "@context": CONTEXT,
    "id": "https://alice.example/likeness/revocations/1",
    "type": "LikenessRevocation",
    "attributedTo": ALICE,
    "object": GRANT_ID,
    "published": "2026-12-07T09:30:00Z",
    "takeDown": True,
}
REVOCATION_PROOF_VALUE = (
    "z2c4DrHk3tJdD8gevM6zSEbSkFjrrbt8jPHRE4QXFPEhLDZ3vUkFmwnNjgvc99vnHZJ5cuJMXr7Y4SGg88AAPtm1a"
)


def _grant(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "grant_id": GRANT_ID,
        "owner": ALICE,
        "grantee": BOB,
        "scope": "drafts",
        "restrictions_digest": consent.restrictions_digest(RESTRICTIONS),
        "published": PUBLISHED,
        "expires": EXPIRES,
    }
    fields.update(changes)
    return consent.build_grant(**fields)


def _signed_grant(
    doc: dict[str, Any] | None = None,
    *,
    key: ed25519.Ed25519PrivateKey = OWNER_KEY,
    key_id: str = ALICE_KEY_ID,
    created: datetime = PUBLISHED,
) -> dict[str, Any]:
    return consent.sign_grant(_grant() if doc is None else doc, key, key_id=key_id, created=created)


def _verify(doc: Any, **changes: Any) -> consent.Grant:
    args: dict[str, Any] = {
        "owner": ALICE,
        "grantee": BOB,
        "needs_publish": False,
        "now": NOW,
    }
    args.update(changes)
    key = args.pop("owner_key", OWNER_PUBLIC)
    return consent.verify_grant(doc, key, **args)


def _revocation(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "revocation_id": "https://alice.example/likeness/revocations/1",
        "owner": ALICE,
        "revoked": GRANT_ID,
        "published": datetime(2026, 12, 7, 9, 30, tzinfo=UTC),
        "take_down": True,
    }
    fields.update(changes)
    return consent.build_revocation(**fields)


def _signed_revocation(doc: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    return consent.sign_revocation(
        _revocation() if doc is None else doc,
        kwargs.pop("key", OWNER_KEY),
        key_id=kwargs.pop("key_id", ALICE_KEY_ID),
        created=kwargs.pop("created", datetime(2026, 12, 7, 9, 30, tzinfo=UTC)),
    )


def _independently_valid(doc: dict[str, Any], public: ed25519.Ed25519PublicKey) -> None:
    """The eddsa-jcs-2022 steps by hand (ASCII-only documents: json.dumps is JCS there)."""

    def canonical(value: Any) -> bytes:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert text.isascii()
        return text.encode()

    config = {k: v for k, v in doc["proof"].items() if k != "proofValue"}
    unsecured = {k: v for k, v in doc.items() if k != "proof"}
    data = (
        hashlib.sha256(canonical(config)).digest() + hashlib.sha256(canonical(unsecured)).digest()
    )
    public.verify(b58decode(doc["proof"]["proofValue"][1:]), data)


# --- fixed vectors ---------------------------------------------------------------------------


def test_the_restrictions_digest_is_a_sha256_multihash() -> None:
    digest = consent.restrictions_digest(RESTRICTIONS)
    assert digest == "zQmWhgTDexCsppR1ogE8H7eNDMsV71t7tjg8GFrzVPwFSH9"
    raw = b58decode(digest[1:])
    assert raw == b"\x12\x20" + hashlib.sha256(RESTRICTIONS.encode()).digest()
    assert consent.restrictions_digest("") != digest


def test_a_grant_is_built_and_signed_as_the_fixed_vector() -> None:
    assert _grant() == GRANT
    signed = _signed_grant()
    assert signed == {
        **GRANT,
        "proof": {
            "type": "DataIntegrityProof",
            "cryptosuite": "eddsa-jcs-2022",
            "created": "2026-12-06T17:00:00Z",
            "verificationMethod": ALICE_KEY_ID,
            "proofPurpose": "assertionMethod",
            "@context": CONTEXT,
            "proofValue": GRANT_PROOF_VALUE,
        },
    }
    _independently_valid(signed, OWNER_PUBLIC)
    grant = _verify(signed)
    assert grant == consent.Grant(
        id=GRANT_ID,
        owner=ALICE,
        grantee=BOB,
        scope="drafts",
        restrictions_digest=GRANT["restrictionsDigest"],
        published=PUBLISHED,
        expires=EXPIRES,
        proof=integrity.Proof(
            verification_method=ALICE_KEY_ID,
            purpose="assertionMethod",
            created=PUBLISHED,
            expires=None,
            value=GRANT_PROOF_VALUE,
        ),
    )
    assert not grant.allows_publish
    assert not grant.expired(NOW) and grant.expired(EXPIRES)


def test_a_single_use_grant_is_built_and_signed_as_the_fixed_vector() -> None:
    doc = _grant(scope="publish", max_uses=1)
    assert doc == {**SINGLE_USE_GRANT, "expires": GRANT["expires"]}
    doc.pop("expires")
    assert doc == SINGLE_USE_GRANT
    signed = _signed_grant(doc)
    assert signed["proof"]["proofValue"] == SINGLE_USE_PROOF_VALUE
    _independently_valid(signed, OWNER_PUBLIC)
    grant = _verify(signed, needs_publish=True)
    assert grant.max_uses == 1 and grant.single_use and grant.allows_publish
    # Without maxUses a grant has no limit of uses.
    plain = _verify(_signed_grant())
    assert plain.max_uses is None and not plain.single_use
    # maxUses is signed: removing or raising it breaks the proof.
    for changed in ({"maxUses": 2}, {"maxUses": None}):
        tampered = {**signed, **changed}
        if changed["maxUses"] is None:
            tampered.pop("maxUses")
        with pytest.raises(ConsentError, match="bad proof"):
            _verify(tampered, needs_publish=True)


@pytest.mark.parametrize("value", [0, -1, 1.5, "1", True, [1], 10**9])
def test_a_malformed_max_uses_is_refused(value: Any) -> None:
    with pytest.raises(ConsentError, match="maxUses must be a whole number"):
        consent.parse_grant({**GRANT, "maxUses": value})
    with pytest.raises(ConsentError, match="maxUses"):
        _grant(max_uses=value)


def test_a_revocation_is_built_and_signed_as_the_fixed_vector() -> None:
    assert _revocation() == REVOCATION
    signed = _signed_revocation()
    assert signed["proof"]["proofValue"] == REVOCATION_PROOF_VALUE
    _independently_valid(signed, OWNER_PUBLIC)
    revocation = consent.verify_revocation(
        signed, OWNER_PUBLIC, owner=ALICE, now=NOW + timedelta(days=1)
    )
    assert revocation.id == REVOCATION["id"]
    assert revocation.object == GRANT_ID and revocation.take_down
    assert not revocation.whole_likeness
    assert revocation.proof is not None and revocation.proof.value == REVOCATION_PROOF_VALUE


def test_the_consent_terms_are_in_the_object_context() -> None:
    for term, definition in CONTEXT[2].items():
        assert OBJECT_TERMS[term] == definition
    assert consent.CONSENT_CONTEXT == CONTEXT


def test_a_publish_grant_without_expiry_covers_publishing() -> None:
    signed = _signed_grant(_grant(scope="publish", expires=None))
    assert "expires" not in signed
    grant = _verify(signed, needs_publish=True, now=PUBLISHED + timedelta(days=3650))
    assert grant.allows_publish and grant.expires is None


def test_a_grant_by_a_key_listed_under_another_id_verifies_with_key_id() -> None:
    # A server that publishes its key elsewhere: the caller resolved it (controller checked)
    # and says which id it took it from.
    other_id = "https://keys.alice.example/alice/ed25519"
    signed = integrity.sign(_grant(), OWNER_KEY, other_id, created=PUBLISHED)
    with pytest.raises(ConsentError, match="not in the owner's actor document"):
        _verify(signed)
    assert _verify(signed, key_id=other_id).proof is not None
    with pytest.raises(ConsentError, match="not the owner's"):
        _verify(signed, key_id=ALICE_KEY_ID)


# --- refusals of grants -----------------------------------------------------------------------


def test_a_forged_proof_is_refused() -> None:
    signed = _signed_grant()
    signed["proof"]["proofValue"] = "z" + "1" * 64  # 64 zero bytes
    with pytest.raises(ConsentError, match="bad proof: the signature does not verify"):
        _verify(signed)
    # A grant signed by Mallory's key, claiming to be Alice's and naming her key id.
    forged = _signed_grant(key=MALLORY_KEY)
    with pytest.raises(ConsentError, match="does not verify"):
        _verify(forged)


def test_a_proof_by_a_key_that_is_not_the_owners_is_refused() -> None:
    mallory = "https://mallory.example/users/m"
    with pytest.raises(ConsentError, match="not in the owner's actor document"):
        _signed_grant(key=MALLORY_KEY, key_id=f"{mallory}#ed25519-key")
    # Made by hand, with Mallory's own key and key id: it verifies with Mallory's key, but
    # the key is not Alice's.
    signed = integrity.sign(_grant(), MALLORY_KEY, f"{mallory}#ed25519-key", created=PUBLISHED)
    with pytest.raises(ConsentError, match="not in the owner's actor document"):
        _verify(signed, owner_key=MALLORY_KEY.public_key())
    # A key id that merely starts with the owner's id is not in the owner's document.
    signed = integrity.sign(_grant(), OWNER_KEY, f"{ALICE}x#ed25519-key", created=PUBLISHED)
    with pytest.raises(ConsentError, match="not in the owner's actor document"):
        _verify(signed)
    signed = integrity.sign(_grant(), OWNER_KEY, ALICE, created=PUBLISHED)
    with pytest.raises(ConsentError, match="not in the owner's actor document"):
        _verify(signed)


def test_the_wrong_key_is_refused() -> None:
    with pytest.raises(ConsentError, match="does not verify"):
        _verify(_signed_grant(), owner_key=MALLORY_KEY.public_key())


def test_a_grant_for_another_grantee_is_refused() -> None:
    with pytest.raises(ConsentError, match=f"for {BOB}, not {CAROL}"):
        _verify(_signed_grant(), grantee=CAROL)


def test_a_grant_of_another_owner_is_refused() -> None:
    with pytest.raises(ConsentError, match=f"attributed to {ALICE}, not {CAROL}"):
        _verify(_signed_grant(), owner=CAROL)


def test_an_expired_grant_is_refused() -> None:
    with pytest.raises(ConsentError, match="expired at 2027-01-06T17:00:00Z"):
        _verify(_signed_grant(), now=EXPIRES)
    _verify(_signed_grant(), now=EXPIRES - timedelta(seconds=1))


def test_a_drafts_only_grant_used_to_publish_is_refused() -> None:
    with pytest.raises(ConsentError, match="drafts only"):
        _verify(_signed_grant(), needs_publish=True)


def test_an_unknown_cryptosuite_is_refused() -> None:
    signed = _signed_grant()
    signed["proof"]["cryptosuite"] = "eddsa-rdfc-2022"
    with pytest.raises(ConsentError, match="unknown cryptosuite 'eddsa-rdfc-2022'"):
        _verify(signed)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("interactingObject", CAROL),
        ("scope", "publish"),
        ("expires", "2099-01-01T00:00:00Z"),
        ("restrictionsDigest", consent.restrictions_digest("anything goes")),
        ("published", "2026-12-06T16:00:00Z"),
        ("id", "https://alice.example/likeness/grants/2"),
    ],
)
def test_a_tampered_field_is_refused(field: str, value: str) -> None:
    signed = _signed_grant()
    signed[field] = value
    with pytest.raises(ConsentError, match="does not verify"):
        _verify(signed, grantee=signed["interactingObject"])


def test_a_tampered_unknown_member_or_removed_expiry_is_refused() -> None:
    signed = _signed_grant()
    signed["note"] = "added later"
    with pytest.raises(ConsentError, match="does not verify"):
        _verify(signed)
    signed = _signed_grant()
    del signed["expires"]
    with pytest.raises(ConsentError, match="does not verify"):
        _verify(signed)


def test_a_future_created_is_refused() -> None:
    signed = _signed_grant(created=NOW + timedelta(minutes=6))
    with pytest.raises(ConsentError, match="created in the future"):
        _verify(signed)
    _verify(signed, max_skew=timedelta(minutes=10))


def test_a_grant_published_in_the_future_is_refused() -> None:
    doc = _grant(published=NOW + timedelta(hours=1))
    signed = _signed_grant(doc, created=NOW)
    with pytest.raises(ConsentError, match="published in the future"):
        _verify(signed)
    _verify(signed, now=NOW + timedelta(hours=1))


def test_an_unsigned_grant_is_refused() -> None:
    with pytest.raises(ConsentError, match="carries no proof"):
        _verify(_grant())


MALFORMED_GRANTS: list[tuple[str, Any, str]] = [
    ("type", "Note", "not a LikenessAuthorization"),
    ("type", None, "not a LikenessAuthorization"),
    ("@context", None, "no @context"),
    ("id", None, "id is missing"),
    ("id", 7, "id is missing"),
    ("id", "urn:uuid:1", "not an http"),
    ("id", "https://mallory.example/grants/1", "not on the owner's server"),
    ("id", "https://alice.example/" + "g" * 3000, "id is too long"),
    ("attributedTo", None, "attributedTo is missing"),
    ("attributedTo", ["https://alice.example/users/alice"], "attributedTo is missing"),
    ("attributedTo", "https://alice.example/users/al ice", "not an http"),
    ("interactingObject", None, "interactingObject is missing"),
    ("interactingObject", {"type": "Person"}, "interactingObject is missing"),
    ("scope", None, "scope must be one of drafts, publish"),
    ("scope", "everything", "scope must be one of"),
    ("scope", ["drafts"], "scope must be one of"),
    ("restrictionsDigest", None, "restrictionsDigest"),
    ("restrictionsDigest", "sha-256=abc", "restrictionsDigest"),
    ("restrictionsDigest", "z" + "1" * 34, "restrictionsDigest"),
    ("restrictionsDigest", "zQm" + "0" * 44, "restrictionsDigest"),
    ("restrictionsDigest", "z" + "Q" * 500, "restrictionsDigest"),
    ("published", None, "published must be a date-time"),
    ("published", "2026-12-06", "timezone"),
    ("published", "last tuesday", "not an XSD dateTime"),
    ("expires", "2026-12-06T16:00:00Z", "expires before it was published"),
    ("expires", 3, "expires must be a date-time"),
]


@pytest.mark.parametrize(("field", "value", "reason"), MALFORMED_GRANTS)
def test_malformed_grants_are_refused(field: str, value: Any, reason: str) -> None:
    doc = copy.deepcopy(GRANT)
    if value is None:
        del doc[field]
    else:
        doc[field] = value
    with pytest.raises(ConsentError, match=reason):
        consent.parse_grant(doc)
    # Signed as it is, it is still refused, before any key is tried.
    signed = integrity.sign(doc, OWNER_KEY, ALICE_KEY_ID, created=PUBLISHED)
    with pytest.raises(ConsentError, match=reason):
        _verify(signed)


def test_an_embedded_actor_object_is_read_by_its_id() -> None:
    doc = dict(GRANT, interactingObject={"id": BOB, "type": "Person"})
    assert consent.parse_grant(doc).grantee == BOB


def test_a_type_list_with_the_grant_type_is_read() -> None:
    doc = dict(GRANT, type=["LikenessAuthorization", "Object"])
    assert consent.parse_grant(doc).scope == "drafts"


def test_unstorable_characters_are_refused() -> None:
    for bad in ("\x00", "\ud800"):
        with pytest.raises(ConsentError, match="NUL or a lone surrogate"):
            consent.parse_grant(dict(GRANT, id=f"{GRANT_ID}{bad}"))
        with pytest.raises(ConsentError, match="NUL or a lone surrogate"):
            consent.parse_revocation(dict(REVOCATION, summary=bad))


@pytest.mark.parametrize("doc", [None, "a grant", ["a", "grant"], 42])
def test_a_grant_that_is_no_object_is_refused(doc: Any) -> None:
    with pytest.raises(ConsentError, match="not a JSON object"):
        consent.parse_grant(doc)


def test_huge_and_deep_grants_are_refused() -> None:
    huge = dict(GRANT, summary="x" * (consent.MAX_CONSENT_CHARS + 1))
    with pytest.raises(ConsentError, match="over 16384 characters"):
        consent.parse_grant(huge)
    many = dict(GRANT, tag=[{"name": "t"}] * 300)
    with pytest.raises(ConsentError, match="too large"):
        consent.parse_grant(many)
    deep: Any = "bottom"
    for _ in range(10):
        deep = {"a": deep}
    with pytest.raises(ConsentError, match="nested too deeply"):
        consent.parse_grant(dict(GRANT, deep=deep))
    wide_keys = dict(GRANT, **{f"k{i}" * 300: 1 for i in range(30)})
    with pytest.raises(ConsentError, match="characters"):
        consent.parse_grant(wide_keys)


def test_building_refuses_bad_values() -> None:
    with pytest.raises(ConsentError, match="scope"):
        _grant(scope="all")
    with pytest.raises(ConsentError, match="not on the owner's server"):
        _grant(grant_id="https://bob.example/grants/1")
    with pytest.raises(ConsentError, match="restrictionsDigest"):
        _grant(restrictions_digest="plain text")
    with pytest.raises(ValueError, match="timezone"):
        _grant(published=datetime(2026, 12, 6, 17, 0))


def test_the_error_carries_its_reason_and_is_in_the_hierarchy() -> None:
    with pytest.raises(ConsentError) as caught:
        _verify(_signed_grant(), grantee=CAROL)
    assert caught.value.reason == f"the grant is for {BOB}, not {CAROL}"
    assert isinstance(caught.value, ActivityPubError)
    assert isinstance(caught.value, ValueError)


# --- revocations -----------------------------------------------------------------------------


def _verify_revocation(doc: Any, **changes: Any) -> consent.Revocation:
    args: dict[str, Any] = {"owner": ALICE, "now": datetime(2026, 12, 8, tzinfo=UTC)}
    args.update(changes)
    return consent.verify_revocation(doc, args.pop("owner_key", OWNER_PUBLIC), **args)


def test_a_replayed_revocation_is_recognisable_by_its_signed_id() -> None:
    signed = _signed_revocation()
    first = _verify_revocation(signed)
    replay = _verify_revocation(copy.deepcopy(signed))
    assert first.id == replay.id == "https://alice.example/likeness/revocations/1"
    # The id cannot be changed to dodge a receiver's memory of it: it is signed.
    fresh = copy.deepcopy(signed)
    fresh["id"] = "https://alice.example/likeness/revocations/2"
    with pytest.raises(ConsentError, match="does not verify"):
        _verify_revocation(fresh)


def test_a_forged_revocation_is_refused() -> None:
    forged = _signed_revocation(key=MALLORY_KEY)
    with pytest.raises(ConsentError, match="does not verify"):
        _verify_revocation(forged)
    tampered = _signed_revocation()
    tampered["object"] = "https://alice.example/likeness/grants/9"
    with pytest.raises(ConsentError, match="does not verify"):
        _verify_revocation(tampered)
    flipped = _signed_revocation()
    flipped["takeDown"] = False
    with pytest.raises(ConsentError, match="does not verify"):
        _verify_revocation(flipped)
    with pytest.raises(ConsentError, match="carries no proof"):
        _verify_revocation(_revocation())


def test_a_revocation_by_another_owner_is_refused() -> None:
    with pytest.raises(ConsentError, match=f"by {ALICE}, not {CAROL}"):
        _verify_revocation(_signed_revocation(), owner=CAROL)
    mallory = "https://mallory.example/users/m"
    with pytest.raises(ConsentError, match="not in the owner's actor document"):
        _signed_revocation(key_id=f"{mallory}#key")


def test_a_revocation_from_the_future_is_refused() -> None:
    signed = _signed_revocation()
    with pytest.raises(ConsentError, match="future"):
        _verify_revocation(signed, now=datetime(2026, 12, 7, 9, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("type", "Delete", "not a LikenessRevocation"),
        ("object", None, "object is missing"),
        ("object", "https://mallory.example/grants/1", "not on the owner's server"),
        ("id", "https://mallory.example/revocations/1", "not on the owner's server"),
        ("attributedTo", None, "attributedTo is missing"),
        ("takeDown", "yes", "takeDown must be true or false"),
        ("published", None, "published must be a date-time"),
    ],
)
def test_malformed_revocations_are_refused(field: str, value: Any, reason: str) -> None:
    doc = copy.deepcopy(REVOCATION)
    if value is None:
        del doc[field]
    else:
        doc[field] = value
    with pytest.raises(ConsentError, match=reason):
        consent.parse_revocation(doc)


def test_a_revocation_without_take_down_keeps_clips() -> None:
    doc = copy.deepcopy(REVOCATION)
    del doc["takeDown"]
    assert consent.parse_revocation(doc).take_down is False


def test_what_a_revocation_revokes() -> None:
    grant = _verify(_signed_grant())
    one = _verify_revocation(_signed_revocation())
    assert consent.revokes(one, grant)
    other_grant = consent.parse_grant(dict(GRANT, id="https://alice.example/likeness/grants/2"))
    assert not consent.revokes(one, other_grant)

    everything = consent.parse_revocation(
        _revocation(revoked=ALICE, revocation_id="https://alice.example/likeness/revocations/2")
    )
    assert everything.whole_likeness
    assert consent.revokes(everything, grant)
    assert consent.revokes(everything, other_grant)
    # A grant made after the revocation of everything (the owner consented again) stands,
    # even when that old revocation is replayed.
    later = consent.parse_grant(dict(GRANT, published="2026-12-08T00:00:00Z"))
    assert not consent.revokes(everything, later)
    # Another owner's revocation never touches Alice's grants.
    carols = consent.parse_revocation(
        dict(
            REVOCATION,
            id="https://carol.example/r/1",
            attributedTo=CAROL,
            object="https://carol.example/users/carol",
        )
    )
    assert not consent.revokes(carols, grant)


# --- the FEP-style note stays true to the code --------------------------------------------------


def test_the_notes_examples_are_the_vectors_and_verify() -> None:
    note = (Path(__file__).parents[2] / "docs" / "fep-likeness-consent.md").read_text()
    blocks = [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", note, re.S)]
    assert consent.CONSENT_CONTEXT in blocks
    (grant,) = [
        b
        for b in blocks
        if isinstance(b, dict) and b.get("type") == consent.GRANT_TYPE and "maxUses" not in b
    ]
    (revocation,) = [
        b for b in blocks if isinstance(b, dict) and b.get("type") == consent.REVOCATION_TYPE
    ]
    assert grant == _signed_grant()
    assert revocation == _signed_revocation()
    # The single-use example: the same key, maxUses 1.
    (single,) = [b for b in blocks if isinstance(b, dict) and b.get("maxUses") == 1]
    assert single == _signed_grant(dict(SINGLE_USE_GRANT, **{"@context": CONTEXT}))
    assert _verify(single, needs_publish=True).single_use
    _verify(grant)
    _verify_revocation(revocation)
