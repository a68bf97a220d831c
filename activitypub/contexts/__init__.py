"""JSON-LD contexts bundled with the package, for reading documents as JSON-LD at run time
(:mod:`activitypub.ld_signatures`): nothing is ever fetched. Where each file comes from is
in ``README.md`` beside them."""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["BUNDLED", "load"]

#: Each context URL bundled, and its file in this package.
BUNDLED: dict[str, str] = {
    "https://www.w3.org/ns/activitystreams": "activitystreams.jsonld",
    "https://w3id.org/security/v1": "security-v1.jsonld",
    "https://w3id.org/identity/v1": "identity-v1.jsonld",
}


@cache
def _parsed(name: str) -> Any:
    return json.loads(resources.files(__name__).joinpath(name).read_text(encoding="utf-8"))


def load(url: str) -> dict[str, Any] | None:
    """A copy of the context document bundled for *url* (``{"@context": ...}``), or None."""
    name = BUNDLED.get(url)
    if name is None:
        return None
    document = copy.deepcopy(_parsed(name))
    assert isinstance(document, dict)
    return document
