"""The cameo consent check the render queue asks at request time, before rendering and before
publishing (consent can be revoked while a job waits).

Each cameo's owner must have a verified likeness whose grant or policy lets the job's author
use it, unexpired and unrevoked, and, to publish, not limited to drafts
(:func:`fedisora.services.likeness.check_consent`, which writes the audit row of every
check). The owner is told of each use: requested (at submission), drafted (when rendering is
allowed), published, refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fedisora.config import Settings
from fedisora.models import Account, Clip, RenderJob
from fedisora.services import likeness
from render.states import READY

__all__ = ["ConsentDecision", "check_cameo_consent", "check_cameos_for_request", "record_published"]


@dataclass(frozen=True, slots=True)
class ConsentDecision:
    allowed: bool
    reason: str
    refs: tuple[str, ...] = ()
    """Consent references (URIs of the grants), one per cameo in the order asked, to record
    in the clip's provenance (C2PA manifest) and its cameos when allowed."""
    references: tuple[str, ...] = ()
    """Private paths of the allowed likenesses' reference images (each likeness's in turn),
    for the render pipeline only: never published, never federated."""
    references_by_cameo: tuple[tuple[str, ...], ...] = ()
    """The same paths grouped per cameo, in the order asked."""


async def _decide(
    author: Account,
    account_ids: Sequence[int],
    *,
    publish: bool,
    stage: str,
    job: RenderJob | None,
    settings: Settings | None,
) -> tuple[ConsentDecision, list[likeness.Consent]]:
    if not account_ids:
        return ConsentDecision(allowed=True, reason="no cameos"), []
    owners = {a.pk: a for a in await Account.filter(pk__in=list(account_ids))}
    decisions: list[likeness.Consent] = []
    for account_id in account_ids:
        owner = owners.get(account_id)
        if owner is None:
            return (
                ConsentDecision(False, f"account {account_id} does not exist"),
                decisions,
            )
        decision = await likeness.check_consent(
            author, owner, publish=publish, job=job, stage=stage, settings=settings
        )
        decisions.append(decision)
        if not decision.allowed:
            return ConsentDecision(False, decision.reason), decisions
    refs = tuple(d.grant.uri or "" for d in decisions if d.grant is not None)
    groups = tuple(d.references for d in decisions)
    return (
        ConsentDecision(
            allowed=True,
            reason="consent granted",
            refs=refs,
            references=tuple(p for g in groups for p in g),
            references_by_cameo=groups,
        ),
        decisions,
    )


async def _tell(
    decisions: list[likeness.Consent],
    author: Account,
    kind: str,
    *,
    job: RenderJob | None = None,
    clip: Clip | None = None,
) -> None:
    for d in decisions:
        if d.likeness is None and (d.owner.local or d.grant is None):
            continue  # no likeness registered, or a remote owner who gave no consent: no use
        await likeness.record_use(d, author, kind if d.allowed else "refused", job=job, clip=clip)


async def check_cameos_for_request(
    author: Account, account_ids: Sequence[int]
) -> tuple[ConsentDecision, list[likeness.Consent]]:
    """At request time (no job yet): the decision, and the per-owner decisions to record
    with :func:`record_requested` once the job exists. A refusal is recorded and told here."""
    decision, decisions = await _decide(
        author, account_ids, publish=False, stage="request", job=None, settings=None
    )
    if not decision.allowed:
        await _tell([d for d in decisions if not d.allowed], author, "refused")
    return decision, decisions


async def record_requested(
    decisions: list[likeness.Consent], author: Account, job: RenderJob
) -> None:
    """The job asked for with these allowed decisions exists: each owner is told."""
    await _tell(decisions, author, "requested", job=job)


async def check_cameo_consent(
    job: RenderJob,
    account_ids: Sequence[int],
    *,
    publish: bool | None = None,
    settings: Settings | None = None,
) -> ConsentDecision:
    """May *job* use the likeness of *account_ids*? Asked before rendering (a draft) and
    before publishing (*publish* defaults to whether the job is ready). Every check is
    audited; each owner is told of the draft, or of the refusal. With *settings*, an allowed
    decision names the private reference images."""
    if not account_ids:
        return ConsentDecision(allowed=True, reason="no cameos")
    publishing = job.state == READY if publish is None else publish
    author = await Account.get(pk=job.account_id)
    decision, decisions = await _decide(
        author,
        account_ids,
        publish=publishing,
        stage="publish" if publishing else "render",
        job=job,
        settings=settings,
    )
    if not decision.allowed:
        await _tell([d for d in decisions if not d.allowed], author, "refused", job=job)
    elif not publishing:
        await _tell(decisions, author, "draft", job=job)
    return decision


async def record_published(job: RenderJob, clip: Clip) -> None:
    """A clip with cameos was posted from *job*: each owner is told (kind ``published``, or
    ``remixed`` when it remixes a clip they appear in)."""
    from fedisora.models import Cameo, LikenessGrant, LikenessUse

    author = await Account.get(pk=clip.account_id)
    uses = await LikenessUse.filter(render_job_id=job.pk, kind="draft").order_by("id")
    seen: set[int] = set()
    for use in uses:
        if use.owner_id in seen:
            continue
        seen.add(use.owner_id)
        owner = await Account.get(pk=use.owner_id)
        grant = await LikenessGrant.get_or_none(pk=use.grant_id) if use.grant_id else None
        decision = likeness.Consent(True, "published", owner, None, grant)
        # store_clip notified the people in the clip, in the clip's own transaction.
        await likeness.record_use(decision, author, "published", job=job, clip=clip, tell=False)
    if clip.remix_of_id is not None:
        for cameo in await Cameo.filter(clip_id=clip.remix_of_id):
            if cameo.account_id in seen:
                continue
            owner = await Account.get(pk=cameo.account_id)
            decision = likeness.Consent(True, "remixed", owner)
            await likeness.record_use(decision, author, "remixed", job=job, clip=clip)
