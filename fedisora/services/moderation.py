"""Moderators' actions on accounts, the warnings that tell their owners, and appeals.

**One path for an action on an account**: :func:`act_on_account` suspends, silences, marks
sensitive or disables an account (or only warns it) and tells its owner. The admin web pages
(``/admin/accounts``), the Mastodon admin API (``POST /api/v1/admin/accounts/:id/action``),
report actions (:func:`.reports.take_action`) and the ``fedisora suspend`` command all call
it, so an account is told of a suspension however it was decided. Telling is :func:`warn`: an
:class:`~fedisora.models.AccountWarning` with the moderator's words (which its owner reads at
``/settings/warnings``, and a suspended owner at ``/settings/suspended``, and can appeal) and
a ``moderation_warning`` notification (Mastodon 4.3's), committed together. Only a local
account is told (a remote one's owner is not ours to reach).

**Silence** (Mastodon's "limit", :func:`silence`, :func:`unsilence`) and **sensitive**
(:func:`sensitize`, :func:`unsensitize`) set a column on the account; what they do to what
others see is :mod:`fedisora.services.visibility`'s (one rule each, for the API, the web
pages and federation alike). :func:`mark_sensitive` flags some clips and comments sensitive
themselves; a local account's are edited and federated (an ``Update`` of each, as Mastodon
sends), and so is the flag's lifting by an approved appeal. Each is audited
(``account.silence``, ``account.unsilence``, ``account.sensitive``, ``account.unsensitive``,
``status.mark_sensitive``); doing it twice changes and logs nothing the second time. Report
actions (:func:`.reports.take_action`) and the admin accounts API call these.

**Appeals**: the owner of a warning (:class:`~fedisora.models.AccountWarning`) can appeal it
once (:func:`file_appeal`), within :data:`APPEAL_WINDOW`, with at most :data:`MAX_APPEAL`
characters. A moderator approves it (:func:`approve_appeal`: the action is undone where it
can be: unsilenced, unsensitized, unsuspended, login enabled, the clips' sensitive flag
lifted; deleted clips and comments stay deleted) or rejects it (:func:`reject_appeal`); the
user is told with a ``fedisora.appeal_approved`` or ``fedisora.appeal_rejected``
notification (Mastodon has no notification type for it: it sends an e-mail), and the
decision is audited (``appeal.approve``, ``appeal.reject``, target ``appeal:<id>``). A new
appeal is told to every active staff member who may decide it (:func:`roles.may_moderate`
of the appellant) with a ``fedisora.admin_appeal`` notification, in the appeal's transaction
(as a new report is told with ``admin.report``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from tortoise.queryset import QuerySet

from fedisora.errors import Conflict, Forbidden, Invalid, NotFound
from fedisora.models import (
    Account,
    AccountWarning,
    Appeal,
    AppealState,
    Clip,
    Comment,
    NotificationType,
    Report,
    User,
    utcnow,
)
from fedisora.services import audit, events, roles
from fedisora.services.accounts import INSTANCE_ACTOR

__all__ = [
    "ACCOUNT_ACTIONS",
    "APPEAL_WINDOW",
    "MAX_APPEAL",
    "MAX_WARNING",
    "UNDONE",
    "act_on_account",
    "appeal_deadline",
    "approve_appeal",
    "file_appeal",
    "mark_sensitive",
    "pending_appeals",
    "reject_appeal",
    "sensitize",
    "silence",
    "suspension_notice",
    "unsensitize",
    "unsilence",
    "warn",
    "warning_of",
    "warnings_of",
]

ACCOUNT_ACTIONS = ("none", "disable", "sensitive", "silence", "suspend")
"""What a moderator does to a whole account (Mastodon's admin account action types):
:func:`act_on_account`."""
MAX_WARNING = 1000
"""Characters of a moderator's words to the account (Mastodon's limit for a report comment)."""

APPEAL_WINDOW = timedelta(days=20)
"""How long after a warning its owner may appeal it (Mastodon's 20 days)."""
MAX_APPEAL = 2000
"""Characters of an appeal's text (Mastodon's limit)."""
UNDONE: dict[str, str] = {
    "silence": "the account is no longer silenced",
    "sensitive": "the account's clips are no longer marked sensitive",
    "suspend": "the account is no longer suspended",
    "disable": "the login is enabled again",
    "mark_statuses_as_sensitive": "the clips and comments are no longer marked sensitive",
    "delete_statuses": "nothing: deleted clips and comments stay deleted",
    "none": "nothing: the warning took no action",
}
"""What approving an appeal undoes, by the warning's action (shown on the admin page)."""


def _refuse_special(account: Account) -> None:
    if account.local and account.username == INSTANCE_ACTOR:
        raise Forbidden("the instance actor cannot be moderated")


async def _set(
    account: Account, column: str, on: bool, action: str, by: audit.Actor | None
) -> Account:
    _refuse_special(account)
    query = Account.filter(pk=account.pk, **{f"{column}__isnull": on})
    changed = await query.update(**{column: utcnow() if on else None})
    if changed and by is not None:
        await audit.record(by, action, account)
    return await Account.get(pk=account.pk)


async def silence(account: Account, *, by: audit.Actor | None = None) -> Account:
    """Silence *account* (Mastodon's limit): see :mod:`fedisora.services.visibility`."""
    return await _set(account, "silenced_at", True, "account.silence", by)


async def unsilence(account: Account, *, by: audit.Actor | None = None) -> Account:
    return await _set(account, "silenced_at", False, "account.unsilence", by)


async def sensitize(account: Account, *, by: audit.Actor | None = None) -> Account:
    """Mark *account* sensitive: all its clips are served as sensitive."""
    return await _set(account, "sensitized_at", True, "account.sensitive", by)


async def unsensitize(account: Account, *, by: audit.Actor | None = None) -> Account:
    return await _set(account, "sensitized_at", False, "account.unsensitive", by)


async def mark_sensitive(
    account: Account, ids: Sequence[int], *, by: audit.Actor | None = None
) -> list[int]:
    """Mark *account*'s clips and comments among *ids* sensitive; the ids of those that were
    not (and now are) are returned, the ones an appeal's approval unmarks."""
    wanted = [int(i) for i in ids]
    clips: list[Any] = list(
        await Clip.filter(
            pk__in=wanted, account_id=account.pk, deleted_at=None, sensitive=False
        ).values_list("id", flat=True)
    )
    comments: list[Any] = list(
        await Comment.filter(
            pk__in=wanted, account_id=account.pk, deleted_at=None, sensitive=False
        ).values_list("id", flat=True)
    )
    done = sorted(int(i) for i in [*clips, *comments])
    if not done:
        return done
    async with events.transaction():  # the flags, their Updates and the log commit together
        await _flag(account, clips, comments, True)
        if by is not None:
            await audit.record(by, "status.mark_sensitive", account, f"{len(done)} marked: {done}")
    return done


async def _flag(account: Account, clips: list[Any], comments: list[Any], on: bool) -> None:
    """Set the sensitive flag of *account*'s *clips* and *comments* (ids) to *on*, in the
    caller's :func:`events.transaction`.

    A local account's clips and comments are edited and federated, as Mastodon's
    ``UpdateStatusService`` does when a moderator marks a local post sensitive: their
    ``edited_at`` is now (Mastodon applies an ``Update`` only when the Note's ``updated`` is
    newer than what it has), and a ``clip.updated`` or ``comment.updated`` event each sends
    an ``Update`` of the Note to the audience of its ``Create``
    (:mod:`fedisora.federation.delivery`; ``moderated`` gives each its own activity id).
    A remote account's are only flagged here: they are its server's to federate."""
    values: dict[str, Any] = {"sensitive": on}
    if account.local:
        values["edited_at"] = utcnow()
    async with events.transaction() as conn:
        if clips:
            await Clip.filter(pk__in=clips).using_db(conn).update(**values)
        if comments:
            await Comment.filter(pk__in=comments).using_db(conn).update(**values)
        if not account.local:
            return
        for pk in clips:
            await events.emit(conn, "clip.updated", account.pk, clip_id=pk, moderated=True)
        for pk in comments:
            await events.emit(conn, "comment.updated", account.pk, comment_id=pk, moderated=True)


# --- acting on an account, and telling it ---------------------------------------------------


async def warn(
    account: Account,
    action: str,
    text: str = "",
    *,
    report: Report | None = None,
    status_ids: Sequence[int] = (),
) -> AccountWarning | None:
    """Tell the local *account* what a moderator did (*action*, one of
    :class:`~fedisora.models.AccountWarning`'s): a warning with the moderator's *text*, the
    *report* it answered and the clips and comments it touched, and its notification. A
    remote account is not told (None)."""
    if not account.local:
        return None
    from fedisora.services.notify import notify

    # One transaction: the warning and its notification commit together (a crash between
    # them must not leave a warning its owner is never told of).
    async with events.transaction() as conn:
        warning = await AccountWarning.create(
            account_id=account.pk,
            report_id=report.pk if report is not None else None,
            action=action,
            text=text,
            status_ids=list(status_ids),
            using_db=conn,
        )
        await notify(
            account,
            NotificationType.MODERATION_WARNING,
            dedupe_key=f"warning:{warning.pk}",
            account_warning=warning,
        )
    return warning


async def act_on_account(
    account: Account,
    action: str,
    *,
    by: audit.Actor,
    text: str = "",
    report: Report | None = None,
) -> AccountWarning | None:
    """The moderator *by* takes *action* (one of :data:`ACCOUNT_ACTIONS`) on *account*, and
    the account is told: the one path of every place that suspends, silences, marks
    sensitive or disables an account.

    ``suspend`` is :func:`~fedisora.services.account_deletion.suspend_account` (federated,
    sessions ended), ``disable`` :func:`~fedisora.services.account_deletion.disable_login`,
    ``silence`` and ``sensitive`` :func:`silence` and :func:`sensitize`; each is audited by
    the service that does it (``account.suspend``...). ``none`` does nothing but warn, and is
    audited as ``account.warn``. Then a local account gets a warning (:func:`warn`) with
    *text* and the *report* it answers (if any), which it can appeal: for every action but
    ``none``, and for ``none`` when there is a *text* (Mastodon's rule). The action and the
    warning commit together. The warning (None if there is none) is returned.

    Refused, with nothing done: an unknown action or a *text* over :data:`MAX_WARNING`
    characters (:class:`Invalid`); a moderator acting on their own account or (if not an
    admin) on staff, or on the instance actor (:class:`Forbidden`)."""
    if action not in ACCOUNT_ACTIONS:
        raise Invalid(f"the action must be one of {', '.join(ACCOUNT_ACTIONS)}")
    text = text.strip()
    if len(text) > MAX_WARNING:
        raise Invalid(f"the text is longer than {MAX_WARNING} characters")
    if isinstance(by, Account):
        if by.pk == account.pk:
            raise Forbidden("This action is not allowed on your own account")
        await roles.check_may_moderate(by, account)
    from fedisora.services.account_deletion import disable_login, suspend_account

    async with events.transaction():
        if action == "suspend":
            await suspend_account(account, by=by)
        elif action == "disable":
            await disable_login(account, by=by)
        elif action == "silence":
            await silence(account, by=by)
        elif action == "sensitive":
            await sensitize(account, by=by)
        elif not text or not account.local:
            return None  # nothing done, and no one to tell
        else:  # the others refuse the instance actor themselves
            _refuse_special(account)
            await audit.record(by, "account.warn", account, text)
        return await warn(account, action, text, report=report)


# --- appeals ---------------------------------------------------------------------------------


def appeal_deadline(warning: AccountWarning) -> datetime:
    """When *warning* can no longer be appealed."""
    return warning.created_at + APPEAL_WINDOW


async def warnings_of(account: Account) -> list[AccountWarning]:
    """*account*'s warnings, newest first, with their appeals fetched."""
    return list(
        await AccountWarning.filter(account_id=account.pk)
        .order_by("-id")
        .prefetch_related("appeal")
        .limit(200)
    )


async def warning_of(account: Account, warning_id: int) -> AccountWarning:
    """*account*'s warning *warning_id*; anyone else's is unknown (:class:`NotFound`)."""
    warning = await AccountWarning.get_or_none(pk=warning_id, account_id=account.pk)
    if warning is None:
        raise NotFound("you have no such warning")
    return warning


async def file_appeal(account: Account, warning: AccountWarning, text: str) -> Appeal:
    """*account* appeals its *warning*: once, within :data:`APPEAL_WINDOW`."""
    if warning.account_id != account.pk:
        raise NotFound("you have no such warning")
    text = text.strip()
    if not text:
        raise Invalid("say why the decision should be reversed")
    if len(text) > MAX_APPEAL:
        raise Invalid(f"an appeal is at most {MAX_APPEAL} characters")
    if warning.action == "none":
        raise Invalid("this warning took no action: there is nothing to appeal")
    if utcnow() > warning.created_at + APPEAL_WINDOW:
        raise Forbidden(f"warnings can be appealed for {APPEAL_WINDOW.days} days; this one no more")
    if await Appeal.filter(account_warning_id=warning.pk).exists():
        raise Conflict("you have appealed this warning already: one appeal per warning")
    from tortoise.exceptions import IntegrityError

    try:
        # One transaction: the appeal and the staff's notices commit together (a crash
        # between them must not leave an appeal no moderator hears of).
        async with events.transaction():
            appeal = await Appeal.create(
                account_id=account.pk, account_warning_id=warning.pk, text=text
            )
            await _tell_staff(account, warning, appeal)
    except IntegrityError as exc:  # a concurrent appeal of the same warning won
        raise Conflict("you have appealed this warning already: one appeal per warning") from exc
    return appeal


async def _tell_staff(account: Account, warning: AccountWarning, appeal: Appeal) -> None:
    """Notify the staff who may decide *appeal* (``fedisora.admin_appeal``): the active staff
    (:func:`roles.active_staff`) who may moderate the appellant *account* (an appeal by a
    moderator goes to the admins only); the appellant is its account."""
    from fedisora.services.notify import notify

    staff = await roles.active_staff()
    users = {
        u.account_id: u
        for u in await User.filter(account_id__in=[*(m.pk for m in staff), account.pk])
    }
    for member in staff:
        user = users.get(member.pk)
        if user is None or not roles.may_moderate(user, users.get(account.pk)):
            continue
        await notify(
            member,
            NotificationType.ADMIN_APPEAL,
            dedupe_key=f"appeal:{appeal.pk}",
            from_account=account,
            account_warning=warning,
        )


async def suspension_notice(account: Account) -> AccountWarning | None:
    """The warning that told *account* of its suspension (the newest ``suspend`` one); None
    when it was suspended without one. Its owner is shown it while logged in to the
    suspended account (:mod:`fedisora.services.sessions`)."""
    return (
        await AccountWarning.filter(account_id=account.pk, action="suspend").order_by("-id").first()
    )


def pending_appeals() -> QuerySet[Appeal]:
    """Appeals waiting for a decision, oldest first (a query; the caller limits it)."""
    return Appeal.filter(state=AppealState.PENDING).order_by("id")


def _target(appeal: Appeal) -> str:
    return audit.target("appeal", appeal.pk, f"appeal #{appeal.pk}")


async def _decide(appeal: Appeal, by: Account, state: AppealState) -> Appeal:
    now = utcnow()
    changed = await Appeal.filter(pk=appeal.pk, state=AppealState.PENDING).update(
        state=state, decided_by_id=by.pk, decided_at=now
    )
    if not changed:
        raise Conflict(f"appeal #{appeal.pk} is decided already")
    return await Appeal.get(pk=appeal.pk)


async def _undo(warning: AccountWarning, account: Account, by: Account) -> str:
    """Undo what *warning* did, where it can be undone; what was done, in words."""
    from fedisora.services.account_deletion import unsuspend_account

    action = warning.action
    if action == "silence":
        await unsilence(account, by=by)
    elif action == "sensitive":
        await unsensitize(account, by=by)
    elif action == "suspend":
        if account.suspended_at is not None:
            await unsuspend_account(account, by=by)
    elif action == "disable":
        if await User.filter(account_id=account.pk, disabled=True).update(disabled=False):
            await audit.record(by, "account.enable", account)
    elif action == "mark_statuses_as_sensitive" and warning.status_ids:
        ids = [int(i) for i in warning.status_ids]
        marked = {"pk__in": ids, "account_id": account.pk, "deleted_at": None, "sensitive": True}
        clips: list[Any] = list(await Clip.filter(**marked).values_list("id", flat=True))
        comments: list[Any] = list(await Comment.filter(**marked).values_list("id", flat=True))
        await _flag(account, clips, comments, False)
        await audit.record(by, "status.unmark_sensitive", account, f"{len(ids)} unmarked: {ids}")
    return UNDONE.get(action, "nothing")


async def _tell(
    account: Account, warning: AccountWarning, appeal: Appeal, kind: NotificationType
) -> None:
    from fedisora.services.notify import notify

    await notify(account, kind, dedupe_key=f"appeal:{appeal.pk}", account_warning=warning)


async def approve_appeal(appeal: Appeal, by: Account) -> Appeal:
    """Approve *appeal*: its warning's action is undone where it can be, the user told."""
    warning = await AccountWarning.get(pk=appeal.account_warning_id)
    account = await Account.get(pk=warning.account_id)
    # One transaction: the decision, its undoing and the notice commit together (a crash
    # between them must not leave an appeal decided that its owner is never told of).
    async with events.transaction():
        decided = await _decide(appeal, by, AppealState.APPROVED)
        undone = await _undo(warning, account, by)
        detail = f"{warning.action}: undone {undone}"
        await audit.record(by, "appeal.approve", _target(appeal), detail)
        await _tell(account, warning, decided, NotificationType.APPEAL_APPROVED)
    return decided


async def reject_appeal(appeal: Appeal, by: Account) -> Appeal:
    """Reject *appeal*: the decision stands; the user is told."""
    warning = await AccountWarning.get(pk=appeal.account_warning_id)
    account = await Account.get(pk=warning.account_id)
    async with events.transaction():  # as approve_appeal: decided and told together
        decided = await _decide(appeal, by, AppealState.REJECTED)
        await audit.record(by, "appeal.reject", _target(appeal), warning.action)
        await _tell(account, warning, decided, NotificationType.APPEAL_REJECTED)
    return decided
