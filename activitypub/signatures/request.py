"""A plain HTTP request value: what the signature code signs and verifies.

It is deliberately not tied to any HTTP library: the I/O layer builds one from a
Starlette request (``Request(req.method, str(req.url), req.headers.raw, body)``)
or an httpx request (``Request(r.method, str(r.url), r.headers.multi_items(),
r.content)``), and applies the headers ``sign_request`` returns.

On the receiving side the URL must be the *public* one the sender addressed
(``https://fedisora.example/inbox``), not the one a reverse proxy forwarded to
(``http://127.0.0.1:8000/inbox``): ``@target-uri``, ``@authority`` and
``(request-target)`` are derived from it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import SplitResult, urlsplit

from activitypub.errors import MalformedSignature

__all__ = ["Headers", "HeadersInput", "Request", "Target", "target", "wire_bytes"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _text(value: str | bytes) -> str:
    # Raw ASGI headers are bytes; HTTP field values are ISO-8859-1 on the wire.
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


class Headers:
    """An immutable, case-insensitive multi-map of header field lines, in order."""

    __slots__ = ("_index", "_lines")

    _lines: tuple[tuple[str, str], ...]
    _index: dict[str, list[str]]  # lower-case name -> values (a verification reads several)

    def __init__(self, headers: HeadersInput = ()) -> None:
        if isinstance(headers, Headers):
            self._lines = headers._lines
            self._index = headers._index
            return
        items: Iterable[tuple[str | bytes, str | bytes]]
        items = headers.items() if isinstance(headers, Mapping) else headers
        self._set_lines(tuple((_text(name), _text(value)) for name, value in items))

    @classmethod
    def from_wire(cls, lines: Iterable[tuple[bytes, bytes]]) -> Headers:
        """Headers from raw ASGI header lines (what :meth:`__init__` does with them, without
        its type checks per line: an inbox builds one for every POST)."""
        headers = cls.__new__(cls)
        headers._set_lines(
            tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in lines)
        )
        return headers

    def _set_lines(self, lines: tuple[tuple[str, str], ...]) -> None:
        self._lines = lines
        self._index = {}
        for key, value in lines:
            self._index.setdefault(key.lower(), []).append(value)

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, one per field line, in order."""
        return list(self._index.get(name.lower(), ()))

    def get(self, name: str) -> str | None:
        """The combined value of ``name``, or None if absent.

        Field lines are trimmed of surrounding whitespace and joined with ``", "``,
        as both draft-cavage (section 2.3) and RFC 9421 (section 2.1) specify.
        """
        values = self.get_all(name)
        if not values:
            return None
        return ", ".join(value.strip(" \t") for value in values)

    def replace(self, updates: Mapping[str, str]) -> Headers:
        """A copy with every line of each name in ``updates`` replaced by one new line."""
        names = {name.lower() for name in updates}
        kept = [(key, value) for key, value in self._lines if key.lower() not in names]
        return Headers([*kept, *updates.items()])

    def items(self) -> tuple[tuple[str, str], ...]:
        return self._lines

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._lines)

    def __len__(self) -> int:
        return len(self._lines)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._lines == other._lines

    def __hash__(self) -> int:
        return hash(self._lines)

    def __repr__(self) -> str:
        return f"Headers({list(self._lines)!r})"


HeadersInput: TypeAlias = (
    Headers | Mapping[str, str] | Iterable[tuple[str, str]] | Iterable[tuple[bytes, bytes]]
)


@dataclass(frozen=True, slots=True, init=False)
class Request:
    """An HTTP request: method, absolute URL, header lines and body bytes."""

    method: str
    url: str
    headers: Headers
    body: bytes

    def __init__(
        self, method: str, url: str, headers: HeadersInput = (), body: bytes = b""
    ) -> None:
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "headers", Headers(headers))
        object.__setattr__(self, "body", bytes(body))

    def with_headers(self, updates: Mapping[str, str]) -> Request:
        """A copy with the given headers set (replacing any lines of the same names)."""
        return Request(self.method, self.url, self.headers.replace(updates), self.body)

    def header(self, name: str) -> str | None:
        """The combined value of a header, or None (see :meth:`Headers.get`)."""
        return self.headers.get(name)


@dataclass(frozen=True, slots=True)
class Target:
    """The parts of a request URL the signature schemes use."""

    scheme: str
    authority: str
    path: str
    query: str | None
    uri: str

    @property
    def path_and_query(self) -> str:
        return self.path if self.query is None else f"{self.path}?{self.query}"


def target(request: Request) -> Target:
    """Split the request URL; a URL we cannot read is a malformed request (400).

    ``authority`` is normalised as RFC 9421 ``@authority`` requires (lower-case
    host, default port omitted) and ``uri`` is rebuilt from it, without user
    info or fragment: the form URL libraries (Rack, WHATWG URL) hand signers.
    ``query`` is None when the URL has none ("" for a bare ``?``).
    """
    return _target(request.url)


@functools.lru_cache(maxsize=256)
def _target(url: str) -> Target:
    """(Remembered: an instance's inbox URLs are few, and each verification needs the split
    twice. A Target is immutable.)"""
    try:
        parts: SplitResult = urlsplit(url)
        hostname = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise MalformedSignature(f"cannot parse request URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if not scheme or not hostname:
        raise MalformedSignature("request URL must be absolute")
    host = f"[{hostname}]" if ":" in hostname else hostname
    authority = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    query = parts.query if "?" in url.split("#", 1)[0] else None
    path = parts.path or "/"
    uri = f"{scheme}://{authority}{path}" + ("" if query is None else f"?{query}")
    return Target(scheme, authority, path, query, uri)


def wire_bytes(text: str) -> bytes:
    """The bytes of a signature base or signing string.

    Header values arrive as ISO-8859-1 decoded text (Starlette, raw ASGI), so
    encoding back to ISO-8859-1 reproduces the bytes the sender signed. Text
    that cannot be ISO-8859-1 never came off the wire; UTF-8 is the only
    sensible reading of it.
    """
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")
