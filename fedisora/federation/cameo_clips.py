"""Cameos across instances: the consents of received clips, and revocations that federate.

**Receiving a clip with cameos** (``ingest``: a ``Create``, or a clip fetched by its id). A
clip names each person in it in ``cameos`` (``[{type: Cameo, actor, consent: {signed
LikenessAuthorization}}]``, :func:`activitypub.objects.parse_cameos`). Before it is shown,
every consent is verified (:func:`judge`): the grant's proof with the owner's Ed25519 key
(the owner is the cameo's ``actor``, their actor fetched through the actor cache), the
grantee is the clip's author, the scope is ``publish``, it has not expired, and no
revocation seen here takes it back (:class:`~fedisora.models.ReceivedRevocation`, or the
grant's row when the owner is local), and, for a remote owner, that the owner's server
still serves the grant at its id (one request per cameo: a 410 carrying the owner's signed
revocation is recorded and applied as if delivered, so an instance the revocation never
reached learns it; 404, or 410 without one, refuses). An ``Update`` changing a stored
clip's cameos is judged the same way (:func:`recheck_update`): a failing one hides the
clip instead of being applied. A clip that fails is **not stored at all** (so no
timeline, API, web page or stream can show it) and not stored without its cameos either;
the reason is kept in a :class:`~fedisora.models.CameoCheck` row for the admin. When the
owner's actor or server cannot be reached now, the check is durable work (``pending``, with the
Note), retried with backoff like quote checks; the clip is stored once it passes.

**Revocations**. When a local owner revokes a grant or their whole likeness
(:mod:`fedisora.services.likeness`), the ``likeness.revoked`` event becomes deliveries
through the outbox (:func:`on_event`): ``Delete{actor: owner, object: the grant id (or
"{owner}#likeness" for all), instrument: the signed LikenessRevocation}`` to the grantee's
instance and to every instance a clip using it was delivered to or is hosted on. A receiver
(:func:`revocation_received`) verifies the proof with the owner's key, refuses a forged one
(logged), applies a revocation once (its id is remembered: a replay changes nothing),
revokes the grants it holds, cancels render jobs using them and, with ``takeDown``, deletes
the clips published with them: the hosting instance deletes its clip and the ``Delete``
federates; any other instance hides its copy (the same local deletion, without a delivery).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from activitypub import consent, integrity, objects
from activitypub.errors import ConsentError
from activitypub.keys import public_key_from_multibase
from fedisora.boundary.text import MAX_PEER_DEPTH, InputRefused, parse_json
from fedisora.federation.actors import ActorError, domain_of, fetch_actor
from fedisora.federation.context import Federation
from fedisora.federation.delivery_graph import DELIVERY_GRAPH
from fedisora.federation.http import ACCEPT_ACTIVITY, FetchError, UnsafeURL
from fedisora.federation.outcomes import Ignored
from fedisora.federation.rows import create_row
from fedisora.models import (
    Account,
    Cameo,
    CameoCheck,
    Clip,
    ConsentCheck,
    Delivery,
    LikenessGrant,
    LikenessUse,
    ReceivedRevocation,
    utcnow,
)
from fedisora.services.events import Event
from fedisora.work.graph import check_graph, exponential

__all__ = [
    "CAMEO_CHECK_GRAPH",
    "Held",
    "Judgement",
    "Swept",
    "admit",
    "carries_revocation",
    "judge",
    "likeness_id",
    "on_event",
    "recheck_shown",
    "recheck_update",
    "record_revocation",
    "record_uses",
    "revocation_activity",
    "revocation_received",
    "revoked_here",
    "set_cameos",
]

log = logging.getLogger("fedisora.federation")

RETRY_SCHEDULE = exponential(timedelta(seconds=30), 2.0, timedelta(hours=6), timedelta(days=1))
CAMEO_CHECK_GRAPH = check_graph("cameo_check", RETRY_SCHEDULE)


class Held(Exception):
    """The clip waits for its consents to be verified (a durable check is queued)."""


@dataclass(frozen=True)
class Admitted:
    """A consent that verified: the owner's account and the grant's id."""

    owner: Account
    grant_id: str


@dataclass(frozen=True)
class Judgement:
    """What :func:`judge` found: the consents that hold, and why the clip is refused."""

    admitted: list[Admitted]
    reason: str | None = None
    failed: Account | None = None
    """The owner whose consent failed, when the failure is theirs."""
    failed_consent: str | None = None
    """The id of the consent that failed, when there is one."""


# --- verifying a clip's consents ------------------------------------------------------------


async def revoked_here(grant: consent.Grant, owner: Account) -> str | None:
    """Why *grant* is revoked as far as this instance knows, if it is: a revocation received
    from its (remote) owner, or, for a local owner, the grant's own row."""
    if owner.local:
        row = await LikenessGrant.get_or_none(uri=grant.id, owner_id=owner.pk, remote=False)
        if row is None:
            return f"{grant.id} was not issued here"
        if row.revoked_at is not None:
            return "the consent was revoked by its owner"
        return None
    for rev in await ReceivedRevocation.filter(owner_uri=owner.uri):
        seen = consent.Revocation(
            id=rev.uri,
            owner=rev.owner_uri,
            object=rev.object_uri,
            published=rev.published,
            take_down=rev.take_down,
        )
        if consent.revokes(seen, grant):
            return f"the consent was revoked by its owner ({rev.uri})"
    return None


