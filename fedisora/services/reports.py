"""Reports, as Mastodon has them: filed by users or received from other instances, handled by
the instance's moderators.

A **report** names an account and, optionally, some of its clips and comments (statuses, one
id space), with a category, a comment and rule ids. It is filed by a local user
(:func:`file_report`, ``POST /api/v1/reports``) or comes from another instance as a ``Flag``
(:func:`receive_report`; its reporter is that instance's actor). A local user's report about
a remote account can be *forwarded* to the account's instance: the report's row and the
``report.forwarded`` event commit in one transaction, and the outbox writes the ``Flag``'s
Delivery row, sent by this instance's actor (:mod:`fedisora.federation.delivery`).

Moderators (admins) list reports (:func:`reports`), assign them to themselves
(:func:`assign`, :func:`unassign`), resolve and reopen them (:func:`resolve`,
:func:`reopen`), and act on one (:func:`take_action`): ``dismiss`` (resolve, nothing else),
``delete`` (the reported clips and comments are deleted through the services that delete
them elsewhere), ``mark_sensitive`` (they are marked sensitive), ``sensitive`` (the whole
account's clips are), ``silence`` (the account is limited) or ``suspend``; the last three
are :func:`.moderation.act_on_account`, as on the admin pages and in the admin API.
An action resolves the report; every one is written to the audit log
(:mod:`fedisora.services.audit`, target ``report:<id>``). An action other than dismissing
tells the local account it concerns (:func:`.moderation.warn`): an
:class:`~fedisora.models.AccountWarning` naming the report and a ``moderation_warning``
notification (Mastodon 4.3's), which it can appeal.

A new report, filed here or received, notifies the instance's staff (``admin.report``, in
the report's transaction), as Mastodon does.

What is refused, with nothing stored: reporting oneself or the instance actor, clips or
comments that are not the target's (or that the reporter cannot see), an unknown category or
rule (:mod:`.rules`), a comment over :data:`MAX_COMMENT` characters, more than
:data:`MAX_STATUSES` statuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fedisora.errors import Conflict, Forbidden, Invalid
from fedisora.models import (
    Account,
    Clip,
    Comment,
    NotificationType,
    Report,
    ReportCategory,
    Rule,
    utcnow,
)
from fedisora.services import audit, events, roles
from fedisora.services.accounts import INSTANCE_ACTOR

__all__ = [
    "ACTIONS",
    "CATEGORIES",
    "MAX_COMMENT",
    "MAX_REMOTE_COMMENT",
    "MAX_STATUSES",
    "account_action",
    "assign",
    "file_report",
    "flag_id",
    "receive_report",
    "reopen",
    "reports",
    "resolve",
    "take_action",
    "unassign",
]

MAX_COMMENT = 1000
"""Characters of a local user's comment (Mastodon's limit)."""
MAX_REMOTE_COMMENT = 5000
"""Characters of a received ``Flag``'s comment kept (the rest is cut off)."""
MAX_STATUSES = 100
"""Clips and comments one report names at most."""
CATEGORIES: tuple[str, ...] = tuple(c.value for c in ReportCategory)
ACTIONS = ("dismiss", "delete", "mark_sensitive", "sensitive", "silence", "suspend")
"""What a moderator does with a report (:func:`take_action`)."""

_WARNING_ACTION = {"delete": "delete_statuses", "mark_sensitive": "mark_statuses_as_sensitive"}
"""Mastodon's ``AccountWarning`` action for the actions on a report's clips and comments (the
actions on its account are :data:`.moderation.ACCOUNT_ACTIONS`, warned by their name)."""
_ON_STATUSES = {
    "delete": "clips and comments deleted",
    "mark_sensitive": "clips and comments marked sensitive",
}
_ON_ACCOUNT = {"sensitive": "marked sensitive", "silence": "silenced", "suspend": "suspended"}


def flag_id(instance_actor: Account, report: Report) -> str:
    """The id of the ``Flag`` that forwards *report* (sent by *instance_actor*)."""
    return f"{instance_actor.uri}#flags/{report.pk}"


