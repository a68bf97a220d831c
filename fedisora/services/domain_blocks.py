"""Domain blocks and allows: which remote domains this instance federates with, and how.

One place holds the rules; everything else asks :func:`current` for the policy and applies it:

- ``suspend``: the inbox refuses the domain's POSTs before any signature work or body parsing
  (403, counted: :func:`count_refusal`); no delivery goes to it (pending ones are cancelled,
  new ones are not written, :mod:`fedisora.federation.delivery`); nothing is fetched from
  it (the peer client's guard, :func:`peer_guard`); its accounts are suspended here and their
  clips removed, in bounded batches by the ``domain_purge`` chore (:func:`purge_step`).
- ``silence``: its accounts' clips stay out of the public timelines
  (:func:`fedisora.api.visibility.public_exclusions`); followers still see them.
- ``noop``: nothing but the options below.
- ``reject_media``: its media is not fetched (the provenance check and the media proxy).
- ``reject_reports``: kept and published; reports from it are ignored once reports exist.

A block of ``example.com`` covers every subdomain (``a.example.com``) and every port; the most
specific block applies. With ``FEDISORA_LIMITED_FEDERATION`` only the allowed domains (and
their subdomains) federate: any other is treated as suspended, without its content purged.

Domains are normalised (:func:`normalize_domain`): lower case, IDNA (punycode), without
scheme, user, port or path; this instance's own domain is refused. Every change is written to
the audit log by the functions here, whoever calls them (the admin API, the admin pages).

Each process keeps the policy in memory (:func:`current`), read again from the database at
most every :data:`POLICY_TTL` seconds and at once after a change made in the process: the
inbox's check costs no query. Another process sees a change within :data:`POLICY_TTL`.

Import and export use Mastodon's CSV (``#domain,#severity,#reject_media,#reject_reports,
#public_comment,#obfuscate``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from fedisora.config import Settings
from fedisora.errors import Invalid, NotFound
from fedisora.models import (
    Account,
    AccountDomainBlock,
    Clip,
    Delivery,
    DomainAllow,
    DomainBlock,
    DomainSeverity,
    WorkTally,
    utcnow,
)
from fedisora.services import audit

__all__ = [
    "CSV_HEADER",
    "POLICY_TTL",
    "HostPolicy",
    "ImportResult",
    "Policy",
    "block_domain",
    "cancel_deliveries",
    "count_refusal",
    "create_allow",
    "create_block",
    "current",
    "delete_allow",
    "delete_block",
    "domain_q",
    "export_csv",
    "flush_refusals",
    "get_block",
    "import_csv",
    "invalidate",
    "is_blocked",
    "normalize_domain",
    "obfuscated",
    "parse_csv",
    "peer_guard",
    "policy",
    "public_blocks",
    "purge_step",
    "refusals",
    "reset",
    "unblock_domain",
    "update_block",
    "user_blocked_domains",
    "user_blocks_host",
]

POLICY_TTL = 5.0
"""Seconds a process keeps its copy of the policy before reading it again."""
REFUSAL_FLUSH = 10.0
"""Seconds between two writes of a process's refusal counts to the database."""
REFUSALS_TABLE = "inbox_refusals"
"""The :class:`~fedisora.models.WorkTally` table name the inbox's domain refusals count under."""
PURGE_BATCH = 50
"""Accounts (and clips) one run of the purge chore handles, at most."""
MAX_COMMENT = 1000
MAX_CSV_LINES = 100_000
SEVERITIES = tuple(s.value for s in DomainSeverity)
CSV_HEADER = (
    "#domain",
    "#severity",
    "#reject_media",
    "#reject_reports",
    "#public_comment",
    "#obfuscate",
)
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


# --- names -----------------------------------------------------------------------------------


