"""What text and JSON may come in: the characters and nesting every reader refuses. Pure.

Two rules:

- **No input** (API parameters, web and OAuth forms, inbox POSTs, fetched actors and objects)
  may hold what no database column stores: a NUL or an unpaired surrogate
  (:data:`activitypub.objects.UNSTORABLE_CHARS`); nor nest deeper than its reader allows:
  :data:`MAX_CLIENT_DEPTH` for a client's body (Mastodon's deepest, polls, profile fields and
  push alerts, nest three levels), :data:`MAX_PEER_DEPTH` for a peer's document (recursive
  readers of deeper ones would run out of stack). The reader refuses such input whole, with
  :class:`InputRefused` (400), before anything else looks at it.
- **Client text that a handler reads** (through :class:`fedisora.api.params.Params`) may not
  hold a control character that no one types and no field of ours means: C0 controls other
  than tab, line feed and carriage return, DEL and the C1 controls. It is readable, but no
  value of any field: :class:`ControlCharacter` (422), naming the parameter. Parameters no
  handler reads are ignored, whatever they hold, as unknown parameters are.
"""

from __future__ import annotations

import json
import re
from typing import Any

from activitypub.objects import UNSTORABLE_CHARS
from fedisora.errors import FedisoraError, Invalid

__all__ = [
    "CONTROL_CHARS",
    "MAX_CLIENT_DEPTH",
    "MAX_PEER_DEPTH",
    "ControlCharacter",
    "InputRefused",
    "check_storable",
    "check_typed",
    "parse_json",
    "refusal",
]

MAX_CLIENT_DEPTH = 16
MAX_PEER_DEPTH = 64

#: The control characters refused in client text, as a regular-expression class: C0 but tab,
#: line feed and carriage return; DEL; C1.
CONTROL_CHARS = "\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_UNSTORABLE = re.compile(f"[{UNSTORABLE_CHARS}]")
_UNTYPED = re.compile(f"[{UNSTORABLE_CHARS}{CONTROL_CHARS}]")
# In raw JSON bytes: an escaped NUL or surrogate (a valid pair is looked at too), or a
# surrogate's UTF-8-like bytes (Python's JSON reader decodes bytes with "surrogatepass").
_SUSPECT_BYTES = re.compile(rb"\\u0000|\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


class InputRefused(FedisoraError):
    """The request cannot be read as it stands: not JSON, nested too deep, or holding text no
    column stores (a NUL, an unpaired surrogate). 400."""

    status = 400


class ControlCharacter(Invalid):
    """Client text holding a control character: readable, but not a value of any field. 422."""


def _describe(char: str) -> str:
    code = ord(char)
    if code == 0:
        return "a NUL character (U+0000), which cannot be stored"
    if 0xD800 <= code <= 0xDFFF:
        return f"an unpaired surrogate (U+{code:04X}): text must be valid Unicode"
    return f"the control character U+{code:04X}"


def _label(name: str) -> str:
    """*name* fit to be shown in a message: a key may itself hold what is refused."""
    if not name:
        return "the request"
    shown = _UNTYPED.sub("\ufffd", name[:100])
    return shown + "..." if len(name) > 100 else shown


def refusal(
    value: Any, *, typed: bool, max_depth: int, name: str = ""
) -> InputRefused | ControlCharacter | None:
    """The error *value* (decoded JSON, or form values: strings, lists and dicts of them;
    anything else is passed over) is refused with, or None. *typed*: client text, refused for
    control characters too. Iterative, so that any nesting is looked at safely. *name* labels
    the value in the message; without one, the keys of a top-level dict label theirs."""
    pattern = _UNTYPED if typed else _UNSTORABLE
    stack: list[tuple[Any, int, str]] = [(value, 0, name)]  # (value, depth, label)
    while stack:
        item, depth, label = stack.pop()
        if isinstance(item, str):
            found = pattern.search(item)
            if found is not None:
                char = found.group()
                message = f"{_label(label)} contains {_describe(char)}"
                if _UNSTORABLE.match(char):
                    return InputRefused(message)
                return ControlCharacter(message)
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                return InputRefused(f"{_label(label)} is nested deeper than {max_depth} levels")
            if isinstance(item, list):
                stack.extend((v, depth + 1, label) for v in item)
            else:
                for key, v in item.items():
                    sub = str(key) if depth == 0 and not name else label
                    stack.append((key, depth + 1, sub))
                    stack.append((v, depth + 1, sub))
    return None


def check_storable(value: Any, *, name: str = "", max_depth: int = MAX_CLIENT_DEPTH) -> None:
    """Raise :class:`InputRefused` if *value* holds a NUL or an unpaired surrogate, or nests
    deeper than *max_depth*."""
    error = refusal(value, typed=False, max_depth=max_depth, name=name)
    if error is not None:
        raise error


def check_typed(value: Any, *, name: str) -> None:
    """Raise :class:`ControlCharacter` (or :class:`InputRefused`) if the client text *value*
    of parameter *name* holds a control character (or anything :func:`check_storable`
    refuses)."""
    error = refusal(value, typed=True, max_depth=MAX_CLIENT_DEPTH, name=name)
    if error is not None:
        raise error


def parse_json(body: bytes | str, *, max_depth: int) -> Any:
    """Decode a JSON document; :class:`InputRefused` if it is not JSON (``NaN`` and
    ``Infinity`` are not), nests deeper than *max_depth* or holds a NUL or an unpaired
    surrogate anywhere (key or value).

    The decoded document is only walked when its bytes could hold something refused (an
    escaped NUL or surrogate, more brackets than the depth limit): the inbox reads many
    documents, and most are small and plain."""
    try:
        data = json.loads(body, parse_constant=_not_json)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise InputRefused("the body is not JSON") from None
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if raw.count(b"{") + raw.count(b"[") > max_depth or _SUSPECT_BYTES.search(raw):
        check_storable(data, max_depth=max_depth)
    return data


def _not_json(name: str) -> Any:
    """Python's JSON reader takes NaN and Infinity; JSON has no such values."""
    raise ValueError(f"{name} is not a JSON value")
