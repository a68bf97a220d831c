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

from fedisora.errors import FedisoraError, Invalid

__all__ = ["BadRequest", "Params", "read_params"]

_TRUE = {"1", "true", "on", "yes", "t"}
_FALSE = {"0", "false", "off", "no", "f", ""}


class BadRequest(FedisoraError):
    """The body could not be parsed at all (malformed JSON, wrong content type)."""

    status = 400


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
        values = self._values.get(name)
        return values[-1] if values else None

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
        for value in self._values.get(name, []):
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


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


async def read_params(request: Request) -> Params:
    """All parameters of *request*. NUL characters are refused: PostgreSQL cannot store them."""
    if _has_nul(dict(request.path_params)):
        raise BadRequest("NUL characters are not allowed in parameters")
    params = Params()
    for key, query_value in request.query_params.multi_items():
        _flatten_bracketed(params, key, query_value)
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/json" or ctype.endswith("+json"):
            body = await request.body()
            if body.strip():
                try:
                    data = json.loads(body)
                except (ValueError, UnicodeDecodeError):
                    raise BadRequest("the request body is not valid JSON") from None
                if not isinstance(data, dict):
                    raise Invalid("the JSON body must be an object")
                for key, value in data.items():
                    params._set(str(key), value)
        elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            try:
                form = await request.form()
            except Exception as exc:  # multipart parser errors have no common base class
                raise BadRequest(f"the form body could not be parsed: {exc}") from None
            form_params = Params()
            for key, form_value in form.multi_items():
                _flatten_bracketed(form_params, key, form_value)
            for name, values in form_params._values.items():
                params._values[name] = values
    if _has_nul(params._values):
        raise BadRequest("NUL characters are not allowed in parameters")
    return params
