"""Captions and comments: hashtags, mentions, and safe HTML; names safe to show. Pure functions."""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from fedisora import cachestats

__all__ = ["ParsedText", "clean_name", "parse_text", "render_html"]

HASHTAG_RE = re.compile(r"(?<![\w/#&])#(\w{1,100})", re.UNICODE)
MENTION_RE = re.compile(
    r"(?<![\w/@])@([a-zA-Z0-9_]{1,64})(?:@([a-zA-Z0-9.-]+\.[a-zA-Z]{2,}(?::\d+)?|localhost(?::\d+)?|"
    r"\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?))?"
)
URL_RE = re.compile(r"https?://[^\s<>\"']+")


@dataclass(frozen=True)
class ParsedText:
    hashtags: tuple[str, ...]  # lower-cased, unique, in order of appearance
    mentions: tuple[tuple[str, str | None], ...]  # (username, domain or None)


def parse_text(text: str) -> ParsedText:
    tags: dict[str, None] = {}
    for match in HASHTAG_RE.finditer(text):
        name = match.group(1)
        if not name.isdigit():
            tags.setdefault(name.lower(), None)
    mentions: dict[tuple[str, str | None], None] = {}
    for match in MENTION_RE.finditer(text):
        domain = match.group(2).lower() if match.group(2) else None
        mentions.setdefault((match.group(1).lower(), domain), None)
    return ParsedText(tuple(tags), tuple(mentions))


def render_html(
    text: str,
    *,
    tag_url: Callable[[str], str],
    mention_url: Callable[[str, str | None], str | None],
    link_rel: str = "nofollow noopener",
) -> str:
    """Escape *text* and link hashtags, mentions and URLs, in Mastodon's HTML shape.

    *link_rel* is the ``rel`` of URL links (the web pages add ``ugc`` to remote authors' links).
    """
    pattern = re.compile(f"{URL_RE.pattern}|{HASHTAG_RE.pattern}|{MENTION_RE.pattern}", re.UNICODE)
    out: list[str] = []
    pos = 0
    for match in pattern.finditer(text):
        out.append(html.escape(text[pos : match.start()]))
        token = match.group(0)
        if token.startswith("http"):
            href = html.escape(token, quote=True)
            rel = html.escape(link_rel, quote=True)
            out.append(f'<a href="{href}" rel="{rel}" target="_blank">{html.escape(token)}</a>')
        elif token.startswith("#") and not match.group(1).isdigit():
            name = match.group(1)
            href = html.escape(tag_url(name.lower()), quote=True)
            label = html.escape(name)
            out.append(
                f'<a href="{href}" class="mention hashtag" rel="tag">#<span>{label}</span></a>'
            )
        elif token.startswith("@"):
            username, domain = match.group(2), match.group(3)
            href_raw = mention_url(username.lower(), domain.lower() if domain else None)
            if href_raw is None:
                out.append(html.escape(token))
            else:
                href = html.escape(href_raw, quote=True)
                out.append(
                    f'<span class="h-card"><a href="{href}" class="u-url mention">'
                    f"@<span>{html.escape(username)}</span></a></span>"
                )
        else:
            out.append(html.escape(token))
        pos = match.end()
    out.append(html.escape(text[pos:]))
    paragraphs = "".join(out).split("\n\n")
    return "".join(f"<p>{p.replace(chr(10), '<br>')}</p>" for p in paragraphs if p.strip())


# --- names -----------------------------------------------------------------------------------

_ZWJ = "\u200d"
_ZWNJ = "\u200c"
_VS15, _VS16 = "\ufe0e", "\ufe0f"
_BLACK_FLAG = "\U0001f3f4"
_TAG_END = "\U000e007f"
_BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
"""Letters and symbols that show as nothing (Hangul fillers, the blank braille pattern),
the usual ways to make a name look empty or two names look alike: shown as a space."""
_INVISIBLE_MARKS = frozenset("\u034f\u17b4\u17b5")
"""Combining marks that show as nothing (the grapheme joiner, Khmer inherent vowels)."""
_JOINING_SCRIPTS = (
    (0x0600, 0x08FF),  # Arabic, Syriac, Thaana, N'Ko, Arabic supplements and extended
    (0x0900, 0x0DFF),  # the Indic scripts, Devanagari to Sinhala
    (0xFB50, 0xFDFF),  # Arabic presentation forms A
    (0xFE70, 0xFEFF),  # Arabic presentation forms B
)
"""Scripts whose spelling uses the zero-width non-joiner (Persian, Hindi...): kept there."""


