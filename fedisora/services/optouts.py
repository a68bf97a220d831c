"""The rights holders' opt-out registry: requests, their review, the signed published list and
subscriptions to other instances' lists.

- Anyone may ask (:func:`submit`, the ``/optout`` page and ``POST /api/fedisora/v1/optouts``,
  rate-limited per address as ``optout``) that renders never name them (``public_figure``)
  or their characters and works (``protected_work``); a contact (an e-mail address or a URL)
  is required, the evidence is kept as text and never fetched.
- Admins approve or reject each request (:func:`approve`, :func:`reject`) and may withdraw
  an approved one (:func:`remove`), on ``/admin/optouts`` or with ``fedisora optout`` (the
  audit log names the command line as the actor, :data:`~fedisora.services.audit.CLI`). An
  approved opt-out's terms are :class:`PolicyTerm` rows of source ``optout`` (``source_ref``
  ``optout:<id>``, note ``opted out by <who>``), so the prompt policy's one matcher refuses
  them and names the rule.
- The approved local opt-outs are published as a list signed by the instance actor
  (:func:`published_list`, :mod:`fedisora.policy.optout_list`), whose version grows with each
  approval and removal.
- Admins subscribe to other instances' lists (:func:`subscribe`), in ``review`` or ``auto``
  mode. The ``optout_lists`` chore (:func:`run_chore`) fetches each through the federation's
  peer client (SSRF guard, domain blocks), checks the proof with the issuer actor's Ed25519
  key, ignores versions not newer than the one applied, and applies the changes (auto) or
  keeps them for an admin (:func:`apply_pending`, :func:`discard_pending`). A bad signature
  or a malformed list is the subscription's ``last_error``; nothing is applied. An admin may
  fetch a list now (:func:`fetch_now`); the chore leaves a list whose fetch began less than
  :data:`REFETCH_AFTER` ago, and overlapping fetches of one list are decided one after the
  other on its locked row, each reporting what it found against the version applied when
  it began (:class:`FetchOutcome`).

Likeness owners are protected by consent whatever these lists say: nothing here touches it.
Every admin action and every applied change is written to the audit log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ed25519
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from activitypub import integrity
from activitypub.keys import load_private_key_pem, public_key_from_multibase
from fedisora import urls
from fedisora.boundary.peer_urls import check_peer_url
from fedisora.errors import Invalid, NotFound
from fedisora.models import (
    Account,
    OptOut,
    OptOutMode,
    OptOutPublication,
    OptOutState,
    OptOutSubscription,
    PolicyList,
    PolicySource,
    PolicyTerm,
    utcnow,
)
from fedisora.policy import optout_list
from fedisora.policy.matcher import LISTS, TermError, check_term, spelling_key
from fedisora.services import audit

if TYPE_CHECKING:
    from fedisora.config import Settings
    from fedisora.federation.context import Federation
    from fedisora.work.engine import WorkContext

__all__ = [
    "CHORE_BATCH",
    "KINDS",
    "LOCAL",
    "MAX_CONTACT",
    "MAX_EVIDENCE",
    "MAX_REASON",
    "MAX_TERMS",
    "MAX_URL",
    "MAX_WHO",
    "RATE",
    "REFETCH_AFTER",
    "SYNC_ACTOR",
    "FetchOutcome",
    "apply_pending",
    "approve",
    "change_summary",
    "discard_pending",
    "entry_id",
    "fetch_now",
    "fetch_subscription",
    "optouts",
    "pending_summary",
    "published_list",
    "reject",
    "remove",
    "run_chore",
    "set_mode",
    "submit",
    "subscribe",
    "subscription_at",
    "subscriptions",
    "unsubscribe",
]

log = logging.getLogger("fedisora.optouts")

LOCAL = "local"
RATE = "optout"
"""The rate limit (:mod:`fedisora.ratelimits`) of requests, per client address."""
SYNC_ACTOR = "optout-lists"
"""The audit log's actor of changes applied by the chore (subscriptions in ``auto`` mode)."""
MAX_WHO = optout_list.MAX_WHO_CHARS
MAX_TERMS = optout_list.MAX_TERMS
MAX_EVIDENCE = 5000
MAX_CONTACT = 500
MAX_REASON = 1000
MAX_URL = 1024
KINDS = {
    PolicyList.PUBLIC_FIGURE.value: "a public figure (a person)",
    PolicyList.PROTECTED_WORK.value: "a character or a work",
}

