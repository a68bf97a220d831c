"""The input boundary: what every request, client or peer, must be before any handler reads it.

- :mod:`~fedisora.boundary.middleware`: the ASGI middleware in front of every route (client
  address behind trusted proxies, refused characters in the URL, body size per route class);
- :mod:`~fedisora.boundary.limits`: the body size limit of each class of route;
- :mod:`~fedisora.boundary.text`: the characters and nesting refused in client and peer input,
  and the one JSON reader (pure);
- :mod:`~fedisora.boundary.forms`: the one form reader (API parameters, OAuth and web forms);
- :mod:`~fedisora.boundary.proxies`: ``X-Forwarded-For`` from trusted proxies (pure).

What a field may hold (its length, its form) is the business of the service or parser that
stores it; what no field may hold is refused here, once, with a 400 or 413.
"""

from __future__ import annotations

from fedisora.boundary.forms import read_form
from fedisora.boundary.limits import BodyTooLarge
from fedisora.boundary.text import (
    MAX_CLIENT_DEPTH,
    MAX_PEER_DEPTH,
    ControlCharacter,
    InputRefused,
    check_storable,
    check_typed,
    parse_json,
)

__all__ = [
    "MAX_CLIENT_DEPTH",
    "MAX_PEER_DEPTH",
    "BodyTooLarge",
    "ControlCharacter",
    "InputRefused",
    "check_storable",
    "check_typed",
    "parse_json",
    "read_form",
]