def _owner_key(owner: Account) -> ed25519.Ed25519PublicKey:
    """The owner's Ed25519 key (from their actor document), which signs grants and
    revocations; :class:`ConsentError` when they have none."""
    if owner.ed25519_public_multibase:
        key = public_key_from_multibase(owner.ed25519_public_multibase)
        if isinstance(key, ed25519.Ed25519PublicKey):
            return key
    raise ConsentError(f"{owner.uri} has no Ed25519 key: it cannot grant consent")


def _transient(status: int) -> bool:
    return status >= 500 or status in (408, 425, 429)


async def _served(fed: Federation, url: str) -> tuple[int, Any]:
    """What the owner's server answers at the grant id *url*: ``(status, JSON body or
    None)``, fetched signed through the peer client (its SSRF guard). Raises
    :class:`FetchError` when it cannot answer now (network, 5xx, 408/425/429), and
    :class:`ConsentError` for a refused URL or a redirect to another server."""
    try:
        response, body = await fed.client.request(
            "GET", url, auth=await fed.instance_auth(), headers={"Accept": ACCEPT_ACTIVITY}
        )
    except UnsafeURL as exc:
        raise ConsentError(f"the consent {url} cannot be dereferenced: {exc}") from exc
    except FetchError as exc:
        if exc.status is not None and not _transient(exc.status):
            raise ConsentError(f"the consent {url} cannot be dereferenced: {exc}") from exc
        raise
    status = response.status_code
    if _transient(status):
        raise FetchError(f"GET {url}: HTTP {status}", status)
    if not objects.same_origin(str(response.url), url):
        raise ConsentError(f"{url} redirected to another server")
    try:
        return status, parse_json(body, max_depth=MAX_PEER_DEPTH)
    except InputRefused:
        return status, None


async def _gone(
    owner: Account,
    key: ed25519.Ed25519PublicKey,
    consent_id: str,
    grant: consent.Grant | None,
    body: Any,
    now: datetime,
) -> str:
    """Why a consent its owner's server answers 404 or 410 for is refused. A 410 carrying
    the owner's signed revocation of it is recorded (:class:`ReceivedRevocation`, applied
    as if it had been delivered), so that later clips and replays meet it here; any other
    body is only a refusal, never recorded."""
    try:
        rev = consent.verify_revocation(body, key, owner=owner.uri, now=now)
    except ConsentError as exc:
        if body is not None:
            log.info(
                "%s: the owner's server answered without a valid revocation (%s)",
                consent_id,
                exc.reason,
            )
        return "the owner's server no longer has this consent"
    applies = (
        consent.revokes(rev, grant)
        if grant is not None
        else rev.object == consent_id or rev.whole_likeness
    )
    if not applies:
        return "the owner's server no longer has this consent"
    if not await ReceivedRevocation.filter(uri=rev.id).exists():
        await record_revocation(owner, rev, body)
    return f"the consent was revoked by its owner ({rev.id})"


