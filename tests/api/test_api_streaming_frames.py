"""``fedisora serve`` refuses a WebSocket message over its limit before reading it in: the
socket closes with 1009 (message too big) and the server does not grow by the message's size
(uvicorn's own default would take 16 MiB per message into memory). A real process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from instance import Instance, running_instance
from websockets.asyncio.client import connect

from fedisora.api.streaming import MAX_MESSAGE
from fedisora.cli import WS_MAX_SIZE

BIG = 12 * 1024 * 1024  # under uvicorn's default limit, far over ours


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    with running_instance(tmp_path_factory.mktemp("frames"), "--no-render-worker") as inst:
        yield inst


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory so far, in bytes (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _url(instance: Instance) -> str:
    return instance.url.replace("http://", "ws://") + "/api/v1/streaming?stream=public"


async def test_a_message_over_the_limit_closes_the_socket_unread(instance: Instance) -> None:
    assert MAX_MESSAGE < WS_MAX_SIZE <= 64 * 1024
    before = _peak_rss(instance.process.pid)
    async with connect(_url(instance), max_size=None) as ws:
        with pytest.raises(websockets.ConnectionClosedError):
            await ws.send("a" * BIG)
            await ws.recv()
        assert ws.close_code == 1009, (ws.close_code, ws.close_reason)
    grown = _peak_rss(instance.process.pid) - before
    assert grown < BIG // 4, f"the server grew by {grown} bytes"

    # Ordinary messages still work, on a new socket, and the server answers as before.
    async with connect(_url(instance)) as ws:
        await ws.send(json.dumps({"type": "subscribe", "stream": "nonsense"}))
        reply = json.loads(await ws.recv())
        assert reply["status"] == 400 and "error" in reply
        await ws.send("a" * (WS_MAX_SIZE - 1))  # under the frame limit: the app's own answer
        assert json.loads(await ws.recv()) == {"error": "Message too long", "status": 400}
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{instance.url}/api/v1/instance")).status_code == 200
