"""The access log never holds a token, an OAuth code, a client secret or a password.

Clients may put their token in the URL (``?access_token=``: what a browser's EventSource
has), and uvicorn logged request lines whole. The log of a real ``fedisora serve`` (one web
process, and several: each is configured on its own) is read here after requests that carry
secrets in their query strings.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from instance import running_instance

from fedisora.accesslog import REDACTED, RedactSecrets, log_config, redact_url

SECRETS = {
    "access_token": "SEKRET-token-1",
    "code": "SEKRET-code-2",
    "client_secret": "SEKRET-client-3",
    "password": "SEKRET-password-4",
    "refresh_token": "SEKRET-refresh-5",
}


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        ("/api/v1/x?access_token=abc&limit=2", f"/api/v1/x?access_token={REDACTED}&limit=2"),
        ("/api/v1/x?limit=2", "/api/v1/x?limit=2"),
        ("/api/v1/x", "/api/v1/x"),
        ("/a?Access_Token=abc", f"/a?Access_Token={REDACTED}"),
        ("/a?access%5Ftoken=abc", f"/a?access%5Ftoken={REDACTED}"),  # percent-encoded name
        ("/a?access_token", f"/a?access_token={REDACTED}"),
        ("/a?x=1;code=abc&code=def", f"/a?x=1;code={REDACTED}&code={REDACTED}"),
        ("/a?password=p&client_secret=s", f"/a?password={REDACTED}&client_secret={REDACTED}"),
        ("/a?state=keep&name=code", "/a?state=keep&name=code"),  # a value named code is kept
    ],
)
def test_redact_url(target: str, logged: str) -> None:
    assert redact_url(target) == logged


def test_the_filter_redacts_uvicorns_access_records() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/v1/x?access_token=abc", "1.1", 200),
        None,
    )
    assert RedactSecrets().filter(record)
    assert (
        record.getMessage()
        == f'127.0.0.1:5000 - "GET /api/v1/x?access_token={REDACTED} HTTP/1.1" 200'
    )
    config = log_config()
    assert config["loggers"]["uvicorn.access"]["filters"] == ["redact_secrets"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_served_instance_logs_no_secret(tmp_path: Path, workers: str) -> None:
    with running_instance(
        tmp_path, "--no-render-worker", "--workers", workers, FEDISORA_LOG_LEVEL="info"
    ) as inst:
        with httpx.Client(base_url=inst.url) as client:
            for _ in range(int(workers) * 2):  # a request for each web process, likely
                client.get("/api/v1/timelines/public", params={**SECRETS, "limit": "2"})
                client.get("/oauth/authorize", params={**SECRETS, "client_id": "x"})
                client.get("/login", params=SECRETS)
    assert inst.process.stdout is not None
    log = inst.process.stdout.read()
    assert '"GET /api/v1/timelines/public?access_token=[redacted]&code=[redacted]' in log, log
    assert "&limit=2 HTTP/1.1" in log
    assert "/oauth/authorize?" in log and "/login?" in log
    for value in SECRETS.values():
        assert value not in log