async def _check_consent(
    fed: Federation,
    author: Account,
    owner: Account,
    cameo: objects.ParsedCameo,
    now: datetime,
    clip_uri: str | None = None,
) -> consent.Grant:
    """The cameo's grant, verified: its proof by the owner's key, for *author*, to publish,
    unexpired, not revoked as far as this instance knows, and (for a remote owner) still
    served by the owner's server at its id: the one request per cameo, which is how a
    revocation that was never delivered here is learnt (:func:`_gone`). Raises
    :class:`ConsentError` with the reason to refuse, or :class:`FetchError` when the
    owner's server cannot answer now."""
    assert cameo.consent_id is not None
    key = _owner_key(owner)
    grant: consent.Grant | None = None

    def verify(doc: Any) -> consent.Grant:
        if objects.id_of(doc if isinstance(doc, dict) else None) != cameo.consent_id:
            raise ConsentError(f"the consent is not {cameo.consent_id}")
        return consent.verify_grant(
            doc, key, owner=owner.uri, grantee=author.uri, needs_publish=True, now=now
        )

    if cameo.consent is not None:
        grant = verify(cameo.consent)
        revoked = await revoked_here(grant, owner)
        if revoked is not None:
            raise ConsentError(revoked)
        if owner.local:  # our own rows say whether it still holds: no request
            await _uses_left(grant, clip_uri)
            return grant
    elif owner.local:  # given by id only: the grant's row here
        row = await LikenessGrant.get_or_none(uri=cameo.consent_id, owner_id=owner.pk, remote=False)
        if row is None or row.document is None:
            raise ConsentError(f"{cameo.consent_id} was not issued here")
        grant = verify(row.document)
        revoked = await revoked_here(grant, owner)
        if revoked is not None:
            raise ConsentError(revoked)
        await _uses_left(grant, clip_uri)
        return grant
    status, doc = await _served(fed, cameo.consent_id)
    if status in (404, 410):
        raise ConsentError(await _gone(owner, key, cameo.consent_id, grant, doc, now))
    if status != 200:
        raise ConsentError(f"the consent {cameo.consent_id} cannot be dereferenced: HTTP {status}")
    served = verify(doc)
    revoked = await revoked_here(served, owner)
    if revoked is not None:
        raise ConsentError(revoked)
    await _uses_left(grant or served, clip_uri)
    return grant or served


async def _uses_left(grant: consent.Grant, clip_uri: str | None) -> None:
    """Refuse *grant* for the clip *clip_uri* when it has a ``maxUses`` and as many other
    clips stored here (shown, or deleted since) presented it already: a single-use consent
    (``maxUses: 1``) shows one clip."""
    if grant.max_uses is None:
        return
    query = Cameo.filter(consent_uri=grant.id)
    if clip_uri is not None:
        query = query.exclude(clip__uri=clip_uri)
    others = sorted({str(u) for u in await query.values_list("clip__uri", flat=True)})
    if len(others) >= grant.max_uses:
        uses = "one use" if grant.max_uses == 1 else f"{grant.max_uses} uses"
        raise ConsentError(f"the consent is for {uses}, and {others[0]} used it already")


