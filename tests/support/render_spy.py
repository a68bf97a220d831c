"""A render engine over a pipeline that remembers what it was asked to render."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import numpy as np
from PIL import Image

from fedisora.work import Engine


class SpyPipeline:
    """The tiny pipeline, remembering each render's spec and the still it was given, in the
    order the renders reached it."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.family, self.model = inner, inner.family, inner.model
        self.calls: list[tuple[Any, np.ndarray | None]] = []

    def supports(self, spec: Any) -> bool:
        return bool(self.inner.supports(spec))

    def generate(self, plan: Any, spec: Any, on_step: Any = None) -> Any:
        still = None
        if spec.input_image:  # read now: the work directory goes once the job is ready
            with Image.open(spec.input_image) as image:
                still = np.asarray(image.convert("RGB"))
        self.calls.append((spec, still))
        return self.inner.generate(plan, spec, on_step)


class HangingPipeline(SpyPipeline):
    """The tiny pipeline, whose first *hangs* renders never call back or return until
    :attr:`release` is set, as a pipeline stuck in its GPU driver does: the worker's event
    loop (and its heartbeat) runs on."""

    def __init__(self, inner: Any, hangs: int = 1) -> None:
        super().__init__(inner)
        self.hangs = hangs
        self.release = threading.Event()
        self.hung = threading.Event()  # set once a render hangs

    def generate(self, plan: Any, spec: Any, on_step: Any = None) -> Any:
        if self.hangs > 0:
            self.hangs -= 1
            self.hung.set()
            self.release.wait()
            raise RuntimeError("the driver gave up")
        return super().generate(plan, spec, on_step)


def spy_engine(render_settings: Any, spy: SpyPipeline) -> Engine:
    """An engine running only the render machine, on *spy*."""
    from render.queue import build_render_machine

    async def load(_settings: Any) -> Any:
        return spy

    return Engine(
        [build_render_machine(render_settings, load=load)],
        lease=timedelta(seconds=30),
        context={"settings": render_settings},
    )
