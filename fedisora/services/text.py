"""Captions and comments: hashtags, mentions, and safe HTML. Pure functions."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ParsedText", "parse_text", "render_html"]

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