_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


# --------------------------------------------------------------------------- requests


def _text(value: str, name: str, limit: int) -> str:
    value = value.strip()
    if len(value) > limit:
        raise Invalid(f"{name} is {len(value)} characters long; at most {limit}")
    return value


def _contact(value: str) -> str:
    contact = _text(value, "the contact", MAX_CONTACT)
    if not contact:
        raise Invalid(
            "a contact is required: an e-mail address or a URL where the rights holder can "
            "be reached"
        )
    if _EMAIL.match(contact):
        return contact
    parts = urlsplit(contact)
    if parts.scheme in ("http", "https") and parts.hostname and " " not in contact:
        return contact
    raise Invalid("the contact must be an e-mail address or an http(s) URL")


def _kind(value: str) -> PolicyList:
    try:
        return PolicyList(value)
    except ValueError:
        raise Invalid(f"kind must be one of {', '.join(LISTS)}") from None


def _terms(raw: Iterable[str], who: str) -> list[str]:
    """The terms given (one per item, or one per line of an item), tidied and deduplicated;
    the rights holder's name when none is given."""
    found: list[str] = []
    keys: set[str] = set()
    for item in raw:
        for line in str(item).splitlines():
            if not line.strip():
                continue
            try:
                term = check_term(line)
            except TermError as exc:
                raise Invalid(f"the term “{line.strip()[:60]}”: {exc}") from None
            if spelling_key(term) not in keys:
                keys.add(spelling_key(term))
                found.append(term)
    if not found:
        try:
            found = [check_term(who)]
        except TermError as exc:
            raise Invalid(f"the name as a term: {exc}; give the terms to protect") from None
    if len(found) > MAX_TERMS:
        raise Invalid(f"{len(found)} terms given; at most {MAX_TERMS}")
    return found


async def submit(
    *, who: str, kind: str, terms: Iterable[str], evidence: str = "", contact: str = ""
) -> OptOut:
    """Record a rights holder's request (pending review). :class:`Invalid` names what is
    wrong: no contact, a field too long, an unknown kind, an unusable term."""
    name = " ".join(who.split())
    if not name:
        raise Invalid("who is required: the name of the rights holder")
    if len(name) > MAX_WHO:
        raise Invalid(f"who is {len(name)} characters long; at most {MAX_WHO}")
    kind_value = _kind(kind)
    reach = _contact(contact)
    evidence = _text(evidence, "the evidence", MAX_EVIDENCE)
    return await OptOut.create(
        who=name,
        kind=kind_value,
        terms=_terms(terms, name),
        evidence=evidence,
        contact=reach,
        state=OptOutState.PENDING,
        source=LOCAL,
    )


async def optouts(
    state: OptOutState | None = None, *, source: str | None = None, limit: int = 200
) -> list[OptOut]:
    """Opt-outs, newest first (of one state, of one source)."""
    query = OptOut.all()
    if state is not None:
        query = query.filter(state=state)
    if source is not None:
        query = query.filter(source=source)
    return list(await query.order_by("-id").limit(limit))


# --------------------------------------------------------------------------- review


def _ref(row: OptOut) -> str:
    return f"optout:{row.pk}"


async def _add_terms(row: OptOut) -> None:
    for term in row.terms:
        await PolicyTerm.create(
            list_name=row.kind,
            term=term,
            key=spelling_key(term),
            note=f"opted out by {row.who}"[:1000],
            source=PolicySource.OPTOUT,
            source_ref=_ref(row),
        )


async def _drop_terms(row: OptOut) -> None:
    await PolicyTerm.filter(source=PolicySource.OPTOUT, source_ref=_ref(row)).delete()


