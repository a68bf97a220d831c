"""Signature primitives, named as in the RFC 9421 algorithm registry.

* ``rsa-v1_5-sha256``: RSASSA-PKCS1-v1_5 with SHA-256 (deterministic). What the
  fediverse uses for draft-cavage ``rsa-sha256`` and ``hs2019`` with RSA keys.
* ``rsa-pss-sha512``: RSASSA-PSS, MGF1-SHA-512, 64-byte salt (randomised). Only
  here so that the RFC 9421 appendix B examples verify.
* ``ed25519``: Ed25519 (deterministic).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding

from activitypub.errors import UnsupportedSignature
from activitypub.keys import PrivateKey, PublicKey

__all__ = ["ALGORITHMS", "default_algorithm", "sign", "verify"]

ALGORITHMS = ("rsa-v1_5-sha256", "rsa-pss-sha512", "ed25519")


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=64)


def default_algorithm(key: PublicKey | PrivateKey) -> str:
    """The algorithm implied by a key when the signature names none."""
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "ed25519"
    return "rsa-v1_5-sha256"


def _require(algorithm: str, key: PublicKey | PrivateKey) -> None:
    if algorithm not in ALGORITHMS:
        raise UnsupportedSignature(f"unsupported signature algorithm {algorithm!r}")
    is_ed = isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey)
    if is_ed != (algorithm == "ed25519"):
        kind = "an Ed25519" if is_ed else "an RSA"
        raise UnsupportedSignature(f"algorithm {algorithm!r} cannot be used with {kind} key")


def sign(algorithm: str, key: PrivateKey, data: bytes) -> bytes:
    _require(algorithm, key)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if algorithm == "rsa-pss-sha512":
        return key.sign(data, _pss(), hashes.SHA512())
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def verify(algorithm: str, key: PublicKey, signature: bytes, data: bytes) -> bool:
    """True if ``signature`` is valid; raises :class:`UnsupportedSignature` for an
    unknown algorithm or one that does not fit the key type."""
    _require(algorithm, key)
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif algorithm == "rsa-pss-sha512":
            key.verify(signature, data, _pss(), hashes.SHA512())
        else:
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True
