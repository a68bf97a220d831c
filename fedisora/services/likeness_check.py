"""The automatic likeness check of the admin's choosing (issue 14, point 1).

``FEDISORA_LIKENESS_CHECK`` names it:

- empty (the default): only admins verify likenesses (``/admin/likenesses``,
  ``fedisora likeness verify|reject``);
- ``command:/absolute/path/to/program``: the program runs, without a shell, as
  ``PROGRAM SAMPLE CHALLENGE REFERENCE [REFERENCE ...]`` (the verification sample's path, a
  PNG still or an MP4 video; the challenge code the owner was given; the paths of the
  normalised 512 px reference stills), with a small environment (``PATH``, ``HOME``,
  ``LANG``, ``LC_ALL``, ``TZ``, ``TMPDIR``: none of the instance's secrets) in a session of
  its own. Exit 0: verified; exit 1: rejected, the first line it printed on stdout is the
  reason the owner is shown; any other exit, a program that cannot be started or one still
  running after ``FEDISORA_LIKENESS_CHECK_TIMEOUT_SECONDS`` (killed, with anything it
  started): undecided, left for an admin, the error logged;
- ``python:package.module:function``: the callable gets one :class:`CheckInput` and returns
  a :class:`Verdict` (or a ``(verdict, reason)`` pair, or just the verdict) where verdict is
  ``verified``, ``rejected`` or ``undecided``; a coroutine function is awaited (and
  cancelled at the timeout), a plain one runs in a thread (at the timeout the likeness is
  left for an admin, but Python cannot stop the thread: a plain function that may hang
  should bound its own time); an exception, a wrong answer or the timeout is undecided,
  logged.

``fedisora check`` reports a program that is not an executable file, or a function that
cannot be imported (:func:`problem`).

The check runs as durable work, never inside the registration request: the housekeeping
chore ``likeness_checks`` (:mod:`fedisora.work.housekeeping`) checks one pending likeness a
run (:func:`run_chore`), the oldest not checked yet, and registration wakes it
(:func:`schedule`). A runner killed during a check leaves the likeness as it was: the
chore's next run checks it again, at most :data:`MAX_TRIES` times (counted in the chore's
progress before each try), after which it is left for an admin. The outcome is written by
a conditional update that applies only while the likeness is still pending, unchecked and
of the same registration (challenge code): an admin's decision meanwhile, or a registration
anew, wins.

What is recorded (the likeness row's own fields): ``verification_method`` ``check
command:/path`` or ``check python:mod:func`` (cut to 64 characters), ``verified_by`` none,
``verified_at``, and ``reason``; a check that did not decide leaves the likeness pending
with ``verification_method`` ending in ``: undecided`` (the mark that it ran) until an
admin decides. A pending likeness whose ``verification_method`` is empty has not been
checked yet: registration (a first one or anew) clears it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tortoise.transactions import in_transaction

from fedisora.config import Settings
from fedisora.errors import Conflict, NotFound
from fedisora.models import Account, Chore, Likeness, LikenessState, utcnow

if TYPE_CHECKING:
    from fedisora.services.retention import Fence
    from fedisora.work.engine import Engine, WorkContext

__all__ = [
    "CHORE",
    "MAX_TRIES",
    "VERDICTS",
    "CheckInput",
    "Verdict",
    "label",
    "problem",
    "run_check",
    "run_chore",
    "schedule",
]

log = logging.getLogger("fedisora.likeness")

CHORE = "likeness_checks"
MAX_TRIES = 3
"""Runs of the check interrupted (the runner killed) before a likeness is left for an admin."""
VERDICTS = ("verified", "rejected", "undecided")
UNDECIDED = ": undecided"
_ENV_KEPT = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
_MAX_OUTPUT = 64 * 1024


@dataclass(frozen=True, slots=True)
class CheckInput:
    """What a check is given about one likeness."""

    username: str
    sample: Path
    """The verification sample: a PNG still or an MP4 video (see *sample_type*)."""
    sample_type: str
    challenge: str
    """The code the owner was given to show in the sample."""
    references: tuple[Path, ...]
    """The normalised reference stills (512 px PNG squares around the face)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    verdict: str  # verified | rejected | undecided
    reason: str = ""


