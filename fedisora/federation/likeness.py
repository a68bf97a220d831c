"""Likeness consent across instances, the grant side (issue 14): cameo requests to a remote
owner, the signed grant that answers them, the owner's reference stills fetched for one
render job, and a notice to the owner on every use. Wire shapes: ``docs/fep-likeness-consent.md``.

The grantee's instance (the requester's):

- :func:`send_request` stores the request and sends a ``CameoRequest`` to the owner's inbox
  (through the outbox: :func:`emit_activity`, event ``likeness.federate``);
- :func:`answered` takes the owner's ``Accept{result: LikenessAuthorization}`` or ``Reject``
  (ingest's Accept/Reject ask it first), and :func:`on_offer` a grant the owner made ahead
  of any request (``Offer{object: LikenessAuthorization, target: grantee}``);
  :func:`store_grant` verifies the grant by itself
  (the owner's Ed25519 key from the owner's actor ``assertionMethod``, the grantee, the
  expiry) and stores it as a remote :class:`~fedisora.models.LikenessGrant`, or refuses it
  with an audit row (:class:`~fedisora.models.ConsentCheck`, stage ``grant``);
- :func:`fetch_references` (the render worker, through
  :func:`fedisora.services.likeness.check_consent`) fetches the owner's stills for one job,
  signed by the instance actor, into a job folder that :func:`discard_references` deletes;
- :func:`tell_use` sends a ``LikenessUse`` for each use of a remote owner's likeness.

The owner's instance:

- :func:`on_cameo_request` answers a ``CameoRequest`` with the local policy
  (:func:`fedisora.services.likeness.request_use`, the same rules as a local request): an
  ``Accept`` carrying the signed grant at once, a ``Reject`` naming the reason, or later,
  once the owner approves or rejects it (:func:`answer_request`);
- :func:`serve_references` serves the stills only to a signed request from the grantee's
  instance naming a valid grant (checked by :func:`~fedisora.services.likeness.check_consent`,
  which writes the audit row);
- :func:`on_likeness_use` records a remote use and notifies the owner;
- :func:`offer_grant` sends a grant the owner made ahead of any request
  (:func:`fedisora.services.likeness.grant`) to the remote grantee's inbox, durably.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from tortoise.backends.base.client import BaseDBAsyncClient

from activitypub import consent, integrity, objects
from activitypub.errors import ConsentError, ProofError, SignatureError
from fedisora.config import Settings
from fedisora.federation.cameo_clips import revoked_here
from fedisora.federation.context import Federation, get_federation
from fedisora.federation.http import FetchError
from fedisora.federation.outcomes import Ignored
from fedisora.federation.verify import signed_request, verify_signer
from fedisora.models import (
    Account,
    ConsentCheck,
    LikenessGrant,
    LikenessRequest,
    LikenessUse,
    NotificationType,
    utcnow,
)

__all__ = [
    "EVENT",
    "REQUEST_TYPE",
    "USE_KINDS",
    "USE_TYPE",
    "CameoRequestIn",
    "UseNotice",
    "answer_activity",
    "answer_request",
    "answered",
    "cameo_request",
    "discard_references",
    "emit_activity",
    "fetch_references",
    "grant_offer",
    "likeness_use",
    "offer_grant",
    "on_cameo_request",
    "on_likeness_use",
    "on_offer",
    "outbound",
    "owner_key",
    "parse_cameo_request",
    "parse_likeness_use",
    "references_dir",
    "references_url",
    "routes",
    "send_request",
    "serve_references",
    "store_grant",
    "tell_use",
]

log = logging.getLogger("fedisora.federation")

REQUEST_TYPE = "CameoRequest"
USE_TYPE = "LikenessUse"
#: The outbox event whose data carries a prepared activity and its recipients' account ids.
EVENT = "likeness.federate"
USE_KINDS = ("requested", "draft", "published", "remixed", "refused")
MAX_REFERENCES = 5
MAX_SUMMARY = 500


# --- pure: building and reading the activities -----------------------------------------------


def cameo_request(
    request_id: str, requester: str, owner: str, *, accept_restrictions: bool
) -> dict[str, Any]:
    """A ``CameoRequest``: *requester* asks *owner* for the use of their likeness.
    ``acceptRestrictions`` says whether the requester accepts the owner's restrictions."""
    return objects.activity(
        REQUEST_TYPE,
        request_id,
        requester,
        owner,
        to=[owner],
        acceptRestrictions=accept_restrictions,
    )


