# The tables spell names with look-alike letters on purpose.
# ruff: noqa: RUF001
"""The prompt policy's matcher (fedisora.policy.matcher) on fixed tables: disguised spellings
of listed names are refused, innocent text that merely resembles a name passes.

The innocent table's false-refusal rate is computed, printed and must be 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fedisora.policy.matcher import (
    PROTECTED_WORK,
    PUBLIC_FIGURE,
    Entry,
    Matcher,
    TermError,
    check_term,
    spelling_key,
)

ENTRIES = [
    *(Entry(PUBLIC_FIGURE, t) for t in ("Taylor Swift", "Barack Obama", "Billie Eilish")),
    *(Entry(PUBLIC_FIGURE, t) for t in ("Elon Musk",)),
    *(Entry(PROTECTED_WORK, t) for t in ("Mickey Mouse", "Harry Potter", "Pikachu")),
    *(Entry(PROTECTED_WORK, t) for t in ("Darth Vader",)),
]
MATCHER = Matcher(ENTRIES)

# (text, the term it names, what disguises it)
ADVERSARIAL = [
    ("taylor swift at the beach", "Taylor Swift", "lower case"),
    ("TAYLOR SWIFT", "Taylor Swift", "upper case"),
    ("TaYlOr sWiFt", "Taylor Swift", "mixed case"),
    ("Táylör Swíft", "Taylor Swift", "diacritics"),
    ("Dárth Vàdêr in the snow", "Darth Vader", "diacritics"),
    ("T4yl0r $w1ft", "Taylor Swift", "leetspeak"),
    ("M!ckey M0use", "Mickey Mouse", "leetspeak, ! for i"),
    ("Bi11ie Ei1ish", "Billie Eilish", "leetspeak, 1 for l and i"),
    ("Darth V@der", "Darth Vader", "leetspeak, @ for a"),
    ("B4r4ck 0b4m4 speaking", "Barack Obama", "leetspeak"),
    ("P1k4chu", "Pikachu", "leetspeak"),
    ("T.a y-lor  Swift", "Taylor Swift", "spacing and punctuation inside"),
    ("H A R R Y  P O T T E R", "Harry Potter", "letters spaced out"),
    ("TaylorSwift", "Taylor Swift", "glued"),
    ("a portrait of ELON-MUSK!", "Elon Musk", "hyphen, trailing punctuation"),
    ("Mickey_Mouse", "Mickey Mouse", "underscore"),
    ("Harry Potter's wand", "Harry Potter", "possessive"),
    ("Taaaylor Swiiift", "Taylor Swift", "repeated letters"),
    ("pikachuuuu!!!", "Pikachu", "repeated letters"),
    ("Harrry Pot ter", "Harry Potter", "repeated letters split by a space"),
    ("T\u0430ylor Sw\u0456ft", "Taylor Swift", "Cyrillic homoglyphs а, і"),
    ("\u03a4aylor \u0405wift", "Taylor Swift", "Greek Tau, Cyrillic Dze"),
    ("\u041c\u0456\u0441key \u041c\u043euse", "Mickey Mouse", "Cyrillic homoglyphs"),
    ("Tay\u200blor Sw\u200dift", "Taylor Swift", "zero-width characters"),
    ("Pika\u2060chu\ufeff", "Pikachu", "word joiner and BOM"),
    ("El\u00adon Musk", "Elon Musk", "soft hyphen"),
    ("Тейлор Свифт", "Taylor Swift", "Cyrillic transliteration"),
    ("Микки Маус", "Mickey Mouse", "Cyrillic transliteration"),
    ("Гарри Поттер в Хогвартсе", "Harry Potter", "Cyrillic transliteration"),
    ("Пикачу", "Pikachu", "Cyrillic transliteration"),
    ("Барак Обама", "Barack Obama", "Cyrillic transliteration"),
    ("Илон Маск", "Elon Musk", "Cyrillic transliteration"),
    ("Дарт Вейдер", "Darth Vader", "Cyrillic transliteration"),
    ("Тейлор Swift", "Taylor Swift", "mixed scripts"),
    ("Ｔａｙｌｏｒ Ｓｗｉｆｔ", "Taylor Swift", "fullwidth"),
    ("𝐓𝐚𝐲𝐥𝐨𝐫 𝐒𝐰𝐢𝐟𝐭", "Taylor Swift", "mathematical bold"),
]

INNOCENT = [
    "a swift taylor-made suit",
    "a swift tailor stitching a suit",
    "tailor swift, the fastest seamstress",
    "Taylor Swiftly crossed the road",
    "a sheep named Taylor runs swiftly",
    "Swift river at dawn",
    "I love Swift!",
    "Billy the kid on a swift horse",
    "melon and muskmelon salad",
    "a muskrat swims past Elon's boat",
    "Elon gated shadows",
    "Obama's portrait in oils",
    "Barack and Michelle in a garden",
    "Harry potters about in his pottery studio",
    "a potter named Harry",
    "Mickey, a mouse hunter",
    "a mouse called mickey",
    "Microscope view of a mouse",
    "pika chews hay on a mountain",
    "pika cheeks under a yellow raincoat",
    "a dark helmet like a vader? darth is a word",
    "billie goat eyelash",
    "C++ code on a screen!",
    "$5 budget film about 4 cats",
    "Пока, мой друг",
    "Свет и тень над морем",
    "Микроскоп и мышь",
    "Ελληνικό νησί στο ηλιοβασίλεμα",
    "初音の森で",
    "a swift, a tailor and a taylor",
]


@pytest.mark.parametrize(("text", "term", "disguise"), ADVERSARIAL)
def test_disguised_spellings_are_refused(text: str, term: str, disguise: str) -> None:
    found = MATCHER.find(text)
    assert found is not None, (text, disguise)
    assert found.entry.term == term, (text, found)


def test_the_false_refusal_rate_of_the_innocent_table_is_zero() -> None:
    refused = [(t, m.entry.term) for t in INNOCENT if (m := MATCHER.find(t)) is not None]
    rate = len(refused) / len(INNOCENT)
    print(f"false refusals: {len(refused)} of {len(INNOCENT)} innocent prompts ({rate:.1%})")
    assert refused == []
    assert rate == 0.0


def test_the_refusal_names_the_rule() -> None:
    found = MATCHER.find("Tаylor Swift live")
    assert found is not None and found.how == "spelling"
    assert found.rule == "public figures: “Taylor Swift”"
    assert found.refusal() == (
        "This prompt names a protected public figure (rule: public figures: “Taylor Swift”)"
    )
    work = MATCHER.find("Микки Маус")
    assert work is not None and work.how == "transliteration"
    assert work.refusal("The clip to remix") == (
        "The clip to remix names a protected character or work "
        "(rule: protected characters and works: “Mickey Mouse”)"
    )


def test_terms_are_checked_and_keyed() -> None:
    assert check_term("  Taylor   Swift ") == "Taylor Swift"
    assert (
        spelling_key("Taylor Swift") == spelling_key("TAYLOR-SWIFT") == spelling_key("taylor swift")
    )
    for bad in ("", "   ", "Al", "x" * 201, "!!"):
        with pytest.raises(TermError):
            check_term(bad)
    assert MATCHER.find("") is None and Matcher([]).find("Taylor Swift") is None
    # a single-word entry is a whole word: never a part of a longer one
    only = Matcher([Entry(PROTECTED_WORK, "Pikachu")])
    assert only.find("pikachus") is None and only.find("superpikachu") is None
    assert only.find("a Pikachu plush") is not None


def test_a_long_hostile_prompt_is_checked_quickly() -> None:
    import time

    text = ("t a y l o r " * 160)[:2000]
    start = time.perf_counter()
    for _ in range(20):
        assert MATCHER.find(text) is None
    assert time.perf_counter() - start < 2.0


def test_the_matcher_imports_no_io_stack() -> None:
    script = (
        "import json, sys\nimport fedisora.policy.matcher\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    loaded = set(json.loads(result.stdout))
    assert loaded.isdisjoint({"tortoise", "httpx", "starlette", "asyncpg", "torch"})
