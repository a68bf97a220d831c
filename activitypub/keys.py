"""Actor keys: generation, PEM and Multikey (FEP-521a) encodings.

Two key types are supported, the two the fediverse uses:

* RSA (2048 bits by default): the ``publicKey.publicKeyPem`` every server reads,
  used for HTTP signatures;
* Ed25519: published as a FEP-521a ``Multikey`` in ``assertionMethod`` for object
  integrity proofs (FEP-8b32), and usable for HTTP signatures too.

Public keys are written as SubjectPublicKeyInfo PEM (``BEGIN PUBLIC KEY``), private
keys as unencrypted PKCS#8 PEM (``BEGIN PRIVATE KEY``). Loading also accepts the
PKCS#1 forms (``BEGIN RSA PUBLIC KEY`` / ``BEGIN RSA PRIVATE KEY``) that some
servers publish. Anything else (EC, DSA, garbage) raises :class:`KeyFormatError`.
"""

from __future__ import annotations

from typing import TypeAlias

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from activitypub._base58 import b58decode, b58encode
from activitypub.errors import KeyFormatError

__all__ = [
    "PrivateKey",
    "PublicKey",
    "generate_ed25519_key",
    "generate_rsa_key",
    "load_private_key_pem",
    "load_public_key_pem",
    "private_key_to_pem",
    "public_key_from_multibase",
    "public_key_to_multibase",
    "public_key_to_pem",
]

PublicKey: TypeAlias = rsa.RSAPublicKey | ed25519.Ed25519PublicKey
PrivateKey: TypeAlias = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

# Multicodec prefixes (unsigned varints) for FEP-521a publicKeyMultibase values.
_ED25519_PUB = b"\xed\x01"  # 0xed, ed25519-pub: the 32 raw public key bytes follow
_RSA_PUB = b"\x85\x24"  # 0x1205, rsa-pub: a DER PKCS#1 RSAPublicKey follows
# The longest value we decode: an RSA-8192 PKCS#1 key is about 1.4 kB, ~1.9k base58
# characters. The cap keeps the quadratic base58 decoder cheap on hostile input.
_MAX_MULTIBASE_CHARS = 2048


def generate_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A new RSA private key (public exponent 65537)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def generate_ed25519_key() -> ed25519.Ed25519PrivateKey:
    """A new Ed25519 private key."""
    return ed25519.Ed25519PrivateKey.generate()


def private_key_to_pem(key: PrivateKey) -> str:
    """The key as unencrypted PKCS#8 PEM text."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def public_key_to_pem(key: PublicKey) -> str:
    """The key as SubjectPublicKeyInfo PEM text (what ``publicKeyPem`` holds)."""
    return key.public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    ).decode("ascii")


def _pem_bytes(data: str | bytes) -> bytes:
    if isinstance(data, str):
        try:
            data = data.encode("ascii")
        except UnicodeEncodeError as exc:
            raise KeyFormatError("PEM text must be ASCII") from exc
    return data.strip()


def load_private_key_pem(data: str | bytes) -> PrivateKey:
    """Load an RSA or Ed25519 private key from PKCS#8 or PKCS#1 PEM (unencrypted)."""
    try:
        key = serialization.load_pem_private_key(_pem_bytes(data), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"cannot load private key: {exc}") from exc
    if isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        return key
    raise KeyFormatError(f"unsupported private key type {type(key).__name__}")


def load_public_key_pem(data: str | bytes) -> PublicKey:
    """Load an RSA or Ed25519 public key from SPKI or PKCS#1 PEM."""
    try:
        key = serialization.load_pem_public_key(_pem_bytes(data))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"cannot load public key: {exc}") from exc
    if isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        return key
    raise KeyFormatError(f"unsupported public key type {type(key).__name__}")


def public_key_to_multibase(key: PublicKey) -> str:
    """FEP-521a ``publicKeyMultibase``: ``z`` + base58btc(multicodec prefix + key).

    Ed25519 keys use ed25519-pub (0xed) and the 32 raw bytes; RSA keys use
    rsa-pub (0x1205) and the DER PKCS#1 encoding.
    """
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return "z" + b58encode(_ED25519_PUB + raw)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return "z" + b58encode(_RSA_PUB + der)


def public_key_from_multibase(value: str) -> PublicKey:
    """Decode a FEP-521a ``publicKeyMultibase`` (Ed25519 or RSA)."""
    if not value.startswith("z"):
        raise KeyFormatError("publicKeyMultibase must be base58btc (a 'z' prefix)")
    if len(value) > _MAX_MULTIBASE_CHARS:
        raise KeyFormatError("publicKeyMultibase is too long")
    try:
        decoded = b58decode(value[1:])
    except ValueError as exc:
        raise KeyFormatError(str(exc)) from exc
    if decoded.startswith(_ED25519_PUB):
        raw = decoded[len(_ED25519_PUB) :]
        if len(raw) != 32:
            raise KeyFormatError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    if decoded.startswith(_RSA_PUB):
        try:
            # load_der_public_key reads PKCS#1 RSAPublicKey as well as SPKI.
            key = serialization.load_der_public_key(decoded[len(_RSA_PUB) :])
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyFormatError(f"bad rsa-pub Multikey: {exc}") from exc
        if isinstance(key, rsa.RSAPublicKey):
            return key
        raise KeyFormatError("rsa-pub Multikey does not hold an RSA key")
    raise KeyFormatError("unsupported multicodec key type (expected ed25519-pub or rsa-pub)")
