"""Every template in web/templates, read as source: no unsafe URL sink, nothing inline that
the Content-Security-Policy (web/security.py) would block.

A URL sink is an attribute a browser follows or loads (``href``, ``src``, ``action``,
``formaction``, ``poster``, ``srcset``...). Its value is safe when it is a literal that is no
script URL, or when its scheme and host are fixed by a literal start (``/path/{{ x }}``,
``?q={{ x }}``, ``https://host/{{ x }}``), or when it starts with an expression whose last
filter is the vetted :func:`web.pages.safe_url`. Anything else fails, naming the template
and the attribute.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from web.pages import safe_url, templates

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"
URL_ATTRIBUTES = (
    "href",
    "src",
    "srcset",
    "action",
    "formaction",
    "poster",
    "data",
    "cite",
    "background",
    "codebase",
    "longdesc",
    "manifest",
    "ping",
    "xlink:href",
    "srcdoc",
    "hx-get",
    "hx-post",
    "hx-put",
    "hx-patch",
    "hx-delete",
)
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_ATTR = re.compile(r"""(?<![\w:-])([\w:-]+)\s*=\s*("[^"]*"|'[^']*'|[^\s>"']+)""")
_ANCHORED = re.compile(r"^(/[^/\\{]|[?#]|https?://[^/{}\s]+/)")
_SCRIPT_URL = re.compile(r"^\s*(javascript|vbscript|data)\s*:", re.I)


def _mask(source: str) -> tuple[str, list[str]]:
    """*source* with each jinja tag replaced by a placeholder (so that quotes inside
    expressions do not end attribute values), and the tags in order."""
    tags: list[str] = []

    def keep(match: re.Match[str]) -> str:
        tags.append(match.group(0))
        return f"\x00{len(tags) - 1}\x00"

    return _JINJA.sub(keep, source), tags


def _unmask(text: str, tags: list[str]) -> str:
    return re.sub(r"\x00(\d+)\x00", lambda m: tags[int(m.group(1))], text)


def _vetted(expression: str) -> bool:
    """``{{ value | safe_url }}``: the last filter is the vetted one."""
    inner = expression[2:-2].strip()
    return re.search(r"\|\s*safe_url\s*$", inner) is not None


def sink_problems(source: str) -> list[str]:
    masked, tags = _mask(source)
    problems: list[str] = []
    for match in _ATTR.finditer(masked):
        name = match.group(1).lower()
        raw = match.group(2)
        value = _unmask(raw.strip("\"'"), tags)
        if name.startswith("on"):
            problems.append(f"inline event handler {name}=")
            continue
        if name == "style":
            problems.append("inline style= attribute")
            continue
        if name not in URL_ATTRIBUTES and not (
            name == "content" and "refresh" in masked[max(0, match.start() - 80) : match.start()]
        ):
            continue
        if raw[0] not in "\"'" and "{" in value:
            problems.append(f"{name}= holds an expression but is not quoted")
            continue
        first = _JINJA.search(value)
        literal_start = value[: first.start()] if first else value
        if _SCRIPT_URL.match(literal_start):
            problems.append(f"{name}={value!r} is a script URL")
        elif first is None or _ANCHORED.match(literal_start):
            continue
        elif literal_start.strip() or not first.group(0).startswith("{{"):
            problems.append(f"{name}={value!r}: an expression is not the URL's fixed start")
        elif not _vetted(first.group(0)):
            problems.append(f"{name}={value!r} is not passed through safe_url")
    lowered = masked.lower()
    for script in re.finditer(r"<script\b([^>]*)>", lowered):
        if "src=" not in script.group(1):
            problems.append("inline <script>")
    if "<style" in lowered:
        problems.append("inline <style> element")
    if "javascript:" in lowered:
        problems.append("a javascript: URL")
    return problems


def _all_templates() -> list[Path]:
    found = sorted(TEMPLATES.rglob("*.html"))
    assert len(found) >= 15, found
    return found


@pytest.mark.parametrize("path", _all_templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_template_has_an_unsafe_url_sink_or_inline_code(path: Path) -> None:
    assert sink_problems(path.read_text(encoding="utf-8")) == []


def test_the_walker_catches_each_unsafe_shape() -> None:
    bad = [
        '<a href="{{ app.website }}">',
        "<a href='{{ url }}'>",
        "<a href={{ url }}>",
        '<img src="{{ x | e }}">',
        '<img src="{{ x | safe_url | safe }}">',
        '<video poster="{{ p }}">',
        '<form action="{{ target }}">',
        '<button formaction="{{ target }}">',
        '<a href="{% if a %}{{ a }}{% endif %}">',
        '<a href="javascript:alert(1)">',
        '<a href=" JavaScript:{{ x }}">',
        '<a href="//{{ host }}/x">',
        '<a href="/{{ path }}">',
        '<a href="{{ scheme }}://host/">',
        '<meta http-equiv="refresh" content="0;url={{ next }}">',
        '<a onclick="go()">',
        '<p style="color:red">',
        "<script>alert(1)</script>",
        "<style>p{}</style>",
        '<div hx-get="{{ u }}">',
    ]
    for html in bad:
        assert sink_problems(html), html
    good = [
        '<a href="{{ app.website | safe_url }}">',
        '<a href="{{ x|safe_url }}?max_id={{ n }}">',
        '<a href="/tags/{{ t | urlencode }}?max_id={{ n }}">',
        '<a href="/feed?max_id={{ older }}">',
        '<a href="?page={{ n }}">',
        '<a href="https://docs.example/{{ page }}">',
        '<form method="post" action="/settings/sessions/{{ s.id }}/end">',
        '<script src="/static/app.js" defer></script>',
        '<meta name="description" content="{{ text }}">',
        '<span title="{{ "a \\"quoted\\" title" }}">',
    ]
    for html in good:
        assert sink_problems(html) == [], html


def test_safe_url_keeps_only_http_urls_and_local_paths() -> None:
    for kept in ("https://a.example/x", "http://a.example", "/@alice/1", "/tags/x?max_id=3"):
        assert safe_url(kept) == kept
    for dropped in (
        None,
        "",
        3,
        "javascript:alert(1)",
        " javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,x",
        "vbscript:x",
        "//evil.example/",
        "/\\evil.example/",
        "/\t/evil.example",
        "relative/path",
        "https://",
        "https:///nohost",
    ):
        assert safe_url(dropped) == "", dropped
    assert templates.env.filters["safe_url"] is safe_url
