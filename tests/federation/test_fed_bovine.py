"""A second, independent server: bovine-herd (Quart + hypercorn, from PyPI) on loopback.

bovine-herd pins an old tortoise-orm and quart, so it lives in its own virtualenv under
~/.cache/fedisora-tests (made once, like pasture's); ``_bovine.py`` runs inside it. A bovine
actor follows a fedisora user through bovine's own outbox: bovine signs the Follow, fedisora
fetches the bovine actor (bovine answers only signed GETs) and accepts; the fedisora user
then posts a clip and the signed Create lands in the bovine actor's inbox.

Without PyPI the virtualenv cannot be made and the test fails, saying so.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fedinstances import Instance, free_port, start, stop, wait_for
from peer_venv import peer_python

pytestmark = pytest.mark.slow

BOVINE = "bovine-herd==0.5.19"
DRIVER = Path(__file__).with_name("_bovine.py")


def _bovine_python() -> Path:
    return peer_python("bovine-herd-0.5.19", [BOVINE, "hypercorn"])


@dataclass
class Bovine:
    python: Path
    port: int
    db: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, *args: str) -> Any:
        out = subprocess.run(
            [str(self.python), str(DRIVER), args[0], str(self.port), str(self.db), *args[1:]],
            cwd=self.db.parent,  # bovine writes a JSON-LD cache file in its working directory
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, f"bovine {args[0]}: {out.stderr[-3000:]}"
        return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def bovine(tmp_path: Path) -> Iterator[Bovine]:
    python = _bovine_python()
    server = Bovine(python, free_port(), tmp_path / "bovine.sqlite3")
    server.run("register", "milkdrop")
    log_path = tmp_path / "bovine.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(python), str(DRIVER), "serve", str(server.port), str(server.db)],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()[-3000:]
            try:
                httpx.get(f"{server.base}/.well-known/nodeinfo", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield server
    finally:
        process.terminate()
        process.wait(15)


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Instance]:
    started = start("fed", tmp_path)
    try:
        yield started
    finally:
        stop(started)


def _inbox_until(bovine: Bovine, check: Any, what: str, timeout: float = 30) -> list[Any]:
    deadline = time.monotonic() + timeout
    items: list[Any] = []
    while time.monotonic() < deadline:
        items = bovine.run("inbox", "milkdrop")["items"]
        if check(items):
            return items
        time.sleep(0.5)
    raise AssertionError(f"bovine: timed out waiting for {what}; inbox {items}")


def test_bovine_follows_and_receives_a_clip(bovine: Bovine, instance: Instance) -> None:
    bovine_actor = _actor_of(bovine)
    admin_uri = f"{instance.base}/users/admin"
    fetched = bovine.run("fetch", "milkdrop", admin_uri)  # bovine's signed GET of our actor
    assert fetched["id"] == admin_uri
    assert fetched["publicKey"]["owner"] == admin_uri
    # bovine refuses unsigned GETs of its actors: fedisora's fetch below must be signed.
    unsigned = httpx.get(bovine_actor, headers={"Accept": "application/activity+json"})
    assert unsigned.status_code in (401, 403), unsigned.status_code

    follow = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "type": "Follow",
        "actor": bovine_actor,
        "object": admin_uri,
        "to": [admin_uri],
    }
    assert bovine.run("post", "milkdrop", json.dumps(follow))["status"] in (200, 201, 202)
    state = wait_for(
        instance,
        lambda s: any(
            f["follower"] == bovine_actor and f["state"] == "accepted" for f in s["follows"]
        ),
        "bovine's Follow to be accepted",
    )
    assert any(i["type"] == "Follow" and i["state"] == "processed" for i in state["inbox"])
    _inbox_until(
        bovine,
        lambda items: any(_type(i) == "Accept" for i in items),
        "fedisora's Accept",
    )

    clip_uri = instance.act("post", "admin", "hello bovine")["uri"]
    items = _inbox_until(
        bovine,
        lambda items: any(_type(i) == "Create" and _object_id(i) == clip_uri for i in items),
        "the Create of the clip",
    )
    [create] = [i for i in items if _type(i) == "Create" and _object_id(i) == clip_uri]
    assert create["actor"] == admin_uri
    state = wait_for(
        instance,
        lambda s: [d["state"] for d in s["deliveries"]] == ["delivered", "delivered"],
        "both deliveries (Accept, Create) to be delivered",
    )
    assert [d["type"] for d in state["deliveries"]] == ["Accept", "Create"]


def _actor_of(bovine: Bovine) -> str:
    info: dict[str, str] = bovine.run("whoami", "milkdrop")
    return info["id"]


def _type(item: Any) -> str | None:
    return item.get("type") if isinstance(item, dict) else None


def _object_id(item: dict[str, Any]) -> str | None:
    obj = item.get("object")
    return obj.get("id") if isinstance(obj, dict) else obj
