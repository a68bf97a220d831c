"""Log records as lines of JSON (``FEDISORA_LOG_FORMAT=json``), each naming the request it
belongs to (issue 20, point 4).

Every HTTP request gets a request id (the ``X-Request-Id`` it came with when that is a short
token, else a new one), answered in its own ``X-Request-Id`` header and set in
:data:`REQUEST_ID` while the request runs (:class:`fedisora.metrics.RequestMetrics`), so a log
line written on its behalf carries it as ``request_id``. ``text`` (the default) keeps the
familiar one-line format.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

__all__ = ["REQUEST_ID", "JsonFormatter", "RequestIdFilter", "configure", "new_request_id"]

REQUEST_ID: ContextVar[str | None] = ContextVar("fedisora_request_id", default=None)
_TOKEN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def new_request_id(given: str | None) -> str:
    """The request's id: *given* (a client's or proxy's ``X-Request-Id``) when it is a short
    plain token, else a new random one."""
    if given and _TOKEN.fullmatch(given):
        return given
    return secrets.token_hex(8)


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on each record (``request_id``, None outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, and the
    exception's text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(level: str, fmt: str) -> None:
    """The process's logging: *level*, and *fmt* ``text`` or ``json``, with request ids."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
