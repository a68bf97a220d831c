"""Outgoing mail as durable work: an :class:`~fedisora.models.OutgoingMail` row per mail.

A mail is queued as a row (``pending``), in the transaction of what it tells about (a
sign-up), and sent by the runners that advance every other work row (the in-process runner,
or the arq worker's sweeps). The row is the truth: ``pending`` → ``sent`` once the SMTP
server took it, or ``failed`` after :data:`RETRY` ran out (about two days of exponential
back-off) or when the server refuses the recipient for good. A crash between the server's
acceptance and the row's move sends that one mail again (at least once, never lost); a mail
whose row says ``sent`` is never sent again.

The body is made as the mail is sent: a confirmation link's token
(:func:`fedisora.services.email_confirmation.issue`) is never stored in the clear, and a
failed attempt deletes the token it made.

Sending uses the standard library's :mod:`smtplib` in a thread (``asyncio.to_thread``):
aiosmtplib is not installed here, and a mail now and then (sign-ups) does not justify a
dependency; the thread keeps the event loop free while the server answers (each call has a
timeout of :data:`SMTP_TIMEOUT`).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import unquote, urlsplit

from fedisora.config import Settings
from fedisora.models import EmailConfirmation, OutgoingMail, User, utcnow
from fedisora.work.engine import Machine, Outcome, Retry, WorkContext
from fedisora.work.graph import State, StateGraph, exponential

__all__ = ["MAIL_GRAPH", "RETRY", "SMTP_TIMEOUT", "machines", "queue", "send_message", "wake"]

log = logging.getLogger("fedisora.mail")

RETRY = exponential(timedelta(seconds=30), 2.0, timedelta(hours=2), timedelta(days=2))
SMTP_TIMEOUT = 30.0

MAIL_GRAPH = StateGraph(
    "outgoing_mails",
    [
        State("pending", to=("sent", "skipped"), retry=RETRY, max_attempts=len(RETRY) + 1),
        State("sent", terminal=True),
        State("skipped", terminal=True),  # nothing to send any more (confirmed meanwhile)
        State("failed", terminal=True),
    ],
    initial="pending",
    failed="failed",
)


async def queue(kind: str, to_address: str, *, user_id: int | None = None) -> OutgoingMail:
    """A row for a mail to send, due now (in the caller's transaction, if any); call
    :func:`wake` with it once that has committed."""
    now = utcnow()
    row: OutgoingMail = await OutgoingMail.create(
        kind=kind,
        to_address=to_address,
        user_id=user_id,
        state=MAIL_GRAPH.initial,
        state_changed_at=now,
        next_attempt_at=now,
        created_at=now,
    )
    return row


async def wake(row: OutgoingMail) -> None:
    """Wake this process's runner for *row* (best effort: a sweep finds it anyway)."""
    from fedisora.federation.rows import wake_row

    try:
        await wake_row(OutgoingMail, row)
    except Exception:  # the next sweep sends it
        log.warning("waking the mail runner failed", exc_info=True)


def send_message(smtp_url: str, message: EmailMessage) -> None:
    """Hand *message* to the SMTP server of *smtp_url* (blocking: run it in a thread).
    ``smtps://`` speaks TLS from the start; ``smtp://`` upgrades with STARTTLS when the
    server offers it. Raises :class:`OSError` or :class:`smtplib.SMTPException`."""
    parts = urlsplit(smtp_url)
    host = parts.hostname or "127.0.0.1"
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if parts.scheme == "smtps":
        client = smtplib.SMTP_SSL(host, parts.port or 465, timeout=SMTP_TIMEOUT, context=context)
    else:
        client = smtplib.SMTP(host, parts.port or 25, timeout=SMTP_TIMEOUT)
    with client:
        client.ehlo()
        if parts.scheme == "smtp" and client.has_extn("starttls"):
            client.starttls(context=context)
            client.ehlo()
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        client.send_message(message)


async def _confirmation(row: OutgoingMail, settings: Settings) -> tuple[EmailMessage, str] | None:
    """The confirmation mail of *row* and the hash of its new token; None when the user
    is gone or confirmed already."""
    from fedisora.services import instance_settings
    from fedisora.services.email_confirmation import TOKEN_TTL, issue, token_hash

    user = await User.get_or_none(pk=row.user_id) if row.user_id is not None else None
    if user is None or user.email_confirmed:
        return None
    values = await instance_settings.effective(settings)
    raw = await issue(user.pk)
    link = f"{settings.base_url}/auth/confirm/{raw}"
    hours = int(TOKEN_TTL.total_seconds() // 3600)
    message = EmailMessage()
    message["Subject"] = f"Confirm your e-mail address on {values.instance_name}"
    message.set_content(
        f"Welcome to {values.instance_name} ({settings.domain})!\n\n"
        f"To confirm your e-mail address, open this link (it works once, for {hours} hours):\n\n"
        f"{link}\n\n"
        "Then log in. If you did not sign up, ignore this mail: nothing happens without "
        "the link.\n"
    )
    return message, token_hash(raw)


async def _send(row: OutgoingMail, ctx: WorkContext) -> Outcome:
    settings: Settings = ctx.engine.context["settings"]
    if not settings.smtp_url:
        return Retry("FEDISORA_SMTP_URL is not set", after=timedelta(hours=1), counts=False)
    if row.kind != "confirm":
        await ctx.move(MAIL_GRAPH.failed, last_error=f"no mail of kind {row.kind!r} here")
        return MAIL_GRAPH.failed
    made = await _confirmation(row, settings)
    if made is None:
        return "skipped"
    message, made_hash = made
    message["From"] = settings.mail_from
    message["To"] = row.to_address
    message["Message-ID"] = make_msgid(domain=settings.domain.partition(":")[0])
    try:
        async with ctx.keep_lease():
            await asyncio.to_thread(send_message, settings.smtp_url, message)
    except smtplib.SMTPRecipientsRefused as exc:  # the address is refused for good
        await EmailConfirmation.filter(token_hash=made_hash).delete()
        await ctx.move(MAIL_GRAPH.failed, last_error=f"recipient refused: {exc.recipients}")
        return MAIL_GRAPH.failed
    except (OSError, smtplib.SMTPException) as exc:
        await EmailConfirmation.filter(token_hash=made_hash).delete()  # never went out
        log.warning("mail %s to %s: %s: %s", row.pk, row.to_address, type(exc).__name__, exc)
        return Retry(f"{type(exc).__name__}: {exc}")
    await ctx.move("sent", sent_at=utcnow())
    return "sent"


def machines(settings: Settings) -> list[Machine]:
    """The provider listed in ``fedisora.work.machines.PROVIDERS``."""
    return [Machine(OutgoingMail, MAIL_GRAPH, {"pending": _send})]