def _host_only(host: str) -> str:
    """*host* without its port."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _own_host(settings: Settings) -> str:
    return _host_only(settings.domain.lower())


def normalize_domain(raw: str, settings: Settings | None = None) -> str:
    """The domain *raw* names, as blocks store it: lower case, IDNA, no scheme, user, port or
    path. :class:`Invalid` for what names no domain, and for this instance's own domain (or
    one of its parents, whose block would cover it) when *settings* are given."""
    text = (raw or "").strip()
    if not text:
        raise Invalid("domain is required")
    if len(text) > 2048:
        raise Invalid("domain is too long")
    if "://" in text:
        try:
            text = urlsplit(text).netloc
        except ValueError:
            raise Invalid(f"{raw[:100]!r} is not a domain name") from None
    text = re.split(r"[/?#]", text, maxsplit=1)[0]
    text = text.rsplit("@", 1)[-1]
    text = _host_only(text).strip().rstrip(".").lower()
    text = text.removeprefix("*.")
    if not text or "[" in text:
        raise Invalid(f"{raw[:100]!r} is not a domain name")
    try:
        ascii_name = text.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        raise Invalid(f"{raw[:100]!r} is not a valid domain name") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(p) for p in labels):
        raise Invalid(f"{raw[:100]!r} is not a valid domain name (like example.com)")
    if settings is not None:
        own = _own_host(settings)
        if ascii_name == own or own.endswith("." + ascii_name):
            raise Invalid(f"{ascii_name} is this instance's own domain: it cannot be blocked")
    return ascii_name


def _suffixes(host: str) -> list[str]:
    """*host* (without its port) and each parent domain, most specific first."""
    name = _host_only(host.lower()).rstrip(".")
    parts = name.split(".")
    return [".".join(parts[i:]) for i in range(len(parts) - 1)] or [name]


def domain_q(column: str, domains: Sequence[str]) -> Q | None:
    """A filter on *column* (an account's ``domain``, with its port if any) matching *domains*
    and their subdomains; None for no domains."""
    q: Q | None = None
    for d in domains:
        one = (
            Q(**{column: d})
            | Q(**{f"{column}__startswith": f"{d}:"})
            | Q(**{f"{column}__endswith": f".{d}"})
            | Q(**{f"{column}__contains": f".{d}:"})
        )
        q = one if q is None else q | one
    return q


# --- the policy ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostPolicy:
    """What applies to one host."""

    domain: str | None
    """The domain of the block that applies (None: no block)."""
    severity: str | None
    suspended: bool
    """Nothing is exchanged with it (a suspension, or not allowed in limited federation)."""
    silenced: bool
    reject_media: bool
    reject_reports: bool


@dataclass(frozen=True)
class _Rule:
    severity: str
    reject_media: bool
    reject_reports: bool


@dataclass(frozen=True)
class Policy:
    """A snapshot of the blocks and allows."""

    blocks: dict[str, _Rule] = field(default_factory=dict)
    allows: frozenset[str] = frozenset()

    def rule(self, host: str) -> tuple[str, _Rule] | None:
        for name in _suffixes(host):
            found = self.blocks.get(name)
            if found is not None:
                return name, found
        return None

    def allowed(self, host: str) -> bool:
        return any(name in self.allows for name in _suffixes(host))

    def for_host(self, host: str, *, limited: bool = False) -> HostPolicy:
        found = self.rule(host)
        domain, rule = found if found is not None else (None, None)
        severity = rule.severity if rule else None
        suspended = severity == DomainSeverity.SUSPEND or (limited and not self.allowed(host))
        return HostPolicy(
            domain=domain,
            severity=severity,
            suspended=suspended,
            silenced=severity == DomainSeverity.SILENCE,
            reject_media=suspended or bool(rule and rule.reject_media),
            reject_reports=suspended or bool(rule and rule.reject_reports),
        )

    def suspends(self, host: str, *, limited: bool = False) -> bool:
        return self.for_host(host, limited=limited).suspended

    def limited_domains(self) -> list[str]:
        """The blocked domains whose accounts stay out of public timelines (silenced or
        suspended)."""
        return sorted(d for d, r in self.blocks.items() if r.severity != DomainSeverity.NOOP)

    def suspended_domains(self) -> list[str]:
        return sorted(d for d, r in self.blocks.items() if r.severity == DomainSeverity.SUSPEND)


_snapshot: Policy | None = None
_loaded_at = 0.0


def invalidate() -> None:
    """Forget this process's copy of the policy (after a change, in tests)."""
    global _snapshot
    _snapshot = None


async def current() -> Policy:
    """The policy, read again when this process's copy is older than :data:`POLICY_TTL`."""
    global _snapshot, _loaded_at
    now = time.monotonic()
    if _snapshot is not None and now - _loaded_at < POLICY_TTL:
        return _snapshot
    rows = await DomainBlock.all().values("domain", "severity", "reject_media", "reject_reports")
    blocks = {
        str(r["domain"]): _Rule(
            str(getattr(r["severity"], "value", r["severity"])),
            bool(r["reject_media"]),
            bool(r["reject_reports"]),
        )
        for r in rows
    }
    allows = frozenset(str(d) for d in await DomainAllow.all().values_list("domain", flat=True))
    _snapshot, _loaded_at = Policy(blocks, allows), now
    return _snapshot


async def policy(host: str, settings: Settings | None = None) -> HostPolicy:
    """What applies to *host* (a host name, with or without its port)."""
    limited = bool(settings and settings.limited_federation)
    return (await current()).for_host(host, limited=limited)


async def is_blocked(host: str, settings: Settings | None = None) -> bool:
    """Whether nothing is exchanged with *host* (suspended, or not allowed)."""
    return (await policy(host, settings)).suspended


# --- the peer client's guard -----------------------------------------------------------------


def peer_guard(settings: Settings) -> Any:
    """The check :class:`~fedisora.federation.http.PeerClient` makes before each request
    (each redirect hop too): raises its ``BlockedHost`` (an ``UnsafeURL``) for a suspended
    (or, in limited federation, not allowed) host, and for media of a host whose media is
    rejected."""

    async def guard(url: str, media: bool) -> None:
        from fedisora.federation.http import BlockedHost

        try:
            host = (urlsplit(url).hostname or "").lower()
        except ValueError:
            return  # the URL check that follows refuses it
        if not host:
            return
        found = await policy(host, settings)
        if found.suspended:
            raise BlockedHost(f"refusing {url[:200]}: {host} is blocked by this instance")
        if media and found.reject_media:
            raise BlockedHost(f"refusing {url[:200]}: media from {host} is rejected here")

    return guard


# --- counting the inbox's refusals -----------------------------------------------------------

_pending_refusals: dict[str, int] = {}
_flushed_at = 0.0


async def count_refusal(host: str) -> None:
    """Count one inbox POST refused for *host*'s block. Counted in memory and written to the
    database (:class:`~fedisora.models.WorkTally`, ``inbox_refusals``) at most every
    :data:`REFUSAL_FLUSH` seconds per process, so a flood costs no write per request."""
    name = _host_only(host.lower())
    _pending_refusals[name] = _pending_refusals.get(name, 0) + 1
    if time.monotonic() - _flushed_at >= REFUSAL_FLUSH:
        await flush_refusals()


async def flush_refusals() -> None:
    """Write this process's counted refusals to the database."""
    global _flushed_at
    from fedisora.services.retention import tally

    _flushed_at = time.monotonic()
    if not _pending_refusals:
        return
    counts = dict(_pending_refusals)
    _pending_refusals.clear()
    try:
        async with in_transaction() as conn:
            for host, n in counts.items():
                await tally(conn, REFUSALS_TABLE, "domain_block", host, n)
    except Exception:
        for host, n in counts.items():  # kept for the next flush
            _pending_refusals[host] = _pending_refusals.get(host, 0) + n
        raise


def reset() -> None:
    """Forget this process's policy and unwritten refusal counts (a new database: tests)."""
    global _flushed_at
    invalidate()
    _pending_refusals.clear()
    _flushed_at = 0.0


async def refusals() -> dict[str, int]:
    """Inbox POSTs refused per host for a domain block: written ones and this process's."""
    rows = await WorkTally.filter(table_name=REFUSALS_TABLE).values("group_key", "count")
    out = {str(r["group_key"]): int(r["count"]) for r in rows}
    for host, n in _pending_refusals.items():
        out[host] = out.get(host, 0) + n
    return out


# --- blocks ----------------------------------------------------------------------------------


def _severity(value: str) -> DomainSeverity:
    value = (value or "").strip().lower()
    if value not in SEVERITIES:
        raise Invalid(f"severity must be one of {', '.join(SEVERITIES)}")
    return DomainSeverity(value)


def _comment(name: str, value: str) -> str:
    if len(value) > MAX_COMMENT:
        raise Invalid(f"{name} is too long (at most {MAX_COMMENT} characters)")
    return value.strip()


def _detail(block: DomainBlock) -> str:
    flags = [n for n in ("reject_media", "reject_reports", "obfuscate") if getattr(block, n)]
    return f"severity={block.severity.value}" + "".join(f", {f}" for f in flags)


async def _changed(block: DomainBlock) -> None:
    invalidate()
    if block.severity == DomainSeverity.SUSPEND:
        await cancel_deliveries(block.domain)
        from fedisora.work.housekeeping import ensure_chores

        await ensure_chores()  # the purge chore (a database older than it has no row)


async def create_block(
    by: audit.Actor,
    domain: str,
    settings: Settings,
    *,
    severity: str = "silence",
    reject_media: bool = False,
    reject_reports: bool = False,
    private_comment: str = "",
    public_comment: str = "",
    obfuscate: bool = False,
) -> DomainBlock:
    """Block *domain*. :class:`Invalid` for a bad domain or value, and for a domain already
    blocked (edit that block instead)."""
    name = normalize_domain(domain, settings)
    values: dict[str, Any] = {
        "severity": _severity(severity),
        "reject_media": reject_media,
        "reject_reports": reject_reports,
        "private_comment": _comment("private_comment", private_comment),
        "public_comment": _comment("public_comment", public_comment),
        "obfuscate": obfuscate,
    }
    if await DomainBlock.exists(domain=name):
        raise Invalid(f"{name} is already blocked: edit its block instead")
    block = await DomainBlock.create(domain=name, **values)
    await audit.record(
        by, "domain_block.create", audit.target("domain", name, name), _detail(block)
    )
    await _changed(block)
    return block


async def get_block(block_id: int) -> DomainBlock:
    block = await DomainBlock.get_or_none(pk=block_id)
    if block is None:
        raise NotFound("Record not found")
    return block


async def update_block(by: audit.Actor, block: DomainBlock, **changes: Any) -> DomainBlock:
    """Change *block*'s severity, options or comments (keys as :func:`create_block`'s)."""
    values: dict[str, Any] = {}
    for key, value in changes.items():
        if value is None:
            continue
        if key == "severity":
            values[key] = _severity(str(value))
        elif key in ("private_comment", "public_comment"):
            values[key] = _comment(key, str(value))
        elif key in ("reject_media", "reject_reports", "obfuscate"):
            values[key] = bool(value)
        else:
            raise Invalid(f"{key} cannot be changed")
    if values:
        values["updated_at"] = utcnow()
        await DomainBlock.filter(pk=block.pk).update(**values)
        block = await DomainBlock.get(pk=block.pk)
        await audit.record(
            by,
            "domain_block.update",
            audit.target("domain", block.domain, block.domain),
            _detail(block),
        )
        await _changed(block)
    return block


async def delete_block(by: audit.Actor, block: DomainBlock) -> None:
    """Lift *block*. Accounts suspended by it stay suspended (each can be unsuspended)."""
    if await DomainBlock.filter(pk=block.pk).delete():
        await audit.record(
            by, "domain_block.delete", audit.target("domain", block.domain, block.domain)
        )
    invalidate()


async def cancel_deliveries(domain: str) -> int:
    """Fail the pending deliveries to *domain* and its subdomains (not the ones a worker holds
    now: those are failed when they are sent, by the peer client's guard)."""
    q = domain_q("host", [domain])
    assert q is not None
    return await Delivery.filter(q, state="pending", locked_until=None).update(
        state="failed",
        state_changed_at=utcnow(),
        next_attempt_at=None,
        last_error=f"cancelled: {domain} is suspended by this instance",
    )


def obfuscated(domain: str) -> str:
    """The domain with its middle letters as asterisks, as Mastodon publishes an obfuscated
    block (``example.com`` -> ``exa****.com``)."""
    length = len(domain)
    visible = length // 4
    return "".join(
        "*" if visible < i < length - visible and ch != "." else ch for i, ch in enumerate(domain)
    )


async def public_blocks() -> list[dict[str, Any]]:
    """Mastodon's ``DomainBlock`` entities of ``GET /api/v1/instance/domain_blocks``: the
    blocks people notice (silence and suspend; Mastodon leaves ``noop`` ones out too)."""
    rows = await DomainBlock.exclude(severity=DomainSeverity.NOOP).order_by("domain")
    return [
        {
            "domain": obfuscated(b.domain) if b.obfuscate else b.domain,
            "digest": hashlib.sha256(b.domain.encode()).hexdigest(),
            "severity": b.severity.value,
            "comment": b.public_comment or None,
        }
        for b in rows
    ]


# --- allows ----------------------------------------------------------------------------------


async def create_allow(by: audit.Actor, domain: str, settings: Settings) -> DomainAllow:
    name = normalize_domain(domain, settings)
    existing = await DomainAllow.get_or_none(domain=name)
    if existing is not None:
        return existing  # Mastodon answers the existing allow
    allow = await DomainAllow.create(domain=name)
    await audit.record(by, "domain_allow.create", audit.target("domain", name, name))
    invalidate()
    return allow


async def delete_allow(by: audit.Actor, allow: DomainAllow) -> None:
    if await DomainAllow.filter(pk=allow.pk).delete():
        await audit.record(
            by, "domain_allow.delete", audit.target("domain", allow.domain, allow.domain)
        )
    invalidate()


# --- a user's own domain blocks ----------------------------------------------------------------


async def block_domain(account: Account, domain: str, settings: Settings) -> str:
    name = normalize_domain(domain, settings)
    await AccountDomainBlock.get_or_create(account_id=account.pk, domain=name)
    return name


async def unblock_domain(account: Account, domain: str) -> None:
    try:
        name = normalize_domain(domain)
    except Invalid:
        return  # nothing of that name can be blocked
    await AccountDomainBlock.filter(account_id=account.pk, domain=name).delete()


async def user_blocks_host(account_id: int, host: str | None) -> bool:
    """Whether the account *account_id* blocked *host*'s domain (or a parent of it)."""
    if not host:
        return False
    return await AccountDomainBlock.filter(
        account_id=account_id, domain__in=_suffixes(host)
    ).exists()


async def user_blocked_domains(account: Account) -> list[str]:
    rows = await AccountDomainBlock.filter(account_id=account.pk).values_list("domain", flat=True)
    return sorted(str(d) for d in rows)


# --- CSV -------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    """(line number, what is wrong), in order."""
    applied: bool = True
    """False when nothing was imported (all or nothing, and a line was wrong)."""


def export_csv(blocks: Sequence[DomainBlock]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for b in blocks:
        writer.writerow(
            [
                b.domain,
                b.severity.value,
                str(b.reject_media).lower(),
                str(b.reject_reports).lower(),
                b.public_comment,
                str(b.obfuscate).lower(),
            ]
        )
    return out.getvalue()


def _flag(value: str, name: str) -> bool:
    v = value.strip().lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no", ""):
        return False
    raise Invalid(f"{name} must be true or false, not {value[:40]!r}")


def parse_csv(
    text: str, settings: Settings
) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, str]]]:
    """The blocks of a CSV in Mastodon's format (with its header line, or the columns in its
    order without one; a line of just a domain is a suspension, as Mastodon reads it) and the
    malformed lines, each with its line number."""
    rows: list[tuple[int, dict[str, Any]]] = []
    errors: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    columns = [c.lstrip("#") for c in CSV_HEADER]
    lines = text.splitlines()
    if len(lines) > MAX_CSV_LINES:
        return [], [(MAX_CSV_LINES + 1, f"too many lines (at most {MAX_CSV_LINES})")]
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            cells = next(csv.reader([line]))
        except csv.Error as exc:
            errors.append((number, f"not CSV: {exc}"))
            continue
        if number == 1 and cells and cells[0].strip().lower().startswith("#domain"):
            columns = [c.strip().lstrip("#").lower() for c in cells]
            if "domain" not in columns:
                errors.append((number, "the header has no #domain column"))
                return rows, errors
            continue
        if len(cells) > len(columns):
            errors.append((number, f"{len(cells)} fields, at most {len(columns)} expected"))
            continue
        cell = dict(zip(columns, cells, strict=False))
        try:
            domain = normalize_domain(cell.get("domain", ""), settings)
            values = {
                "severity": _severity(cell.get("severity", "") or "suspend").value,
                "reject_media": _flag(cell.get("reject_media", ""), "reject_media"),
                "reject_reports": _flag(cell.get("reject_reports", ""), "reject_reports"),
                "public_comment": _comment("public_comment", cell.get("public_comment", "")),
                "obfuscate": _flag(cell.get("obfuscate", ""), "obfuscate"),
            }
        except Invalid as exc:
            errors.append((number, exc.message))
            continue
        if domain in seen:
            errors.append((number, f"{domain} is already on line {seen[domain]}"))
            continue
        seen[domain] = number
        rows.append((number, {"domain": domain, **values}))
    return rows, errors


