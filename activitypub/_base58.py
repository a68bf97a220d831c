"""Base58btc (the Bitcoin alphabet), as used by multibase's ``z`` prefix.

Hand-rolled on purpose: it is twenty lines of integer arithmetic, the inputs we
handle are a few hundred bytes at most (callers cap them), and a dependency for
it would be one more package to audit. Tested against the W3C vc-di-eddsa
Multikey vectors in ``tests/activitypub``.
"""

from __future__ import annotations

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {char: value for value, char in enumerate(_ALPHABET)}


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_ALPHABET[remainder])
    # Each leading zero byte is written as a leading "1" (the zero digit).
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        value = _INDEX.get(char)
        if value is None:
            raise ValueError(f"not a base58btc character: {char!r}")
        number = number * 58 + value
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body
