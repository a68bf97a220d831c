"""Rendering: specs and limits (pure), pipelines, encoding, watermarking and provenance.

Only the pure names are exported here, so ``import render`` stays torch- and
numpy-free for the web process; the worker imports ``render.pipeline``,
``render.encode``, ``render.watermark`` and ``render.provenance`` directly.
"""

from render.errors import (
    EncodeError,
    ModelLoadError,
    ProbeError,
    ProvenanceError,
    RenderError,
    RenderLimitError,
)
from render.spec import (
    FAMILIES,
    ModelFamily,
    RenderPlan,
    RenderSpec,
    check_output,
    family_named,
    plan,
    validate,
)

__all__ = [
    "FAMILIES",
    "EncodeError",
    "ModelFamily",
    "ModelLoadError",
    "ProbeError",
    "ProvenanceError",
    "RenderError",
    "RenderLimitError",
    "RenderPlan",
    "RenderSpec",
    "check_output",
    "family_named",
    "plan",
    "validate",
]