def label(spec: str) -> str:
    """How a likeness verified by *spec* is recorded (``verification_method``, 64 chars: a
    longer one keeps its end, the program's or function's name, after an ellipsis)."""
    text = f"check {spec}"
    if len(text) <= 64:
        return text
    kind, _, target = spec.partition(":")
    head = f"check {kind}:…"
    return head + target[-(64 - len(head)) :]


def problem(spec: str) -> str | None:
    """What keeps the check *spec* from running here (``fedisora check``), or ``None``."""
    kind, _, target = spec.partition(":")
    if kind == "command":
        path = Path(target)
        if not path.is_file() or not os.access(path, os.X_OK):
            return f"{target} is not an executable file"
        return None
    try:
        _load(target)
    except Exception as exc:
        return f"{target} cannot be loaded: {type(exc).__name__}: {exc}"
    return None


# --- running the check ----------------------------------------------------------------------


async def _run_command(program: str, data: CheckInput, seconds: float) -> Verdict:
    argv = [program, str(data.sample), data.challenge, *map(str, data.references)]
    env = {k: os.environ[k] for k in _ENV_KEPT if k in os.environ}
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own process group: a timeout kills all of it
        )
    except OSError as exc:
        log.error("likeness check: cannot run %s: %s", program, exc)
        return Verdict("undecided", f"the check program could not be started: {exc}")
    try:
        out, err = await asyncio.wait_for(proc.communicate(), seconds)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        log.error("likeness check: %s did not finish in %.1f s (killed)", program, seconds)
        return Verdict("undecided", f"the check did not finish in {seconds:g} s")
    except BaseException:  # cancelled (the runner stops): the program goes with it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    first = out[:_MAX_OUTPUT].decode("utf-8", "replace").strip().splitlines()
    reason = first[0].strip() if first else ""
    if proc.returncode == 0:
        return Verdict("verified", reason)
    if proc.returncode == 1:
        return Verdict("rejected", reason or "refused by the automatic check")
    tail = err[-2000:].decode("utf-8", "replace").strip()
    log.error(
        "likeness check: %s exited with %s for @%s: %s",
        program,
        proc.returncode,
        data.username,
        tail or "(nothing on stderr)",
    )
    return Verdict("undecided", f"the check program failed (exit status {proc.returncode})")


def _load(target: str) -> Callable[[CheckInput], Any]:
    module_name, _, attr = target.partition(":")
    func = getattr(importlib.import_module(module_name), attr)
    if not callable(func):
        raise TypeError(f"{target} is not callable")
    return func  # type: ignore[no-any-return]


def _as_verdict(answer: Any) -> Verdict:
    if isinstance(answer, Verdict):
        verdict, reason = answer.verdict, answer.reason
    elif isinstance(answer, tuple) and len(answer) == 2:
        verdict, reason = answer
    else:
        verdict, reason = answer, ""
    if verdict not in VERDICTS or not isinstance(reason, str):
        raise TypeError(
            f"a check returns verified, rejected or undecided (with a reason), not {answer!r}"
        )
    return Verdict(verdict, reason)


async def _run_python(target: str, data: CheckInput, seconds: float) -> Verdict:
    try:
        func = _load(target)
        call: Awaitable[Any]
        if inspect.iscoroutinefunction(func):
            call = func(data)
        else:
            call = asyncio.to_thread(func, data)
        return _as_verdict(await asyncio.wait_for(call, seconds))
    except TimeoutError:
        log.error("likeness check: %s did not finish in %.1f s", target, seconds)
        return Verdict("undecided", f"the check did not finish in {seconds:g} s")
    except Exception as exc:
        log.exception("likeness check: %s failed for @%s", target, data.username)
        return Verdict("undecided", f"the check failed: {type(exc).__name__}")


async def run_check(spec: str, data: CheckInput, seconds: float) -> Verdict:
    """Run the check *spec* (``command:...`` or ``python:...``) on *data*."""
    kind, _, target = spec.partition(":")
    if kind == "command":
        return await _run_command(target, data, seconds)
    if kind == "python":
        return await _run_python(target, data, seconds)
    raise ValueError(f"unknown likeness check {spec!r}")


# --- as durable work ------------------------------------------------------------------------


def _unchecked() -> Any:
    return Likeness.filter(
        state=LikenessState.PENDING,
        verification_method="",
        account__domain__isnull=True,
        verification_file__not_isnull=True,
    )


