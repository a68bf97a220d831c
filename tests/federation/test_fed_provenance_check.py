"""The pure checks that label a remote clip's video: fixed vectors, then real signed MP4s.

The real files are rendered by the tiny pipeline, encoded and C2PA-signed as the render queue
does; ``verify_mp4`` validates them and :func:`judge_manifest` decides the label, exactly as
the RemoteMediaCheck machine chains them (without the download).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from provclips import encoded_clip, sign_clip, unsigned_copy

from fedisora.federation.provenance_check import (
    Expected,
    Label,
    Verdict,
    has_c2pa_box,
    judge_file,
    judge_manifest,
    origin_of,
    sha256_of_multibase,
)
from fedisora.federation.provenance_root import (
    LEGACY_ROOT_CERTIFICATES,
    MAX_ROOT_CERTIFICATES,
    parse_root_pem,
)
from render.provenance import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
    ProvenanceClaim,
    ValidationState,
    VerificationResult,
    generate_instance_ca,
    verify_mp4,
)

ORIGIN = "video.example"
AUTHOR = f"https://{ORIGIN}/users/ann"
DIGEST = "ab" * 32
SHA = "66fb6ec300499278124f9a6cadcc6398e184d19a9fedc27dcca7d0e0839b6c97"  # sha256(b"fedisora")


def claim(**changes: Any) -> ProvenanceClaim:
    values: dict[str, Any] = {
        "instance": ORIGIN,
        "job_id": "1",
        "model": "tiny",
        "seed": 1,
        "prompt_sha256": "00" * 32,
        "creator": AUTHOR,
    }
    values.update(changes)
    return ProvenanceClaim(**values)


def trusted(**changes: Any) -> VerificationResult:
    values: dict[str, Any] = {
        "state": ValidationState.TRUSTED,
        "claim": claim(),
        "digital_source_type": TRAINED_ALGORITHMIC_MEDIA,
        "manifest_digest": DIGEST,
        "signer": f"fedisora signer for {ORIGIN}",
    }
    values.update(changes)
    return VerificationResult(**values)


EXPECTED = Expected(origin=ORIGIN, author_uri=AUTHOR, manifest_digest=DIGEST)


# --- vectors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "origin"),
    [
        ("https://Video.Example/users/ann", "video.example"),
        ("https://video.example:443/users/ann", "video.example"),
        ("http://video.example:80/x", "video.example"),
        ("https://video.example:8443/users/ann", "video.example:8443"),
        ("http://127.0.0.1:8001/users/admin", "127.0.0.1:8001"),
    ],
)
def test_origin_of(uri: str, origin: str) -> None:
    assert origin_of(uri) == origin


@pytest.mark.parametrize(
    ("value", "sha"),
    [
        ("zQmVGefQgzi634zMESBmo7biGLHLvPqCpoiooUHM394auie", SHA),  # FEP-1311: base58btc
        ("uEiBm-27DAEmSeBJPmmytzGOY4YTRmp_twn3Mp9Dgg5tslw", SHA),  # multibase base64url
        ("mEiBm+27DAEmSeBJPmmytzGOY4YTRmp/twn3Mp9Dgg5tslw", None),  # a base we do not read
        ("zQmVGefQgzi634zMESBmo7biGLHLvPqCpoiooUHM394aui", None),  # one character short
        ("z0OIl", None),  # not base58
        ("", None),
        (None, None),
    ],
)
def test_sha256_of_multibase(value: str | None, sha: str | None) -> None:
    assert sha256_of_multibase(value) == sha


def test_sha256_of_multibase_reads_only_sha2_256_multihashes() -> None:
    from activitypub._base58 import b58encode

    sha512_code = "z" + b58encode(b"\x13\x20" + bytes.fromhex(SHA))
    assert sha256_of_multibase(sha512_code) is None


def test_judge_file() -> None:
    exact = Expected(ORIGIN, AUTHOR, size=1000, sha256_hex=SHA)
    assert judge_file(1000, SHA, exact) is None
    assert judge_file(1000, SHA.upper(), exact) is None
    assert judge_file(5, "00" * 32, Expected(ORIGIN, AUTHOR)) is None  # nothing announced
    assert judge_file(999, SHA, exact) == Verdict(
        Label.INVALID, "the file has 999 bytes; the note announced 1000"
    )
    assert judge_file(1000, "00" * 32, exact) == Verdict(
        Label.INVALID, "the file does not match the note's digestMultibase"
    )


@pytest.mark.parametrize(
    ("result", "expected", "label", "reason"),
    [
        (trusted(), EXPECTED, Label.VERIFIED, "rendered and signed by video.example"),
        (
            trusted(digital_source_type=COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA),
            EXPECTED,
            Label.VERIFIED,
            "rendered and signed by",
        ),
        (trusted(claim=claim(instance="video.example:443")), EXPECTED, Label.VERIFIED, ""),
        (trusted(claim=claim(creator=None)), EXPECTED, Label.VERIFIED, ""),
        (
            trusted(),
            Expected(ORIGIN, AUTHOR, manifest_digest=f"sha256:{DIGEST}"),
            Label.VERIFIED,
            "",
        ),
        (trusted(), Expected(ORIGIN, AUTHOR), Label.VERIFIED, ""),
        (
            VerificationResult(state=ValidationState.MISSING),
            Expected(ORIGIN, AUTHOR),
            Label.UNVERIFIED,
            "carries no C2PA provenance manifest",
        ),
        (
            VerificationResult(state=ValidationState.MISSING),
            EXPECTED,
            Label.INVALID,
            "announced a C2PA manifest but the file carries none",
        ),
        (
            trusted(state=ValidationState.INVALID, failures=("assertion.bmffHash.mismatch",)),
            EXPECTED,
            Label.INVALID,
            "does not validate (assertion.bmffHash.mismatch)",
        ),
        (
            trusted(state=ValidationState.VALID, signer="someone else"),
            EXPECTED,
            Label.INVALID,
            "signed by someone else, not under the root video.example publishes",
        ),
        (trusted(claim=None), EXPECTED, Label.INVALID, "no fedisora render assertion"),
        (
            trusted(claim=claim(instance="evil.example")),
            EXPECTED,
            Label.INVALID,
            "says 'evil.example' rendered it; the clip is from 'video.example'",
        ),
        (
            trusted(claim=claim(instance="video.example:8443")),
            EXPECTED,
            Label.INVALID,
            "says 'video.example:8443'",
        ),
        (
            trusted(
                digital_source_type="http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"
            ),
            EXPECTED,
            Label.INVALID,
            "not trained algorithmic media",
        ),
        (trusted(digital_source_type=None), EXPECTED, Label.INVALID, "digitalSourceType is None"),
        (
            trusted(claim=claim(creator="https://video.example/users/bob")),
            EXPECTED,
            Label.INVALID,
            "rendered for https://video.example/users/bob, not the clip's author",
        ),
        (
            trusted(manifest_digest="cd" * 32),
            EXPECTED,
            Label.INVALID,
            "not the one the note announced",
        ),
    ],
)
def test_judge_manifest(
    result: VerificationResult, expected: Expected, label: Label, reason: str
) -> None:
    verdict = judge_manifest(result, expected)
    assert verdict.label is label
    assert reason in verdict.reason


def test_parse_root_pem_keeps_ca_certificates_only() -> None:
    credentials = generate_instance_ca(ORIGIN)
    assert parse_root_pem(credentials.root_pem) == credentials.root_pem
    # A key pasted next to the root is never passed on.
    mixed = parse_root_pem(credentials.root_pem + credentials.key_pem)
    assert mixed == credentials.root_pem and "PRIVATE KEY" not in mixed
    for refused in (credentials.key_pem, credentials.chain_pem, "hello", b"\x00" * 10):
        with pytest.raises(ValueError):
            parse_root_pem(refused)  # a key, a leaf (not a CA), junk
    # A bundle (the current root, then retired ones) up to the limit.
    assert parse_root_pem(credentials.root_pem * MAX_ROOT_CERTIFICATES).count("BEGIN") == 32
    with pytest.raises(ValueError):
        parse_root_pem(credentials.root_pem * (MAX_ROOT_CERTIFICATES + 1))
    with pytest.raises(ValueError):  # what fedisora before root history accepts
        parse_root_pem(credentials.root_pem * 5, limit=LEGACY_ROOT_CERTIFICATES)


# --- real signed files -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def origin_ca() -> Any:
    return generate_instance_ca(ORIGIN)


@pytest.fixture(scope="module")
def own_ca() -> Any:
    return generate_instance_ca("fedisora.test")


@pytest.fixture
def encoded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encoded_clip(tmp_path_factory)


def check(path: Path, roots: list[str], expected: Expected) -> Verdict:
    return judge_manifest(verify_mp4(path, roots), expected)


def test_has_c2pa_box(encoded: Path, origin_ca: Any, tmp_path: Path) -> None:
    signed = sign_clip(encoded, tmp_path / "s.mp4", origin_ca, instance=ORIGIN, creator=AUTHOR)
    assert has_c2pa_box(signed.path) is True
    assert has_c2pa_box(encoded) is False
    for junk in (b"", b"\x00\x00\x00\x01uuid", b"\xff" * 64):
        (tmp_path / "junk.mp4").write_bytes(junk)
        assert has_c2pa_box(tmp_path / "junk.mp4") is False


def test_signed_by_the_origin_is_verified(
    encoded: Path, origin_ca: Any, own_ca: Any, tmp_path: Path
) -> None:
    signed = sign_clip(encoded, tmp_path / "s.mp4", origin_ca, instance=ORIGIN, creator=AUTHOR)
    expected = Expected(ORIGIN, AUTHOR, manifest_digest=signed.manifest_digest)
    roots = [own_ca.root_pem, origin_ca.root_pem]
    assert check(signed.path, roots, expected) == Verdict(
        Label.VERIFIED, "rendered and signed by video.example"
    )
    composite = sign_clip(
        encoded, tmp_path / "c.mp4", origin_ca, instance=ORIGIN, creator=AUTHOR, input_image=True
    )
    result = verify_mp4(composite.path, roots)
    assert result.digital_source_type == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert judge_manifest(result, Expected(ORIGIN, AUTHOR)).label is Label.VERIFIED
    # Without the origin's root the same file is only "Valid": not verified.
    assert check(signed.path, [own_ca.root_pem], expected).label is Label.INVALID


def test_no_manifest_is_unverified(encoded: Path, origin_ca: Any, tmp_path: Path) -> None:
    plain = unsigned_copy(encoded, tmp_path / "plain.mp4")
    assert check(plain, [origin_ca.root_pem], Expected(ORIGIN, AUTHOR)) == Verdict(
        Label.UNVERIFIED, "the file carries no C2PA provenance manifest"
    )


def test_tampered_file_is_invalid(encoded: Path, origin_ca: Any, tmp_path: Path) -> None:
    signed = sign_clip(encoded, tmp_path / "s.mp4", origin_ca, instance=ORIGIN, creator=AUTHOR)
    data = bytearray(signed.path.read_bytes())
    data[-200] ^= 0xFF  # a byte of the video itself (mdat comes last)
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(bytes(data))
    verdict = check(
        tampered,
        [origin_ca.root_pem],
        Expected(ORIGIN, AUTHOR, manifest_digest=signed.manifest_digest),
    )
    assert verdict.label is Label.INVALID
    assert "bmffHash.mismatch" in verdict.reason


def test_signed_under_another_root_is_invalid(
    encoded: Path, origin_ca: Any, own_ca: Any, tmp_path: Path
) -> None:
    stranger = generate_instance_ca("stranger.example")
    forged = sign_clip(encoded, tmp_path / "f.mp4", stranger, instance=ORIGIN, creator=AUTHOR)
    expected = Expected(ORIGIN, AUTHOR, manifest_digest=forged.manifest_digest)
    verdict = check(forged.path, [own_ca.root_pem, origin_ca.root_pem], expected)
    assert verdict.label is Label.INVALID
    assert "signed by fedisora signer for stranger.example" in verdict.reason


def test_origin_root_but_another_instance_named_is_invalid(
    encoded: Path, origin_ca: Any, tmp_path: Path
) -> None:
    """An instance may only vouch for its own clips: a manifest it signed that names another
    instance, on a clip from a third host, is refused even though the chain is trusted."""
    signed = sign_clip(
        encoded, tmp_path / "s.mp4", origin_ca, instance="other.example", creator=AUTHOR
    )
    verdict = check(signed.path, [origin_ca.root_pem], Expected(ORIGIN, AUTHOR))
    assert verdict.label is Label.INVALID
    assert "'other.example' rendered it" in verdict.reason
