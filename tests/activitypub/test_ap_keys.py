"""activitypub.keys: generation, PEM, FEP-521a Multikey."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from activitypub import keys
from activitypub._base58 import b58decode, b58encode
from activitypub.errors import ActivityPubError, KeyFormatError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "http_signatures"

# W3C vc-di-eddsa test key pair (also used by FEP-8b32 examples): secretKeyMultibase is
# ed25519-priv (multicodec 0x1300) + 32-byte seed; publicKeyMultibase its Multikey.
W3C_SECRET = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"
W3C_PUBLIC = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"


def _raw(key: ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_rsa_generation_and_pem_round_trip() -> None:
    private = keys.generate_rsa_key()
    assert private.key_size == 2048
    private_pem = keys.private_key_to_pem(private)
    public_pem = keys.public_key_to_pem(private.public_key())
    assert private_pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert public_pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    loaded = keys.load_private_key_pem(private_pem)
    assert isinstance(loaded, rsa.RSAPrivateKey)
    assert loaded.private_numbers() == private.private_numbers()
    loaded_public = keys.load_public_key_pem(public_pem)
    assert isinstance(loaded_public, rsa.RSAPublicKey)
    assert loaded_public.public_numbers() == private.public_key().public_numbers()


def test_ed25519_generation_and_pem_round_trip() -> None:
    private = keys.generate_ed25519_key()
    loaded = keys.load_private_key_pem(keys.private_key_to_pem(private).encode())
    assert isinstance(loaded, ed25519.Ed25519PrivateKey)
    assert _raw(loaded.public_key()) == _raw(private.public_key())
    public = keys.load_public_key_pem(keys.public_key_to_pem(private.public_key()))
    assert isinstance(public, ed25519.Ed25519PublicKey)
    assert _raw(public) == _raw(private.public_key())


def test_pkcs1_pem_of_the_rfc9421_rsa_test_key_loads() -> None:
    private = keys.load_private_key_pem((FIXTURES / "rfc9421-test-key-rsa.pem").read_text())
    public = keys.load_public_key_pem((FIXTURES / "rfc9421-test-key-rsa.pub.pem").read_text())
    assert isinstance(private, rsa.RSAPrivateKey)
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.public_numbers() == private.public_key().public_numbers()


def test_pem_with_surrounding_whitespace_loads() -> None:
    pem = (FIXTURES / "rfc9421-test-key-ed25519.pub.pem").read_text()
    key = keys.load_public_key_pem("\n\n  " + pem + "\n  ")
    assert isinstance(key, ed25519.Ed25519PublicKey)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a key",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\nnon-ascii é\n-----END PUBLIC KEY-----\n",
    ],
)
def test_garbage_pem_raises_key_format_error(text: str) -> None:
    with pytest.raises(KeyFormatError):
        keys.load_public_key_pem(text)
    with pytest.raises(KeyFormatError):
        keys.load_private_key_pem(text)


def test_other_key_types_are_refused() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_private_pem = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    ec_public_pem = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(KeyFormatError, match="unsupported"):
        keys.load_private_key_pem(ec_private_pem)
    with pytest.raises(KeyFormatError, match="unsupported"):
        keys.load_public_key_pem(ec_public_pem)


def test_key_format_error_is_a_value_error_in_the_hierarchy() -> None:
    assert issubclass(KeyFormatError, ValueError)
    assert issubclass(KeyFormatError, ActivityPubError)


def test_multikey_matches_the_w3c_vector() -> None:
    secret = b58decode(W3C_SECRET[1:])
    assert secret[:2] == b"\x80\x26"  # ed25519-priv varint
    private = ed25519.Ed25519PrivateKey.from_private_bytes(secret[2:])
    assert keys.public_key_to_multibase(private.public_key()) == W3C_PUBLIC
    decoded = keys.public_key_from_multibase(W3C_PUBLIC)
    assert isinstance(decoded, ed25519.Ed25519PublicKey)
    assert _raw(decoded) == _raw(private.public_key())


def test_ed25519_multikey_round_trip_and_prefix() -> None:
    public = keys.load_public_key_pem((FIXTURES / "rfc9421-test-key-ed25519.pub.pem").read_text())
    encoded = keys.public_key_to_multibase(public)
    # Every ed25519-pub Multikey starts "z6Mk": 0xed01 plus 32 bytes fixes the lead digits.
    assert encoded.startswith("z6Mk")
    decoded = keys.public_key_from_multibase(encoded)
    assert isinstance(decoded, ed25519.Ed25519PublicKey)
    assert isinstance(public, ed25519.Ed25519PublicKey)
    assert _raw(decoded) == _raw(public)


def test_rsa_multikey_round_trip() -> None:
    public = keys.load_public_key_pem((FIXTURES / "rfc9421-test-key-rsa.pub.pem").read_text())
    encoded = keys.public_key_to_multibase(public)
    raw = b58decode(encoded[1:])
    assert raw[:2] == b"\x85\x24"  # rsa-pub, 0x1205
    assert isinstance(public, rsa.RSAPublicKey)
    assert raw[2:] == public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    decoded = keys.public_key_from_multibase(encoded)
    assert isinstance(decoded, rsa.RSAPublicKey)
    assert decoded.public_numbers() == public.public_numbers()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("u7QE", "base58btc"),  # multibase base64url, not supported
        ("z0OIl", "base58btc character"),  # 0, O, I, l are not in the alphabet
        ("z" + b58encode(b"\xed\x01" + b"\x01" * 31), "32 bytes"),
        ("z" + b58encode(b"\xe7\x01" + b"\x02" * 33), "multicodec"),  # secp256k1-pub
        ("z" + b58encode(b"\x85\x24" + b"\x30\x03\x02\x01\x01"), "rsa-pub"),
        ("z" + "2" * 3000, "too long"),
    ],
)
def test_bad_multibase_raises_key_format_error(value: str, message: str) -> None:
    with pytest.raises(KeyFormatError, match=message):
        keys.public_key_from_multibase(value)


def test_base58_known_values_and_leading_zeros() -> None:
    assert b58encode(b"hello world") == "StV1DL6CwTryKyV"
    assert b58decode("StV1DL6CwTryKyV") == b"hello world"
    assert b58encode(b"\0\0\x01") == "112"
    assert b58decode("112") == b"\0\0\x01"
    assert b58encode(b"") == ""
    assert b58decode("") == b""
