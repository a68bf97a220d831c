"""activitypub.digest: Digest (RFC 3230) and Content-Digest (RFC 9530)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from activitypub.digest import (
    content_digest_header,
    digest_header,
    verify_content_digest,
    verify_digest_header,
)
from activitypub.errors import DigestMismatch, MalformedDigest, MalformedSignature

BODY = b'{"hello": "world"}'
# The body of the draft-cavage, RFC 9421 and RFC 9530 examples, with their digests.
SHA256_B64 = "X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="
SHA512_B64 = (
    "WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew=="
)


def test_digest_header_matches_the_published_value() -> None:
    assert digest_header(BODY) == f"SHA-256={SHA256_B64}"


def test_content_digest_header_matches_the_published_values() -> None:
    assert content_digest_header(BODY) == f"sha-256=:{SHA256_B64}:"
    assert content_digest_header(BODY, "sha-512") == f"sha-512=:{SHA512_B64}:"
    with pytest.raises(ValueError, match="unsupported"):
        content_digest_header(BODY, "md5")


@pytest.mark.parametrize(
    "value",
    [
        f"SHA-256={SHA256_B64}",
        f"sha-256={SHA256_B64}",  # fediverse-pasture's spelling
        f" SHA-256 = {SHA256_B64} ",
        f"MD5=whatever, SHA-256={SHA256_B64}",  # unknown algorithms are ignored
        f"SHA-256={SHA256_B64},SHA-512={SHA512_B64}",
    ],
)
def test_digest_header_accepts(value: str) -> None:
    verify_digest_header(value, BODY)


def test_digest_header_mismatch() -> None:
    with pytest.raises(DigestMismatch, match="does not match"):
        verify_digest_header(f"SHA-256={SHA256_B64}", BODY + b" ")
    # Every supported algorithm offered must match, not just one.
    wrong512 = base64.b64encode(hashlib.sha512(b"other").digest()).decode()
    with pytest.raises(DigestMismatch, match="sha-512"):
        verify_digest_header(f"SHA-256={SHA256_B64}, SHA-512={wrong512}", BODY)


def test_digest_header_without_a_supported_algorithm() -> None:
    with pytest.raises(DigestMismatch, match="no supported algorithm"):
        verify_digest_header("MD5=Sd/dVLAcvNLSq16eXua5uQ==", BODY)


@pytest.mark.parametrize(
    "value",
    ["", "SHA-256", "=abc", "SHA-256=not*base64", "SHA-256=AAAA", "x" * 5000],
)
def test_digest_header_malformed(value: str) -> None:
    with pytest.raises(MalformedDigest):
        verify_digest_header(value, BODY)


@pytest.mark.parametrize(
    "value",
    [
        f"sha-256=:{SHA256_B64}:",
        f"sha-512=:{SHA512_B64}:",
        f"sha-512=:{SHA512_B64}:, sha-256=:{SHA256_B64}:",
        f"md5=:AAAA:, sha-256=:{SHA256_B64}:",
    ],
)
def test_content_digest_accepts(value: str) -> None:
    verify_content_digest(value, BODY)


def test_content_digest_mismatch_and_unsupported() -> None:
    with pytest.raises(DigestMismatch, match="does not match"):
        verify_content_digest(f"sha-256=:{SHA256_B64}:", b"{}")
    with pytest.raises(DigestMismatch, match="no supported algorithm"):
        verify_content_digest("md5=:Sd/dVLAcvNLSq16eXua5uQ==:", BODY)


@pytest.mark.parametrize(
    "value",
    [
        "sha-256",  # a Boolean member, not a byte sequence
        'sha-256="X48E"',
        "sha-256=:AAAA:",  # wrong length
        f"SHA-256=:{SHA256_B64}:",  # keys are lower case in structured fields
        f"sha-256=:{SHA256_B64}:, sha-256=:{SHA256_B64}:",  # duplicate key
        "sha-256=:é:",
    ],
)
def test_content_digest_malformed(value: str) -> None:
    with pytest.raises(MalformedDigest):
        verify_content_digest(value, BODY)


def test_digest_errors_map_to_400_and_401() -> None:
    assert issubclass(MalformedDigest, MalformedSignature)
    assert MalformedDigest.http_status == 400
    assert DigestMismatch.http_status == 401