async def _bump_version(now: datetime) -> None:
    for _ in range(2):
        if await OptOutPublication.filter(pk=1).update(version=F("version") + 1, updated_at=now):
            return
        try:
            await OptOutPublication.create(id=1, version=1, updated_at=now)
            return
        except IntegrityError:  # another process made the row meanwhile: bump it
            continue


async def _get(optout_id: int) -> OptOut:
    row = await OptOut.get_or_none(pk=optout_id)
    if row is None:
        raise NotFound("no such opt-out")
    return row


def _account_id(by: audit.Actor) -> int | None:
    """The reviewer or creator recorded on a row: the acting account, none for the command
    line or the chore (the audit log names them)."""
    return by.pk if isinstance(by, Account) else None


def _label(row: OptOut) -> str:
    return audit.target("optout", row.pk, row.who)


async def approve(by: audit.Actor, optout_id: int) -> OptOut:
    """Approve a pending opt-out: its terms join the prompt policy, the published list gets
    a new version."""
    row = await _get(optout_id)
    if row.state != OptOutState.PENDING:
        raise Invalid(f"the opt-out is {row.state.value}, not pending")
    now = utcnow()
    async with in_transaction():
        claimed = await OptOut.filter(pk=row.pk, state=OptOutState.PENDING).update(
            state=OptOutState.APPROVED, reviewed_by_id=_account_id(by), reviewed_at=now, reason=""
        )
        if not claimed:
            raise Invalid("the opt-out was reviewed meanwhile")
        await _add_terms(row)
        if row.source == LOCAL:
            await _bump_version(now)
        await audit.record(by, "optout.approve", _label(row), "; ".join(row.terms))
    return await _get(row.pk)


def _reason(reason: str) -> str:
    reason = _text(reason, "the reason", MAX_REASON)
    if not reason:
        raise Invalid("give a reason (the rights holder may be told it)")
    return reason


async def reject(by: audit.Actor, optout_id: int, reason: str) -> OptOut:
    """Reject a pending opt-out, with *reason*."""
    why = _reason(reason)
    row = await _get(optout_id)
    if row.state != OptOutState.PENDING:
        raise Invalid(f"the opt-out is {row.state.value}, not pending")
    async with in_transaction():
        claimed = await OptOut.filter(pk=row.pk, state=OptOutState.PENDING).update(
            state=OptOutState.REJECTED,
            reviewed_by_id=_account_id(by),
            reviewed_at=utcnow(),
            reason=why,
        )
        if not claimed:
            raise Invalid("the opt-out was reviewed meanwhile")
        await audit.record(by, "optout.reject", _label(row), why)
    return await _get(row.pk)


async def remove(by: audit.Actor, optout_id: int, reason: str) -> OptOut:
    """Withdraw an approved local opt-out (it becomes rejected, with *reason*): its terms
    leave the policy, the published list gets a new version. An entry of a subscribed list
    leaves with that list (or by unsubscribing)."""
    why = _reason(reason)
    row = await _get(optout_id)
    if row.state != OptOutState.APPROVED:
        raise Invalid(f"the opt-out is {row.state.value}, not approved")
    if row.source != LOCAL:
        raise Invalid("this opt-out comes from a subscribed list: it leaves with that list")
    now = utcnow()
    async with in_transaction():
        claimed = await OptOut.filter(pk=row.pk, state=OptOutState.APPROVED).update(
            state=OptOutState.REJECTED, reviewed_by_id=_account_id(by), reviewed_at=now, reason=why
        )
        if not claimed:
            raise Invalid("the opt-out was changed meanwhile")
        await _drop_terms(row)
        await _bump_version(now)
        await audit.record(by, "optout.remove", _label(row), why)
    return await _get(row.pk)


# --------------------------------------------------------------------------- the published list


def entry_id(row: OptOut) -> str:
    """The id of a local opt-out in the published list."""
    return f"{urls.current().base}/api/fedisora/v1/optouts/list#{row.pk}"


