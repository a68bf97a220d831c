"""Render workers report the model they serve and their device (GPU memory on a GPU) in their
heartbeat (``worker_heartbeats.report``), and the admin overview shows each live worker's.

torch is replaced by a stand-in, so the GPU branch runs on a machine without one."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
from factories import local_account
from webhelpers import logged_in

from fedisora.config import Settings
from fedisora.models import WorkerHeartbeat, utcnow
from fedisora.work.runner import beat, worker_report
from render.queue import build_render_machine
from render.worker_report import WorkerReport

GB = 10**9


def _torch(cuda: bool, asked: list[str]) -> Any:
    def device_name(index: int) -> str:
        asked.append("name")
        return "NVIDIA L4"

    def mem_get_info(index: int) -> tuple[int, int]:
        asked.append("memory")
        return 20 * GB, 24 * GB  # (free, total)

    return SimpleNamespace(
        cuda=SimpleNamespace(
            is_available=lambda: cuda,
            current_device=lambda: 0,
            get_device_name=device_name,
            mem_get_info=mem_get_info,
        )
    )


async def test_render_workers_report_their_model_and_gpu_and_the_overview_shows_it(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    machine = build_render_machine(settings)
    assert isinstance(machine.report, WorkerReport)  # what the real worker beats with

    asked: list[str] = []
    gpu = WorkerReport(settings, torch=_torch(True, asked))
    first = await worker_report([SimpleNamespace(report=gpu, name="render_jobs")])  # type: ignore[list-item]
    again = await gpu()
    assert (
        first
        == again
        == {
            "model": {"name": "tiny", "family": "tiny", "loaded": False},
            "device": "cuda",
            "gpu": {"name": "NVIDIA L4", "memory_used": 4 * GB, "memory_total": 24 * GB},
        }
    )
    assert asked == ["name", "memory", "memory"]  # the GPU's name once, its memory each beat
    cpu = await WorkerReport(settings, torch=_torch(False, asked))()
    assert cpu == {"model": {"name": "tiny", "family": "tiny", "loaded": False}, "device": "cpu"}

    # A report that fails leaves the beat going, without one.
    async def broken() -> dict[str, Any]:
        raise RuntimeError("driver gone")

    assert await worker_report([SimpleNamespace(report=broken, name="render_jobs")]) is None  # type: ignore[list-item]

    await beat("arq:render:gpu1:1", "arq", ["render"], utcnow, first)
    await beat("arq:render:cpu1:2", "arq", ["render"], utcnow, cpu)
    await WorkerHeartbeat.create(name="arq:render:old:3", kind="arq", pid=3, queues="render")
    await beat("arq:default:x:4", "arq", ["default"], utcnow)
    row = await WorkerHeartbeat.get(name="arq:render:gpu1:1")
    assert row.report == first
    assert (await WorkerHeartbeat.get(name="arq:default:x:4")).report is None

    await local_account("boss", admin=True)
    async with logged_in(web, "boss") as admin:
        page = (await admin.get("/admin")).text
    gpu_item, cpu_item, old_item = (
        page.split(f"<strong>{name}</strong>")[1].split("</li>")[0]
        for name in ("arq:render:gpu1:1", "arq:render:cpu1:2", "arq:render:old:3")
    )
    assert "Model: tiny (tiny), not loaded yet" in gpu_item
    assert "Device: NVIDIA L4: GPU memory 4.0 GB used of 24.0 GB" in gpu_item
    assert "Model: tiny (tiny)" in cpu_item and "Device: CPU (no GPU)" in cpu_item
    assert "Model: not reported · Device: not reported" in old_item
    assert "arq:default:x:4" not in page.split('id="renders"')[1].split('id="delivery-health"')[0]