async def _input(likeness: Likeness, settings: Settings) -> CheckInput:
    from fedisora.services.likeness import private_dir, reference_paths

    account = await Account.get(pk=likeness.account_id)
    return CheckInput(
        username=account.username,
        sample=private_dir(settings) / str(likeness.verification_file),
        sample_type=likeness.verification_type,
        challenge=likeness.challenge_code,
        references=tuple(Path(p) for p in reference_paths(likeness, settings)),
    )


async def _record(likeness: Likeness, spec: str, outcome: Verdict) -> str:
    """Write *outcome* to *likeness* if it is still the pending, unchecked registration the
    check looked at; return what happened (the verdict, or ``superseded``)."""
    from fedisora.services import likeness as svc

    account = await Account.get(pk=likeness.account_id)
    code = likeness.challenge_code
    try:
        if outcome.verdict == "verified":
            await svc.verify(
                account.username, method=label(spec), reason=outcome.reason, unchecked=code
            )
        elif outcome.verdict == "rejected":
            await svc.reject(
                account.username, reason=outcome.reason, method=label(spec), unchecked=code
            )
        else:
            marked = await Likeness.filter(
                pk=likeness.pk,
                state=LikenessState.PENDING,
                verification_method="",
                challenge_code=code,
            ).update(
                verification_method=label(spec)[: 64 - len(UNDECIDED)] + UNDECIDED,
                reason=f"waiting for an admin: {outcome.reason}"[:500],
                updated_at=utcnow(),
            )
            if not marked:
                raise Conflict("decided or registered anew meanwhile")
    except (Conflict, NotFound):
        return "superseded"
    return outcome.verdict


async def run_chore(
    ctx: WorkContext, settings: Settings, progress: dict[str, Any], fence: Fence
) -> tuple[dict[str, int], bool]:
    """One run of the ``likeness_checks`` chore: check the oldest pending likeness not
    checked yet (one a run; more is due at once while any is left)."""
    spec = settings.likeness_check
    if not spec:
        progress.pop("trying", None)
        return {}, False
    likeness = await _unchecked().order_by("id").first()
    if likeness is None:
        progress.pop("trying", None)
        return {}, False
    trying = progress.get("trying") or {}
    same = trying.get("likeness") == likeness.pk and trying.get("code") == likeness.challenge_code
    tries = int(trying.get("tries", 0)) + 1 if same else 1
    if tries > MAX_TRIES:
        log.error(
            "likeness check: likeness %s was interrupted %s times; left for an admin",
            likeness.pk,
            MAX_TRIES,
        )
        outcome = Verdict("undecided", f"the check was interrupted {MAX_TRIES} times")
    else:
        progress["trying"] = {
            "likeness": likeness.pk,
            "code": likeness.challenge_code,
            "tries": tries,
        }
        async with in_transaction() as conn:  # committed before the check: a kill counts
            await fence(conn)
        data = await _input(likeness, settings)
        async with ctx.keep_lease():
            outcome = await run_check(spec, data, settings.likeness_check_timeout_seconds)
    progress.pop("trying", None)
    async with in_transaction() as conn:  # still ours (a runner whose lease ran out stops)
        await fence(conn)
    done = await _record(likeness, spec, outcome)
    log.info("likeness check of likeness %s: %s %s", likeness.pk, done, outcome.reason)
    return {f"likeness_{done}": 1}, True


async def schedule(engine: Engine | None) -> None:
    """Make the ``likeness_checks`` chore due now (after a registration) and wake a runner.
    The chore's row is added when missing. Best effort: its regular run finds the likeness
    anyway."""
    from fedisora.work.housekeeping import CHORE_GRAPH, ensure_chores

    try:
        row = await Chore.get_or_none(name=CHORE)
        if row is None:
            await ensure_chores()
            row = await Chore.get_or_none(name=CHORE)
        if row is None:
            return
        now = utcnow()
        await Chore.filter(pk=row.pk, state=CHORE_GRAPH.initial).update(next_attempt_at=now)
        if engine is not None:
            await engine.wake(engine.machine_for(Chore), row)
    except Exception:  # the chore's regular run checks the likeness
        log.warning("waking the likeness check failed", exc_info=True)
