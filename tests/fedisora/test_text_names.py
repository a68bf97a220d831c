"""Names without bidi overrides or invisible characters (:func:`clean_name`), fixed vectors.

A display name holding U+202E (RIGHT-TO-LEFT OVERRIDE) shows "@gnp.exe" as "@exe.png", and
zero-width characters make two different names look the same. What belongs in a name stays:
emoji sequences joined by U+200D, flag tag sequences, the zero-width non-joiner of Persian
and Indic spelling.
"""

from __future__ import annotations

import pytest

from fedisora.services.text import clean_name

FLAG_SCOTLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Ann", "Ann"),
        ("evil\u202egnp.exe", "evilgnp.exe"),  # right-to-left override
        ("\u202dleft\u202aemb\u202bedded\u202c", "leftembedded"),  # overrides, embeddings, pop
        ("x\u2066y\u2067z\u2068w\u2069", "xyzw"),  # isolates
        ("a\u200eb\u200fc\u061cd", "abcd"),  # directional marks
        ("ad\u200bmin", "admin"),  # zero-width space
        ("ad\u200dmin", "admin"),  # a joiner between letters
        ("ad\u200cmin", "admin"),  # a non-joiner between Latin letters
        ("ad\u2060min\ufeff", "admin"),  # word joiner, byte order mark
        ("so\u00adft", "soft"),  # soft hyphen
        ("a\u034fb", "ab"),  # combining grapheme joiner
        ("a\ufe0fb", "ab"),  # an emoji presentation selector after a letter
        ("\U000e0041\U000e0042tags", "tags"),  # tag characters outside a flag
        ("\ud800lone", "lone"),  # a lone surrogate (PostgreSQL cannot store it)
        ("line\nbreak\r\n\ttab\x00nul", "line break tab nul"),
        ("wide\u3000 \u2028spaces\u00a0", "wide spaces"),
        ("\u3164", ""),  # Hangul filler: a name that looks empty
        ("\u2800\u2800", ""),  # blank braille patterns
        ("  padded  ", "padded"),
        # Kept: emoji sequences, flags, keycaps, skin tones, Persian and Indic spelling.
        ("\U0001f469\u200d\U0001f4bb dev", "\U0001f469\u200d\U0001f4bb dev"),
        ("\U0001f3f3\ufe0f\u200d\U0001f308", "\U0001f3f3\ufe0f\u200d\U0001f308"),
        ("\U0001f9d1\U0001f3fd\u200d\U0001f4bb", "\U0001f9d1\U0001f3fd\u200d\U0001f4bb"),
        ("\u2764\ufe0f\u200d\U0001f525", "\u2764\ufe0f\u200d\U0001f525"),
        ("\U0001f3c3\u200d\u2640\ufe0f", "\U0001f3c3\u200d\u2640\ufe0f"),
        (f"Scot {FLAG_SCOTLAND}", f"Scot {FLAG_SCOTLAND}"),
        ("1\ufe0f\u20e3", "1\ufe0f\u20e3"),
        (
            "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
            "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
        ),
        ("\u0915\u094d\u200c\u0937", "\u0915\u094d\u200c\u0937"),
        ("Zoë Łukasz 李 עברית", "Zoë Łukasz 李 עברית"),
    ],
)
def test_clean_name(raw: str, shown: str) -> None:
    assert clean_name(raw) == shown
    assert clean_name(shown) == shown  # cleaning twice changes nothing more


def test_a_flag_sequence_ends_at_its_cancel_tag() -> None:
    after = "\U000e0041"  # a tag character after the flag's cancel tag: not part of it
    assert clean_name(f"{FLAG_SCOTLAND}{after}x") == f"{FLAG_SCOTLAND}x"
