"""This instance's provenance material: signing credentials, trusted roots, watermark key.

``fedisora init`` writes ``<data_dir>/provenance/{root.pem,chain.pem,key.pem}``; roots of
other instances an admin chooses to trust go in ``<data_dir>/provenance/trusted/*.pem``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fedisora.config import Settings
from render.errors import ProvenanceError

__all__ = [
    "load_credentials",
    "provenance_dir",
    "trusted_roots",
    "watermark_id",
    "watermark_key",
]


def provenance_dir(settings: Settings) -> Path:
    return settings.data_dir / "provenance"


def load_credentials(settings: Settings) -> tuple[str, str, str]:
    """(root PEM, chain PEM, key PEM); ``ProvenanceError`` says how to fix a missing file."""
    directory = provenance_dir(settings)
    try:
        return tuple(  # type: ignore[return-value]
            (directory / name).read_text(encoding="ascii")
            for name in ("root.pem", "chain.pem", "key.pem")
        )
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvenanceError(
            f"the instance's provenance credentials in {directory} are missing or unreadable "
            f"({exc}); run `fedisora init` to create them"
        ) from exc


def trusted_roots(settings: Settings) -> list[str]:
    """This instance's root plus every root an admin put in ``provenance/trusted/``."""
    directory = provenance_dir(settings)
    roots: list[str] = []
    own = directory / "root.pem"
    if own.is_file():
        roots.append(own.read_text(encoding="ascii"))
    extra = directory / "trusted"
    if extra.is_dir():
        roots.extend(p.read_text(encoding="ascii") for p in sorted(extra.glob("*.pem")))
    return roots


def watermark_key(settings: Settings) -> bytes:
    """The invisible watermark's key, derived from the instance secret (never published)."""
    return hashlib.sha256(b"fedisora-watermark\0" + settings.secret_key.encode()).digest()


def watermark_id(job_id: int) -> int:
    """The 32-bit id a clip carries: the job's id (modulo 2**32, as ids stay far below)."""
    return job_id % (1 << 32)
