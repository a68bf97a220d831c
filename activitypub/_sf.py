"""A narrow, typed front to ``http_sf`` (RFC 8941/9651 Structured Field Values).

``http_sf`` is Mark Nottingham's implementation (he edited RFC 8941); its
predecessor ``http-sfv`` is deprecated in its favour. Only dictionaries are
parsed here, with duplicate keys and parameters rejected: the RFC's "last one
wins" would let two readers of one ``Signature-Input`` disagree.
"""

from __future__ import annotations

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
    text = http_sf.ser({"k": member})
    # A Boolean true member serialises as the bare key ("k;param"), so add "?1" back.
    return text[2:] if text.startswith("k=") else "?1" + text[1:]


def split_member(member: Item | InnerList) -> tuple[BareItem | list[Item], Params]:
    """A member's value (a bare item, or the items of an inner list) and its parameters."""
    if isinstance(member, tuple):
        return member[0], member[1]
    return member, {}