def _category(raw: str | None, rule_ids: Sequence[str]) -> ReportCategory:
    if rule_ids:  # Mastodon: rules cited make it a violation, whatever the category said
        return ReportCategory.VIOLATION
    value = (raw or "").strip().lower() or ReportCategory.OTHER.value
    if value not in CATEGORIES:
        raise Invalid(f"category must be one of {', '.join(CATEGORIES)}, not {raw!r}")
    return ReportCategory(value)


async def _rules(rule_ids: Iterable[str]) -> list[str]:
    wanted = [str(r).strip() for r in rule_ids]
    known = {str(r.pk) for r in await Rule.filter(pk__in=[int(r) for r in wanted if r.isdigit()])}
    out: list[str] = []
    for rule in wanted:
        if rule not in known:
            raise Invalid(f"unknown rule {rule!r}: this instance has no such rule")
        if rule not in out:
            out.append(rule)
    return out


def _check_target(reporter: Account, target: Account) -> None:
    if target.pk == reporter.pk:
        raise Invalid("you cannot report yourself")
    if target.local and target.username == INSTANCE_ACTOR:
        raise Invalid("the instance actor cannot be reported")


async def _statuses(
    target: Account, ids: Iterable[int], viewer: Account | None
) -> list[Clip | Comment]:
    """The clips and comments *ids* names, each the target's (and visible to *viewer*, a
    local reporter); any other is refused, naming it."""
    from fedisora.services.visibility import can_see_clip, can_see_comment

    wanted = list(dict.fromkeys(int(i) for i in ids))
    if len(wanted) > MAX_STATUSES:
        raise Invalid(f"a report names at most {MAX_STATUSES} clips or comments")
    clips = {c.pk: c for c in await Clip.filter(pk__in=wanted, deleted_at=None)}
    comments = {c.pk: c for c in await Comment.filter(pk__in=wanted, deleted_at=None)}
    out: list[Clip | Comment] = []
    for pk in wanted:
        row: Clip | Comment | None = clips.get(pk) or comments.get(pk)
        ok = row is not None and row.account_id == target.pk
        if ok and viewer is not None and row is not None:
            ok = await (
                can_see_clip(viewer, row) if isinstance(row, Clip) else can_see_comment(viewer, row)
            )
        if not ok:
            raise Invalid(f"status {pk} is not a clip or comment of @{target.acct} you can see")
        assert row is not None
        out.append(row)
    return out


async def file_report(
    reporter: Account,
    target: Account,
    *,
    status_ids: Iterable[int] = (),
    comment: str = "",
    category: str | None = None,
    rule_ids: Iterable[str] = (),
    forward: bool = False,
) -> Report:
    """A local user's report of *target*; with *forward*, a remote target's instance gets it
    too, as a ``Flag`` from this instance's actor (queued in the same transaction)."""
    if not reporter.local:
        raise Invalid("only local accounts file reports here")
    _check_target(reporter, target)
    if len(comment) > MAX_COMMENT:
        raise Invalid(f"comment is longer than {MAX_COMMENT} characters")
    rules = await _rules(rule_ids)
    kind = _category(category, rules)
    statuses = await _statuses(target, status_ids, reporter)
    forward = forward and not target.local
    instance = None
    if forward:
        from fedisora.services.accounts import create_instance_actor

        instance = await create_instance_actor()
    async with events.transaction() as conn:
        report = await Report.create(
            account_id=reporter.pk,
            target_account_id=target.pk,
            status_ids=[s.pk for s in statuses],
            category=kind,
            rule_ids=rules,
            comment=comment.strip(),
            forwarded=forward,
            using_db=conn,
        )
        if instance is not None:
            report.uri = flag_id(instance, report)
            await Report.filter(pk=report.pk).using_db(conn).update(uri=report.uri)
            await events.emit(conn, "report.forwarded", instance.pk, report_id=report.pk)
        await _tell_staff(report, reporter)
    return report


