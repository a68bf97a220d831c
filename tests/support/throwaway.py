"""Throwaway services that tests may break: a PostgreSQL cluster, a Redis server, a small file
system, and processes the test kills and restarts. Loopback only; everything is removed on
exit, whatever happened.

* :func:`postgres_cluster`: a cluster of its own (``initdb`` + ``pg_ctl``) on a free port in a
  temporary directory, never the machine's service. As root, the binaries run as the
  ``postgres`` user (PostgreSQL refuses to run as root). ``fsync=off``: the faults here are
  process restarts, and a committed transaction survives a killed postmaster with or without
  fsync (the OS keeps the pages); only a power cut of the host would need it.
* :func:`redis_server`: ``redis-server`` on a free port, without persistence (a restart
  loses every key, as a Redis without AOF does).
* :func:`small_filesystem`: a size-limited tmpfs mounted over a directory (root only), or a
  loop-mounted ext4 image where tmpfs cannot be mounted; it says which it got.
* :class:`Process`: a command in a session of its own with its output in a log file, to be
  SIGKILLed and started again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "PostgresCluster",
    "Process",
    "RedisServer",
    "fill_filesystem",
    "free_port",
    "postgres_cluster",
    "redis_server",
    "small_filesystem",
    "wait_for_port",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, timeout: float = 30.0, *, what: str = "server") -> None:
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not listen on 127.0.0.1:{port} in {timeout} s")
        time.sleep(0.05)


# --- processes ------------------------------------------------------------------------------


@dataclass
class Process:
    """*argv* run in a session of its own (so a kill reaches its children too), its output
    appended to *log*. :meth:`start` again after :meth:`kill` runs a fresh one."""

    argv: Sequence[str]
    log: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    starts: int = 0

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> Process:
        assert not self.alive, f"{self.argv} is running already"
        with self.log.open("ab") as out:
            out.write(f"\n--- start {self.starts + 1}: {' '.join(self.argv)}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                list(self.argv),
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send *sig* to the process's session (its own id) and, for SIGKILL, reap it."""
        if self.popen is None or self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)
        if sig == signal.SIGKILL:
            self.popen.wait(30)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it has not ended within *timeout*."""
        if not self.alive:
            return
        assert self.popen is not None
        self.kill(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)

    def tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


# --- PostgreSQL -----------------------------------------------------------------------------


def _pg_bindir() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent
    raise RuntimeError("no PostgreSQL binaries (pg_ctl, initdb) under /usr/lib/postgresql or PATH")


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster of its own in *root* (data in ``root/data``), on *port*."""

    root: Path
    port: int
    bindir: Path
    as_postgres: bool  # running as root: the binaries run as the postgres user
    downs: int = 0

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _cmd(self, name: str, *args: str) -> list[str]:
        cmd = [str(self.bindir / name), *args]
        return ["runuser", "-u", "postgres", "--", *cmd] if self.as_postgres else cmd

    def _run(self, name: str, *args: str, timeout: float = 60) -> None:
        done = subprocess.run(
            self._cmd(name, *args), capture_output=True, text=True, timeout=timeout, cwd=self.root
        )
        if done.returncode != 0:
            raise RuntimeError(f"{name} {' '.join(args)} failed: {done.stderr or done.stdout}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.root / "data"),
            "-l",
            str(self.root / "log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast`` (clients disconnected, a clean shutdown) or ``immediate`` (the postmaster
        and its backends quit at once, as after a crash: recovery runs at the next start)."""
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", mode, "-w", "-t", "60", "stop")
        self.downs += 1

    @property
    def running(self) -> bool:
        return (self.root / "data" / "postmaster.pid").exists() and port_open(self.port)

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database *name*; a copy of database *template* if given (which nobody may be
        connected to meanwhile)."""
        copy = ("-T", template) if template else ()
        self._run(
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", *copy, name
        )
        return self.url(name)

    def save(self, dest: Path) -> None:
        """Stop the cluster cleanly and copy its data directory to *dest* (a template for
        :func:`postgres_cluster`)."""
        self.stop("fast")
        subprocess.run(["cp", "-a", str(self.root / "data"), str(dest)], check=True)

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "log").read_text(errors="replace")[-chars:]
        return ""


