"""The machine of the cameo checks (:mod:`fedisora.federation.cameo_clips` writes their rows
when a clip's consents could not be verified at once): verify them again and store the clip
through ingest's :func:`~fedisora.federation.ingest.store_admitted_clip` once they hold. Apart
from the rows' module because it runs ingest, which writes those rows."""

from __future__ import annotations

import logging

from activitypub import objects
from fedisora.config import Settings
from fedisora.federation.actors import ActorError
from fedisora.federation.cameo_clips import CAMEO_CHECK_GRAPH, consent_audit, judge, tell_refused
from fedisora.federation.context import get_federation
from fedisora.federation.http import FetchError
from fedisora.federation.ingest import store_admitted_clip
from fedisora.federation.outcomes import Ignored
from fedisora.models import Account, CameoCheck, Clip
from fedisora.work.engine import Machine, Outcome, Retry, WorkContext

__all__ = ["machines"]

log = logging.getLogger("fedisora.federation")


async def _verify(row: CameoCheck, ctx: WorkContext) -> Outcome:
    settings: Settings = ctx.engine.context["settings"]
    if await Clip.filter(uri=row.clip_uri).exists():
        await ctx.move("skipped", reason="the clip is stored already")
        return "skipped"
    author = await Account.get_or_none(uri=row.author_uri)
    if author is None or author.suspended_at is not None or not row.note:
        await ctx.move("skipped", reason="its author is gone")
        return "skipped"
    try:
        note = objects.parse_note(row.note)
    except objects.InvalidObject as exc:
        await ctx.move("skipped", reason=str(exc)[:1000])
        return "skipped"
    fed = get_federation(settings)
    try:
        async with ctx.keep_lease():
            found = await judge(fed, author, note.cameos, clip_uri=row.clip_uri)
    except (ActorError, FetchError) as exc:
        return Retry(str(exc))
    await consent_audit(author, found)
    await tell_refused(author, found, row.clip_uri)
    reason = found.reason
    if reason is None:
        cameos = [(a.owner, a.grant_id) for a in found.admitted]
        try:
            await store_admitted_clip(author, note, row.note, cameos, depth=row.depth)
        except Ignored as exc:
            reason = f"not stored: {exc}"
    outcome = "shown" if reason is None else "refused"
    async with ctx.transition("checked") as conn:
        await (
            CameoCheck.filter(pk=row.pk)
            .using_db(conn)
            .update(outcome=outcome, reason=(reason or "every consent verified")[:2000], note=None)
        )
    log.info("%s: cameos %s (%s)", row.clip_uri, outcome, reason or "verified")
    return "checked"


def machines(settings: Settings) -> list[Machine]:
    return [Machine(CameoCheck, CAMEO_CHECK_GRAPH, {"pending": _verify})]