def _entry(row: OptOut) -> optout_list.ListEntry:
    return optout_list.ListEntry(entry_id(row), row.who, row.kind.value, tuple(row.terms))


async def published_list() -> dict[str, Any]:
    """This instance's approved local opt-outs as a list signed by the instance actor."""
    from fedisora.services.accounts import create_instance_actor

    actor = await create_instance_actor()
    publication = await OptOutPublication.get_or_none(pk=1)
    version = publication.version if publication is not None else 0
    issued = publication.updated_at if publication is not None else actor.created_at
    rows = await OptOut.filter(state=OptOutState.APPROVED, source=LOCAL).order_by("id")
    document = optout_list.build_list(
        version=version, issued_at=issued, issuer=actor.uri, entries=(_entry(r) for r in rows)
    )
    if not actor.ed25519_private_pem:
        raise RuntimeError("the instance actor has no Ed25519 key")
    key = load_private_key_pem(actor.ed25519_private_pem)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return optout_list.sign_list(document, key, key_id=f"{actor.uri}#ed25519-key", created=issued)


# --------------------------------------------------------------------------- subscriptions


async def subscriptions() -> list[OptOutSubscription]:
    return list(await OptOutSubscription.all().order_by("id"))


def _mode(value: str) -> OptOutMode:
    try:
        return OptOutMode(value)
    except ValueError:
        raise Invalid("mode must be review or auto") from None


async def subscribe(
    by: audit.Actor, url: str, mode: str, *, insecure: bool = False
) -> OptOutSubscription:
    """Subscribe to the list at *url* (``https://``; ``http://`` too with *insecure*),
    fetched by the ``optout_lists`` chore."""
    url = check_peer_url(url, what="the list", insecure=insecure, max_length=MAX_URL)
    kind = _mode(mode)
    if await OptOutSubscription.filter(url=url).exists():
        raise Invalid("this list is subscribed already")
    try:
        row = await OptOutSubscription.create(url=url, mode=kind, created_by_id=_account_id(by))
    except IntegrityError:
        raise Invalid("this list is subscribed already") from None
    await audit.record(by, "optout.subscribe", audit.target("optout_list", row.pk, url), kind.value)
    from fedisora.work.housekeeping import ensure_chores

    await ensure_chores()  # a database older than the chore has no row
    return row


async def set_mode(by: audit.Actor, sub_id: int, mode: str) -> OptOutSubscription:
    """Switch a subscription between ``review`` and ``auto`` (from its next fetch on; a
    version waiting for review still waits)."""
    kind = _mode(mode)
    row = await _subscription(sub_id)
    await OptOutSubscription.filter(pk=row.pk).update(mode=kind)
    await audit.record(by, "optout.mode", audit.target("optout_list", row.pk, row.url), kind.value)
    return await _subscription(row.pk)


async def _subscription(sub_id: int) -> OptOutSubscription:
    row = await OptOutSubscription.get_or_none(pk=sub_id)
    if row is None:
        raise NotFound("no such subscription")
    return row


async def subscription_at(url: str) -> OptOutSubscription:
    """The subscription to the list at *url* (as it was subscribed, spaces around ignored)."""
    row = await OptOutSubscription.get_or_none(url=url.strip())
    if row is None:
        raise NotFound(f"no subscription to {url.strip()}")
    return row


async def unsubscribe(by: audit.Actor, sub_id: int) -> OptOutSubscription:
    """End a subscription: the entries it brought leave the policy."""
    row = await _subscription(sub_id)
    async with in_transaction():
        for entry in await OptOut.filter(source=row.url):
            await _drop_terms(entry)
        await OptOut.filter(source=row.url).delete()
        await OptOutSubscription.filter(pk=row.pk).delete()
        await audit.record(by, "optout.unsubscribe", audit.target("optout_list", row.pk, row.url))
    return row


def _applied(rows: Iterable[OptOut]) -> list[optout_list.ListEntry]:
    return [
        optout_list.ListEntry(r.remote_id, r.who, r.kind.value, tuple(r.terms))
        for r in rows
        if r.state == OptOutState.APPROVED
    ]