async def _tell_staff(report: Report, reporter: Account) -> None:
    """Notify the instance's staff of a new *report* (Mastodon's ``admin.report``), inside
    the report's transaction (as :mod:`.signup` tells admins of a sign-up): both commit or
    neither. The reporter is the notification's account; a staff member who filed it is
    not told of their own report."""
    from fedisora.services.notify import notify

    for member in await roles.active_staff():
        await notify(
            member,
            NotificationType.ADMIN_REPORT,
            dedupe_key=f"report:{report.pk}",
            from_account=reporter,
            report=report,
        )


async def receive_report(
    reporter: Account,
    target: Account,
    *,
    status_ids: Iterable[int] = (),
    comment: str = "",
    uri: str | None = None,
) -> Report:
    """A report from another instance (a ``Flag``): *reporter* is its actor, *target* one of
    our accounts. The comment is cut to :data:`MAX_REMOTE_COMMENT`; a ``Flag`` id already
    received about the same account is refused (:class:`Conflict`)."""
    if reporter.local:
        raise Invalid("a received report comes from a remote actor")
    if not target.local:
        raise Invalid("only reports about this instance's accounts are received")
    _check_target(reporter, target)
    if uri and await Report.filter(uri=uri, target_account_id=target.pk).exists():
        raise Conflict(f"the report {uri} was received already")
    statuses = await _statuses(target, status_ids, None)
    async with events.transaction() as conn:
        report = await Report.create(
            account_id=reporter.pk,
            target_account_id=target.pk,
            status_ids=[s.pk for s in statuses],
            category=ReportCategory.OTHER,
            comment=comment.strip()[:MAX_REMOTE_COMMENT],
            uri=uri,
            using_db=conn,
        )
        await _tell_staff(report, reporter)
    return report


async def reports(
    *,
    resolved: bool | None = False,
    account_id: int | None = None,
    target_account_id: int | None = None,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 20,
) -> list[Report]:
    """Reports newest first (Mastodon's admin list): open ones (*resolved* False), resolved
    ones (True) or all (None), by reporter or target, paged by id."""
    query = Report.all()
    if resolved is True:
        query = query.filter(action_taken_at__not_isnull=True)
    elif resolved is False:
        query = query.filter(action_taken_at=None)
    if account_id is not None:
        query = query.filter(account_id=account_id)
    if target_account_id is not None:
        query = query.filter(target_account_id=target_account_id)
    if max_id is not None:
        query = query.filter(id__lt=max_id)
    if since_id is not None:
        query = query.filter(id__gt=since_id)
    if min_id is not None:
        rows = await query.filter(id__gt=min_id).order_by("id").limit(limit)
        return list(reversed(rows))
    return list(await query.order_by("-id").limit(limit))


def _target(report: Report) -> str:
    return audit.target("report", report.pk, f"report #{report.pk}")


def _by_id(by: audit.Actor) -> int | None:
    return by.pk if isinstance(by, Account) else None


async def _reload(report: Report) -> Report:
    return await Report.get(pk=report.pk)


async def assign(report: Report, by: Account) -> Report:
    """Assign *report* to the moderator *by* (Mastodon's ``assign_to_self``)."""
    if report.assigned_account_id != by.pk:
        await Report.filter(pk=report.pk).update(assigned_account_id=by.pk, updated_at=utcnow())
        await audit.record(by, "report.assign", _target(report))
    return await _reload(report)


async def unassign(report: Report, by: audit.Actor) -> Report:
    if report.assigned_account_id is not None:
        await Report.filter(pk=report.pk).update(assigned_account_id=None, updated_at=utcnow())
        await audit.record(by, "report.unassign", _target(report))
    return await _reload(report)


async def _claim(report: Report, by: audit.Actor) -> bool:
    """Mark *report* resolved by *by*; False if it was resolved already (the conditional
    update is the fence between two moderators acting at once)."""
    now = utcnow()
    return bool(
        await Report.filter(pk=report.pk, action_taken_at=None).update(
            action_taken_at=now, action_taken_by_account_id=_by_id(by), updated_at=now
        )
    )


