"""The web server's access log, without the secrets URLs may carry.

Mastodon clients may send their token as ``?access_token=`` (a browser's ``EventSource``
cannot set headers), and OAuth puts ``code`` and sometimes ``client_secret`` in query strings.
uvicorn logs every request line whole, so a log reader (or a log shipper, a backup...) got the
tokens. :func:`log_config` is uvicorn's logging configuration with :class:`RedactSecrets` on
its access logger: each secret parameter's value is replaced by :data:`REDACTED` before any
handler formats the line.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any
from urllib.parse import unquote_plus

__all__ = ["REDACTED", "SECRET_PARAMS", "RedactSecrets", "log_config", "redact_url"]

SECRET_PARAMS = frozenset(
    {"access_token", "refresh_token", "code", "client_secret", "password", "token"}
)
"""Query parameters whose values are never logged (names compared decoded, any case)."""
REDACTED = "[redacted]"
_SEPARATORS = re.compile(r"([&;])")
"""Between parameters: ``&``, and ``;``, which some query parsers also take."""


def redact_url(target: str) -> str:
    """*target* (a path with its query string, as a request line has it) with the value of
    every :data:`SECRET_PARAMS` parameter replaced by :data:`REDACTED`; the rest as it was."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    parts = []
    for part in _SEPARATORS.split(query):  # separators kept: they are parts of their own
        name, _, _ = part.partition("=")
        if unquote_plus(name).strip().lower() in SECRET_PARAMS:
            part = f"{name}={REDACTED}"
        parts.append(part)
    return f"{path}?{''.join(parts)}"


class RedactSecrets(logging.Filter):
    """A filter for uvicorn's access logger, whose records carry ``(client, method, target,
    http version, status)`` as their arguments: the target is redacted (:func:`redact_url`).
    Any other record passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_url(args[2]), *args[3:])
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration, with :class:`RedactSecrets` on its access logger
    (passed to every web process, ``--workers`` included)."""
    import os

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": f"{__name__}.RedactSecrets"}
    config["loggers"]["uvicorn.access"]["filters"] = ["redact_secrets"]
    if os.environ.get("FEDISORA_LOG_FORMAT", "").strip().lower() == "json":
        # uvicorn's lines as JSON too, each with its request's id
        config["filters"]["request_id"] = {"()": "fedisora.logs.RequestIdFilter"}
        for name in config["formatters"]:
            config["formatters"][name] = {"()": "fedisora.logs.JsonFormatter"}
        for handler in config["handlers"].values():
            handler.setdefault("filters", []).append("request_id")
    return config