async def judge(
    fed: Federation,
    author: Account,
    cameos: Sequence[objects.ParsedCameo],
    *,
    now: datetime | None = None,
    clip_uri: str | None = None,
) -> Judgement:
    """Verify every consent of a clip by *author*: all of them (``reason`` None), or the
    first reason to refuse the clip (and whose consent failed, when known). Raises
    :class:`ActorError` or :class:`FetchError` when an owner's actor or their server cannot
    be reached now (:func:`_check_consent`: a remote owner's server is asked, once per
    cameo, whether it still serves the grant). *clip_uri* is the clip's id: a consent with
    ``maxUses`` already presented by as many other clips here is refused."""
    now = now or utcnow()
    admitted: list[Admitted] = []
    seen: set[str] = set()
    for cameo in cameos:
        if cameo.problem or cameo.actor is None or cameo.consent_id is None:
            return Judgement(admitted, cameo.problem or "a malformed cameo")
        if cameo.actor in seen:
            return Judgement(admitted, f"{cameo.actor} is named twice in cameos")
        seen.add(cameo.actor)
        owner = await fetch_actor(fed, cameo.actor)
        if owner.suspended_at is not None:
            return Judgement(admitted, f"{owner.uri} is suspended here", owner)
        try:
            grant = await _check_consent(fed, author, owner, cameo, now, clip_uri)
        except ConsentError as exc:
            reason = f"the consent of {owner.uri}: {exc.reason}"
            return Judgement(admitted, reason, owner, cameo.consent_id)
        admitted.append(Admitted(owner, grant.id))
    return Judgement(admitted)


def _consent_ids(note: objects.ParsedNote) -> list[str]:
    return [c.consent_id for c in note.cameos if c.consent_id]


async def consent_audit(author: Account, found: Judgement) -> None:
    """The consent audit (:class:`~fedisora.models.ConsentCheck`, what owners and admins
    read): each consent that held, and the one that failed, for a received clip."""
    for one in found.admitted:
        grant = await LikenessGrant.get_or_none(uri=one.grant_id, owner_id=one.owner.pk)
        await ConsentCheck.create(
            requester_id=author.pk,
            owner_id=one.owner.pk,
            grant_id=grant.pk if grant is not None else None,
            stage="received",
            publish=True,
            allowed=found.reason is None,
            reason="consent verified" if found.reason is None else f"refused: {found.reason}",
        )
    if found.failed is not None and found.reason is not None:
        await ConsentCheck.create(
            requester_id=author.pk,
            owner_id=found.failed.pk,
            stage="received",
            publish=True,
            allowed=False,
            reason=found.reason[:500],
        )


async def tell_refused(author: Account, found: Judgement, clip_uri: str) -> None:
    """A received clip refused on a consent of a local owner: the owner is told (a use of
    kind ``refused``, with the reason, and a ``fedisora.likeness_use`` notification), once
    per clip."""
    from fedisora.models import NotificationType
    from fedisora.services import events
    from fedisora.services.notify import notify

    owner = found.failed
    if owner is None or not owner.local or found.reason is None:
        return
    if await LikenessUse.filter(owner_id=owner.pk, clip_uri=clip_uri, kind="refused").exists():
        return
    grant = (
        await LikenessGrant.get_or_none(uri=found.failed_consent, owner_id=owner.pk)
        if found.failed_consent
        else None
    )
    async with events.transaction():  # the use and the owner's notice commit together
        use = await LikenessUse.create(
            owner_id=owner.pk,
            user_id=author.pk,
            grant_id=grant.pk if grant is not None else None,
            clip_uri=clip_uri,
            kind="refused",
            reason=found.reason[:500],
            remote=True,
        )
        await notify(
            owner,
            NotificationType.LIKENESS_USE,
            dedupe_key=f"likeness_use:{use.pk}",
            from_account=author,
        )


async def _audit(
    note: objects.ParsedNote, author: Account, outcome: str, reason: str, depth: int = 0
) -> None:
    await CameoCheck.create(
        state="checked",
        clip_uri=note.id,
        author_uri=author.uri,
        consent_uris=_consent_ids(note),
        depth=depth,
        outcome=outcome,
        reason=reason[:2000],
    )