async def _apply(
    sub: OptOutSubscription,
    version: int,
    added: Sequence[optout_list.ListEntry],
    removed: Sequence[optout_list.ListEntry],
    by: audit.Actor,
    action: str,
) -> bool:
    """Apply a version's changes (in the caller's transaction), if the subscription still
    has the applied version *sub* was read with (False when another runner moved it on)."""
    claimed = await OptOutSubscription.filter(
        pk=sub.pk, applied_version=sub.applied_version
    ).update(applied_version=version, pending=None)
    if not claimed:
        return False
    now = utcnow()
    for entry in removed:
        for row in await OptOut.filter(source=sub.url, remote_id=entry.id):
            await _drop_terms(row)
            await OptOut.filter(pk=row.pk).delete()
    for entry in added:
        row = await OptOut.create(
            who=entry.who,
            kind=PolicyList(entry.kind),
            terms=list(entry.terms),
            contact=sub.url[:MAX_CONTACT],
            state=OptOutState.APPROVED,
            reviewed_by_id=_account_id(by),
            reviewed_at=now,
            reason=f"version {version} of {sub.url}"[:MAX_REASON],
            source=sub.url,
            remote_id=entry.id,
        )
        await _add_terms(row)
    detail = change_summary(version, added, removed)
    await audit.record(by, action, audit.target("optout_list", sub.pk, sub.url), detail)
    return True


def change_summary(
    version: int,
    added: Sequence[optout_list.ListEntry],
    removed: Sequence[optout_list.ListEntry],
) -> str:
    """A version's changes in one line, ``version 3: +1 -0 (+Ann Star)``: the audit log's
    detail of an applied version, the command line's account of one."""
    detail = f"version {version}: +{len(added)} -{len(removed)}"
    names = [f"+{e.who}" for e in added] + [f"-{e.who}" for e in removed]
    if names:
        detail += " (" + ", ".join(names) + ")"
    return detail


def pending_summary(sub: OptOutSubscription) -> str:
    """The changes of *sub*'s version waiting for review in one line (:func:`change_summary`),
    or "" when none waits."""
    if not sub.pending:
        return ""
    return change_summary(
        int(sub.pending["version"]),
        _entries(sub.pending.get("added")),
        _entries(sub.pending.get("removed")),
    )


def _entries(raw: Any) -> list[optout_list.ListEntry]:
    return [optout_list.ListEntry.read(e) for e in raw or []]


async def apply_pending(by: audit.Actor, sub_id: int) -> OptOutSubscription:
    """Apply the changes of a subscription's version waiting for review."""
    sub = await _subscription(sub_id)
    pending = sub.pending
    if not pending:
        raise Invalid("nothing is waiting for review in this subscription")
    version = int(pending["version"])
    if version <= sub.applied_version:
        raise Invalid("the subscription changed meanwhile; look again")
    async with in_transaction():
        applied = await _apply(
            sub,
            version,
            _entries(pending.get("added")),
            _entries(pending.get("removed")),
            by,
            "optout.apply",
        )
    if not applied:
        raise Invalid("the subscription changed meanwhile; look again")
    return await _subscription(sub.pk)


async def discard_pending(by: audit.Actor, sub_id: int) -> OptOutSubscription:
    """Discard the changes waiting for review (that version is skipped: it counts as
    applied, so only a newer one comes back)."""
    sub = await _subscription(sub_id)
    pending = sub.pending
    if not pending:
        raise Invalid("nothing is waiting for review in this subscription")
    version = int(pending["version"])
    async with in_transaction():
        await OptOutSubscription.filter(pk=sub.pk).update(
            pending=None, applied_version=max(version, sub.applied_version)
        )
        await audit.record(
            by,
            "optout.discard",
            audit.target("optout_list", sub.pk, sub.url),
            f"version {version}",
        )
    return await _subscription(sub.pk)