async def import_csv(
    by: audit.Actor, text: str, settings: Settings, *, all_or_nothing: bool
) -> ImportResult:
    """Import a CSV (:func:`parse_csv`): each domain is blocked, or its block updated. With
    malformed lines, *all_or_nothing* imports nothing; otherwise the other lines are
    imported. The blocks are written in one transaction either way."""
    parsed, errors = parse_csv(text, settings)
    result = ImportResult(errors=errors)
    if errors and all_or_nothing:
        result.applied = False
        return result
    existing = {
        b.domain: b for b in await DomainBlock.filter(domain__in=[v["domain"] for _, v in parsed])
    }
    changed: list[tuple[str, DomainBlock]] = []
    async with in_transaction() as conn:
        now = utcnow()
        for _, values in parsed:
            old = existing.get(values["domain"])
            if old is None:
                block = await DomainBlock.create(using_db=conn, **values)
                changed.append(("domain_block.create", block))
                result.created.append(block.domain)
                continue
            updates = {k: v for k, v in values.items() if k != "domain"}
            if all(
                getattr(getattr(old, k), "value", getattr(old, k)) == v for k, v in updates.items()
            ):
                continue
            await DomainBlock.filter(pk=old.pk).using_db(conn).update(updated_at=now, **updates)
            changed.append(
                ("domain_block.update", await DomainBlock.filter(pk=old.pk).using_db(conn).get())
            )
            result.updated.append(old.domain)
    for action, block in changed:
        await audit.record(
            by,
            action,
            audit.target("domain", block.domain, block.domain),
            _detail(block) + ", imported",
        )
    invalidate()
    for _, block in changed:
        if block.severity == DomainSeverity.SUSPEND:
            await _changed(block)
    return result


