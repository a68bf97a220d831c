"""What a render worker says about itself in its heartbeat: the model it serves and its device.

The admin overview shows it for each live render worker (``worker_heartbeats.report``). A
beat comes every few seconds, so everything that does not change is worked out once per
process: the model's name (its directory's name, never the server path, as in a clip's
provenance) and family, whether torch sees a GPU and that GPU's name. Each beat adds whether
the pipeline is loaded yet (a dictionary lookup) and, on a GPU, its memory in use (one
``torch.cuda.mem_get_info``, off the event loop: the device's, all processes together).

The report::

    {"model": {"name": "wan2.1-t2v-1.3b", "family": "wan", "loaded": true},
     "device": "cuda",
     "gpu": {"name": "NVIDIA L4", "memory_used": 1234, "memory_total": 5678}}

``"device": "cpu"`` (and no ``"gpu"``) when torch sees no GPU or is not installed.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
from pathlib import Path
from typing import Any

from fedisora.config import Settings

__all__ = ["WorkerReport"]

log = logging.getLogger("fedisora.render")


class WorkerReport:
    """The render machine's heartbeat report (:attr:`fedisora.work.engine.Machine.report`).

    *torch* replaces the torch module (tests); by default it is imported on the first beat,
    in a thread (a render worker imports it anyway to load its pipeline)."""

    def __init__(self, settings: Settings, *, torch: Any = None) -> None:
        self.settings = settings
        self._torch = torch
        self._model: dict[str, Any] | None = None
        self._model_of: Settings | None = None  # the settings _model was worked out for
        self._device: dict[str, Any] | None = None  # {"device": ..., "gpu_name": ...}

    def _static_model(self, settings: Settings) -> dict[str, Any]:
        from render.catalogue import is_tiny
        from render.errors import ModelLoadError
        from render.service import model_family

        model = settings.render_model
        name = model if is_tiny(model) else Path(model).name
        try:
            family = model_family(settings)
        except ModelLoadError:
            family = "unreadable"
        return {"name": name, "family": family}

    def _static_device(self) -> dict[str, Any]:
        torch = self._torch
        if torch is None:
            try:
                torch = sys.modules.get("torch") or importlib.import_module("torch")
            except ImportError:
                return {"device": "cpu"}
            self._torch = torch
        try:
            if not torch.cuda.is_available():
                return {"device": "cpu"}
            index = torch.cuda.current_device()
            return {"device": "cuda", "index": index, "gpu_name": torch.cuda.get_device_name(index)}
        except Exception as exc:  # a driver that fails: say so rather than stop beating
            log.warning("could not read the GPU for the worker's heartbeat: %s", exc)
            return {"device": "cpu", "error": str(exc)[:200]}

    def _gpu_memory(self, index: int) -> tuple[int, int] | None:
        try:
            free, total = self._torch.cuda.mem_get_info(index)
        except Exception as exc:
            log.warning("could not read GPU memory for the worker's heartbeat: %s", exc)
            return None
        return int(total) - int(free), int(total)

    def _loaded(self, settings: Settings) -> bool:
        from render.queue import _PIPELINES, _pipeline_key

        return _pipeline_key(settings) in _PIPELINES

    async def __call__(self) -> dict[str, Any]:
        from render import models

        settings = await models.effective(self.settings)  # an admin may change the model
        if self._model is None or self._model_of is not settings:
            self._model, self._model_of = self._static_model(settings), settings
        if self._device is None:
            self._device = await asyncio.to_thread(self._static_device)
        device = self._device
        report: dict[str, Any] = {
            "model": {**self._model, "loaded": self._loaded(settings)},
            "device": device["device"],
        }
        if device["device"] == "cuda":
            gpu: dict[str, Any] = {"name": device["gpu_name"]}
            memory = await asyncio.to_thread(self._gpu_memory, device["index"])
            if memory is not None:
                gpu["memory_used"], gpu["memory_total"] = memory
            report["gpu"] = gpu
        elif "error" in device:
            report["error"] = device["error"]
        return report