async def resolve(report: Report, by: audit.Actor, detail: str = "") -> Report:
    """Resolve *report* with no other action (Mastodon's ``resolve``); resolving a resolved
    report changes nothing."""
    if await _claim(report, by):
        await audit.record(by, "report.resolve", _target(report), detail)
    return await _reload(report)


async def reopen(report: Report, by: audit.Actor) -> Report:
    changed = await Report.filter(pk=report.pk, action_taken_at__not_isnull=True).update(
        action_taken_at=None, action_taken_by_account_id=None, updated_at=utcnow()
    )
    if changed:
        await audit.record(by, "report.reopen", _target(report))
    return await _reload(report)


async def take_action(report: Report, action: str, by: Account, text: str = "") -> Report:
    """Act on an open *report*: ``dismiss`` it, ``delete`` its clips and comments or
    ``mark_sensitive`` them, mark its target ``sensitive``, ``silence`` or ``suspend`` it;
    the report is resolved, the action logged, and (except for a dismissal) the target
    told with a warning it can appeal. A resolved report must be reopened first (409)."""
    from fedisora.services import moderation

    if action not in ACTIONS:
        raise Invalid(f"action must be one of {', '.join(ACTIONS)}")
    text = text.strip()
    if len(text) > moderation.MAX_WARNING:
        raise Invalid(f"the text is longer than {moderation.MAX_WARNING} characters")
    target = await Account.get(pk=report.target_account_id)
    if action in ("delete", "mark_sensitive") and not report.status_ids:
        raise Invalid(f"report #{report.pk} names no clips or comments to act on")
    if action != "dismiss" and target.pk == by.pk:
        raise Forbidden("This action is not allowed on your own account")
    if action in ("suspend", "silence", "sensitive"):
        await roles.check_may_moderate(by, target)
    if not await _claim(report, by):
        raise Conflict(f"report #{report.pk} is resolved already: reopen it first")
    if action == "dismiss":
        await audit.record(by, "report.resolve", _target(report), "dismissed")
        return await _reload(report)
    if action in _ON_STATUSES:
        if action == "delete":
            touched = await _delete_statuses(target, report.status_ids)
        else:
            touched = await moderation.mark_sensitive(target, report.status_ids, by=by)
        detail = f"{len(touched)} of {len(report.status_ids)} {_ON_STATUSES[action]}"
        await audit.record(by, f"report.{action}", _target(report), detail)
        await moderation.warn(
            target, _WARNING_ACTION[action], text, report=report, status_ids=touched
        )
    else:  # the account's own: done, audited and told as everywhere else
        await moderation.act_on_account(target, action, by=by, text=text, report=report)
        detail = f"@{target.acct} {_ON_ACCOUNT[action]}"
        await audit.record(by, f"report.{action}", _target(report), detail)
    return await _reload(report)


async def _delete_statuses(target: Account, ids: Sequence[int]) -> list[int]:
    """Delete the target's clips and comments among *ids* (already deleted ones are
    skipped) through the services that delete them for their authors."""
    from fedisora.services import interactions, posts

    done: list[int] = []
    for clip in await Clip.filter(pk__in=list(ids), account_id=target.pk, deleted_at=None):
        await posts.delete_clip(target, clip, as_admin=True)
        done.append(clip.pk)
    for row in await Comment.filter(pk__in=list(ids), account_id=target.pk, deleted_at=None):
        await interactions.delete_comment(target, row, as_admin=True)
        done.append(row.pk)
    return done


async def account_action(report: Report, account: Account, kind: str, by: Account) -> Report:
    """Resolve *report* for an action taken on *account* through the admin accounts API
    (``POST /api/v1/admin/accounts/:id/action`` with ``report_id``; the action, and telling
    the account, are the caller's: :func:`.moderation.act_on_account`, done first). The
    report must be about *account*; resolving a resolved one changes nothing."""
    if report.target_account_id != account.pk:
        raise Invalid(f"report #{report.pk} is not about @{account.acct}")
    if await _claim(report, by):
        await audit.record(by, "report.resolve", _target(report), f"account action: {kind}")
    return await _reload(report)
