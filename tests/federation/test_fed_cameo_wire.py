"""The wire shape of a federated likeness revocation (fedisora.federation.cameo_clips)."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric import ed25519

from activitypub import consent
from fedisora.federation.cameo_clips import carries_revocation, revocation_activity

KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ALICE = "https://alice.example/users/alice"
WHEN = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def _revocation(revoked: str, take_down: bool = True) -> dict[str, object]:
    doc = consent.build_revocation(
        revocation_id="https://alice.example/likeness/revocations/1",
        owner=ALICE,
        revoked=revoked,
        published=WHEN,
        take_down=take_down,
    )
    return consent.sign_revocation(doc, KEY, key_id=f"{ALICE}#ed25519-key", created=WHEN)


def test_a_revoked_grant_is_the_object_of_a_delete_carrying_the_signed_revocation() -> None:
    revocation = _revocation("https://alice.example/likeness/grants/1")
    activity = revocation_activity(revocation, to=["https://bob.example/users/bob"])
    assert {k: v for k, v in activity.items() if k != "@context"} == {
        "id": "https://alice.example/likeness/revocations/1#delete",
        "type": "Delete",
        "actor": ALICE,
        "object": "https://alice.example/likeness/grants/1",
        "to": ["https://bob.example/users/bob"],
        "instrument": revocation,
    }
    assert carries_revocation(activity)
    # The proof still verifies as delivered (the receiver checks it with the owner's key).
    verified = consent.verify_revocation(
        activity["instrument"], KEY.public_key(), owner=ALICE, now=WHEN
    )
    assert verified.take_down


def test_a_whole_likeness_revocation_never_reads_as_the_account_deleted() -> None:
    activity = revocation_activity(_revocation(ALICE))
    assert activity["object"] == f"{ALICE}#likeness"
    assert activity["object"] != activity["actor"]


def test_other_deletes_carry_no_revocation() -> None:
    assert not carries_revocation({"type": "Delete", "object": "https://x/1"})
    assert not carries_revocation({"type": "Delete", "instrument": {"type": "Note"}})
    assert not carries_revocation({"type": "Delete", "instrument": "https://x/r/1"})
    assert carries_revocation(
        {"type": "Delete", "instrument": {"type": ["LikenessRevocation", "Object"]}}
    )