async def admit(
    fed: Federation,
    author: Account,
    note: objects.ParsedNote,
    obj: dict[str, Any],
    *,
    depth: int = 0,
) -> list[tuple[Account, str]]:
    """The ``(owner, grant id)`` cameos of the received clip *note*, all verified, for it to
    be stored with. A clip that fails is recorded and refused (:class:`Ignored`, with the
    reason); one that cannot be checked now is queued (:class:`Held`)."""
    if await CameoCheck.filter(clip_uri=note.id, state="pending").exists():
        raise Held(f"{note.id}: its consents are being verified")
    try:
        found = await judge(fed, author, note.cameos, clip_uri=note.id)
    except (ActorError, FetchError) as exc:
        await create_row(
            CameoCheck,
            CAMEO_CHECK_GRAPH.initial,
            clip_uri=note.id,
            author_uri=author.uri,
            note=obj,
            consent_uris=_consent_ids(note),
            depth=depth,
            reason=f"waiting: {exc}"[:2000],
        )
        raise Held(f"{note.id}: its consents cannot be verified now ({exc})") from exc
    await consent_audit(author, found)
    if found.reason is not None:
        await tell_refused(author, found, note.id)
        await _audit(note, author, "refused", found.reason, depth)
        log.warning("%s refused: %s", note.id, found.reason)
        raise Ignored(f"clip with cameos refused: {found.reason}")
    await _audit(note, author, "shown", "every consent verified", depth)
    return [(a.owner, a.grant_id) for a in found.admitted]


async def _stored_cameos(clip: Clip) -> set[tuple[str | None, str | None]]:
    rows = await Cameo.filter(clip_id=clip.pk).values_list("account__uri", "consent_uri")
    return {(str(uri), consent_uri) for uri, consent_uri in rows}


async def recheck_update(
    fed: Federation, author: Account, clip: Clip, note: objects.ParsedNote
) -> list[tuple[Account, str]] | None:
    """The cameos an ``Update`` of the stored remote *clip* brings, verified as a new clip's
    are (:func:`judge`), or None when they are the ones stored (same people, same
    consents). An Update whose cameos fail is not applied: the clip is hidden here, as a
    refused clip (the reason kept in a :class:`CameoCheck`), and :class:`Ignored` raised.
    When an owner cannot be reached now, :class:`FetchError` (the inbox retries the Update;
    the clip stays as it was, with the consents verified before)."""
    from fedisora.services.posts import delete_clip

    sent = {(c.actor, c.consent_id) for c in note.cameos}
    if not any(c.problem for c in note.cameos) and sent == await _stored_cameos(clip):
        return None
    try:
        found = await judge(fed, author, note.cameos, clip_uri=clip.uri)
    except ActorError as exc:
        raise FetchError(str(exc)) from exc
    await consent_audit(author, found)
    await tell_refused(author, found, clip.uri)
    if found.reason is None:
        await _audit(note, author, "shown", "an Update: every consent verified")
        return [(a.owner, a.grant_id) for a in found.admitted]
    await delete_clip(author, clip, as_admin=True)
    await _audit(note, author, "refused", f"an Update: {found.reason}")
    log.warning("%s hidden: an Update with cameos refused: %s", clip.uri, found.reason)
    raise Ignored(f"update with cameos refused, the clip is hidden: {found.reason}")


async def set_cameos(
    clip: Clip, cameos: Sequence[tuple[Account, str]], conn: BaseDBAsyncClient
) -> None:
    """Make the stored cameos of the remote *clip* the verified *cameos* (in *conn*)."""
    keep = [owner.pk for owner, _ in cameos]
    now = utcnow()  # each consent was verified just now
    await Cameo.filter(clip_id=clip.pk).exclude(account_id__in=keep).using_db(conn).delete()
    for owner, grant_id in cameos:
        updated = (
            await Cameo.filter(clip_id=clip.pk, account_id=owner.pk)
            .using_db(conn)
            .update(consent_uri=grant_id, checked_at=now)
        )
        if not updated:
            await Cameo.create(
                clip_id=clip.pk,
                account_id=owner.pk,
                consent_uri=grant_id,
                checked_at=now,
                using_db=conn,
            )