def answer_activity(
    kind: str,
    answer_id: str,
    owner: str,
    request: dict[str, Any],
    *,
    grant: dict[str, Any] | None = None,
    summary: str = "",
) -> dict[str, Any]:
    """The owner's ``Accept`` (with ``result``: the signed grant, embedded) or ``Reject``
    (with ``summary``: why, e.g. the restrictions to accept first) of a ``CameoRequest``."""
    if kind not in ("Accept", "Reject"):
        raise ValueError(f"an answer is an Accept or a Reject, not {kind}")
    extra: dict[str, Any] = {}
    if grant is not None:
        extra["result"] = grant
    if summary:
        extra["summary"] = summary[:MAX_SUMMARY]
    return objects.activity(kind, answer_id, owner, request, to=[request["actor"]], **extra)


def likeness_use(
    use_id: str,
    user: str,
    owner: str,
    *,
    grant: str,
    kind: str,
    clip: str | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """A ``LikenessUse``: *user* used (or was refused) *owner*'s likeness under *grant*;
    ``summary`` is the kind of use, ``result`` the clip when there is one, ``content`` the
    reason of a refusal."""
    if kind not in USE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(USE_KINDS)}")
    extra: dict[str, Any] = {"instrument": grant, "summary": kind}
    if clip:
        extra["result"] = clip
    if reason:
        extra["content"] = reason[:MAX_SUMMARY]
    return objects.activity(USE_TYPE, use_id, user, owner, to=[owner], **extra)


def grant_offer(owner: str, grant: dict[str, Any]) -> dict[str, Any]:
    """``Offer{actor: owner, object: the signed grant (embedded), target: the grantee}``: a
    grant the owner made ahead of any request, sent to the grantee. Its id derives from the
    grant's (the same grant offered again is the same activity)."""
    parsed = consent.parse_grant(grant)
    return objects.activity(
        "Offer",
        f"{parsed.id}#offer",
        owner,
        grant,
        to=[parsed.grantee],
        target=parsed.grantee,
    )


def is_grant_offer(activity: dict[str, Any]) -> bool:
    """Whether an ``Offer`` offers a ``LikenessAuthorization`` (ingest asks this)."""
    obj = activity.get("object")
    kinds = obj.get("type") if isinstance(obj, dict) else None
    return consent.GRANT_TYPE in (kinds if isinstance(kinds, list) else [kinds])


@dataclass(frozen=True, slots=True)
class CameoRequestIn:
    id: str
    actor: str
    owner: str
    accept_restrictions: bool


@dataclass(frozen=True, slots=True)
class UseNotice:
    id: str
    actor: str
    owner: str
    grant: str
    kind: str
    clip: str | None
    reason: str


def _same_origin_id(activity: Any, what: str) -> tuple[str, str]:
    if not isinstance(activity, dict):
        raise ConsentError(f"a {what} is a JSON object")
    activity_id = objects.id_of(activity.get("id"))
    actor = objects.id_of(activity.get("actor"))
    if not activity_id or not actor:
        raise ConsentError(f"a {what} needs an id and an actor")
    if not objects.same_origin(activity_id, actor):
        raise ConsentError(f"the {what}'s id is not on its actor's server")
    return activity_id, actor


def parse_cameo_request(activity: Any) -> CameoRequestIn:
    """Read a ``CameoRequest`` (raises :class:`ConsentError` for a malformed one)."""
    activity_id, actor = _same_origin_id(activity, REQUEST_TYPE)
    if activity.get("type") != REQUEST_TYPE:
        raise ConsentError(f"not a {REQUEST_TYPE}")
    owner = objects.id_of(activity.get("object"))
    if not owner:
        raise ConsentError("a CameoRequest names the owner as its object")
    accept = activity.get("acceptRestrictions", False)
    if not isinstance(accept, bool):
        raise ConsentError("acceptRestrictions must be true or false")
    return CameoRequestIn(activity_id, actor, owner, accept)


