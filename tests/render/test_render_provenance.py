"""render.provenance: instance CA, C2PA signing of MP4s, and verification."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from render.encode import probe
from render.errors import ProvenanceError
from render.provenance import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
    ProvenanceClaim,
    ValidationState,
    generate_instance_ca,
    manifest_digest_of,
    prompt_sha256,
    sign_mp4,
    verify_mp4,
)

CLAIM = ProvenanceClaim(
    instance="video.example",
    job_id="job-42",
    model="tiny",
    seed=1234,
    prompt_sha256=prompt_sha256("a heron lands on a pier"),
    creator="https://video.example/users/ana",
)


@pytest.fixture(scope="module")
def signed(credentials: Any, gradient_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    dst = tmp_path_factory.mktemp("signed") / "signed.mp4"
    return sign_mp4(
        gradient_clip,
        dst,
        chain_pem=credentials.chain_pem,
        key_pem=credentials.key_pem,
        claim=CLAIM,
    )


@pytest.mark.parametrize("algorithm", ["es256", "ed25519"])
def test_instance_ca_has_what_c2pa_requires(algorithm: Any) -> None:
    now = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    creds = generate_instance_ca("video.example", algorithm=algorithm, now=now)
    chain = x509.load_pem_x509_certificates(creds.chain_pem.encode())
    root = x509.load_pem_x509_certificate(creds.root_pem.encode())
    leaf = chain[0]
    assert chain[1] == root and len(chain) == 2  # leaf first
    assert leaf.issuer == root.subject and root.issuer == root.subject

    ext = leaf.extensions
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = ext.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == root_ski.digest
    ext.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc

    key = serialization.load_pem_private_key(creds.key_pem.encode(), password=None)
    want = ec.EllipticCurvePrivateKey if algorithm == "es256" else ed25519.Ed25519PrivateKey
    assert isinstance(key, want)
    pub = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(*pub) == leaf.public_key().public_bytes(*pub)
    leaf.verify_directly_issued_by(root)


@pytest.mark.parametrize("bad", ["", "has space.example", "-x.example", "a/b"])
def test_instance_ca_wants_a_domain(bad: str) -> None:
    with pytest.raises(ValueError, match="not a domain"):
        generate_instance_ca(bad)


def test_signed_clip_is_trusted_with_the_instance_root(signed: Any, credentials: Any) -> None:
    result = verify_mp4(signed.path, [credentials.root_pem])
    assert result.state is ValidationState.TRUSTED and result.trusted
    assert result.failures == ()
    assert result.claim == CLAIM
    assert result.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert result.signer == "fedisora signer for video.example"
    assert result.manifest_digest == signed.manifest_digest == manifest_digest_of(signed.path)


def test_signed_clip_is_valid_but_untrusted_without_the_root(signed: Any) -> None:
    other = generate_instance_ca("elsewhere.example")
    for roots in ([], [other.root_pem]):
        result = verify_mp4(signed.path, roots)
        assert result.state is ValidationState.VALID and not result.trusted
        assert result.failures == ("signingCredential.untrusted",)
        assert result.claim == CLAIM


def test_signing_keeps_the_video_playable_and_faststart(
    signed: Any, gradient_clip: Path, box_kinds: Callable[[Path], list[bytes]]
) -> None:
    before, after = probe(gradient_clip), probe(signed.path)
    assert (after.frames, after.width, after.height, after.codec) == (
        before.frames,
        before.width,
        before.height,
        before.codec,
    )
    kinds = box_kinds(signed.path)
    assert kinds.index(b"uuid") < kinds.index(b"moov") < kinds.index(b"mdat")
    assert 0 < signed.size - gradient_clip.stat().st_size < 20_000  # a few KB


def test_tampered_clip_is_invalid(signed: Any, credentials: Any, tmp_path: Path) -> None:
    data = bytearray(signed.path.read_bytes())
    mdat = data.index(b"mdat")
    data[mdat + 64] ^= 0xFF  # one byte of coded video
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(bytes(data))
    result = verify_mp4(tampered, [credentials.root_pem])
    assert result.state is ValidationState.INVALID
    assert "assertion.bmffHash.mismatch" in result.failures


def test_unsigned_clip_has_no_manifest(gradient_clip: Path, credentials: Any) -> None:
    result = verify_mp4(gradient_clip, [credentials.root_pem])
    assert result.state is ValidationState.MISSING
    assert (result.claim, result.manifest_digest, result.digital_source_type) == (None, None, None)
    assert manifest_digest_of(gradient_clip) is None


def test_image_or_likeness_makes_it_composite(
    credentials: Any, gradient_clip: Path, tmp_path: Path
) -> None:
    claim = ProvenanceClaim(
        instance="video.example",
        job_id="job-43",
        model="wan2.1-t2v-1.3b",
        seed=1,
        prompt_sha256=prompt_sha256("me, surfing"),
        remix_source="https://other.example/videos/9",
        consent_refs=("https://video.example/consents/7",),
    )
    assert CLAIM.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert claim.digital_source_type == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    image_claim = ProvenanceClaim("a", "b", "c", 1, "d", input_image=True)
    assert image_claim.digital_source_type == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA

    # Ed25519 signing, in place (dst == src).
    ed = generate_instance_ca("video.example", algorithm="ed25519")
    clip = tmp_path / "cameo.mp4"
    shutil.copy(gradient_clip, clip)
    sign_mp4(clip, clip, chain_pem=ed.chain_pem, key_pem=ed.key_pem, claim=claim)
    result = verify_mp4(clip, [credentials.root_pem, ed.root_pem])
    assert result.state is ValidationState.TRUSTED
    assert result.claim == claim
    assert result.digital_source_type == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cameo.mp4"]


def test_failed_sign_leaves_no_file(credentials: Any, tmp_path: Path) -> None:
    src = tmp_path / "src.mp4"
    src.write_bytes(b"this is not an mp4 at all" * 40)
    dst = tmp_path / "out.mp4"
    with pytest.raises(ProvenanceError, match="could not sign"):
        sign_mp4(
            src, dst, chain_pem=credentials.chain_pem, key_pem=credentials.key_pem, claim=CLAIM
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.mp4"]


def test_sign_refuses_a_bad_key(credentials: Any, gradient_clip: Path, tmp_path: Path) -> None:
    with pytest.raises(ProvenanceError, match="PEM private key"):
        sign_mp4(
            gradient_clip,
            tmp_path / "o.mp4",
            chain_pem=credentials.chain_pem,
            key_pem="nope",
            claim=CLAIM,
        )
    assert list(tmp_path.iterdir()) == []


def test_verify_refuses_garbage(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01garbage" * 50)
    with pytest.raises(ProvenanceError, match="cannot read"):
        verify_mp4(junk)


def test_claim_assertion_round_trip_and_malformed() -> None:
    assert ProvenanceClaim.from_assertion(CLAIM.to_assertion()) == CLAIM
    broken = CLAIM.to_assertion()
    del broken["seed"]
    with pytest.raises(ValueError, match="malformed"):
        ProvenanceClaim.from_assertion(broken)
    assert prompt_sha256("a") == "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
