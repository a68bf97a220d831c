"""Shared fixtures for the render tests: the tiny pipeline is built once per session."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny() -> Any:
    """The tiny random-weight pipeline (text- and image-to-video), loaded once."""
    from render.pipeline import load_pipeline

    return load_pipeline("tiny", device="cpu")


@pytest.fixture(scope="session")
def tiny_ltx2() -> Any:
    """The tiny random-weight LTX-2 pipeline (picture and sound; text- and image-to-video)."""
    from render.pipeline import load_pipeline

    return load_pipeline("tiny-ltx2", device="cpu")


@pytest.fixture(scope="session")
def credentials() -> Any:
    """One instance's C2PA root, chain and key, made once (ES256)."""
    from render.provenance import generate_instance_ca

    return generate_instance_ca("video.example")


@pytest.fixture(scope="session")
def make_frames() -> Callable[[int, int, int], np.ndarray]:
    """A factory of smooth, compressible test frames whose content changes every frame."""
    return moving_gradient


@pytest.fixture(scope="session")
def box_kinds() -> Callable[[Path], list[bytes]]:
    """A function listing the top-level ISO BMFF box types of an MP4, in file order."""
    return top_level_boxes


@pytest.fixture(scope="session")
def gradient_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small unsigned H.264 MP4 (17 frames, 64x112) of a moving gradient."""
    from render.encode import encode_mp4

    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    encode_mp4(moving_gradient(17, 112, 64), path, fps=16)
    return path


def moving_gradient(frames: int, height: int, width: int) -> np.ndarray:
    t = np.arange(frames)[:, None, None]
    y = np.arange(height)[None, :, None]
    x = np.arange(width)[None, None, :]
    r = (x * 255 // max(width - 1, 1) + t * 8) % 256
    g = (y * 255 // max(height - 1, 1)) % 256
    b = (128 + 64 * np.sin((x + y + 4 * t) / 9.0)).astype(np.int64)
    return np.stack([r + 0 * y, g + 0 * x + 0 * t, b], axis=-1).astype(np.uint8)


def top_level_boxes(path: Path) -> list[bytes]:
    data = path.read_bytes()
    kinds, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
        kinds.append(kind)
        pos += size if size else len(data)
    return kinds


# --------------------------------------------------------------------------- render queue


@pytest.fixture
def render_settings(tmp_path: Path, credentials: Any) -> Any:
    """Instance settings with a data dir holding this instance's provenance credentials."""
    from fedisora.config import load_settings

    data = tmp_path / "data"
    prov = data / "provenance"
    prov.mkdir(parents=True)
    (prov / "root.pem").write_text(credentials.root_pem)
    (prov / "chain.pem").write_text(credentials.chain_pem)
    (prov / "key.pem").write_text(credentials.key_pem)
    return load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": str(data),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_CONFIG": str(tmp_path / "none.env"),
        }
    )


@pytest.fixture
def tiny_loader(tiny: Any) -> Callable[[Any], Any]:
    """A pipeline loader handing the render machine the session's tiny pipeline."""

    async def load(settings: Any) -> Any:
        return tiny

    return load


@pytest.fixture
def render_engine(render_settings: Any, tiny_loader: Any) -> Any:
    """An engine running only the render machine, with the session's tiny pipeline."""
    from datetime import timedelta

    from fedisora.work import Engine
    from render.queue import build_render_machine

    return Engine(
        [build_render_machine(render_settings, load=tiny_loader)],
        lease=timedelta(seconds=30),
        context={"settings": render_settings},
    )


class SlowPipeline:
    """The real tiny pipeline behind a slower "GPU" (a pause per step) that can run out of
    memory on demand: a prompt containing ``oom:memory`` or ``oom:torch`` raises that error
    from inside the pipeline call, as a real device would; one containing ``misbehave``
    returns more frames than planned, as a model swapped under the worker might."""

    def __init__(self, inner: Any, step_seconds: float = 0.0) -> None:
        self.inner = inner
        self.step_seconds = step_seconds
        self.family = inner.family
        self.model = inner.model

    def supports(self, spec: Any) -> bool:
        return bool(self.inner.supports(spec))

    def generate(self, plan: Any, spec: Any, on_step: Any = None) -> Any:
        import time

        import torch

        if "oom:memory" in spec.prompt:
            raise MemoryError("cannot allocate 34359738368 bytes")
        if "oom:torch" in spec.prompt:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

        def slow_step(done: int, total: int) -> None:
            time.sleep(self.step_seconds)
            if on_step is not None:
                on_step(done, total)

        frames = self.inner.generate(plan, spec, slow_step)
        if "misbehave" in spec.prompt:  # a model that ignores its plan: two frames too many
            import numpy as np

            frames = np.concatenate([frames, frames[:2]])
        return frames


@pytest.fixture
def make_engine(render_settings: Any, tiny: Any) -> Callable[..., Any]:
    """Engines running the render machine on a ``SlowPipeline`` over the session's tiny one."""
    from dataclasses import replace
    from datetime import timedelta

    from fedisora.work import Engine
    from render.queue import build_render_machine

    def make(steps: int = 0, step_seconds: float = 0.0) -> Any:
        settings = replace(render_settings, render_steps=steps)
        slow = SlowPipeline(tiny, step_seconds=step_seconds)

        async def load(_settings: Any) -> Any:
            return slow

        return Engine(
            [build_render_machine(settings, load=load)],
            lease=timedelta(seconds=30),
            context={"settings": settings},
        )

    return make


@pytest.fixture
def slow_engine(make_engine: Callable[..., Any]) -> Any:
    """40 steps of at least 0.05 s each: long enough to interrupt."""
    return make_engine(steps=40, step_seconds=0.05)
