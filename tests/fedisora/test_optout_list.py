"""The published opt-out list, pure: its shape, its eddsa-jcs-2022 signature (fixed vectors:
Ed25519 is deterministic), its verification (a tampered list, another key, another issuer
refused) and the changes between two versions."""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric import ed25519

from activitypub._base58 import b58decode
from fedisora.policy import optout_list as ol

KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
ISSUER = "https://issuer.example/actor"
KEY_ID = f"{ISSUER}#ed25519-key"
WHEN = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
JANE = ol.ListEntry(
    "https://issuer.example/optouts#1", "Jane Doe", "public_figure", ("Jane Doe", "JD Star")
)
COMET = ol.ListEntry(
    "https://issuer.example/optouts#2", "Comet Studios", "protected_work", ("Captain Comet",)
)

CANONICAL = (
    b'{"entries":[{"id":"https://issuer.example/optouts#1","kind":"public_figure",'
    b'"terms":["Jane Doe","JD Star"],"who":"Jane Doe"},{"id":"https://issuer.example/optouts#2",'
    b'"kind":"protected_work","terms":["Captain Comet"],"who":"Comet Studios"}],'
    b'"issued_at":"2026-12-07T02:00:00Z","issuer":"https://issuer.example/actor",'
    b'"type":"OptOutList","version":3}'
)
PROOF_VALUE = (
    "zH7zqHNKP93H4e8bzP2hjCnYEzWbbXnqjZqsEbSuH7sCtQNGn9UYamjjV8dfqapo96bDbVfPTDsonPmPpsbzfZkA"
)


def _signed(**changes: Any) -> dict[str, Any]:
    doc = ol.build_list(version=3, issued_at=WHEN, issuer=ISSUER, entries=[JANE, COMET])
    doc.update(changes)
    return ol.sign_list(doc, KEY, key_id=KEY_ID, created=WHEN)


def test_the_signature_is_the_fixed_vector_over_the_canonical_bytes() -> None:
    signed = _signed()
    unsigned = {k: v for k, v in signed.items() if k != "proof"}
    assert rfc8785.dumps(unsigned) == CANONICAL
    proof = signed["proof"]
    assert proof == {
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-jcs-2022",
        "created": "2026-12-07T02:00:00Z",
        "verificationMethod": KEY_ID,
        "proofPurpose": "assertionMethod",
        "proofValue": PROOF_VALUE,
    }
    # eddsa-jcs-2022 by hand: SHA-256(JCS(config)) || SHA-256(JCS(document)), Ed25519
    config = {k: v for k, v in proof.items() if k != "proofValue"}
    data = hashlib.sha256(rfc8785.dumps(config)).digest() + hashlib.sha256(CANONICAL).digest()
    KEY.public_key().verify(b58decode(PROOF_VALUE[1:]), data)  # raises if it does not hold

    listed = ol.verify_list(signed, KEY.public_key(), issuer=ISSUER, now=WHEN)
    assert listed == ol.PublishedList(3, WHEN, ISSUER, (JANE, COMET))


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: d.update(version=4),
        lambda d: d["entries"].pop(),
        lambda d: d["entries"][0]["terms"].append("Janie"),
        lambda d: d.update(issued_at="2026-12-07T02:00:01Z"),
        lambda d: d["proof"].update(proofValue="z" + "1" * 87),
        lambda d: d["proof"].update(created="2026-12-07T02:00:01Z"),
        lambda d: d.pop("proof"),
    ],
)
def test_a_tampered_list_is_refused(tamper: Any) -> None:
    doc = copy.deepcopy(_signed())
    tamper(doc)
    with pytest.raises(ol.BadSignature):
        ol.verify_list(doc, KEY.public_key(), issuer=ISSUER, now=WHEN)


def test_another_key_another_issuer_and_malformed_lists_are_refused() -> None:
    signed = _signed()
    with pytest.raises(ol.BadSignature, match="does not verify"):
        ol.verify_list(signed, OTHER.public_key(), issuer=ISSUER, now=WHEN)
    with pytest.raises(ol.BadSignature, match=r"not https://other\.example/actor"):
        ol.verify_list(signed, KEY.public_key(), issuer="https://other.example/actor", now=WHEN)
    # signed by the issuer's key, but the proof names a key of another actor
    doc = ol.build_list(version=1, issued_at=WHEN, issuer=ISSUER, entries=[])
    with pytest.raises(ol.BadSignature, match="not the issuer's"):
        ol.sign_list(doc, KEY, key_id="https://evil.example/actor#k", created=WHEN)
    from activitypub import integrity

    forged = integrity.sign(doc, KEY, "https://evil.example/actor#k", created=WHEN)
    with pytest.raises(ol.BadSignature, match="not the issuer's"):
        ol.verify_list(forged, KEY.public_key(), issuer=ISSUER, now=WHEN)
    # a proof from the future
    later = ol.sign_list(doc, KEY, key_id=KEY_ID, created=WHEN + timedelta(hours=1))
    with pytest.raises(ol.BadSignature, match="future"):
        ol.verify_list(later, KEY.public_key(), issuer=ISSUER, now=WHEN)

    for bad, message in [
        ([], "not a JSON object"),
        ({**signed, "type": "Note"}, "type"),
        ({**signed, "version": "3"}, "version"),
        ({**signed, "version": True}, "version"),
        ({**signed, "issued_at": "yesterday"}, "issued_at"),
        ({**signed, "issuer": "actor"}, "issuer"),
        ({**signed, "entries": {}}, "entries"),
        ({**signed, "entries": [{**JANE.public(), "kind": "villain"}]}, r"entries\[0\].kind"),
        ({**signed, "entries": [{**JANE.public(), "terms": []}]}, r"entries\[0\].terms"),
        ({**signed, "entries": [{**JANE.public(), "terms": ["Al"]}]}, "at least 3 letters"),
        ({**signed, "entries": [{**JANE.public(), "who": "x" * 201}]}, "who"),
        ({**signed, "entries": [JANE.public(), JANE.public()]}, "same id"),
    ]:
        with pytest.raises(ol.MalformedList, match=message):
            ol.verify_list(bad, KEY.public_key(), issuer=ISSUER, now=WHEN)


def test_the_diff_between_versions() -> None:
    changed = ol.ListEntry(JANE.id, "Jane Doe", "public_figure", ("Jane Doe",))
    star = ol.ListEntry("https://issuer.example/optouts#3", "Star", "public_figure", ("Star Lord",))
    assert not ol.diff([JANE, COMET], [COMET, JANE])
    d = ol.diff([JANE, COMET], [changed, star])
    assert d.added == (changed, star)
    assert d.removed == (JANE, COMET)
    assert ol.diff([], [JANE]) == ol.Diff((JANE,), ())
