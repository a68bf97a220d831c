"""docker-compose.yml: valid for Compose, and shaped as the production set-up needs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fedisora.boundary.proxies import TrustedProxies, parse_networks

ROOT = Path(__file__).resolve().parent.parent
ENV = {
    "FEDISORA_DOMAIN": "video.example",
    "FEDISORA_SECRET_KEY": "k" * 48,
    "POSTGRES_PASSWORD": "pw",
}


def _config(extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    compose = shutil.which("docker-compose")
    assert compose, "scripts/test installs docker-compose"
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    env.update(extra_env)
    return subprocess.run(
        [compose, "-f", str(ROOT / "docker-compose.yml"), "config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_compose_file_is_valid_and_complete() -> None:
    result = _config(ENV)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert set(services) == {"postgres", "redis", "web", "worker"}
    for name, service in services.items():
        assert "healthcheck" in service, name
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert "worker" in " ".join(services["worker"]["command"])
    for name in services:  # a process that exits (a worker that cannot go on) is started again
        assert services[name]["restart"] == "unless-stopped", name
    web_env = services["web"]["environment"]
    assert web_env["FEDISORA_REDIS_URL"] == "redis://redis:6379/0"
    # The proxy in front reaches the web container from a private address; its
    # X-Forwarded-For is believed from there only, and the port is published on loopback.
    proxies = TrustedProxies.parse(parse_networks(web_env["FEDISORA_TRUSTED_PROXIES"]))
    for gateway in ("172.17.0.1", "172.18.0.1", "192.168.16.1", "127.0.0.1"):
        assert proxies.client(gateway, ["198.51.100.7"]) == "198.51.100.7"
    assert proxies.client("198.51.100.8", ["6.6.6.6"]) == "198.51.100.8"
    assert all(str(p).startswith("127.0.0.1:") for p in services["web"]["ports"])
    assert web_env["FEDISORA_DOMAIN"] == "video.example"  # the shared settings still apply
    assert web_env["FEDISORA_DATABASE_URL"].startswith("postgres://fedisora:pw@postgres:5432/")
    # docker-compose prints volumes in the short form "volume:path:mode"
    for name in ("web", "worker"):
        assert "media:/data:rw" in services[name]["volumes"], services[name]["volumes"]
    assert "media" in config["volumes"]


@pytest.mark.parametrize("missing", sorted(ENV))
def test_compose_refuses_to_start_without_required_settings(missing: str) -> None:
    result = _config({k: v for k, v in ENV.items() if k != missing})
    assert result.returncode != 0
    assert f"set {missing} in .env" in result.stderr
