"""The cameo consent check the render queue asks before rendering and before publishing.

A cameo puts a real person's likeness into a clip. Until likeness consent objects exist
(the consent issue replaces this module's body), nobody has consented to anything, so
every cameo is refused. The worker and ``publish_render`` call this at the last moment
rather than at request time because consent can be revoked while a job waits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fedisora.models import RenderJob

__all__ = ["ConsentDecision", "check_cameo_consent"]


@dataclass(frozen=True, slots=True)
class ConsentDecision:
    allowed: bool
    reason: str
    refs: tuple[str, ...] = ()
    """Consent references (URIs) to record in the clip's provenance when allowed."""
    references: tuple[str, ...] = ()


async def check_cameo_consent(job: RenderJob, account_ids: Sequence[int]) -> ConsentDecision:
    """May *job* use the likeness of *account_ids*? Refuses every cameo for now."""
    if not account_ids:
        return ConsentDecision(allowed=True, reason="no cameos")
    ids = ", ".join(str(i) for i in account_ids)
    return ConsentDecision(
        allowed=False,
        reason=(
            f"no likeness consent on record for account(s) {ids}: this instance does not "
            "accept cameos until likeness consent is available"
        ),
    )