async def record_uses(clip: Clip, cameos: Sequence[tuple[Account, str]]) -> None:
    """A use notice for each local owner in the remote *clip* (so that they list it and can
    remove themselves from it)."""
    for owner, grant_id in cameos:
        if not owner.local:
            continue
        grant = await LikenessGrant.get_or_none(uri=grant_id, owner_id=owner.pk)
        # The author's LikenessUse notice may have come first: one use, not two.
        if await LikenessUse.filter(owner_id=owner.pk, clip_uri=clip.uri, kind="published").update(
            clip_id=clip.pk
        ):
            continue
        await LikenessUse.create(
            owner_id=owner.pk,
            user_id=clip.account_id,
            grant_id=grant.pk if grant is not None else None,
            clip_id=clip.pk,
            clip_uri=clip.uri,
            kind="published",
            remote=True,
        )


# --- the sweep: shown clips asked about again ------------------------------------------------


@dataclass
class Swept:
    """What one :func:`recheck_shown` batch did (the chore's counts)."""

    checked: int = 0
    hidden: int = 0
    unreachable: int = 0
    full: bool = False

    def counts(self) -> dict[str, int]:
        found = {
            "cameos_rechecked": self.checked,
            "cameo_clips_hidden": self.hidden,
            "cameo_owners_unreachable": self.unreachable,
        }
        return {k: v for k, v in found.items() if v}


async def _due_cameos(cutoff: datetime, limit: int) -> list[Cameo]:
    """Cameos of shown remote clips, owned by remote people, whose consent was last checked
    before *cutoff* (never first, then the oldest)."""
    base = Cameo.filter(
        clip__local=False,
        clip__deleted_at=None,
        consent_uri__not_isnull=True,
        account__domain__not_isnull=True,
    )
    found = list(await base.filter(checked_at=None).order_by("id").limit(limit))
    if len(found) < limit:
        found += (
            await base.filter(checked_at__lt=cutoff)
            .order_by("checked_at", "id")
            .limit(limit - len(found))
        )
    return found


async def _recheck_one(fed: Federation, cameo: Cameo, now: datetime) -> str:
    """Ask the owner's server about one shown cameo's consent: ``kept`` (it holds, or the
    answer proves nothing: an unsigned 404 or 410 is never a take-down), ``revoked`` (a
    signed revocation, recorded and applied as if delivered: with ``takeDown`` the clip is
    hidden, else it stays, as the owner chose), or ``unreachable``."""
    owner = await Account.get(pk=cameo.account_id)
    clip = await Clip.get(pk=cameo.clip_id)
    assert cameo.consent_uri is not None
    try:
        key = _owner_key(owner)
        status, doc = await _served(fed, cameo.consent_uri)
    except FetchError as exc:
        log.info("%s: the owner's server cannot answer now (%s)", cameo.consent_uri, exc)
        return "unreachable"
    except ConsentError as exc:
        log.info("%s: not asked again (%s)", cameo.consent_uri, exc.reason)
        return "kept"
    if status not in (404, 410):
        return "kept"
    reason = await _gone(owner, key, cameo.consent_uri, None, doc, now)
    if not reason.startswith("the consent was revoked"):
        log.warning("%s: %s (%s); the clip %s stays", cameo.consent_uri, reason, status, clip.uri)
        return "kept"
    log.info("%s: %s, learnt by the sweep", clip.uri, reason)
    return "revoked"


async def recheck_shown(
    fed: Federation, *, now: datetime, older_than: timedelta, limit: int = 50
) -> Swept:
    """One batch of the ``cameo_recheck`` chore: the consents of shown remote clips with
    cameos, last verified more than *older_than* ago (oldest first, at most *limit*), asked
    about again at their owners' servers (:func:`_recheck_one`), so that a revocation that
    never reached this server (it was not a grantee, a host or an audience of the owner)
    is learnt: a ``410`` carrying the owner's signed revocation is recorded and applied as
    a delivered one (:func:`record_revocation`; with ``takeDown`` the clip is hidden, the
    reason kept in a :class:`CameoCheck` ``hidden``). A clip whose owner's server cannot be
    reached stays and is asked again in an hour."""
    done = Swept()
    cameos = await _due_cameos(now - older_than, limit)
    done.full = len(cameos) >= limit
    retry = min(older_than, timedelta(hours=1))
    for cameo in cameos:
        verdict = await _recheck_one(fed, cameo, now)
        checked_at = now - older_than + retry if verdict == "unreachable" else now
        await Cameo.filter(pk=cameo.pk).update(checked_at=checked_at)
        done.checked += 1
        if verdict == "unreachable":
            done.unreachable += 1
        elif (
            verdict == "revoked"
            and await Clip.filter(pk=cameo.clip_id, deleted_at__not_isnull=True).exists()
        ):
            done.hidden += 1
    return done


