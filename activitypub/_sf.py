"""A narrow, typed front to ``http_sf`` (RFC 8941/9651 Structured Field Values).

``http_sf`` is Mark Nottingham's implementation (he edited RFC 8941); its
predecessor ``http-sfv`` is deprecated in its favour. Only dictionaries are
parsed here, with duplicate keys and parameters rejected: the RFC's "last one
wins" would let two readers of one ``Signature-Input`` disagree.
"""

from __future__ import annotations

import base64
import re
from typing import TypeAlias

import http_sf
from http_sf.types import BareItemType, DictionaryType, InnerListType, ItemType, ParamsType

__all__ = [
    "BareItem",
    "Dictionary",
    "InnerList",
    "Item",
    "Params",
    "SFError",
    "parse_dictionary",
    "serialize_member",
    "split_member",
]

BareItem: TypeAlias = BareItemType
Dictionary: TypeAlias = DictionaryType
InnerList: TypeAlias = InnerListType
Item: TypeAlias = ItemType
Params: TypeAlias = ParamsType

# Structured fields are short; a cap keeps hostile input cheap to reject.
_MAX_FIELD = 8192


class SFError(ValueError):
    """The value is not a valid structured dictionary."""


def _reject_duplicate(key: str, context: str) -> None:
    raise SFError(f"duplicate {context} key {key!r}")


def parse_dictionary(value: str) -> Dictionary:
    """Parse a dictionary field value, raising :class:`SFError` on any problem."""
    if len(value) > _MAX_FIELD:
        raise SFError("structured field is too long")
    fast = _fast_dictionary(value)
    if fast is not None:
        return fast
    try:
        data = value.encode("ascii")
    except UnicodeEncodeError as exc:
        raise SFError("structured fields are ASCII") from exc
    try:
        parsed = http_sf.parse(data, tltype="dictionary", on_duplicate_key=_reject_duplicate)
    except SFError:
        raise
    except Exception as exc:  # a third-party parser on hostile input: any failure is "invalid"
        raise SFError(str(exc)) from exc
    if not isinstance(parsed, dict):  # pragma: no cover - tltype="dictionary" gives a dict
        raise SFError("not a dictionary")
    return parsed


def serialize_member(member: Item | InnerList) -> str:
    """Serialise one dictionary member value (an item or an inner list, with parameters)."""
    try:
        return _fast_serialize_member(member)
    except _GiveUp:
        pass
    text = http_sf.ser({"k": member})
    # A Boolean true member serialises as the bare key ("k;param"), so add "?1" back.
    return text[2:] if text.startswith("k=") else "?1" + text[1:]


def split_member(member: Item | InnerList) -> tuple[BareItem | list[Item], Params]:
    """A member's value (a bare item, or the items of an inner list) and its parameters."""
    if isinstance(member, tuple):
        return member[0], member[1]
    return member, {}


# --- the fast path ---------------------------------------------------------------------------
#
# Hand-rolled, beside http_sf rather than instead of it: http_sf reads character by character
# in Python, which costs tens of microseconds for each of the three signature fields every
# inbox POST carries (Signature-Input, Signature, Content-Digest). The shapes peers send are a
# small subset: members whose values are byte sequences, strings, integers or inner lists of
# those, with string or integer parameters. Those are read here a token at a time with
# regular expressions; anything else (tokens, booleans, decimals, escapes, tabs, duplicate
# keys, errors of any kind) makes the fast path give up and http_sf decide. What the fast path
# does accept, it reads exactly as http_sf does: tests/activitypub/test_ap_sf.py checks that
# against http_sf on generated and mutated fields.

_KEY = r"[a-z*][a-z0-9_\-.*]*"
_MEMBER_KEY = re.compile(rf"({_KEY})=")
_PARAM = re.compile(rf';({_KEY})=(?:"([\x20\x21\x23-\x5b\x5d-\x7e]*)"|(-?[0-9]{{1,15}})(?![0-9.]))')
_STRING = re.compile(r'"([\x20\x21\x23-\x5b\x5d-\x7e]*)"')
_INTEGER = re.compile(r"(-?[0-9]{1,15})(?![0-9.])")
_BYTES = re.compile(r":((?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?):")
_MEMBER_SEPARATOR = re.compile(r"[ \t]*,[ \t]*")
_KEY_ONLY = re.compile(_KEY)
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