# --- purging a suspended domain's content ---------------------------------------------------


async def purge_step(
    progress: dict[str, Any], limit: int = PURGE_BATCH
) -> tuple[dict[str, int], bool]:
    """One bounded batch of the ``domain_purge`` chore: the remote accounts of suspended
    domains are suspended here and their clips deleted, at most *limit* of each. Returns the
    counts and whether more is due at once."""
    from fedisora.services import posts
    from fedisora.services.account_deletion import suspend_account

    domains = (await current()).suspended_domains()
    counts = {"accounts": 0, "clips": 0}
    if not domains:
        return counts, False
    start = int(progress.get("domain_index", 0)) % len(domains)
    more = False
    for domain in domains[start:] + domains[:start]:
        q = domain_q("domain", [domain])
        assert q is not None
        accounts = await Account.filter(q, suspended_at=None).exclude(domain=None).limit(limit)
        for account in accounts:
            await suspend_account(account)
            counts["accounts"] += 1
        clip_q = domain_q("account__domain", [domain])
        assert clip_q is not None
        clips = await Clip.filter(clip_q, deleted_at=None, local=False).limit(limit)
        for clip in clips:
            author = await Account.get(pk=clip.account_id)
            await posts.delete_clip(author, clip, as_admin=True)
            counts["clips"] += 1
        if len(accounts) == limit or len(clips) == limit:
            progress["domain_index"] = domains.index(domain)
            more = True
            break
    else:
        progress["domain_index"] = 0
    return counts, more


PURGE_EVERY = timedelta(minutes=1)