def parse_likeness_use(activity: Any) -> UseNotice:
    """Read a ``LikenessUse`` (raises :class:`ConsentError` for a malformed one)."""
    activity_id, actor = _same_origin_id(activity, USE_TYPE)
    if activity.get("type") != USE_TYPE:
        raise ConsentError(f"not a {USE_TYPE}")
    owner = objects.id_of(activity.get("object"))
    grant = objects.id_of(activity.get("instrument"))
    if not owner or not grant:
        raise ConsentError("a LikenessUse names the owner (object) and the grant (instrument)")
    kind = activity.get("summary")
    if kind not in USE_KINDS:
        raise ConsentError(f"summary must be one of {', '.join(USE_KINDS)}")
    clip = objects.id_of(activity.get("result")) if activity.get("result") is not None else None
    if clip is not None and not objects.same_origin(clip, actor):
        raise ConsentError("the clip of a LikenessUse is not on its actor's server")
    reason = activity.get("content", "")
    if not isinstance(reason, str):
        raise ConsentError("content must be text")
    return UseNotice(activity_id, actor, owner, grant, kind, clip, reason[:MAX_SUMMARY])


def references_url(grant_uri: str, index: int | None = None) -> str:
    """Where the owner's instance serves the stills of a grant (the list, or one still)."""
    return f"{grant_uri}/references" + ("" if index is None else f"/{index}")


# --- the outbox ---------------------------------------------------------------------------


async def emit_activity(
    conn: BaseDBAsyncClient, sender: Account, activity: dict[str, Any], to: list[Account]
) -> None:
    """Send *activity* from the local *sender* to *to* through the outbox, in *conn* (an
    :func:`fedisora.services.events.transaction`)."""
    from fedisora.services import events

    await events.emit(conn, EVENT, sender.pk, activity=activity, to=[a.pk for a in to])


async def outbound(
    actor: Account, data: dict[str, Any]
) -> list[tuple[dict[str, Any], list[Account]]]:
    """The delivery builder of :data:`EVENT` (see :mod:`fedisora.federation.delivery`)."""
    recipients = await Account.filter(
        pk__in=[int(i) for i in data.get("to") or ()],
        domain__not_isnull=True,
        suspended_at=None,
        origin_suspended_at=None,
    )
    activity = data.get("activity")
    if not isinstance(activity, dict) or not recipients:
        return []
    return [(activity, list(recipients))]


# --- the grantee's side: asking, storing the grant ----------------------------------------


async def send_request(
    requester: Account, owner: Account, *, accept_restrictions: bool
) -> LikenessRequest:
    """Ask the remote *owner* for their likeness: a pending request here, a ``CameoRequest``
    to their inbox. A pending request to the same owner is sent again (with the new
    ``acceptRestrictions``) rather than doubled."""
    from fedisora import urls
    from fedisora.errors import Invalid
    from fedisora.services import events

    if not requester.local or owner.local:
        raise Invalid("a federated likeness request goes from a local account to a remote one")
    async with events.transaction() as conn:
        row = (
            await LikenessRequest.filter(
                requester_id=requester.pk, owner_id=owner.pk, state="pending"
            )
            .using_db(conn)
            .first()
        )
        if row is None:
            row = await LikenessRequest.create(
                requester_id=requester.pk, owner_id=owner.pk, created_at=utcnow(), using_db=conn
            )
        # A new id for each sending (a request sent again, now accepting restrictions,
        # must not be taken for a duplicate delivery).
        uri = f"{urls.current().base}/likeness/requests/{row.pk}/{secrets.token_hex(4)}"
        await LikenessRequest.filter(pk=row.pk).using_db(conn).update(uri=uri)
        activity = cameo_request(
            uri, requester.uri, owner.uri, accept_restrictions=accept_restrictions
        )
        await emit_activity(conn, requester, activity, [owner])
    return await LikenessRequest.get(pk=row.pk)


