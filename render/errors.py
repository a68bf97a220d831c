"""The render package's exception hierarchy, drawn once.

Pure: the web process imports these (through ``render.spec``) without torch.

    RenderError
    ├── RenderLimitError   a spec or an output breaks a limit (maps to HTTP 422)
    ├── ModelLoadError     the configured model cannot be loaded
    ├── EncodeError        frames cannot be written as MP4
    ├── ProbeError         a file is not a readable video
    └── ProvenanceError    C2PA signing or reading failed
"""

from __future__ import annotations

__all__ = [
    "EncodeError",
    "ModelLoadError",
    "ProbeError",
    "ProvenanceError",
    "RenderError",
    "RenderLimitError",
]


class RenderError(Exception):
    """Base class of every error raised by ``render``."""


class RenderLimitError(RenderError, ValueError):
    """A render request or output breaks a limit.

    ``limit`` names the broken limit ("prompt", "seconds", "aspect", "seed", ...) so a
    caller can point at the offending form field; the message states the allowed range.
    """

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(f"{limit}: {message}")
        self.limit = limit
        self.message = message


class ModelLoadError(RenderError):
    """The model named in the configuration is missing, incomplete or unsupported.

    Its message is for the logs and admins (it names paths on the server); users are told
    :attr:`PUBLIC` instead."""

    PUBLIC = (
        "this instance cannot render right now: its render model cannot be loaded "
        "(the server's logs say why)"
    )


class EncodeError(RenderError):
    """Frames could not be encoded (bad shape, dtype, or an encoder failure)."""


class ProbeError(RenderError):
    """A file is not a video we can read: not MP4, no video stream, or corrupt."""


class ProvenanceError(RenderError):
    """C2PA signing failed, or a file could not be parsed for verification."""