def _emoji(char: str) -> bool:
    """Whether *char* is a pictograph an emoji sequence may join (a close approximation of
    Unicode's Extended_Pictographic, which :mod:`unicodedata` does not expose), or a skin
    tone or the emoji presentation selector that ends one."""
    code = ord(char)
    return (
        0x1F000 <= code <= 0x1FAFF
        or 0x2600 <= code <= 0x27BF
        or 0x2300 <= code <= 0x23FF
        or 0x2B00 <= code <= 0x2BFF
        or char in "\u00a9\u00ae\u203c\u2049\u2122\u2139\u3030\u303d\u3297\u3299\ufe0f"
        or 0x2194 <= code <= 0x21AA
    )


def _joining(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _JOINING_SCRIPTS)


@functools.lru_cache(maxsize=8192)  # pure, and called for every name on every page
def clean_name(text: str) -> str:
    """*text* as a name may be shown: one line, without the characters that make a name
    pretend to be another or reorder what is shown around it.

    Dropped: bidirectional overrides, embeddings, isolates and marks (``U+202A``-``U+202E``,
    ``U+2066``-``U+2069``, ``U+200E``, ``U+200F``, ``U+061C``: "@gnp.exe" shown as
    "@exe.png"), zero-width spaces and joiners, soft hyphens, word joiners, byte order marks
    and every other format character (Unicode category Cf), control characters, lone
    surrogates, invisible combining marks, and variation selectors that follow no emoji.
    Kept where they belong: the zero-width joiner inside emoji sequences (👩‍💻, 🏳️‍🌈), the
    tag characters of flag sequences (🏴 of Scotland), and the zero-width non-joiner between
    letters of the scripts that spell with it (Persian, the Indic scripts). Line breaks and
    every kind of space become one space; blank-looking letters become a space too; the
    result is stripped. Used on every name shown: display names (remote, and local ones as
    set), remote usernames, and the names of authors on the pages and in the API.
    """
    out: list[str] = []
    chars = text
    i = 0
    in_flag_tag = False
    while i < len(chars):
        char = chars[i]
        nxt = chars[i + 1] if i + 1 < len(chars) else ""
        prev = out[-1] if out else ""
        i += 1
        code = ord(char)
        if 0xE0020 <= code <= 0xE007F:  # tag characters: only within a flag's tag sequence
            if in_flag_tag:
                out.append(char)
                in_flag_tag = char != _TAG_END
            continue
        in_flag_tag = False
        if char == _BLACK_FLAG and nxt and 0xE0020 <= ord(nxt) <= 0xE007E:
            in_flag_tag = True
            out.append(char)
            continue
        if char == _ZWJ:
            if prev and nxt and _emoji(prev) and _emoji(nxt):
                out.append(char)
            continue
        if char == _ZWNJ:
            if prev and nxt and _joining(prev) and _joining(nxt):
                out.append(char)
            continue
        if char in (_VS15, _VS16):
            if prev and (_emoji(prev) or prev in "0123456789#*"):
                out.append(char)
            continue
        if char in _INVISIBLE_MARKS:
            continue
        category = unicodedata.category(char)
        if category in ("Cf", "Cs"):
            continue
        if category in ("Cc", "Zl", "Zp", "Zs") or char in _BLANKS:
            if prev != " ":
                out.append(" ")
            continue
        out.append(char)
    return "".join(out).strip()


cachestats.watch_lru("shown_names", clean_name)  # its hits and misses in /metrics
