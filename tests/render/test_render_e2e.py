"""End to end on CPU: tiny pipeline -> frames -> H.264 MP4 -> C2PA sign -> verify."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from render.encode import encode_mp4, probe
from render.provenance import (
    ProvenanceClaim,
    ValidationState,
    prompt_sha256,
    sign_mp4,
    verify_mp4,
)
from render.spec import RenderSpec, check_output, plan


def test_render_encode_sign_verify(tiny: Any, credentials: Any, tmp_path: Path) -> None:
    started = time.perf_counter()
    spec = RenderSpec(prompt="a lighthouse in a storm, slow pan", seed=2024, seconds=1.0)
    p = plan(spec, tiny.family, instance_max_seconds=10)
    assert (p.frames, p.width, p.height) == (17, 64, 112)

    steps: list[int] = []
    frames = tiny.generate(p, spec, lambda done, total: steps.append(done))
    assert steps == list(range(1, p.steps + 1))
    check_output(frames.shape[0], p.fps, frames.shape[2], frames.shape[1], tiny.family)

    encoded = encode_mp4(frames, tmp_path / "render.mp4", fps=p.fps)
    claim = ProvenanceClaim(
        instance="video.example",
        job_id="job-e2e",
        model=tiny.model,
        seed=p.seed,
        prompt_sha256=prompt_sha256(spec.prompt),
    )
    final = tmp_path / "final.mp4"
    signed = sign_mp4(
        encoded.path,
        final,
        chain_pem=credentials.chain_pem,
        key_pem=credentials.key_pem,
        claim=claim,
    )

    result = verify_mp4(final, [credentials.root_pem])
    assert result.state is ValidationState.TRUSTED
    assert result.claim == claim
    assert result.manifest_digest == signed.manifest_digest

    info = probe(final)
    assert (info.frames, info.width, info.height, info.codec) == (17, 64, 112, "h264")
    assert info.fps == p.fps
    check_output(info.frames, round(info.fps), info.width, info.height, tiny.family)

    import av

    with av.open(str(final)) as c:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    # The pipeline's own frames survive encoding and signing (H.264 is lossy; noise-like
    # tiny-model frames lose more than natural video would).
    assert np.abs(decoded.astype(int) - frames.astype(int)).mean() < 12
    assert time.perf_counter() - started < 15