@dataclass(frozen=True)
class FetchOutcome:
    """What one fetch found, against the version applied when it began: ``applied`` (a newer
    version, applied now: by this fetch, or by another one that ran at the same time),
    ``pending`` (a newer version waits for review: kept by this fetch or before it),
    ``unchanged`` (nothing newer), or ``error`` (``message`` says why).

    Fetches of one list may overlap (the chore's and an admin's "Fetch now", or two
    admins'): what each reports does not depend on which of them wrote first."""

    result: str
    message: str = ""


async def _issuer_key(fed: Federation, issuer: str, *, refresh: bool) -> ed25519.Ed25519PublicKey:
    from fedisora.federation.actors import ActorError, fetch_actor

    try:
        account = await fetch_actor(fed, issuer, refresh=refresh)
    except ActorError as exc:
        raise optout_list.BadSignature(f"cannot fetch the issuer's key: {exc}") from None
    if account.uri != issuer or not account.ed25519_public_multibase:
        raise optout_list.BadSignature(f"the issuer {issuer} publishes no Ed25519 key")
    key = public_key_from_multibase(account.ed25519_public_multibase)
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise optout_list.BadSignature(f"the issuer {issuer} publishes no Ed25519 key")
    return key


async def _verified(fed: Federation, sub: OptOutSubscription, doc: Any, now: datetime) -> Any:
    parsed = optout_list.parse_list(doc)
    if not _same_origin(parsed.issuer, sub.url):
        raise optout_list.BadSignature(
            f"the list names the issuer {parsed.issuer}, of another origin than the list"
        )
    if sub.issuer and parsed.issuer != sub.issuer:
        raise optout_list.BadSignature(f"the issuer changed from {sub.issuer} to {parsed.issuer}")
    try:
        key = await _issuer_key(fed, parsed.issuer, refresh=False)
        return optout_list.verify_list(doc, key, issuer=parsed.issuer, now=now)
    except optout_list.BadSignature:
        # the issuer's key may have rotated: look it up once more (fetch_actor refetches)
        key = await _issuer_key(fed, parsed.issuer, refresh=True)
        return optout_list.verify_list(doc, key, issuer=parsed.issuer, now=now)


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.netloc.lower()) == (pb.scheme, pb.netloc.lower())


async def fetch_subscription(
    fed: Federation, sub: OptOutSubscription, *, now: datetime | None = None
) -> FetchOutcome:
    """Fetch, verify and (auto) apply or (review) keep the list of *sub*. Errors are the
    subscription's ``last_error``, with nothing applied.

    The fetch is stamped (``last_fetched_at``) as it begins, so that the chore leaves a
    list an admin is fetching alone (:data:`REFETCH_AFTER`); what the answer does is
    decided on the subscription as it is when the answer comes, its row locked: the mode
    then (a fetch in flight when an admin switched it follows the switch) and the versions
    applied and waiting then (another fetch may have moved them on meanwhile)."""
    from fedisora.federation.http import FetchError

    now = now or utcnow()
    began = await _subscription(sub.pk)
    await OptOutSubscription.filter(pk=sub.pk).update(last_fetched_at=now)
    try:
        _, doc = await fed.client.get_json(sub.url, accept="application/json")
        listed = await _verified(fed, began, doc, now)
    except (FetchError, optout_list.ListError) as exc:
        message = f"{type(exc).__name__}: {exc}"[:2000]
        await OptOutSubscription.filter(pk=sub.pk).update(last_error=message, last_fetched_at=now)
        log.info("opt-out list %s refused: %s", sub.url, message)
        return FetchOutcome("error", message)
    async with in_transaction() as conn:
        fresh = (
            await OptOutSubscription.filter(pk=sub.pk).select_for_update().using_db(conn).first()
        )
        if fresh is None:
            raise NotFound("no such subscription")  # unsubscribed meanwhile
        await (
            OptOutSubscription.filter(pk=sub.pk)
            .using_db(conn)
            .update(last_error="", last_fetched_at=now, issuer=listed.issuer)
        )
        return await _settle(fresh, began.applied_version, listed)