class _GiveUp(Exception):
    """Not a shape the fast path reads: http_sf decides."""


def _skip_spaces(value: str, pos: int) -> int:
    while value.startswith(" ", pos):
        pos += 1
    return pos


def _fast_params(value: str, pos: int) -> tuple[Params, int]:
    params: Params = {}
    while value.startswith(";", pos):
        found = _PARAM.match(value, pos)
        if found is None:
            raise _GiveUp
        key, text, number = found.groups()
        if key in params:
            raise _GiveUp  # http_sf (with our duplicate hook) gives the error
        params[key] = text if text is not None else int(number)
        pos = found.end()
    return params, pos


def _fast_bare(value: str, pos: int) -> tuple[BareItem, int]:
    char = value[pos : pos + 1]
    if char == '"':
        found = _STRING.match(value, pos)
        if found is None:
            raise _GiveUp
        return found.group(1), found.end()
    if char == ":":
        found = _BYTES.match(value, pos)
        if found is None:
            raise _GiveUp
        return base64.b64decode(found.group(1)), found.end()
    found = _INTEGER.match(value, pos)
    if found is None:
        raise _GiveUp
    return int(found.group(1)), found.end()


def _fast_member(value: str, pos: int) -> tuple[Item | InnerList, int]:
    if not value.startswith("(", pos):
        bare, pos = _fast_bare(value, pos)
        params, pos = _fast_params(value, pos)
        return (bare, params), pos
    items: list[Item] = []
    pos = _skip_spaces(value, pos + 1)
    while not value.startswith(")", pos):
        if items:
            spaces = _skip_spaces(value, pos)
            if spaces == pos:
                raise _GiveUp  # items must be separated by spaces
            pos = spaces
            if value.startswith(")", pos):
                break
        bare, pos = _fast_bare(value, pos)
        params, pos = _fast_params(value, pos)
        items.append((bare, params))
    params, pos = _fast_params(value, pos + 1)
    return (items, params), pos


def _fast_dictionary(value: str) -> Dictionary | None:
    """*value* read as a dictionary, or None when it is not a shape the fast path reads."""
    value = value.strip(" ")
    out: Dictionary = {}
    pos, end = 0, len(value)
    try:
        while True:
            found = _MEMBER_KEY.match(value, pos)
            if found is None:
                return None
            key = found.group(1)
            if key in out:
                return None
            out[key], pos = _fast_member(value, found.end())
            if pos == end:
                return out
            found = _MEMBER_SEPARATOR.match(value, pos)
            if found is None or found.end() == end:
                return None
            pos = found.end()
    except _GiveUp:
        return None


def _fast_serialize_bare(value: object) -> str:
    if type(value) is str:
        if _PRINTABLE.fullmatch(value) is None:
            raise _GiveUp
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if type(value) is int:
        if not -999_999_999_999_999 <= value <= 999_999_999_999_999:
            raise _GiveUp
        return str(value)
    if type(value) is bytes:
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    raise _GiveUp


def _fast_serialize_params(params: Params) -> str:
    out = []
    for key, value in params.items():
        if _KEY_ONLY.fullmatch(key) is None:
            raise _GiveUp
        out.append(f";{key}={_fast_serialize_bare(value)}")
    return "".join(out)


def _fast_serialize_member(member: Item | InnerList) -> str:
    value, params = member if isinstance(member, tuple) else (member, {})
    if isinstance(value, list):
        items = []
        for item in value:
            bare, item_params = item if isinstance(item, tuple) else (item, {})
            items.append(_fast_serialize_bare(bare) + _fast_serialize_params(item_params))
        text = "(" + " ".join(items) + ")"
    else:
        text = _fast_serialize_bare(value)
    return text + _fast_serialize_params(params)