# --- revocations: sending -----------------------------------------------------------------


def likeness_id(owner_uri: str) -> str:
    """What a ``Delete`` revoking a whole likeness names as its object (not the actor's id:
    a ``Delete`` of the actor would read as the account's deletion everywhere)."""
    return f"{owner_uri}#likeness"


def revocation_activity(revocation: dict[str, Any], to: Sequence[str] = ()) -> dict[str, Any]:
    """``Delete{actor: owner, object: the revoked grant's id (or the likeness), instrument:
    the signed LikenessRevocation}``: its id derives from the revocation's."""
    parsed = consent.parse_revocation(revocation)
    target = likeness_id(parsed.owner) if parsed.whole_likeness else parsed.object
    return objects.activity(
        "Delete",
        f"{parsed.id}#delete",
        parsed.owner,
        target,
        to=list(to),
        instrument=revocation,
    )


async def _revocation_inboxes(
    owner: Account, grant_ids: Sequence[int], conn: BaseDBAsyncClient
) -> list[str]:
    grants = await LikenessGrant.filter(pk__in=list(grant_ids)).using_db(conn)
    uris = [g.uri for g in grants if g.uri]
    people = {g.grantee_id for g in grants}
    clips = await Clip.filter(cameos__consent_uri__in=uris).using_db(conn) if uris else []
    people |= {c.account_id for c in clips}
    found: dict[str, None] = {}
    for account in await Account.filter(pk__in=list(people), domain__not_isnull=True).using_db(
        conn
    ):
        inbox = account.shared_inbox_uri or account.inbox_uri
        if inbox:
            found.setdefault(inbox, None)
    created = [f"{c.uri}/activity" for c in clips if c.local]
    if created:
        sent: list[Any] = await (
            Delivery.filter(activity_id__in=created)
            .using_db(conn)
            .values_list("inbox_url", flat=True)
        )
        for url in sent:
            found.setdefault(str(url), None)
    return list(found)


async def on_event(event: Event, conn: BaseDBAsyncClient) -> int:
    """The outbox effect of ``likeness.revoked``: the signed revocation, as a ``Delete``, to
    every instance that holds the grant or a clip using it. Returns the deliveries written."""
    if event.kind != "likeness.revoked":
        return 0
    owner = await Account.filter(pk=event.actor_id).using_db(conn).first()
    revocation = event.data.get("revocation")
    if owner is None or not owner.local or not isinstance(revocation, dict):
        return 0
    grant_ids = [int(i) for i in event.data.get("grant_ids", []) if isinstance(i, int)]
    targets = await _revocation_inboxes(owner, grant_ids, conn)
    if not targets:
        return 0
    activity = revocation_activity(revocation)
    now = utcnow()
    await Delivery.bulk_create(
        [
            Delivery(
                sender_id=owner.pk,
                inbox_url=inbox,
                host=domain_of(inbox),
                activity_id=activity["id"],
                payload=activity,
                state=DELIVERY_GRAPH.initial,
                state_changed_at=now,
                next_attempt_at=now,
                created_at=now,
            )
            for inbox in targets
        ],
        using_db=conn,
    )
    log.info("revocation %s: %d deliveries", revocation.get("id"), len(targets))
    return len(targets)


# --- revocations: receiving ---------------------------------------------------------------


