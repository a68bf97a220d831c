"""The input boundary: what every request, client or peer, must be before any handler reads it.

- :mod:`~fedisora.boundary.middleware`: the ASGI middleware in front of every route (body size
  per route class);
- :mod:`~fedisora.boundary.limits`: the body size limit of each class of route.
"""

from __future__ import annotations

from fedisora.boundary.limits import BodyTooLarge

__all__ = ["BodyTooLarge"]