async def _settle(
    fresh: OptOutSubscription, applied_before: int, listed: optout_list.PublishedList
) -> FetchOutcome:
    """What a verified *listed* version does to the subscription *fresh* (read locked, in
    the caller's transaction); *applied_before*: the version applied when the fetch began."""
    if listed.version <= applied_before:
        return FetchOutcome("unchanged")
    if listed.version <= fresh.applied_version:
        # Another fetch applied it (or, in review mode, an admin applied or discarded it)
        # while this one was at the peer.
        return FetchOutcome("applied" if fresh.mode == OptOutMode.AUTO else "unchanged")
    waiting = int((fresh.pending or {}).get("version", 0))
    if fresh.mode == OptOutMode.REVIEW and listed.version <= waiting:
        return FetchOutcome("pending")  # it (or a newer one) waits for review already
    applied = _applied(await OptOut.filter(source=fresh.url))
    changes = optout_list.diff(applied, listed.entries)
    if fresh.mode == OptOutMode.AUTO:
        done = await _apply(
            fresh, listed.version, changes.added, changes.removed, SYNC_ACTOR, "optout.sync"
        )
        return FetchOutcome("applied" if done else "unchanged")
    pending = {
        "version": listed.version,
        "issued_at": integrity.format_datetime(listed.issued_at),
        "added": [e.public() for e in changes.added],
        "removed": [e.public() for e in changes.removed],
    }
    await OptOutSubscription.filter(pk=fresh.pk, applied_version=fresh.applied_version).update(
        pending=pending
    )
    return FetchOutcome("pending")


async def fetch_now(fed: Federation, by: audit.Actor, sub_id: int) -> FetchOutcome:
    """An admin's fetch of a subscription, now (audited)."""
    sub = await _subscription(sub_id)
    outcome = await fetch_subscription(fed, sub)
    detail = outcome.result + (f": {outcome.message}" if outcome.message else "")
    await audit.record(by, "optout.fetch", audit.target("optout_list", sub.pk, sub.url), detail)
    return outcome


#: The most subscriptions one chore run fetches (the rest wait for the next run).
CHORE_BATCH = 50
REFETCH_AFTER = timedelta(minutes=10)
"""The chore leaves a list whose last fetch (an admin's "Fetch now", or its own) began less
than this ago: an admin's fetch is not raced by the chore's of the same list (which used to
apply the version the admin was fetching, and the admin's fetch then found nothing newer)."""


async def _due(sub: OptOutSubscription, now: datetime) -> bool:
    """Claim *sub* for the chore's fetch (stamping it fetched now) unless a fetch of it
    began less than :data:`REFETCH_AFTER` ago: one conditional update, so that a fetch
    beginning meanwhile is seen (or sees this one)."""
    stale = Q(last_fetched_at__isnull=True) | Q(last_fetched_at__lte=now - REFETCH_AFTER)
    return bool(await OptOutSubscription.filter(stale, pk=sub.pk).update(last_fetched_at=now))


async def run_chore(
    ctx: WorkContext, settings: Settings, progress: dict[str, Any], fence: Any
) -> tuple[dict[str, int], bool]:
    """One run of the ``optout_lists`` chore: fetch each subscribed list (from where the
    last run stopped, :data:`CHORE_BATCH` at most) that no fetch began within
    :data:`REFETCH_AFTER`."""
    from fedisora.federation.context import get_federation

    after = int(progress.get("after", 0))
    rows = list(await OptOutSubscription.filter(id__gt=after).order_by("id").limit(CHORE_BATCH))
    counts: dict[str, int] = {}
    fed = get_federation(settings)
    for sub in rows:
        now = ctx.now()
        result = "recent"  # fetched by an admin (or another run) a moment ago
        if await _due(sub, now):
            try:
                async with ctx.keep_lease():  # requests to other servers
                    result = (await fetch_subscription(fed, sub, now=now)).result
            except NotFound:  # unsubscribed meanwhile
                result = "gone"
        counts[f"lists_{result}"] = counts.get(f"lists_{result}", 0) + 1
    more = len(rows) == CHORE_BATCH
    progress["after"] = rows[-1].pk if more else 0
    return counts, more