def carries_revocation(activity: dict[str, Any]) -> bool:
    """Whether a ``Delete`` carries a ``LikenessRevocation`` as its instrument."""
    instrument = activity.get("instrument")
    if not isinstance(instrument, dict):
        return False
    kinds = instrument.get("type")
    return consent.REVOCATION_TYPE in (kinds if isinstance(kinds, list) else [kinds])


async def revocation_received(fed: Federation, actor: Account, activity: dict[str, Any]) -> str:
    """Apply the revocation a ``Delete`` from *actor* carries; what happened, as a sentence.
    A forged one (bad proof, another owner, a malformed object) raises :class:`Ignored`
    and is logged; a replay (its id seen here) changes nothing."""
    doc = activity["instrument"]
    try:
        if not actor.ed25519_public_multibase:
            raise ConsentError(f"{actor.uri} has no Ed25519 key")
        key = public_key_from_multibase(actor.ed25519_public_multibase)
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise ConsentError(f"{actor.uri} has no Ed25519 key")
        rev = consent.verify_revocation(doc, key, owner=actor.uri, now=utcnow())
    except ConsentError as exc:
        log.warning("revocation from %s refused: %s", actor.uri, exc.reason)
        raise Ignored(f"revocation refused: {exc.reason}") from exc
    return await record_revocation(actor, rev, doc)


async def record_revocation(owner: Account, rev: consent.Revocation, doc: dict[str, Any]) -> str:
    """Record the verified revocation *rev* (signed by *owner*, the document *doc*) and
    apply it, once: a replay (its id seen here) changes nothing. Whether it came in a
    ``Delete`` or from the owner's server answering 410 at a grant's id is all one."""
    actor = owner
    try:
        await ReceivedRevocation.create(
            uri=rev.id,
            owner_uri=rev.owner,
            object_uri=rev.object,
            published=rev.published,
            take_down=rev.take_down,
            document=doc,
        )
    except IntegrityError:
        log.info("revocation %s seen already (a replay): nothing changes", rev.id)
        return f"revocation {rev.id} seen already"
    return await _apply(actor, rev, doc)


async def _apply(owner: Account, rev: consent.Revocation, doc: dict[str, Any]) -> str:
    from fedisora.services.likeness import cancel_grant_jobs
    from fedisora.services.posts import delete_clip

    now = utcnow()
    revoked: list[int] = []
    for row in await LikenessGrant.filter(owner_id=owner.pk, revoked_at=None):
        try:
            grant = consent.parse_grant(row.document) if row.document else None
        except ConsentError:
            grant = None
        if (grant is not None and consent.revokes(rev, grant)) or row.uri == rev.object:
            revoked.append(row.pk)
    if revoked:
        await LikenessGrant.filter(pk__in=revoked).update(
            revoked_at=now, take_down=rev.take_down, revocation=doc, revocation_uri=rev.id
        )
        await cancel_grant_jobs(revoked, owner)
    removed = 0
    if rev.take_down:
        cameos = Cameo.filter(account_id=owner.pk)
        if rev.whole_likeness:
            cameos = cameos.filter(created_at__lte=rev.published + integrity.DEFAULT_MAX_SKEW)
        else:
            cameos = cameos.filter(consent_uri=rev.object)
        clip_ids = list(await cameos.values_list("clip_id", flat=True))
        for clip in await Clip.filter(pk__in=clip_ids, deleted_at=None):
            author = await Account.get(pk=clip.account_id)
            await delete_clip(author, clip, as_admin=not clip.local)
            removed += 1
            if not clip.local:  # hosted elsewhere: hidden here, the reason kept
                await CameoCheck.create(
                    state="checked",
                    clip_uri=clip.uri,
                    author_uri=author.uri,
                    consent_uris=[rev.object],
                    outcome="hidden",
                    reason=f"the consent was revoked with a take-down ({rev.id})",
                )
    log.info(
        "revocation %s by %s: %d grants revoked, %d clips taken down",
        rev.id,
        owner.uri,
        len(revoked),
        removed,
    )
    return f"revocation {rev.id}: {len(revoked)} grants, {removed} clips"
