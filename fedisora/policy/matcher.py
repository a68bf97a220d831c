# This module is about look-alike letters: it spells them out on purpose.
# ruff: noqa: RUF001, RUF002, RUF003
"""Does a text name a protected public figure, character or work? Pure: no I/O.

A :class:`Matcher` is compiled once from the policy's entries (:class:`Entry`: which list,
the term) and asked :meth:`Matcher.find` for each text of a render request. It is built to
refuse disguised spellings and to pass innocent text that merely resembles a name.

**Two ways to match**, tried in turn:

1. *Spelling* (any script). Text and term are folded the same way: zero-width and other
   invisible format characters removed; NFKD with combining marks stripped (``Táylör`` is
   ``taylor``; fullwidth and mathematical letters become plain ones); look-alike Cyrillic
   and Greek letters mapped to the Latin letters they imitate (:data:`_HOMOGLYPHS`); case
   folded; common letter substitutions mapped to their letter (``4 @``→a, ``3``→e,
   ``0``→o, ``5 $``→s, ``7 +``→t...; symbols only inside a word: ``Swift!`` ends a word,
   ``Bi!!ie`` is one). ``1 | !`` stand for *i* or *l*, so those three and both letters fold
   to one class on both sides. Repeated letters collapse (``Taaaylor``), also across a
   space (``Pot ter``). Letters are then read as one stream, separators (spaces,
   punctuation, underscores) only marking where words start and end, so a name matches
   glued or split (``TaylorSwift``, ``T.a y-lor  Swift``).

   **Word boundaries**: an entry matches only a run of whole words, whose letters joined
   spell it: it must start where a word starts and end where one ends. ``Taylor Swift``
   does not match "a swift taylor-made suit" (wrong order, and *taylor* runs on into
   *made*) nor "Taylor Swiftly" nor "melon muskmelon" for ``Elon Musk``; a single-word
   entry (``Pikachu``) matches that whole word, never part of a longer one ("pika chews"
   does not match). Text in scripts written without spaces (CJK, kana) has a boundary
   between any two characters.

2. *Transliteration* (Cyrillic and Greek spellings of a Latin name, and back). Words are
   compared one by one (no gluing here): a word in one script and the entry's word in
   another are both transliterated to ASCII (:data:`_TRANSLIT`) and reduced to a coarse
   phonetic key (:func:`_phonetic`: vowel runs merged, a final vowel dropped, *w*/*v*,
   *c*/*k*, *g*/*h*, *z*/*s* merged), so ``Тейлор Свифт`` is ``Taylor Swift`` and ``Микки
   Маус`` is ``Mickey Mouse``. A key that coarse would refuse ordinary words, so it is used
   only across scripts (Latin text is never matched this way), only for keys of at least 3
   symbols, and of at least 4 for a single-word entry (``Пока``, "bye", is not ``Puck``).
   Words in the same script are compared exactly (after folding).

Likeness owners are protected by consent, not by these lists: this matcher is the instance's
own policy on top of it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "LISTS",
    "MAX_TERM_CHARS",
    "MIN_TERM_LETTERS",
    "PROTECTED_WORK",
    "PUBLIC_FIGURE",
    "Entry",
    "Match",
    "Matcher",
    "TermError",
    "check_term",
    "spelling_key",
]

PUBLIC_FIGURE = "public_figure"
PROTECTED_WORK = "protected_work"
LISTS = {
    PUBLIC_FIGURE: "public figures",
    PROTECTED_WORK: "protected characters and works",
}
"""The lists and their names in refusals."""

_WHAT = {
    PUBLIC_FIGURE: "a protected public figure",
    PROTECTED_WORK: "a protected character or work",
}

MAX_TERM_CHARS = 200
MIN_TERM_LETTERS = 3
"""An entry needs at least this many letters once folded: shorter ones ("Al") would refuse
far too much."""

# Invisible characters that are not of category Cf (which is removed whole): fillers that
# render as nothing and are used to break up words.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u034f")

# Look-alikes of Latin letters in Cyrillic and Greek, mapped to the letter they imitate
# ("Tаylor" with a Cyrillic а). Hand-written rather than Unicode's full confusables table
# (no such package is installed, and that table also maps Latin letters to each other,
# which would refuse innocent words); these are the letters used to disguise Latin names.
# Both cases are listed, since the upper and lower forms imitate different letters
# (Cyrillic Н looks like H, н does not look like h). Mapped before case folding.
_HOMOGLYPHS = {
    # Cyrillic
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "Х": "X", "У": "Y", "Ѕ": "S", "І": "I", "Ј": "J", "Ԁ": "D",
    "Ү": "Y", "Һ": "H", "Ԛ": "Q", "Ԝ": "W", "Ӏ": "l",
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "ѕ": "s",
    "і": "i", "ј": "j", "ԁ": "d", "һ": "h", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ү": "y",
    "ɡ": "g",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
    "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C",
    "α": "a", "ο": "o", "ι": "i", "κ": "k", "ν": "v", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "ϲ": "c", "ϳ": "j",
}  # fmt: skip

# Digits and symbols written for letters. "i" and "l" share a class (1, | and ! stand for
# either), written "|" in folded text.
_LEET = {
    "4": "a", "@": "a", "8": "b", "3": "e", "6": "g", "9": "g", "0": "o", "5": "s",
    "$": "s", "7": "t", "+": "t", "2": "z", "1": "|", "!": "|", "|": "|", "i": "|", "l": "|",
}  # fmt: skip
_LEET_SYMBOLS = frozenset("@$+|!")
_ONE_SIDED = frozenset("$")  # "$wift": a $ at a word's start or end is still an s

# Cyrillic and Greek to ASCII, for the transliteration path (after NFKD and case folding:
# й is и, ё is е by then).
_TRANSLIT = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ж": "zh", "з": "z",
    "и": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya", "і": "i",
    "є": "ye", "ґ": "g", "ў": "u", "ј": "j", "ђ": "dj", "ћ": "c", "љ": "lj", "њ": "nj",
    "џ": "dz", "ѕ": "dz",
    "α": "a", "β": "v", "γ": "g", "δ": "d", "ε": "e", "ζ": "z", "η": "i", "θ": "th",
    "ι": "i", "κ": "k", "λ": "l", "μ": "m", "ν": "n", "ξ": "x", "ο": "o", "π": "p",
    "ρ": "r", "σ": "s", "ς": "s", "τ": "t", "υ": "y", "φ": "f", "χ": "kh", "ψ": "ps",
    "ω": "o",
}  # fmt: skip
_PHONETIC_PAIRS = (
    ("shch", "s"), ("ph", "f"), ("ck", "k"), ("kh", "h"), ("ch", "k"), ("sh", "s"),
    ("zh", "z"), ("ts", "k"), ("th", "t"), ("qu", "kv"), ("x", "ks"),
)  # fmt: skip
_PHONETIC_LETTERS = str.maketrans({"c": "k", "q": "k", "w": "v", "z": "s", "g": "h", "j": "i"})
_VOWELS = frozenset("aeiouy")
_MIN_KEY = 3
_MIN_KEY_SINGLE = 4


class TermError(ValueError):
    """An entry that cannot be a policy term (too short, too long, empty); the message
    says why."""


@dataclass(frozen=True)
class Entry:
    """One term of one list; ``ident`` is its row id, when it has one; ``origin`` names
    where the term came from when that is the rule to cite (``opted out by Jane Doe``)."""

    list_name: str
    term: str
    ident: int | None = None
    origin: str = ""


@dataclass(frozen=True)
class Match:
    """The entry a text matched, and how (``"spelling"`` or ``"transliteration"``)."""

    entry: Entry
    how: str

    @property
    def rule(self) -> str:
        """The rule for a refusal: ``public figures: “Taylor Swift”``, or for a term with an
        origin ``opted out by Taylor Swift: “Tay Tay”``."""
        if self.entry.origin:
            return f"{self.entry.origin}: “{self.entry.term}”"
        return f"{LISTS.get(self.entry.list_name, self.entry.list_name)}: “{self.entry.term}”"

    def refusal(self, subject: str = "This prompt") -> str:
        """The refusal message: ``This prompt names a protected public figure (rule: …)``;
        *subject* names the text (``"The clip to remix"``)."""
        what = _WHAT.get(self.entry.list_name, "a protected name")
        return f"{subject} names {what} (rule: {self.rule})"


# --------------------------------------------------------------------------- folding


def _fold(text: str, *, homoglyphs: bool) -> str:
    """Invisible characters and combining marks removed, compatibility forms decomposed,
    look-alikes mapped (with *homoglyphs*), case folded."""
    out = []
    for ch in unicodedata.normalize("NFKD", text):
        if ch in _INVISIBLE or unicodedata.category(ch) in ("Cf", "Mn", "Me", "Mc"):
            continue
        out.append(_HOMOGLYPHS.get(ch, ch) if homoglyphs else ch)
    folded = "".join(out).casefold()
    # casefold can bring marks back (İ is i + a dot above)
    return "".join(
        ch
        for ch in unicodedata.normalize("NFKD", folded)
        if unicodedata.category(ch) not in ("Mn", "Me", "Mc")
    )


def _unspaced(ch: str) -> bool:
    """A character of a script written without spaces between words (CJK, kana...)."""
    return ord(ch) >= 0x2E80 and ch.isalpha()


@dataclass
class _Stream:
    """Folded letters with repeats collapsed; ``starts[i]``/``ends[i]``: a word starts or
    ends at letter *i*."""

    letters: str
    starts: list[bool]
    ends: list[bool]


def _stream(text: str) -> _Stream:
    chars = _fold(text, homoglyphs=True)
    n = len(chars)
    # which leet symbols stand for letters: runs flanked by letters or digits
    letter_at = [c.isalnum() for c in chars]
    i = 0
    while i < n:
        if chars[i] in _LEET_SYMBOLS:
            j = i
            while j < n and chars[j] in _LEET_SYMBOLS:
                j += 1
            left = i > 0 and chars[i - 1].isalnum()
            right = j < n and chars[j].isalnum()
            one_sided = all(c in _ONE_SIDED for c in chars[i:j])
            if (left and right) or (one_sided and (left or right)):
                for k in range(i, j):
                    letter_at[k] = True
            i = j
        else:
            i += 1
    letters: list[str] = []
    starts: list[bool] = []
    ends: list[bool] = []
    boundary = True  # a word starts at the next letter
    for k, ch in enumerate(chars):
        if not letter_at[k]:
            if letters:
                ends[-1] = True
            boundary = True
            continue
        unit = _LEET.get(ch, ch)
        gap = boundary or _unspaced(ch)
        if letters and gap:
            ends[-1] = True
        if letters and letters[-1] == unit:  # a repeat, perhaps across a space
            starts[-1] = starts[-1] or gap
        else:
            letters.append(unit)
            starts.append(gap)
            ends.append(_unspaced(ch))
        boundary = False
    if letters:
        ends[-1] = True
    return _Stream("".join(letters), starts, ends)


def spelling_key(term: str) -> str:
    """The folded letters of *term* as the spelling path compares them (for tests and for
    spotting duplicate entries: ``Taylor Swift`` and ``TAYLOR-SWIFT`` share a key)."""
    return _stream(term).letters


def _words(text: str) -> list[tuple[str, bool]]:
    """(folded word, written in Latin letters) for each word of *text*, for the
    transliteration path. Cyrillic and Greek words are transliterated to ASCII."""
    words: list[tuple[str, bool]] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            word = "".join(current)
            foreign = any(_foreign(c) for c in word)
            if foreign:
                word = "".join(_TRANSLIT.get(c, c) for c in word)
            words.append((word, not foreign))
            current.clear()

    for ch in _fold(text, homoglyphs=False):
        if ch.isalnum():
            current.append(ch)
        else:
            flush()
    flush()
    return words


def _foreign(ch: str) -> bool:
    cp = ord(ch)
    return 0x0370 <= cp <= 0x052F or 0x1F00 <= cp <= 0x1FFF


def _phonetic(word: str) -> str:
    """A coarse sound-alike key of an ASCII word: ``taylor`` and ``teylor`` are both
    ``tVlVr``; ``mouse`` and ``maus`` both ``mVs``."""
    for a, b in _PHONETIC_PAIRS:
        word = word.replace(a, b)
    word = word.translate(_PHONETIC_LETTERS)
    out: list[str] = []
    for ch in word:
        sym = "V" if ch in _VOWELS else ch
        if not out or out[-1] != sym:
            out.append(sym)
    if len(out) > 1 and out[-1] == "V":
        out.pop()
    return "".join(out)


def check_term(term: str) -> str:
    """*term* tidied (spaces collapsed), or :class:`TermError` when it cannot be an entry."""
    tidy = " ".join(term.split())
    if not tidy:
        raise TermError("the term is empty")
    if len(tidy) > MAX_TERM_CHARS:
        raise TermError(f"the term is {len(tidy)} characters long; at most {MAX_TERM_CHARS}")
    if len(spelling_key(tidy)) < MIN_TERM_LETTERS:
        raise TermError(
            f"the term needs at least {MIN_TERM_LETTERS} letters (short ones would refuse "
            "ordinary words)"
        )
    return tidy


# --------------------------------------------------------------------------- matcher


@dataclass(frozen=True)
class _Compiled:
    entry: Entry
    key: str
    words: tuple[tuple[str, bool, str], ...]  # (folded word, latin, phonetic key)


class Matcher:
    """The compiled policy: :meth:`find` the first entry a text names."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        compiled = []
        for entry in entries:
            key = spelling_key(entry.term)
            if len(key) < MIN_TERM_LETTERS:
                continue  # (check_term refuses these when they are added)
            words = tuple((w, latin, _phonetic(w)) for w, latin in _words(entry.term))
            compiled.append(_Compiled(entry, key, words))
        self._entries = tuple(compiled)

    def __len__(self) -> int:
        return len(self._entries)

    def find(self, text: str) -> Match | None:
        """The first entry (in the order given) that *text* names, or None."""
        if not text or not self._entries:
            return None
        stream = _stream(text)
        words: list[tuple[str, bool]] | None = None
        for c in self._entries:
            if _spelled(stream, c.key):
                return Match(c.entry, "spelling")
        words = _words(text)
        if all(latin for _, latin in words) and all(
            all(latin for _, latin, _ in c.words) for c in self._entries
        ):
            return None  # one script on both sides: the spelling path said it all
        keyed = [(w, latin, _phonetic(w)) for w, latin in words]
        for c in self._entries:
            if _transliterated(keyed, c.words):
                return Match(c.entry, "transliteration")
        return None


def _spelled(stream: _Stream, key: str) -> bool:
    at = stream.letters.find(key)
    while at >= 0:
        if stream.starts[at] and stream.ends[at + len(key) - 1]:
            return True
        at = stream.letters.find(key, at + 1)
    return False


def _transliterated(
    text: list[tuple[str, bool, str]], term: tuple[tuple[str, bool, str], ...]
) -> bool:
    n = len(term)
    if not n or n > len(text):
        return False
    least = _MIN_KEY_SINGLE if n == 1 else _MIN_KEY
    for i in range(len(text) - n + 1):
        for (word, latin, key), (t_word, t_latin, t_key) in zip(text[i : i + n], term, strict=True):
            if latin == t_latin:
                if word != t_word:
                    break
            elif len(t_key) < least or key != t_key:
                break
        else:
            return True
    return False
