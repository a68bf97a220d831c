"""The ``fedisora`` command: init, serve, worker, migrate, createuser, deleteuser, approve,
reject, role, suspend, unsuspend, likeness, policy, optout, check, render, verify, model.

Every failure a user can cause ends with one line ``error: ...`` on stderr and exit code 1
(2 for a malformed command line); no traceback reaches them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedisora import urls
from fedisora.config import ENV_FILE_NAME, ConfigError, Settings, load_settings, read_env_file
from fedisora.db import DatabaseError, close_db, init_db, migrate
from fedisora.errors import FedisoraError

if TYPE_CHECKING:
    from fedisora.federation.context import Federation
    from fedisora.models import Account

__all__ = ["main"]

log = logging.getLogger("fedisora")

ADMIN_PASSWORD_FILE = "initial-admin-password"
WS_MAX_SIZE = 64 * 1024
"""The largest WebSocket message ``serve`` accepts (uvicorn's default is 16 MiB, held in
memory per message): a streaming client only sends small subscribe and unsubscribe messages.
A larger one closes the socket (1009) before it is read in."""


class CommandError(Exception):
    """A clear, user-facing failure of a command."""


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _run(coro: Awaitable[int]) -> int:
    return asyncio.run(coro)  # type: ignore[arg-type]


def _settings() -> Settings:
    return load_settings()


def _require_secret(settings: Settings) -> None:
    if not settings.secret_key:
        raise CommandError(
            "FEDISORA_SECRET_KEY is not set and no "
            f"{settings.data_dir / ENV_FILE_NAME} exists: run `fedisora init` first"
        )


# --- init -----------------------------------------------------------------------------------


RECORDED_SETTINGS = ("FEDISORA_DOMAIN", "FEDISORA_INSECURE_HTTP")
"""Settings that shape every URL the instance makes (actor ids, links): ``init`` records
them in ``fedisora.env`` when the environment gives them (as ``scripts/serve`` does), so a
command run later against the same data directory without them (``createuser``) makes the
same URLs. Without this, an http instance started by ``scripts/serve`` got https actor ids
from a ``createuser`` run in a plain shell, for good."""


def _write_env_file(settings: Settings) -> Settings:
    """Create ``<data dir>/fedisora.env`` with a generated secret key, once, and record the
    :data:`RECORDED_SETTINGS` the environment gives that it does not hold yet."""
    path = settings.data_dir / ENV_FILE_NAME
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    existing = read_env_file(path) if path.is_file() else {}
    lines: list[str] = []
    if not settings.secret_key and "FEDISORA_SECRET_KEY" not in existing:
        lines.append(f"FEDISORA_SECRET_KEY={secrets.token_urlsafe(48)}")
    chosen = {
        "FEDISORA_DOMAIN": settings.domain,
        "FEDISORA_INSECURE_HTTP": "1" if settings.insecure_http else "0",
    }
    for key in RECORDED_SETTINGS:
        if key not in os.environ:
            continue
        if key not in existing:
            lines.append(f"{key}={chosen[key]}")
        elif _recorded_form(existing[key], key) != chosen[key]:
            print(
                f"warning: {key} is {os.environ[key]!r} here but {existing[key]!r} in {path}; "
                "the environment wins for this command only (URLs already made keep theirs)",
                file=sys.stderr,
            )
    if not lines:
        return settings
    if not path.is_file():
        lines.insert(0, "# Written by `fedisora init`. Environment variables override these.")
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    path.chmod(0o600)
    return load_settings()


def _recorded_form(raw: str, key: str) -> str:
    """A recorded value as :func:`_write_env_file` writes it (for comparing)."""
    if key == "FEDISORA_INSECURE_HTTP":
        return "1" if raw.strip().lower() in ("1", "true", "yes", "on") else "0"
    return raw.strip().lower()


async def cmd_init(args: argparse.Namespace) -> int:
    from fedisora.models import User
    from fedisora.services.accounts import (
        create_instance_actor,
        create_local_account,
    )

    settings = _write_env_file(_settings())
    urls.configure(settings)
    settings.media_root.mkdir(parents=True, exist_ok=True)
    await migrate(settings)
    await init_db(settings)
    try:
        await create_instance_actor()
        from fedisora.services import audit, provenance

        written = await provenance.provision(
            settings, by=audit.CLI, replace=args.new_provenance_root
        )
        print(f"provenance signing certificate: {written.describe()}")
        admin = await User.filter(is_admin=True).prefetch_related("account").first()
        if admin is not None:
            print(f"admin account @{admin.account.username} already exists")
        else:
            password = args.admin_password or secrets.token_urlsafe(12)
            await create_local_account(args.admin_username, args.admin_email, password, admin=True)
            pw_file = settings.data_dir / ADMIN_PASSWORD_FILE
            pw_file.write_text(password + "\n")
            pw_file.chmod(0o600)
            print(f"created admin @{args.admin_username} <{args.admin_email}>")
            print(f"admin password: {password}  (also in {pw_file})")
    finally:
        await close_db()
    print(f"instance {settings.base_url} is ready; database {settings.database_url}")
    return 0


# --- serve / worker --------------------------------------------------------------------------


def _login_banner(settings: Settings, host: str, port: int) -> str:
    pw_file = settings.data_dir / ADMIN_PASSWORD_FILE
    where = f"the password in {pw_file}" if pw_file.is_file() else "your admin password"
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return (
        f"fedisora is serving http://{shown}:{port}/ (public URL {settings.base_url})\n"
        f"log in as admin at http://{shown}:{port}/login with the admin e-mail or username "
        f"and {where}"
    )


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from fedisora.accesslog import log_config

    settings = _settings()
    _require_secret(settings)
    _run(_migrate_only(settings))
    child: _Supervised | None = None
    if not settings.redis_url and not args.no_render_worker:
        # Embedded defaults: rendering runs in a worker process of its own, so the process
        # that answers HTTP never loads torch. Kept running: started again if it dies.
        child = _Supervised(
            [
                sys.executable,
                "-m",
                "fedisora",
                "worker",
                "--queues",
                "render",
                "--parent-pid",
                str(os.getpid()),
            ],
            "the render worker",
            stop_timeout=settings.worker_stop_grace_seconds + 5,
        )
        child.start()
    print(_login_banner(settings, args.host, args.port), flush=True)
    try:
        uvicorn.run(
            "fedisora.app:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            log_level=settings.log_level,
            log_config=log_config(),  # uvicorn's, with secrets redacted from the access log
            # The app reads X-Forwarded-For itself, from FEDISORA_TRUSTED_PROXIES only
            # (fedisora.boundary.proxies); uvicorn's own reading would trust 127.0.0.1, or
            # whatever FORWARDED_ALLOW_IPS says, by default.
            proxy_headers=False,
            # open streaming responses (server-sent events) never finish on their own
            timeout_graceful_shutdown=5,
            workers=args.workers,
            ws_max_size=WS_MAX_SIZE,
        )
    finally:
        if child is not None:
            child.stop()
    return 0


class _Supervised:
    """A child process kept running by a thread of ours: started again whenever it exits
    (the OOM killer, a crash, a worker that found itself unable to go on), after a pause
    that grows to a minute while it keeps dying young, until :meth:`stop`."""

    def __init__(self, argv: list[str], what: str, *, stop_timeout: float) -> None:
        self.argv, self.what, self.stop_timeout = argv, what, stop_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._keep, name=what, daemon=True)

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        with self._lock:
            if not self._stopping.is_set():
                self.process = subprocess.Popen(self.argv, env=os.environ.copy())
                self.starts += 1

    def _keep(self) -> None:
        pause = 1.0
        while not self._stopping.is_set():
            process = self.process
            assert process is not None
            started = time.monotonic()
            code = process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > 60:
                pause = 1.0  # it ran a while: not a crash loop
            log.error("%s exited with code %s; starting it again in %.0f s", self.what, code, pause)
            if self._stopping.wait(pause):
                return
            pause = min(pause * 2, 60.0)
            self._spawn()

    def stop(self) -> None:
        """Stop keeping it and end it: SIGTERM, then SIGKILL after *stop_timeout* seconds."""
        with self._lock:
            self._stopping.set()
            process = self.process
        if process is None:
            return
        process.terminate()
        try:
            process.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._thread.join(5)


async def _migrate_only(settings: Settings) -> int:
    await migrate(settings)
    return 0


async def _exit_with_parent(parent_pid: int, stop: asyncio.Event) -> None:
    """Stop when the process that started us is gone, however it ended (even SIGKILL).

    ``serve`` may not get to clean up after itself: uvicorn re-raises the signal that stopped it.
    """
    while not stop.is_set():
        if os.getppid() != parent_pid:
            stop.set()
            return
        await asyncio.sleep(1)


async def cmd_worker(args: argparse.Namespace) -> int:
    from fedisora.work.machines import build_engine
    from fedisora.work.runner import InProcessRunner

    settings = _settings()
    _require_secret(settings)
    urls.configure(settings)
    queues = tuple(q.strip() for q in args.queues.split(",") if q.strip())
    if not queues:
        raise CommandError("--queues needs at least one queue name (default, render)")
    await init_db(settings)
    engine = build_engine(settings)
    from fedisora.federation import install as install_federation

    install_federation(engine)  # local actions taken by handlers are delivered
    from fedisora.streaming.broker import start_publisher

    stop_publisher = await start_publisher(settings.redis_url)  # events reach the streams
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = (
        asyncio.create_task(_exit_with_parent(args.parent_pid, stop)) if args.parent_pid else None
    )
    grace = settings.worker_stop_grace_seconds
    died: str | None = None
    restart: list[str] = []

    def request_restart(reason: str) -> None:
        """A handler found this process unable to go on (a render thread stuck past its
        stage's bound): stop, and exit with an error for the supervisor to start it again."""
        restart.append(reason)
        stop.set()

    engine.context["request_restart"] = request_restart
    try:
        if settings.redis_url:
            from fedisora.work.arq_worker import (
                ArqWaker,
                build_worker,
                stop_worker,
                wait_for_redis,
            )

            if not await wait_for_redis(settings.redis_url, stop):
                return 0  # stopped while waiting
            waker = await ArqWaker.connect(settings.redis_url)
            engine.add_waker(waker)
            workers = [build_worker(engine, settings.redis_url, q) for q in queues]
            tasks = [asyncio.create_task(w.async_run()) for w in workers]
            print(f"arq worker for queues {', '.join(queues)}", flush=True)
            died = await _until_stopped_or_dead(stop, dict(zip(tasks, queues, strict=True)))
            await asyncio.gather(
                *(stop_worker(w, t, grace=grace) for w, t in zip(workers, tasks, strict=True))
            )
            await waker.pool.aclose()
        else:
            runner = InProcessRunner(engine, queues=queues, concurrency=args.concurrency)
            runner.start()
            assert runner.task is not None
            print(f"in-process worker for queues {', '.join(queues)}", flush=True)
            died = await _until_stopped_or_dead(stop, {runner.task: ",".join(queues)})
            await runner.stop(grace=grace)
    finally:
        if watcher is not None:
            watcher.cancel()
        await stop_publisher()
        await close_db()
    if died is not None:
        # Not a silent stop: a supervisor (docker compose's restart:, ``serve`` for its
        # embedded render worker, systemd) starts the worker again.
        raise CommandError(f"the worker for {died} stopped unexpectedly; exiting to be restarted")
    if restart:
        raise CommandError(f"{restart[0]}; exiting to be restarted")
    return 0


async def _until_stopped_or_dead(
    stop: asyncio.Event, tasks: dict[asyncio.Task[Any], str]
) -> str | None:
    """Wait for *stop*, or for one of the worker *tasks* (each named by its queues) to end on
    its own, which it never should (a Redis outage is survived inside it): then its queues,
    after logging why."""
    stopping = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    for task in done:
        if task is not stopping and not stop.is_set():
            error = None if task.cancelled() else task.exception()
            log.error("the worker for %s stopped", tasks[task], exc_info=error)
            return tasks[task]
    return None


# --- lookup ----------------------------------------------------------------------------------


async def cmd_lookup(args: argparse.Namespace) -> int:
    """Which clip is the video FILE a copy of? (the service the API and /provenance use)"""
    from fedisora.services.fingerprints import lookup_file

    path = Path(args.file)
    if not await asyncio.to_thread(path.is_file):
        raise CommandError(f"{path} does not exist or is not a file")
    settings = _settings()
    urls.configure(settings)
    await migrate(settings)
    await init_db(settings)
    try:
        matches = await lookup_file(path, settings)
    finally:
        await close_db()
    if args.json:
        print(json.dumps({"matches": [m.to_json() for m in matches]}, indent=2))
    elif not matches:
        print(f"{path}: no clip known here matches it")
    else:
        for m in matches:
            where = f"status {m.status_id}" if m.status_id else "not received here"
            said = f", named by {m.via}" if m.via else ""
            print(
                f"{path}: a copy of {m.url} by @{m.author} ({where}, "
                f"provenance {m.provenance}), score {m.score:.2f}{said}"
            )
    return 0 if matches else 1


# --- migrate / createuser / deleteuser / check -----------------------------------------------


async def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    await migrate(settings)
    print(f"migrations applied to {settings.database_url}")
    return 0


async def cmd_backup(args: argparse.Namespace) -> int:
    """``backup DIR``: the database, configuration, provenance keys and roots, and media into
    a new directory (:mod:`fedisora.backup`)."""
    from fedisora.backup import BackupError, backup

    settings = _settings()
    try:
        done = await asyncio.to_thread(backup, settings, Path(args.dir))
    except BackupError as exc:
        raise CommandError(str(exc)) from exc
    print(f"backed up to {args.dir}: {done.backend} database, {done.files} files, {done.bytes:,} B")
    return 0


async def cmd_restore(args: argparse.Namespace) -> int:
    """``restore DIR``: a backup into this empty instance (:mod:`fedisora.backup`)."""
    from fedisora.backup import BackupError, restore

    settings = _settings()
    try:
        done = await restore(settings, Path(args.dir))
    except BackupError as exc:
        raise CommandError(str(exc)) from exc
    print(
        f"restored {args.dir}: {done.backend} database and {done.files} files, {done.bytes:,} bytes"
    )
    return 0


async def cmd_media(args: argparse.Namespace) -> int:
    """``media migrate --to s3``: this instance's media files from local disk into its S3
    bucket, verified and resumable (:mod:`fedisora.media_migrate`)."""
    from fedisora.media_migrate import MigrateError, migrate_media
    from fedisora.media_store import LocalStore, MediaStoreError, s3_store

    settings = _settings()
    source = LocalStore(settings.media_root)
    try:
        target = s3_store(settings, scratch=settings.media_root)
    except MediaStoreError as exc:
        raise CommandError(exc.detail) from exc
    print(f"moving media from {source.describe()} to {target.describe()}", flush=True)
    try:
        done = await migrate_media(
            source, target, keep_local=args.keep_local, say=lambda s: print(s, flush=True)
        )
    except MigrateError as exc:
        raise CommandError(f"media migrate: {exc}") from exc
    print(
        f"done: {done.total} files in the bucket ({done.copied} uploaded, {done.bytes:,} bytes; "
        f"{done.already} there already), all verified by SHA-256; "
        f"{done.removed} local copies removed"
    )
    if settings.media_backend != "s3":
        print("now set FEDISORA_MEDIA_BACKEND=s3 and restart the instance")
    return 0


async def cmd_createuser(args: argparse.Namespace) -> int:
    from fedisora.services.accounts import create_local_account

    settings = _settings()
    urls.configure(settings)
    await migrate(settings)
    await init_db(settings)
    try:
        account = await create_local_account(
            args.username, args.email, args.password, admin=args.admin
        )
    finally:
        await close_db()
    role = "admin" if args.admin else "user"
    print(f"created {role} @{account.username} ({account.uri})")
    return 0


async def cmd_deleteuser(args: argparse.Namespace) -> int:
    """Delete a local account as the admin pages and API do; its Delete is queued for the
    running instance's workers to deliver."""
    from fedisora.federation import install as install_federation
    from fedisora.federation import uninstall as uninstall_federation
    from fedisora.models import Account
    from fedisora.services import audit
    from fedisora.services.account_deletion import delete_local_account, is_deleted

    username = args.username.removeprefix("@")
    if not args.yes:
        raise CommandError(
            f"deleting @{username} removes its login and content and cannot be undone: "
            "add --yes to confirm"
        )
    settings = _settings()
    urls.configure(settings)
    await migrate(settings)
    await init_db(settings)
    # Its events are processed here as they commit: the Delete becomes Delivery rows the
    # instance's runners send (left to them if the account's earlier events are not done).
    install_federation(None)
    try:
        account = await Account.get_or_none(username__iexact=username, domain=None)
        if account is None:
            raise CommandError(f"no local account @{username}")
        was_deleted = await is_deleted(account)
        done = await delete_local_account(account, settings=settings, by=audit.CLI)
        queued = await _queued(account, "account.deleted")
    finally:
        await uninstall_federation()
        await close_db()
    if was_deleted:
        print(f"@{done.username} was already deleted; its clean-up is complete")
        return 0
    sent = (
        "the Delete is queued for the instance's workers"
        if queued
        else f"the Delete goes to {done.deliveries} remote inboxes"
    )
    print(
        f"deleted @{done.username}: {done.clips} clips, {done.comments} comments, "
        f"{done.likes} likes, {done.boosts} boosts, {done.follows} follows, "
        f"{done.media_files} media files, {done.render_jobs_cancelled} render jobs cancelled; "
        f"{sent}; the username stays reserved"
    )
    return 0


async def _decide_signup(args: argparse.Namespace, *, accept: bool) -> int:
    """Approve (or reject: delete) a sign-up waiting for approval, through the service the
    admin pages and API use; the audit log names the command line."""
    from fedisora.models import Account
    from fedisora.services import audit
    from fedisora.services.signup import approve, reject

    username = args.username.strip().removeprefix("@")
    settings = _settings()
    urls.configure(settings)
    await migrate(settings)
    await init_db(settings)
    try:
        account = await Account.get_or_none(username__iexact=username, domain=None)
        if account is None:
            raise CommandError(f"no local account @{username}")
        if accept:
            await approve(account, by=audit.CLI)
        else:
            await reject(account, by=audit.CLI)
    finally:
        await close_db()
    if accept:
        print(f"approved @{account.username}: it can log in now")
    else:
        print(f"rejected @{account.username}: the account is deleted, its name is free again")
    return 0


async def cmd_approve(args: argparse.Namespace) -> int:
    return await _decide_signup(args, accept=True)


async def cmd_reject(args: argparse.Namespace) -> int:
    return await _decide_signup(args, accept=False)


async def cmd_role(args: argparse.Namespace) -> int:
    """Make a local account an admin, a moderator or a user (see :func:`change_role`)."""
    settings = _settings()
    urls.configure(settings)
    await migrate(settings)
    await init_db(settings)
    try:
        print(await change_role(args.username, args.role))
    finally:
        await close_db()
    return 0


async def change_role(username: str, role: str) -> str:
    """Give the local account *username* the *role*, through the service the admin pages
    use (the instance's last admin keeps the role); the audit log names the command line.
    Returns what to print; :class:`CommandError` for a refusal."""
    from fedisora.errors import FedisoraError
    from fedisora.models import Account
    from fedisora.services import audit, roles

    username = username.strip().removeprefix("@")
    account = await Account.get_or_none(username__iexact=username, domain=None)
    if account is None:
        raise CommandError(f"no local account @{username}")
    try:
        old, new = await roles.set_role(account, role, by=audit.CLI)
    except FedisoraError as exc:
        raise CommandError(exc.message) from None
    if old == new:
        return f"@{account.username} is already {_a(new)}"
    return f"@{account.username} is now {_a(new)} (was {_a(old)})"


def _a(role: str) -> str:
    return f"an {role}" if role == "admin" else f"a {role}"


async def _queued(account: Account, kind: str) -> bool:
    """Whether *account*'s latest event of *kind* waits for the instance's runners (its
    actor's earlier events were not done yet), rather than having been processed here."""
    from fedisora.models import OutboxEvent

    last = await OutboxEvent.filter(actor_id=account.pk, kind=kind).order_by("-id").first()
    return last is not None and last.state != "done"


async def _moderated_account(settings: Settings, acct: str) -> Account:
    """The account *acct* names: ``name`` (or ``name@`` this instance's domain) for a local
    one, ``name@domain`` for a remote one this instance knows. Refuses a deleted one."""
    from fedisora.models import Account
    from fedisora.services.account_deletion import is_deleted, is_remote_deleted

    username, _, domain = acct.strip().removeprefix("@").partition("@")
    domain = domain.lower()
    if not username or "@" in domain:
        raise CommandError(f"{acct!r} is not an account: give name or name@domain")
    if domain in ("", settings.domain.lower()):
        account = await Account.get_or_none(username__iexact=username, domain=None)
        if account is None:
            raise CommandError(f"no local account @{username}")
    else:
        account = await Account.get_or_none(username__iexact=username, domain=domain)
        if account is None:
            raise CommandError(f"no account @{username}@{domain} is known here")
    if await is_deleted(account):
        raise CommandError(f"@{account.acct} was deleted: it cannot be suspended or unsuspended")
    if is_remote_deleted(account):
        raise CommandError(
            f"@{account.acct} was deleted by its server: it cannot be suspended or unsuspended"
        )
    return account


async def _moderate(args: argparse.Namespace, *, lift: bool) -> int:
    """Suspend (or with *lift*, unsuspend) an account as the admin API and pages do, through
    the same service: a local account's actor ``Update`` is queued for the running instance's
    workers to deliver; a remote account's suspension is local moderation (nothing is sent)."""
    from fedisora.federation import install as install_federation
    from fedisora.federation import uninstall as uninstall_federation
    from fedisora.models import Account, Delivery, utcnow
    from fedisora.services import audit, moderation
    from fedisora.services.account_deletion import unsuspend_account

    settings = _settings()
    urls.configure(settings)
    await migrate(settings)
    await init_db(settings)
    install_federation(None)  # the actor's Update becomes Delivery rows (see cmd_deleteuser)
    try:
        account = await _moderated_account(settings, args.acct)
        started = utcnow()
        note = ""
        if lift:
            account = await unsuspend_account(
                account, by=audit.CLI
            )  # refuses one not suspended here
            if not account.local:
                note = await _refetched(settings, account)
        elif account.suspended_at is not None:
            raise CommandError(f"@{account.acct} is already suspended here")
        else:  # as the admin pages and API: a local account is told, and can appeal
            notice = getattr(args, "text", "") or ""
            await moderation.act_on_account(account, "suspend", by=audit.CLI, text=notice)
            account = await Account.get(pk=account.pk)
        sent = await Delivery.filter(
            sender_id=account.pk,
            activity_id__startswith=f"{account.uri}#updates/",
            created_at__gte=started,
        ).count()
        queued = account.local and await _queued(
            account, "account.unsuspended" if lift else "account.suspended"
        )
    finally:
        await uninstall_federation()
        await close_db()
    done = "unsuspended" if lift else "suspended"
    if queued:
        print(f"{done} @{account.acct}; the actor's Update is queued for the instance's workers")
    elif account.local:
        print(f"{done} @{account.acct}; the actor's Update goes to {sent} remote inboxes")
    else:
        print(f"{done} @{account.acct} here; its server is not told{note}")
    return 0


async def _refetched(settings: Settings, account: Account) -> str:
    """Refetch a remote account just unsuspended, as the admin API does: its server may have
    changed it while the suspension here refused its activities. Says how it went."""
    from fedisora.federation.actors import refetch_unsuspended
    from fedisora.federation.context import get_federation

    fresh = await refetch_unsuspended(get_federation(settings), account)
    if fresh is None:
        return "; it is refetched on its next use (its server did not answer now)"
    if fresh.origin_suspended_at is not None:
        return "; refetched: its own server suspends it, so it stays hidden"
    return "; refetched"


async def cmd_suspend(args: argparse.Namespace) -> int:
    return await _moderate(args, lift=False)


async def cmd_unsuspend(args: argparse.Namespace) -> int:
    return await _moderate(args, lift=True)


def _how_verified(row: Any, accounts: dict[int, Any]) -> str:
    """How a likeness was verified (or why it waits), for ``fedisora likeness``."""
    if row.verified_at is None:
        return (
            f"{row.verification_method}: waiting for an admin"
            if row.verification_method
            else "not yet"
        )
    by = accounts.get(row.verified_by_id) if row.verified_by_id is not None else None
    who = f" by @{by.username}" if by is not None else ""
    when = row.verified_at.strftime("%Y-%m-%d %H:%M UTC")
    return f"{row.verification_method or 'unrecorded'}{who}, {when}"


async def cmd_likeness(args: argparse.Namespace) -> int:
    """``likeness verify USERNAME`` / ``likeness reject USERNAME --reason R``: an admin's
    decision on a likeness waiting for verification (recorded as verified by the CLI);
    ``likeness list [--state S]``: the local likenesses and how each was verified."""
    from fedisora.models import Account
    from fedisora.services import likeness

    if args.action != "list" and not args.username:
        raise CommandError(f"likeness {args.action} needs the USERNAME whose likeness it is")
    if args.action == "reject" and not (args.reason or "").strip():
        raise CommandError("likeness reject needs --reason (shown to the account's owner)")
    settings = _settings()
    urls.configure(settings)
    await init_db(settings)
    try:
        if args.action == "list":
            rows = await likeness.local_likenesses(args.state or None, limit=10_000)
            ids = {r.account_id for r in rows} | {
                r.verified_by_id for r in rows if r.verified_by_id is not None
            }
            accounts = {a.pk: a for a in await Account.filter(id__in=list(ids))}
            for r in rows:
                owner = accounts.get(r.account_id)
                name = f"@{owner.username}" if owner is not None else "(gone)"
                line = f"{name}\t{r.state}\t{_how_verified(r, accounts)}"
                print(line + (f"\t{r.reason}" if r.reason else ""))
            if not rows:
                print("no likeness" + (f" in state {args.state}" if args.state else ""))
            return 0
        if args.action == "verify":
            row = await likeness.verify(args.username, method="admin (command line)")
        else:
            row = await likeness.reject(
                args.username, reason=args.reason, method="admin (command line)"
            )
    finally:
        await close_db()
    print(f"likeness of @{args.username.removeprefix('@')}: {row.state}")
    return 0


async def cmd_policy(args: argparse.Namespace) -> int:
    """``policy add LIST TERM [--note N]`` / ``policy remove ID`` / ``policy list [LIST]``:
    the prompt policy's protected names (recorded in the audit log as done from the command
    line)."""
    from fedisora.services import audit, prompt_policy

    if args.action == "add" and (not args.list or not args.term):
        raise CommandError("policy add needs the LIST (public_figure or protected_work) and TERM")
    if args.action == "remove" and (not args.list or _row_id(args.list) is None):
        raise CommandError("policy remove needs the ID of the term (policy list shows it)")
    settings = _settings()
    urls.configure(settings)
    await init_db(settings)
    try:
        if args.action == "list":
            rows = await prompt_policy.terms(args.list or None)
            for r in rows:
                line = f"{r.pk}\t{r.list_name.value}\t{r.term}\t{r.source.value}"
                print(line + (f"\t{r.note}" if r.note else ""))
            if not rows:
                print("no terms")
            return 0
        if args.action == "add":
            row = await prompt_policy.add_term(
                audit.CLI, args.list, " ".join(args.term), args.note or ""
            )
            print(f"added {row.pk}\t{row.list_name.value}\t{row.term}")
        else:
            row = await prompt_policy.remove_term(audit.CLI, _row_id(args.list) or 0)
            print(f"removed {row.pk}\t{row.list_name.value}\t{row.term}")
    finally:
        await close_db()
    return 0


async def cmd_optout(args: argparse.Namespace) -> int:
    """``optout list [--state S]`` / ``optout approve ID`` / ``optout reject ID --reason R`` /
    ``optout remove ID --reason R`` / ``optout lists`` / ``optout subscribe URL [--auto]`` /
    ``optout mode URL review|auto`` / ``optout fetch URL`` / ``optout apply URL`` /
    ``optout discard URL`` / ``optout unsubscribe URL``: the rights holders' opt-out
    registry, as on ``/admin/optouts`` (see :func:`optout_command`)."""
    if args.action in _OPTOUT_ROW_ACTIONS and _row_id(args.id) is None:
        raise CommandError(f"{args.id!r} is not an opt-out id: `fedisora optout list` shows them")
    if args.action in ("reject", "remove") and not (args.reason or "").strip():
        raise CommandError(
            f"optout {args.action} needs --reason (the rights holder may be told it)"
        )
    from fedisora.federation.context import close_federation, get_federation

    settings = _settings()
    urls.configure(settings)
    await init_db(settings)
    try:
        fed = get_federation(settings) if args.action == "fetch" else None
        print(await optout_command(args, insecure=settings.insecure_http, fed=fed))
    finally:
        await close_federation()
        await close_db()
    return 0


async def cmd_relay(args: argparse.Namespace) -> int:
    """``relay list`` / ``relay add URL`` / ``relay remove URL``: the ActivityPub relays this
    instance subscribes to, as on ``/admin/relays`` (:mod:`fedisora.services.relays`)."""
    from fedisora.errors import FedisoraError
    from fedisora.federation.context import close_federation, get_federation
    from fedisora.services import audit, relays

    settings = _settings()
    urls.configure(settings)
    await init_db(settings)
    try:
        if args.action == "list":
            rows = await relays.list_relays()
            for r in rows:
                print(f"{r.inbox_url}\t{r.state.value}\t{r.actor_uri or '(no actor known)'}")
            if not rows:
                print("no relays")
            return 0
        fed = get_federation(settings)
        try:
            if args.action == "add":
                row = await relays.add(args.url, by=audit.CLI, fed=fed)
                print(f"following the relay {row.inbox_url}: pending until it accepts")
            else:
                found = [
                    r for r in await relays.list_relays() if args.url in (r.inbox_url, r.actor_uri)
                ]
                if not found:
                    raise CommandError(f"no relay {args.url}: `fedisora relay list` shows them")
                await relays.remove(found[0].pk, by=audit.CLI, fed=fed)
                print(f"unfollowed the relay {found[0].inbox_url}")
        except FedisoraError as exc:
            raise CommandError(exc.message) from exc
    finally:
        await close_federation()
        await close_db()
    return 0


_OPTOUT_ROW_ACTIONS = ("approve", "reject", "remove")
"""``fedisora optout`` actions on an opt-out (by id); the others act on a subscribed list."""


async def optout_command(
    args: argparse.Namespace, *, insecure: bool = False, fed: Federation | None = None
) -> str:
    """Run a parsed ``fedisora optout`` command through the services the admin page uses
    (the audit log names the command line as the actor); *insecure* allows ``http://``
    list URLs, as the page does on an instance serving plain HTTP; *fed* fetches a list
    (``fetch``). Returns what to print; :class:`CommandError` for a refusal (an unknown id,
    an opt-out decided already or not approved, a bad URL or mode, a list subscribed
    already or not subscribed, nothing waiting for review, a failed fetch)."""
    from fedisora.models import OptOutState
    from fedisora.services import audit, optouts

    action = args.action
    if action == "list":
        state = OptOutState(args.state) if args.state else None
        rows = await optouts.optouts(state, limit=10_000)
        lines = []
        for r in rows:
            line = f"{r.pk}\t{r.state.value}\t{r.kind.value}\t{r.who}\t{'; '.join(r.terms)}"
            line += f"\t{r.source}"
            lines.append(line + (f"\t{r.reason}" if r.reason else ""))
        return "\n".join(lines) or "no opt-outs" + (f" {args.state}" if args.state else "")
    if action == "lists":
        lines = []
        for sub in await optouts.subscriptions():
            line = f"{sub.url}\t{sub.mode.value}\tversion {sub.applied_version} applied"
            waiting = optouts.pending_summary(sub)
            line += f"\twaiting for review: {waiting}" if waiting else ""
            lines.append(line + (f"\tlast error: {sub.last_error}" if sub.last_error else ""))
        return "\n".join(lines) or "no subscribed lists"
    try:
        if action == "approve":
            row = await optouts.approve(audit.CLI, _row_id(args.id) or 0)
            return f"approved opt-out {row.pk} ({row.who}): {'; '.join(row.terms)}"
        if action == "reject":
            row = await optouts.reject(audit.CLI, _row_id(args.id) or 0, args.reason)
            return f"rejected opt-out {row.pk} ({row.who}): {row.reason}"
        if action == "remove":
            row = await optouts.remove(audit.CLI, _row_id(args.id) or 0, args.reason)
            return (
                f"removed opt-out {row.pk} ({row.who}): {row.reason}; its terms left the "
                "prompt policy and the published list"
            )
        if action == "subscribe":
            mode = "auto" if args.auto else "review"
            sub = await optouts.subscribe(audit.CLI, args.url, mode, insecure=insecure)
            then = (
                "its changes are applied as fetched"
                if args.auto
                else "new versions wait for review on /admin/optouts"
            )
            return f"subscribed to {sub.url} ({mode}): fetched by the optout_lists chore; {then}"
        sub = await optouts.subscription_at(args.url)
        if action == "mode":
            sub = await optouts.set_mode(audit.CLI, sub.pk, args.mode)
            said = f"{sub.url} is in {sub.mode.value} mode: " + (
                "new versions are applied as fetched"
                if sub.mode.value == "auto"
                else "new versions wait for review"
            )
            waiting = optouts.pending_summary(sub)
            if waiting:
                said += f"; {waiting} still waits for review (`fedisora optout apply` or discard)"
            return said
        if action == "apply":
            waiting = optouts.pending_summary(sub)
            done = await optouts.apply_pending(audit.CLI, sub.pk)
            if not waiting.startswith(f"version {done.applied_version}:"):
                waiting = f"version {done.applied_version}"  # a newer one came meanwhile
            return f"applied {waiting} of {done.url}"
        if action == "fetch":
            if fed is None:
                raise RuntimeError("optout fetch needs the federation's peer client")
            outcome = await optouts.fetch_now(fed, audit.CLI, sub.pk)
            sub = await optouts.subscription_at(sub.url)
            if outcome.result == "error":
                raise CommandError(f"the fetch of {sub.url} failed: {outcome.message}")
            if outcome.result == "pending":
                return (
                    f"fetched {sub.url}: {optouts.pending_summary(sub)} waits for review "
                    "(`fedisora optout apply` or discard)"
                )
            if outcome.result == "applied":
                return f"fetched {sub.url}: version {sub.applied_version} is applied"
            return f"fetched {sub.url}: no newer version (version {sub.applied_version} applied)"
        if action == "discard":
            done = await optouts.discard_pending(audit.CLI, sub.pk)
            return (
                f"discarded version {done.applied_version} of {done.url}: only a newer "
                "version comes back"
            )
        await optouts.unsubscribe(audit.CLI, sub.pk)
        return f"unsubscribed from {sub.url}: the opt-outs it brought left the prompt policy"
    except FedisoraError as exc:
        if action in _OPTOUT_ROW_ACTIONS:
            if exc.status == 404:
                raise CommandError(
                    f"no opt-out {args.id}: `fedisora optout list` shows them"
                ) from None
            raise CommandError(f"cannot {action} opt-out {args.id}: {exc.message}") from None
        raise CommandError(exc.message) from None


def _row_id(raw: str | None) -> int | None:
    from fedisora.ids import row_id

    return row_id(raw) if raw else None


async def cmd_check(args: argparse.Namespace) -> int:
    from fedisora.health import check_redis

    settings = _settings()  # raises ConfigError with the setting's name
    problems: list[str] = []
    workers: dict[str, Any] | None = None
    if not settings.secret_key:
        problems.append("FEDISORA_SECRET_KEY is not set (run `fedisora init`)")
    try:
        await asyncio.wait_for(init_db(settings), 10)
        from fedisora.health import check_database

        db = await check_database()
        if not db["ok"]:
            problems.append(f"database {settings.database_url}: {db['error']}")
        else:
            from fedisora.health import check_workers

            workers = await check_workers()
        await close_db()
    except (DatabaseError, TimeoutError, OSError) as exc:
        problems.append(f"database {settings.database_url}: {exc or 'timed out'}")
    redis = await check_redis(settings.redis_url)
    if not redis["ok"]:
        problems.append(f"redis {settings.redis_url}: {redis['error']}")
    print(f"domain: {settings.domain} ({settings.base_url})")
    print(f"database: {settings.database_url}")
    print(f"redis: {settings.redis_url or 'not set (in-process runner)'}")
    from fedisora.media_store import MediaStoreError, media_store

    store = media_store(settings)
    if store.backend == "local":
        print(f"media: {settings.media_root}")
    else:
        print(f"media: {store.describe()}, scratch work in {settings.media_root}")
        try:  # a look-up of a key that is never stored: reachable, the credentials accepted
            await store.exists("fedisora-check/reachable")
        except MediaStoreError as exc:
            problems.append(f"media store: {exc.detail}")
    print(f"render model: {settings.render_model} (unless `fedisora model use` chose another)")
    print(f"likeness check: {settings.likeness_check or 'none (admins verify likenesses)'}")
    if settings.likeness_check:
        from fedisora.services import likeness_check

        trouble = likeness_check.problem(settings.likeness_check)
        if trouble:
            problems.append(f"FEDISORA_LIKENESS_CHECK: {trouble}")
    if workers is not None:
        # The full report, as /healthz gives it to admins only. Not a problem when none run
        # (a check before starting the instance): it is said, not failed.
        for worker in workers.get("workers", []):
            print(
                f"worker: {worker.get('name')} ({worker.get('kind')}, pid {worker.get('pid')}, "
                f"queues {','.join(worker.get('queues', []))}, "
                f"seen {worker.get('seconds_since_seen')} s ago)"
            )
        if workers.get("missing_queues"):
            print(f"workers: no live worker serves {', '.join(workers['missing_queues'])}")
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    print("ok")
    return 0


# --- entry point -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fedisora", description="A federated home for AI-generated short video."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="create config, database, keys and the admin user")
    p.add_argument("--admin-username", default="admin")
    p.add_argument("--admin-email", default="admin@localhost")
    p.add_argument("--admin-password", default=None, help="default: generated and printed")
    p.add_argument(
        "--new-provenance-root",
        action="store_true",
        help="replace the provenance signing key and root; the old root stays published and "
        "trusted for the clips signed under it",
    )
    p.set_defaults(func=cmd_init, is_async=True)

    p = sub.add_parser("serve", help="run the web server (and, without Redis, the workers)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--no-render-worker",
        action="store_true",
        help="do not start the embedded render worker process",
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="web processes answering on the port (each runs durable work too without Redis)",
    )
    p.set_defaults(func=cmd_serve, is_async=False)

    p = sub.add_parser("worker", help="run durable work (arq with Redis, in-process without)")
    p.add_argument("--queues", default="default,render")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_worker, is_async=True)

    p = sub.add_parser("migrate", help="apply database migrations")
    p.set_defaults(func=cmd_migrate, is_async=True)

    p = sub.add_parser("createuser", help="create a local user")
    p.add_argument("username")
    p.add_argument("--email", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--admin", action="store_true")
    p.set_defaults(func=cmd_createuser, is_async=True)

    p = sub.add_parser(
        "deleteuser", help="delete a local user's login and content (the username stays taken)"
    )
    p.add_argument("username")
    p.add_argument("--yes", action="store_true", help="confirm: deletion cannot be undone")
    p.set_defaults(func=cmd_deleteuser, is_async=True)

    for name, func, what in (
        ("approve", cmd_approve, "approve a sign-up waiting for approval"),
        ("reject", cmd_reject, "reject a sign-up waiting for approval (deletes the account)"),
    ):
        p = sub.add_parser(name, help=what)
        p.add_argument("username", help="the local account that signed up")
        p.set_defaults(func=func, is_async=True)

    p = sub.add_parser("role", help="make a local account an admin, a moderator or a user")
    p.add_argument("username", help="the local account")
    p.add_argument("role", choices=("admin", "moderator", "user"))
    p.set_defaults(func=cmd_role, is_async=True)

    for name, func, what in (
        ("suspend", cmd_suspend, "suspend an account here (a local one's suspension federates)"),
        ("unsuspend", cmd_unsuspend, "lift this instance's suspension of an account"),
    ):
        p = sub.add_parser(name, help=what)
        p.add_argument("acct", help="name (a local account) or name@domain (a remote one)")
        if name == "suspend":
            p.add_argument(
                "--text",
                default="",
                help="the notice a local account's owner reads (and can appeal)",
            )
        p.set_defaults(func=func, is_async=True)

    p = sub.add_parser(
        "likeness", help="verify, reject or list likenesses (cameos) and how they were verified"
    )
    p.add_argument("action", choices=("verify", "reject", "list"))
    p.add_argument("username", nargs="?", help="the local account whose likeness it is")
    p.add_argument("--reason", default="", help="why (required to reject; shown to them)")
    p.add_argument(
        "--state",
        default="",
        choices=("", "pending", "verified", "rejected", "revoked"),
        help="list: only likenesses in this state",
    )
    p.set_defaults(func=cmd_likeness, is_async=True)

    p = sub.add_parser("policy", help="list, add or remove the prompt policy's protected names")
    p.add_argument("action", choices=("list", "add", "remove"))
    p.add_argument(
        "list",
        nargs="?",
        help="public_figure or protected_work (add; list: only this list), or the ID (remove)",
    )
    p.add_argument("term", nargs="*", help="add: the name to protect")
    p.add_argument("--note", default="", help="add: why (shown to admins)")
    p.set_defaults(func=cmd_policy, is_async=True)

    p = sub.add_parser(
        "backup", help="back up the database, configuration, provenance keys and media"
    )
    p.add_argument("dir", help="a new (or empty) directory")
    p.set_defaults(func=cmd_backup, is_async=True)
    p = sub.add_parser("restore", help="restore a backup into this empty instance")
    p.add_argument("dir", help="the backup's directory")
    p.set_defaults(func=cmd_restore, is_async=True)

    p = sub.add_parser("media", help="move the media files into object storage")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    o = actions.add_parser(
        "migrate", help="copy every media file into the S3 bucket, verified; resumable"
    )
    o.add_argument("--to", required=True, choices=["s3"], help="where to: s3 (FEDISORA_S3_*)")
    o.add_argument(
        "--keep-local", action="store_true", help="keep the local files once all are moved"
    )
    p.set_defaults(func=cmd_media, is_async=True)

    p = sub.add_parser("relay", help="the ActivityPub relays this instance subscribes to")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="the relays and whether each accepted")
    o = actions.add_parser("add", help="subscribe to a relay (its inbox or actor URL)")
    o.add_argument("url", help="the relay's inbox URL (https://relay.example/inbox) or actor URL")
    o = actions.add_parser("remove", help="unsubscribe from a relay")
    o.add_argument("url", help="the relay's inbox or actor URL, as `relay list` shows it")
    p.set_defaults(func=cmd_relay, is_async=True)

    p = sub.add_parser("optout", help="review opt-out requests and subscribed opt-out lists")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    o = actions.add_parser("list", help="list the opt-outs (newest first)")
    o.add_argument(
        "--state", default="", choices=("", "pending", "approved", "rejected"), help="only these"
    )
    o = actions.add_parser("approve", help="approve a pending opt-out: its terms join the policy")
    o.add_argument("id", help="the opt-out's id (optout list shows it)")
    o = actions.add_parser("reject", help="reject a pending opt-out")
    o.add_argument("id", help="the opt-out's id (optout list shows it)")
    o.add_argument("--reason", default="", help="why (required; the rights holder may be told)")
    o = actions.add_parser(
        "remove", help="withdraw an approved opt-out: its terms leave the policy and the list"
    )
    o.add_argument("id", help="the opt-out's id (optout list shows it)")
    o.add_argument("--reason", default="", help="why (required; the rights holder may be told)")
    actions.add_parser("lists", help="the subscribed lists, each with what waits for review")
    o = actions.add_parser("subscribe", help="subscribe to another instance's opt-out list")
    o.add_argument("url", help="the list's URL (https)")
    o.add_argument(
        "--auto", action="store_true", help="apply its changes as fetched (default: review)"
    )
    o = actions.add_parser("mode", help="switch a subscribed list between review and auto")
    o.add_argument("url", help="the subscribed list's URL")
    o.add_argument("mode", choices=("review", "auto"), help="from its next fetch on")
    o = actions.add_parser(
        "fetch", help="fetch a subscribed list now (applied, or kept for review, by its mode)"
    )
    o.add_argument("url", help="the subscribed list's URL")
    o = actions.add_parser("apply", help="apply the changes of a list's version waiting for review")
    o.add_argument("url", help="the subscribed list's URL")
    o = actions.add_parser(
        "discard", help="discard a list's version waiting for review (only a newer one comes back)"
    )
    o.add_argument("url", help="the subscribed list's URL")
    o = actions.add_parser("unsubscribe", help="end a subscription: its opt-outs leave the policy")
    o.add_argument("url", help="the subscribed list's URL")
    p.set_defaults(func=cmd_optout, is_async=True)

    p = sub.add_parser("check", help="validate configuration and reach database and Redis")
    p.set_defaults(func=cmd_check, is_async=True)

    from render.cli import cmd_model, cmd_render, cmd_verify  # light: no torch until it runs

    p = sub.add_parser("render", help="render one clip through the render queue")
    p.add_argument("prompt")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--aspect", default=None, help="9:16 (default), 1:1 or 16:9")
    p.add_argument("--seed", type=int, default=None, help="default: random")
    p.add_argument(
        "--audio",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a sound track (default: on where the model renders sound, LTX-2)",
    )
    p.add_argument("--out", default=None, help="also copy the signed MP4 here")
    p.add_argument("--user", default=None, help="render as this local user (default: admin)")
    p.set_defaults(func=cmd_render, is_async=True)

    p = sub.add_parser("verify", help="check a clip's C2PA provenance and watermark")
    p.add_argument("file")
    p.set_defaults(func=cmd_verify, is_async=True)

    p = sub.add_parser("model", help="list, pull and choose the render model")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="the models (what each needs; installed, in use)")
    o = actions.add_parser(
        "pull", help="download a catalogue model into the models directory, checked"
    )
    o.add_argument("name", help="a catalogue name (model list shows them)")
    o.add_argument(
        "--from",
        dest="source",
        default=None,
        metavar="DIR",
        help="copy from a Hugging Face hub cache (offline) instead of downloading",
    )
    o = actions.add_parser("use", help="put a model in use (workers load it for their next render)")
    o.add_argument("name", help="a tiny model, an installed model's name, or a model directory")
    p.set_defaults(func=cmd_model, is_async=True)
    p = sub.add_parser(
        "lookup",
        help="name the clip a video is a copy of (exit 0), or say none is known (exit 1)",
    )
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print the API's JSON answer")
    p.set_defaults(func=cmd_lookup, is_async=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = os.environ.get("FEDISORA_LOG_LEVEL", "info").upper()
    fmt = os.environ.get("FEDISORA_LOG_FORMAT", "text").strip().lower()
    from fedisora.logs import configure

    configure(
        level if level in ("DEBUG", "INFO", "WARNING", "ERROR") else "INFO",
        "json" if fmt == "json" else "text",
    )
    if level != "DEBUG":  # tortoise logs every connection shutdown at INFO
        logging.getLogger("tortoise").setLevel(logging.WARNING)
    func: Callable[[argparse.Namespace], Any] = args.func
    try:
        result = _run(func(args)) if args.is_async else func(args)
    except (ConfigError, DatabaseError, CommandError, FedisoraError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


def run() -> None:
    """The ``fedisora`` program (and ``python -m fedisora``): :func:`main`, then exit."""
    sys.exit(_exit_past_daemon_threads(main()))


DAEMON_THREAD_GRACE = 10.0
"""Seconds a command's daemon threads get to end once it returns (see below)."""


def _exit_past_daemon_threads(code: int) -> int:
    """*code*, once the process's daemon threads have ended, or exit with it at once. Only
    for a process of its own (:func:`run`): a caller of :func:`main` keeps its threads.

    A render stage runs in a daemon thread (``render.queue._in_thread``), told to stop at
    its next denoising step when its worker stops. If one is still inside native code (torch)
    when the interpreter finalizes, the C++ runtime aborts the process (``terminate called
    without an active exception``, SIGABRT) instead of exiting with *code*. So wait a little
    for them, and if one still runs, end the process with ``os._exit`` after flushing what
    was written.
    """
    deadline = time.monotonic() + DAEMON_THREAD_GRACE
    for thread in threading.enumerate():
        if thread.daemon and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
    # The object store's client (obstore) runs a native runtime of its own threads, which
    # the interpreter's finalization can abort as well (SIGABRT after the command's output,
    # seen once with `fedisora check` against S3): end such a process the same way.
    native = "obstore" in sys.modules
    if native or any(t.daemon and t.is_alive() for t in threading.enumerate()):
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    run()
