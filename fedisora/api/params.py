"""Request parameters as Mastodon clients send them: query string, form data or a JSON body.

Mastodon.py posts form data, toot posts JSON, and every client sends GET parameters in the query
string. Arrays arrive as repeated ``x[]=`` keys, as a JSON list or as repeated ``x=`` keys: all
three read back as one list under the plain name ``x``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from fedisora.boundary import (
    MAX_CLIENT_DEPTH,
    InputRefused,
    check_storable,
    check_typed,
    parse_json,
    read_form,
)
from fedisora.errors import Invalid

__all__ = ["BadRequest", "Params", "read_params"]

_TRUE = {"1", "true", "on", "yes", "t"}
_FALSE = {"0", "false", "off", "no", "f", ""}


#: The body could not be read at all (malformed, or holding refused characters): 400.
BadRequest = InputRefused


class Params:
    """Merged parameters with typed accessors. Later sources win: query < form < JSON."""

    def __init__(self, values: dict[str, list[Any]] | None = None) -> None:
        self._values: dict[str, list[Any]] = values or {}

    def _add(self, key: str, value: Any) -> None:
        name = key[:-2] if key.endswith("[]") else key
        self._values.setdefault(name, []).append(value)

    def _set(self, key: str, value: Any) -> None:
        name = key[:-2] if key.endswith("[]") else key
        self._values[name] = list(value) if isinstance(value, list) else [value]

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def raw(self, name: str) -> Any:
        """The last value given for *name*; every accessor reads through here (or
        :meth:`items`), where client text is refused for control characters (422)."""
        values = self._values.get(name)
        if not values:
            return None
        check_typed(values[-1], name=name)
        return values[-1]

    def text(
        self, name: str, default: str | None = None, *, max_length: int | None = None
    ) -> str | None:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, (dict, list, UploadFile)):
            raise Invalid(f"{name} must be a string")
        text = value if isinstance(value, str) else json.dumps(value)
        if max_length is not None and len(text) > max_length:
            raise Invalid(f"{name} is longer than {max_length} characters")
        return text

    def required_text(self, name: str, *, max_length: int | None = None) -> str:
        value = self.text(name, max_length=max_length)
        if value is None or not str(value).strip():
            raise Invalid(f"{name} is required")
        return str(value)

    def integer(
        self, name: str, default: int | None = None, *, low: int = 0, high: int = 2**63 - 1
    ) -> int | None:
        value = self.raw(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            raise Invalid(f"{name} must be a whole number")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise Invalid(f"{name} must be a whole number, not {value!r}") from None
        if not low <= number <= high:
            raise Invalid(f"{name} must be between {low} and {high}")
        return number

    def number(self, name: str, default: int, *, low: int = 0, high: int = 2**63 - 1) -> int:
        """Like :meth:`integer`, with *default* when the parameter is absent."""
        value = self.integer(name, default, low=low, high=high)
        return default if value is None else value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, str) and value.strip().lower() in _TRUE:
            return True
        if isinstance(value, str) and value.strip().lower() in _FALSE:
            return False
        raise Invalid(f"{name} must be true or false, not {value!r}")

    def items(self, name: str) -> list[Any]:
        """All values given for *name* (``x[]=``, repeated ``x=`` or a JSON list), flattened."""
        out: list[Any] = []
        values = self._values.get(name, [])
        check_typed(values, name=name)
        for value in values:
            if isinstance(value, list):
                out.extend(value)
            elif value is not None and value != "":
                out.append(value)
        return out

    def texts(self, name: str) -> list[str]:
        items = self.items(name)
        for item in items:
            if not isinstance(item, (str, int)) or isinstance(item, bool):
                raise Invalid(f"{name} must be a list of strings")
        return [str(i) for i in items]

    def id(self, name: str) -> int | None:
        """A Mastodon id (a string of digits) or None; a malformed id is an unknown one."""
        value = self.raw(name)
        if value is None or value == "":
            return None
        return parse_id(value)

    def id_list(self, name: str) -> list[int]:
        return [parse_id(v) for v in self.texts(name)]

    def mapping(self, name: str) -> dict[str, Any]:
        value = self.raw(name)
        return value if isinstance(value, dict) else {}


def parse_id(value: Any) -> int:
    """An id as clients send it. Non-numeric ids cannot name any row: -1 never matches."""
    if isinstance(value, bool):
        return -1
    try:
        number = int(str(value).strip())
    except ValueError:
        return -1
    return number if 0 <= number < 2**63 else -1


def _flatten_bracketed(params: Params, key: str, value: object) -> None:
    """``source[privacy]=x`` style keys become nested dicts under ``source``."""
    if "[" in key and key.endswith("]") and not key.endswith("[]"):
        head, _, rest = key.partition("[")
        sub = rest[:-1]
        current = params.raw(head)
        if not isinstance(current, dict):
            current = {}
            params._set(head, current)
        current[sub] = value
    else:
        params._add(key, value)


async def read_params(request: Request) -> Params:
    """All parameters of *request*, read through the input boundary (:mod:`fedisora.boundary`):
    a body that is not JSON or a form, or parameters that nest too deep or hold a NUL or an
    unpaired surrogate, are refused with 400 before any handler sees them."""
    # A path names a row or nothing (404): only what no query may carry is refused here.
    check_storable(list(request.path_params.values()), name="the path")
    params = Params()
    for key, query_value in request.query_params.multi_items():
        _flatten_bracketed(params, key, query_value)
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/json" or ctype.endswith("+json"):
            body = await request.body()
            if body.strip():
                data = parse_json(body, max_depth=MAX_CLIENT_DEPTH)
                if not isinstance(data, dict):
                    raise Invalid("the JSON body must be an object")
                for key, value in data.items():
                    params._set(str(key), value)
        elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await read_form(request)
            form_params = Params()
            for key, form_value in form.multi_items():
                _flatten_bracketed(form_params, key, form_value)
            for name, values in form_params._values.items():
                params._values[name] = values
    check_storable(params._values)  # the query string's too, and form keys made nested
    return params