@contextlib.contextmanager
def postgres_cluster(template: Path | None = None) -> Iterator[PostgresCluster]:
    """A cluster for the block, stopped and deleted after it (whatever happened): a fresh
    one, or a copy of *template* (a data directory :meth:`PostgresCluster.save` wrote)."""
    bindir = _pg_bindir()
    as_postgres = os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="fedisora-pg-"))
    if as_postgres:
        shutil.chown(root, "postgres")
    cluster = PostgresCluster(root, free_port(), bindir, as_postgres)
    try:
        if template is None:
            cluster._run(
                "initdb",
                "-D",
                str(root / "data"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            )
        else:  # cp -a keeps the files' owner (postgres) and modes
            subprocess.run(["cp", "-a", str(template), str(root / "data")], check=True)
        cluster.start()
        yield cluster
    finally:
        if (root / "data" / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


# --- Redis ----------------------------------------------------------------------------------


@dataclass
class RedisServer:
    """``redis-server`` on *port* of 127.0.0.1, no persistence."""

    port: int
    process: Process
    restarts: int = 0

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.process.start()
        wait_for_port(self.port, what="redis-server")

    def stop(self) -> None:
        """Stop it as an operator would (SIGTERM: clients are cut off; nothing is saved)."""
        self.process.stop()

    def flush(self) -> None:
        """FLUSHALL: every key of every database gone, connections kept."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port)
        try:
            client.flushall()
        finally:
            client.close()


@contextlib.contextmanager
def redis_server(tmp: Path) -> Iterator[RedisServer]:
    """A Redis server for the block (its log in *tmp*), stopped after it."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    argv = [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(tmp),
        "--daemonize",
        "no",
    ]
    server = RedisServer(port, Process(argv, tmp / "redis.log"))
    try:
        server.start()
        yield server
    finally:
        server.process.stop()


# --- a small file system --------------------------------------------------------------------


def _mount(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)


def _unmount(path: Path) -> None:
    for _ in range(20):
        if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
            return
        time.sleep(0.25)  # a process still writing there is being killed
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextlib.contextmanager
def small_filesystem(path: Path, size_bytes: int) -> Iterator[str]:
    """Mount a file system of *size_bytes* over the empty directory *path* for the block;
    yields ``"tmpfs"`` or, where tmpfs cannot be mounted, ``"loop ext4"``. Unmounted after
    the block, whatever happened. Raises RuntimeError with both errors when neither can be
    mounted (mounting needs root)."""
    path.mkdir(parents=True, exist_ok=True)
    done = _mount(["-t", "tmpfs", "-o", f"size={size_bytes},mode=0755", "tmpfs", str(path)])
    if done.returncode == 0:
        try:
            yield "tmpfs"
        finally:
            _unmount(path)
        return
    tmpfs_error = done.stderr.strip()
    image = path.parent / f".{path.name}.img"
    try:
        with image.open("wb") as fh:
            fh.truncate(size_bytes)
        made = subprocess.run(
            ["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], capture_output=True, text=True
        )
        loop = _mount(["-o", "loop", str(image), str(path)]) if made.returncode == 0 else made
        if loop.returncode != 0:
            raise RuntimeError(
                f"cannot mount a small file system over {path}: tmpfs: {tmpfs_error}; "
                f"loop ext4: {loop.stderr.strip()} (both need root)"
            )
        try:
            yield "loop ext4"
        finally:
            _unmount(path)
    finally:
        image.unlink(missing_ok=True)


def fill_filesystem(path: Path, *, leave: int = 0) -> None:
    """Write zeros to the new file *path* until its file system has no byte left, then give
    back about *leave* bytes (whole pages) by truncating it."""
    import errno

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        size, written = 1 << 20, 0
        while size:
            try:
                written += os.write(fd, b"\0" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                size //= 2
        if leave:
            os.ftruncate(fd, max(0, written - leave))
    finally:
        os.close(fd)