async def owner_key(fed: Federation, owner_uri: str, key_id: str) -> ed25519.Ed25519PublicKey:
    """The Ed25519 key *key_id* of the owner, from their actor document as their server
    serves it now (``assertionMethod``). Raises :class:`ConsentError`."""
    if key_id.split("#", 1)[0] != owner_uri:
        raise ConsentError(f"the key {key_id} is not in the owner's actor document ({owner_uri})")
    try:
        _, doc = await fed.client.get_json(owner_uri, auth=await fed.instance_auth())
    except FetchError as exc:
        raise ConsentError(f"cannot fetch the owner's actor {owner_uri}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("id") != owner_uri:
        raise ConsentError(f"{owner_uri} did not serve its own actor document")
    try:
        return integrity.assertion_method_key(doc, key_id)
    except ProofError as exc:
        raise ConsentError(exc.reason) from exc


def _proof_key_id(doc: Any) -> str:
    proof = doc.get("proof") if isinstance(doc, dict) else None
    method = proof.get("verificationMethod") if isinstance(proof, dict) else None
    if not isinstance(method, str) or not method:
        raise ConsentError("the grant has no proof naming a verificationMethod")
    return method


async def _audit(
    requester: Account,
    owner: Account,
    *,
    stage: str,
    allowed: bool,
    reason: str,
    grant_id: int | None = None,
    job_id: int | None = None,
) -> None:
    await ConsentCheck.create(
        requester_id=requester.pk,
        owner_id=owner.pk,
        grant_id=grant_id,
        render_job_id=job_id,
        stage=stage,
        allowed=allowed,
        reason=reason[:MAX_SUMMARY],
    )


async def store_grant(
    fed: Federation,
    requester: Account,
    owner: Account,
    doc: Any,
    *,
    now: datetime | None = None,
) -> LikenessGrant:
    """Verify *doc*, a grant the remote *owner* sent the local *requester*, and store it.

    Checked: its shape, a proof by the owner's key as the owner's actor lists it in
    ``assertionMethod`` now, the grantee being *requester*, not expired (nor published in
    the future), and ``maxUses`` none or 1 (a single-use grant serves one render job here,
    as the owner's own single-use grants do). A refused grant is audited (stage ``grant``),
    not stored, and raises :class:`ConsentError` with the reason."""
    now = now or utcnow()
    try:
        if owner.local or not requester.local:
            raise ConsentError("a received grant is from a remote owner to a local account")
        if not isinstance(doc, dict):
            raise ConsentError("the grant is not a JSON object")
        key_id = _proof_key_id(doc)
        key = await owner_key(fed, owner.uri, key_id)
        grant = consent.verify_grant(
            doc,
            key,
            owner=owner.uri,
            grantee=requester.uri,
            needs_publish=False,
            now=now,
            key_id=key_id,
        )
        revoked = await revoked_here(grant, owner)  # a revocation may have come first
        if revoked is not None:
            raise ConsentError(revoked)
        if grant.max_uses not in (None, 1):  # the one limit the render queue enforces
            raise ConsentError(
                f"the grant is for {grant.max_uses} uses; this server honours maxUses 1 only"
            )
    except ConsentError as exc:
        log.info("refused a likeness grant from %s: %s", owner.uri, exc.reason)
        await _audit(requester, owner, stage="grant", allowed=False, reason=exc.reason)
        raise
    existing = await LikenessGrant.get_or_none(uri=grant.id)
    values: dict[str, Any] = {
        "single_use": grant.single_use,
        "scope": grant.scope,
        "restrictions_digest": grant.restrictions_digest,
        "expires_at": grant.expires,
        "document": doc,
    }
    if existing is not None:
        if existing.owner_id != owner.pk or existing.grantee_id != requester.pk:
            raise ConsentError(f"{grant.id} is another grant's id here")
        await LikenessGrant.filter(pk=existing.pk).update(**values)
        row = await LikenessGrant.get(pk=existing.pk)
    else:
        row = await LikenessGrant.create(
            owner_id=owner.pk,
            grantee_id=requester.pk,
            basis="approved",
            remote=True,
            uri=grant.id,
            created_at=now,
            **values,
        )
    await _audit(
        requester, owner, stage="grant", allowed=True, reason="grant verified", grant_id=row.pk
    )
    return row


async def _our_request(actor: Account, inner: Any) -> LikenessRequest | None:
    """The local request *inner* answers (an id, or the embedded request), when it is one."""
    from fedisora import urls

    request_id = objects.id_of(inner)
    if not request_id or not request_id.startswith(f"{urls.current().base}/likeness/requests/"):
        return None
    row = await LikenessRequest.get_or_none(uri=request_id)
    if row is None:
        return None
    if row.owner_id != actor.pk:
        raise Ignored("a likeness request is answered by the owner it asked")
    return row


async def answered(fed: Federation, actor: Account, activity: dict[str, Any]) -> bool:
    """ingest's Accept and Reject ask this first: when *activity* answers one of our
    ``CameoRequest``\\ s it is handled here (True), else it is not ours (False)."""
    row = await _our_request(actor, activity.get("object"))
    if row is None:
        return False
    if row.state != "pending":
        raise Ignored(f"this likeness request is {row.state} already")
    requester = await Account.get(pk=row.requester_id)
    if activity.get("type") == "Reject":
        await LikenessRequest.filter(pk=row.pk, state="pending").update(
            state="rejected", answered_at=utcnow()
        )
        reason = activity.get("summary") if isinstance(activity.get("summary"), str) else ""
        await _audit(
            requester,
            actor,
            stage="request",
            allowed=False,
            reason=f"the owner refused: {reason}" if reason else "the owner refused",
        )
        return True
    doc = activity.get("result")
    if isinstance(doc, str):  # by reference: fetched from the owner's server
        if not objects.same_origin(doc, actor.uri):
            raise Ignored("the grant is not on the owner's server")
        try:
            _, doc = await fed.client.get_json(doc, auth=await fed.instance_auth())
        except FetchError as exc:
            if exc.status in (404, 410):
                raise Ignored(f"the grant {activity.get('result')} is gone") from exc
            raise
    try:
        grant = await store_grant(fed, requester, actor, doc)
    except ConsentError as exc:
        raise Ignored(f"refused grant: {exc.reason}") from exc
    await LikenessRequest.filter(pk=row.pk, state="pending").update(
        state="approved",
        answered_at=utcnow(),
        grant_id=grant.pk,
        accepted_restrictions=grant.restrictions_digest,
    )
    return True


async def on_offer(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    """A remote owner sent a local account a grant ahead of any request (``Offer``): it is
    verified and stored as an answered request's grant is (:func:`store_grant`), so the
    grantee may use it without asking. Refused (:class:`Ignored`, with the reason; a grant
    that fails verification is audited too): an Offer of anything else, a grant for an
    account that is not local or not the Offer's ``target``, a grant not the actor's."""
    if not is_grant_offer(activity):
        raise Ignored("an Offer of something other than a likeness grant")
    doc = activity["object"]
    try:
        parsed = consent.parse_grant(doc)
    except ConsentError as exc:
        raise Ignored(f"refused grant: {exc.reason}") from exc
    target = objects.id_of(activity.get("target"))
    if target is not None and target != parsed.grantee:
        raise Ignored(f"the Offer is for {target}, the grant for {parsed.grantee}")
    grantee = await Account.get_or_none(uri=parsed.grantee, domain=None)
    if grantee is None or grantee.suspended_at is not None:
        raise Ignored(f"the grant is for {parsed.grantee}, not an account of this server")
    try:
        await store_grant(fed, grantee, actor, doc)
    except ConsentError as exc:
        raise Ignored(f"refused grant: {exc.reason}") from exc


# --- the owner's side: answering ------------------------------------------------------------


async def offer_grant(
    conn: BaseDBAsyncClient, row: LikenessGrant, owner: Account, grantee: Account
) -> None:
    """Send the signed grant *row*, made ahead of any request, to the remote *grantee*
    (:func:`grant_offer`), through the outbox in *conn* (the grant's own transaction)."""
    from fedisora.errors import Invalid

    if not owner.local or grantee.local:
        raise Invalid("a grant is offered by a local owner to a remote account")
    if row.document is None:
        raise Invalid("this account has no Ed25519 key: it cannot sign a grant")
    await emit_activity(conn, owner, grant_offer(owner.uri, row.document), [grantee])


def _request_ref(row: LikenessRequest, requester: Account, owner: Account) -> dict[str, Any]:
    return {"id": row.uri, "type": REQUEST_TYPE, "actor": requester.uri, "object": owner.uri}


async def on_cameo_request(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    """A remote account asks a local owner: the local policy answers (the same code as a
    local request), at once or once the owner decides."""
    from fedisora.errors import FedisoraError
    from fedisora.services import likeness

    try:
        parsed = parse_cameo_request(activity)
    except ConsentError as exc:
        raise Ignored(exc.reason) from exc
    if parsed.actor != actor.uri:
        raise Ignored("a CameoRequest is its actor's")
    owner = await Account.get_or_none(uri=parsed.owner, domain=None)
    if owner is None or owner.suspended_at is not None:
        raise Ignored(f"{parsed.owner} is not a local actor")
    existing = await LikenessRequest.get_or_none(uri=parsed.id, owner_id=owner.pk)
    if existing is not None and existing.state != "pending":
        await answer_request(existing)  # a retry from the requester: the same answer again
        return
    try:
        row = await likeness.request_use(
            actor, owner, accept_restrictions=parsed.accept_restrictions, uri=parsed.id
        )
    except FedisoraError as exc:
        ref = {"id": parsed.id, "type": REQUEST_TYPE, "actor": actor.uri, "object": owner.uri}
        answer = answer_activity(
            "Reject", _answer_id(owner, parsed.id), owner.uri, ref, summary=exc.message
        )
        await _send(owner, answer, actor)
        return
    if row.state != "pending":
        await answer_request(row)


def _answer_id(owner: Account, request_uri: str) -> str:
    import hashlib

    return f"{owner.uri}#likeness_answers/{hashlib.sha256(request_uri.encode()).hexdigest()[:32]}"


async def _send(owner: Account, activity: dict[str, Any], to: Account) -> None:
    from fedisora.services import events

    async with events.transaction() as conn:
        await emit_activity(conn, owner, activity, [to])


async def answer_request(row: LikenessRequest) -> None:
    """Tell a remote requester the answer to their request (approved: the signed grant;
    rejected: a Reject). Called when the policy answered at once and when the owner approves
    or rejects (:func:`fedisora.services.likeness.approve_request`, ``reject_request``)."""
    if row.uri is None or row.state == "pending":
        return
    requester = await Account.get(pk=row.requester_id)
    if requester.local:
        return
    owner = await Account.get(pk=row.owner_id)
    ref = _request_ref(row, requester, owner)
    grant = await LikenessGrant.get_or_none(pk=row.grant_id) if row.grant_id else None
    if row.state == "approved" and grant is not None and grant.document is not None:
        answer = answer_activity(
            "Accept", _answer_id(owner, row.uri), owner.uri, ref, grant=grant.document
        )
    else:
        answer = answer_activity(
            "Reject", _answer_id(owner, row.uri), owner.uri, ref, summary="the owner declined"
        )
    await _send(owner, answer, requester)


# --- reference stills -----------------------------------------------------------------------


def references_dir(settings: Settings, job_id: int) -> Path:
    """The folder of one render job's fetched stills (private; deleted after the job)."""
    from fedisora.services.likeness import private_dir

    return private_dir(settings) / "remote" / str(int(job_id))


def discard_references(settings: Settings, job_id: int) -> None:
    """Delete a job's fetched stills (after it rendered, failed or was cancelled)."""
    shutil.rmtree(references_dir(settings, job_id), ignore_errors=True)


async def fetch_references(
    fed: Federation, settings: Settings, grant: LikenessGrant, *, job_id: int
) -> tuple[str, ...]:
    """Fetch the owner's stills for *grant* (remote) for the render job *job_id*: signed by
    the instance actor, naming the grant in the URL. Each still is decoded and re-encoded
    before it is kept. Audited here (stage ``fetch``) either way; raises
    :class:`ConsentError` when the owner's instance refuses or the stills are unusable."""
    from fedisora.services.likeness import normalise_reference

    requester = await Account.get(pk=grant.grantee_id)
    owner = await Account.get(pk=grant.owner_id)
    try:
        if not grant.remote or not grant.uri:
            raise ConsentError("only a remote grant's stills are fetched")
        auth = await fed.instance_auth()
        try:
            _, listing = await fed.client.get_json(
                references_url(grant.uri), auth=auth, accept="application/json"
            )
        except FetchError as exc:
            raise ConsentError(f"the owner's instance refused the stills: {exc}") from exc
        items = listing.get("orderedItems") if isinstance(listing, dict) else None
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_REFERENCES:
            raise ConsentError("the owner's instance listed no usable stills")
        folder = references_dir(settings, job_id)
        await asyncio.to_thread(shutil.rmtree, folder, True)
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        paths: list[str] = []
        for i, url in enumerate(items):
            if not isinstance(url, str) or not url.startswith(references_url(grant.uri) + "/"):
                raise ConsentError("a still is not under the grant's references")
            try:
                response, body = await fed.client.request(
                    "GET", url, auth=auth, headers={"Accept": "image/png"}
                )
            except FetchError as exc:
                raise ConsentError(f"cannot fetch a still: {exc}") from exc
            if response.status_code != 200:
                raise ConsentError(f"the owner's instance answered {response.status_code}")
            try:
                image = await asyncio.to_thread(normalise_reference, body, f"still {i}", face=False)
            except Exception as exc:
                raise ConsentError(f"still {i} is not a usable image: {exc}") from exc
            path = folder / f"reference-{i}.png"
            await asyncio.to_thread(image.save, path, "PNG")
            paths.append(str(path))
    except ConsentError as exc:
        discard_references(settings, job_id)
        await _audit(
            requester,
            owner,
            stage="fetch",
            allowed=False,
            reason=exc.reason,
            grant_id=grant.pk,
            job_id=job_id,
        )
        raise
    await _audit(
        requester,
        owner,
        stage="fetch",
        allowed=True,
        reason=f"fetched {len(paths)} reference stills for one render job",
        grant_id=grant.pk,
        job_id=job_id,
    )
    return tuple(paths)


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status)


async def _reference_access(request: Request) -> tuple[Any, JSONResponse | None]:
    """The (likeness, grant) a stills request may read, or the refusal to answer."""
    from fedisora.api.params import parse_id
    from fedisora.services import likeness

    grant_id = parse_id(request.path_params.get("id", ""))
    grant = await LikenessGrant.get_or_none(pk=grant_id, remote=False) if grant_id >= 0 else None
    if grant is None:
        return None, _refuse(404, "Record not found")
    if "signature" not in request.headers:
        return None, _refuse(401, "reference stills are served to signed requests only")
    fed = get_federation(request.app.state.settings)
    try:
        signer = await verify_signer(fed, signed_request(fed, request, b""))
    except SignatureError as exc:
        return None, _refuse(401, f"the request's signature is refused: {exc}")
    grantee = await Account.get(pk=grant.grantee_id)
    owner = await Account.get(pk=grant.owner_id)
    if grantee.local or not objects.same_origin(signer.uri, grantee.uri):
        why = "this consent is not for an account of the signing instance"
        await _audit(
            grantee,
            owner,
            stage="fetch",
            allowed=False,
            reason=f"{why} ({signer.uri})",
            grant_id=grant.pk,
        )
        return None, _refuse(403, why)
    if grant.revoked_at is not None:
        await _audit(
            grantee,
            owner,
            stage="fetch",
            allowed=False,
            reason="stills refused: the consent was revoked",
            grant_id=grant.pk,
        )
        return None, _refuse(410, "this consent was revoked")
    decision = await likeness.check_consent(grantee, owner, publish=False, stage="fetch")
    if not decision.allowed:
        return None, _refuse(403, decision.reason)
    if decision.grant is None or decision.grant.pk != grant.pk:
        return None, _refuse(403, "the named consent is not the one in force; ask again")
    return decision.likeness, None


async def serve_references(request: Request) -> Response:
    """``GET /likeness/grants/:id/references``: the list of stills; ``.../references/:n``:
    one still (PNG). Only for a request signed by the grantee's instance whose named grant
    is valid, unrevoked and covers that grantee; each answer is an audited check."""
    from fedisora.services.likeness import private_dir

    found, refusal = await _reference_access(request)
    if refusal is not None:
        return refusal
    files = list(found.reference_files)
    index = request.path_params.get("n")
    if index is None:
        from fedisora import urls

        base = f"{urls.current().base}/likeness/grants/{request.path_params['id']}/references"
        return JSONResponse(
            {
                "id": base,
                "type": "OrderedCollection",
                "totalItems": len(files),
                "orderedItems": [f"{base}/{i}" for i in range(len(files))],
            }
        )
    if not index.isdigit() or int(index) >= len(files):
        return _refuse(404, "Record not found")
    path = private_dir(request.app.state.settings) / files[int(index)]
    try:
        body = await asyncio.to_thread(path.read_bytes)
    except OSError:
        return _refuse(404, "Record not found")
    return Response(body, media_type="image/png", headers={"Cache-Control": "no-store"})


def routes() -> list[BaseRoute]:
    return [
        Route("/likeness/grants/{id}/references", serve_references),
        Route("/likeness/grants/{id}/references/{n}", serve_references),
    ]


# --- use notices ----------------------------------------------------------------------------


async def tell_use(
    use: LikenessUse, user: Account, owner: Account, grant: LikenessGrant | None
) -> None:
    """Send the remote *owner* a ``LikenessUse`` for *use* (by the local *user*). A use
    without a grant of theirs (nothing they consented to) is not sent."""
    from fedisora import urls
    from fedisora.services import events

    if owner.local or not user.local or grant is None or not grant.remote or not grant.uri:
        return
    uri = f"{urls.current().base}/likeness/uses/{use.pk}"
    activity = likeness_use(
        uri,
        user.uri,
        owner.uri,
        grant=grant.uri,
        kind=use.kind,
        clip=use.clip_uri,
        reason=use.reason,
    )
    async with events.transaction() as conn:
        await LikenessUse.filter(pk=use.pk).using_db(conn).update(uri=uri)
        await emit_activity(conn, user, activity, [owner])


async def on_likeness_use(fed: Federation, actor: Account, activity: dict[str, Any]) -> None:
    """A remote grantee used a local owner's likeness: recorded (``remote``) and told to the
    owner. Ignored unless the named grant is the owner's, to this actor."""
    from fedisora.services import events
    from fedisora.services.notify import notify

    try:
        notice = parse_likeness_use(activity)
    except ConsentError as exc:
        raise Ignored(exc.reason) from exc
    if notice.actor != actor.uri:
        raise Ignored("a LikenessUse is its actor's")
    owner = await Account.get_or_none(uri=notice.owner, domain=None)
    if owner is None:
        raise Ignored(f"{notice.owner} is not a local actor")
    grant = await LikenessGrant.get_or_none(uri=notice.grant, remote=False)
    if grant is None or grant.owner_id != owner.pk or grant.grantee_id != actor.pk:
        raise Ignored("the LikenessUse names no grant of this owner to its actor")
    if await LikenessUse.filter(uri=notice.id).exists():
        raise Ignored("this use was recorded already")
    # The clip itself may have come first (cameo_clips.record_uses): one use, not two.
    use = (
        await LikenessUse.get_or_none(
            owner_id=owner.pk, clip_uri=notice.clip, kind="published", uri=None
        )
        if notice.kind == "published" and notice.clip
        else None
    )
    async with events.transaction():  # the use and the owner's notice commit together
        if use is not None:
            await LikenessUse.filter(pk=use.pk).update(uri=notice.id, grant_id=grant.pk)
        else:
            use = await LikenessUse.create(
                owner_id=owner.pk,
                user_id=actor.pk,
                grant_id=grant.pk,
                clip_uri=notice.clip,
                kind=notice.kind,
                reason=notice.reason,
                remote=True,
                uri=notice.id,
            )
        await notify(
            owner,
            NotificationType.LIKENESS_USE,
            dedupe_key=f"likeness_use:{use.pk}",
            from_account=actor,
        )
