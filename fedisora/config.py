"""Instance configuration, read once from ``FEDISORA_*`` environment variables.

Every setting has an embedded default so that ``fedisora init && fedisora serve`` works on a
fresh machine with no services: SQLite under ``./data``, media on local disk, work run in-process.
``fedisora init`` writes ``<data dir>/fedisora.env`` with generated secrets; environment variables
override that file. Unknown ``FEDISORA_*`` names and invalid values fail fast with
:class:`ConfigError`, naming the setting.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["ENV_FILE_NAME", "ConfigError", "Settings", "load_settings"]

ENV_PREFIX = "FEDISORA_"
ENV_FILE_NAME = "fedisora.env"

REGISTRATION_MODES = ("open", "approval", "closed")
INVITE_ROLES = ("admins", "users")
_DOMAIN_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$")


class ConfigError(ValueError):
    """A setting is unknown, missing or invalid. The message names the setting."""


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be 1/0, true/false, yes/no or on/off, not {raw!r}")


def _parse_int(name: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _parse_float(name: str, raw: str, low: float, high: float) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _parse_text(name: str, raw: str, limit: int) -> str:
    """A line of text for people (no control characters but newlines), at most *limit* long."""
    text = raw.strip()
    if len(text) > limit or not all(c.isprintable() or c == "\n" for c in text):
        raise ConfigError(f"{name} must be printable text of at most {limit} characters")
    return text


def _check_domain(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if not _DOMAIN_RE.match(value):
        raise ConfigError(f"{name} must be a host name with an optional :port, not {raw!r}")
    return value


def _check_database_url(name: str, raw: str) -> str:
    value = raw.strip()
    scheme = urlsplit(value).scheme
    if scheme not in ("sqlite", "postgres", "postgresql", "asyncpg"):
        raise ConfigError(
            f"{name} must start with sqlite://, postgres:// or postgresql://, not {raw!r}"
        )
    if scheme == "sqlite" and not value[len("sqlite://") :]:
        raise ConfigError(f"{name} needs a file path after sqlite://")
    return value


def _check_redis_url(name: str, raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"{name} must start with redis://, rediss:// or unix://, not {raw!r}")
    return value


def _check_secret(name: str, raw: str) -> str:
    if len(raw) < 32:
        raise ConfigError(f"{name} must be at least 32 characters long")
    return raw


def _check_choice(choices: tuple[str, ...]) -> Callable[[str, str], str]:
    def check(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
        return value

    return check


def _check_model(name: str, raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ConfigError(
            f"{name} must be a built-in model (tiny, tiny-wan, tiny-ltx, tiny-ltx2, "
            "tiny-cogvideox) or a path to a local model directory"
        )
    return value


RENDER_DTYPES = ("auto", "float32", "bfloat16", "float16")


def _check_render_family(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if not value:
        return ""
    from render.spec import FAMILIES

    if value not in FAMILIES:
        raise ConfigError(
            f"{name} must be empty (infer it from the model) or one of "
            f"{', '.join(sorted(FAMILIES))}, not {raw!r}"
        )
    return value


_PYTHON_CHECK = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")


def _check_likeness_check(name: str, raw: str) -> str:
    """The automatic likeness check: empty (admins only), ``command:/absolute/program`` or
    ``python:package.module:function`` (see :mod:`fedisora.services.likeness_check`)."""
    value = raw.strip()
    if not value:
        return ""
    kind, _, target = value.partition(":")
    if kind == "command":
        if not target.startswith("/"):
            raise ConfigError(f"{name}: command: needs an absolute path to a program, not {raw!r}")
        return value
    if kind == "python":
        if not _PYTHON_CHECK.match(target):
            raise ConfigError(
                f"{name}: python: needs package.module:function (a callable), not {raw!r}"
            )
        return value
    raise ConfigError(
        f"{name} must be empty (admins verify likenesses), command:/path/to/program or "
        f"python:package.module:function, not {raw!r}"
    )


def _check_trusted_proxies(name: str, raw: str) -> tuple[str, ...]:
    from fedisora.boundary.proxies import parse_networks

    try:
        return parse_networks(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}; give IP addresses or CIDR networks") from None


def _check_rate_limits(name: str, raw: str) -> dict[str, Any]:
    """``name=COUNT/WINDOW`` overrides of :data:`fedisora.ratelimits.DEFAULTS`."""
    from fedisora.ratelimits import parse_limits

    try:
        return parse_limits(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _check_smtp_url(name: str, raw: str) -> str:
    """Where mail is sent: empty (no mail: sign-ups need no e-mail confirmation), or
    ``smtp://[user:password@]host[:port]`` (STARTTLS when the server offers it) or
    ``smtps://...`` (TLS from the first byte)."""
    value = raw.strip()
    if not value:
        return ""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ConfigError(f"{name} has an invalid port: {raw!r}") from None
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError(
            f"{name} must be smtp://[user:password@]host[:port] or smtps://..., not {raw!r}"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment or port == 0:
        raise ConfigError(f"{name} takes a host and port, no path or query: {raw!r}")
    return value


_MAIL_RE = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+$")


def _check_mail_from(name: str, raw: str) -> str:
    value = raw.strip()
    if value and (len(value) > 254 or not _MAIL_RE.match(value)):
        raise ConfigError(f"{name} must be an e-mail address (noreply@example.com), not {raw!r}")
    return value


DEFAULT_SOURCE_URL = "https://github.com/fedisora/fedisora"


def _check_source_url(name: str, raw: str) -> str:
    value = raw.strip()
    if not value:
        return DEFAULT_SOURCE_URL
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL of the source code, not {raw!r}")
    return value


MEDIA_BACKENDS = ("local", "s3")
S3_SERVE_MODES = ("proxy", "redirect", "public")


def _check_http_url(name: str, raw: str) -> str:
    value = raw.strip().rstrip("/")
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"{name} must be an http(s) URL (https://s3.example.com), not {raw!r}")
    return value


_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _check_bucket(name: str, raw: str) -> str:
    value = raw.strip()
    if value and not _BUCKET_RE.match(value):
        raise ConfigError(
            f"{name} must be an S3 bucket name (3-63 lower-case letters, digits, dots and "
            f"hyphens), not {raw!r}"
        )
    return value


def _check_media_store(values: dict[str, Any]) -> None:
    """The object storage settings hang together (checked when the s3 backend is chosen)."""
    if values.get("media_backend", "local") != "s3":
        return
    prefix = ENV_PREFIX
    missing = [
        prefix + env
        for env, attr in (("S3_BUCKET", "s3_bucket"), ("S3_ENDPOINT", "s3_endpoint"))
        if not values.get(attr)
    ]
    if missing:
        raise ConfigError(f"{prefix}MEDIA_BACKEND=s3 needs {' and '.join(missing)}")
    serve = values.get("s3_serve") or ("public" if values.get("s3_public_url") else "proxy")
    if serve == "public" and not values.get("s3_public_url"):
        raise ConfigError(f"{prefix}S3_SERVE=public needs {prefix}S3_PUBLIC_URL")
    values["s3_serve"] = serve


@dataclass(frozen=True)
class Settings:
    """All instance settings. Build with :func:`load_settings`, not directly."""

    domain: str = "127.0.0.1:8000"
    data_dir: Path = Path("data")
    database_url: str = ""
    redis_url: str | None = None
    media_root: Path = Path("")
    # Where finished media (renders, uploads, posters, avatars) is kept: "local" (under
    # media_root) or "s3" (an S3-compatible bucket; media_root then only holds scratch work).
    # See fedisora.media_store.
    media_backend: str = "local"
    s3_endpoint: str = ""
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_public_url: str = ""  # the bucket's public base URL (a CDN), if it has one
    # How /media/... answers with the s3 backend: "proxy" (the instance streams the object,
    # with Range), "redirect" (to a presigned URL), "public" (links point at s3_public_url).
    # "" picks "public" when s3_public_url is set, else "proxy".
    s3_serve: str = ""
    s3_url_seconds: int = 3600  # how long a presigned URL lasts
    secret_key: str = ""
    render_model: str = "tiny"
    models_dir: Path = Path("")  # where `fedisora model pull` installs models
    insecure_http: bool = False
    registrations: str = "open"
    registrations_message: str = ""  # shown when sign-ups are closed (or need approval)
    invites: str = "admins"  # who may create invite links: admins, or every user
    limited_federation: bool = False  # only allowed domains (DomainAllow) federate
    max_clip_seconds: float = 10.0
    instance_name: str = "fedisora"
    worker_lease_seconds: int = 60
    worker_stop_grace_seconds: float = 5.0  # a stopping worker lets running work finish
    render_steps: int = 0  # denoising steps; 0 keeps the model family's default
    render_timeout_seconds: float = 0.0  # one stage of a render at most; 0: render_timeout()
    render_clips_per_day: int = 50
    render_gpu_seconds_per_day: float = 3600.0
    render_concurrent_jobs: int = 3
    render_slots: int = 1  # renders in the pipeline at once, instance-wide (one per GPU)
    render_family: str = ""  # model family override ("" infers it from the model)
    render_dtype: str = "auto"  # auto: bfloat16 on CUDA for real weights, float32 otherwise
    render_vae_tiling: bool = True
    render_compile: bool = False  # torch.compile the transformer (slow first render)
    render_first_block_cache: float = 0.0  # First Block Cache threshold; 0 disables it
    render_offload: str = "none"  # "model": components on the GPU one at a time
    log_level: str = "info"
    # Storage bounds (see fedisora.services.retention, fedisora.services.media_gc and
    # fedisora.federation.inbox_limits).
    inbox_actor_max_items: int = 10000  # inbox payloads held per remote actor
    inbox_actor_max_mb: int = 64
    inbox_host_max_items: int = 50000  # ... and per remote host
    inbox_host_max_mb: int = 256
    retain_inbox_ignored_minutes: int = 10  # payload of an inbox item with nothing to do
    retain_inbox_processed_minutes: int = 60  # payload of a processed inbox item
    retain_failed_days: int = 3  # failed work rows (payloads, deliveries) for diagnosis
    inbox_dedupe_days: int = 7  # an inbox item's activity id, to recognise a redelivery
    retain_delivered_hours: int = 24  # delivered deliveries
    retain_work_days: int = 7  # other finished work (checks, render input stills, ...)
    media_unattached_hours: int = 24  # uploads and renders no clip, draft or render holds
    # A shown remote clip with cameos: its consents asked about again at the owners' servers
    # this long after they were last checked (a revocation that never reached us).
    cameo_recheck_hours: int = 24
    # Open streaming connections (SSE or WebSocket) per client address (IPv6: per /64) and
    # per access token, in each web process.
    streams_per_ip: int = 50
    streams_per_token: int = 20
    # Status and Account entities kept rendered in each web process, per kind (the rendering
    # cache, fedisora.api.entity_cache; never served stale); 0 turns it off.
    entity_cache_size: int = 10_000
    # Where this instance's source code is offered (AGPL section 13): an instance running
    # modified code must point at its own.
    source_url: str = DEFAULT_SOURCE_URL
    # Reverse proxies (IPs, CIDR networks) whose X-Forwarded-For names the client; none by
    # default: the connection's address is the client's.
    trusted_proxies: tuple[str, ...] = ()
    metrics_allow: tuple[str, ...] = ()
    """Addresses and networks besides loopback that may read ``/metrics``."""
    metrics_token: str = ""
    """A bearer token that may read ``/metrics`` from anywhere."""
    # How a registered likeness is verified besides an admin: "" (admins only),
    # "command:/path/to/program" or "python:package.module:function"
    # (fedisora.services.likeness_check), and how long that check may take.
    likeness_check: str = ""
    likeness_check_timeout_seconds: float = 60.0
    # Rate limits overriding fedisora.ratelimits.DEFAULTS: name -> Limit(count, window).
    rate_limits: Mapping[str, Any] = field(default_factory=dict)
    # Where mail goes (smtp:// or smtps://); when set, sign-ups confirm their e-mail address
    # (fedisora.services.email_confirmation). The sender defaults to noreply@<domain host>.
    smtp_url: str = ""
    smtp_from: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def scheme(self) -> str:
        return "http" if self.insecure_http else "https"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.domain}"

    @property
    def mail_from(self) -> str:
        """The sender of this instance's mail."""
        return self.smtp_from or f"noreply@{self.domain.partition(':')[0]}"

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite://")

    def tortoise_config(self) -> dict[str, Any]:
        """The tortoise-orm configuration for this instance's database."""
        return tortoise_config(self.database_url)


def tortoise_config(database_url: str) -> dict[str, Any]:
    url = database_url
    for alias in ("postgresql://", "postgres://"):
        if url.startswith(alias):
            url = "asyncpg://" + url[len(alias) :]
    connection: str | dict[str, Any] = url
    if url.startswith("sqlite://"):
        # WAL (tortoise's default) with synchronous=NORMAL: a commit survives the process
        # being killed at any point (the crash tests do exactly that), but not a power cut
        # of the host in the instant after it; FULL would fsync on every commit (about
        # 0.3 ms here), which caps an embedded instance's inbox at a few hundred POSTs a
        # second. Deployments that need power-loss durability use PostgreSQL.
        from tortoise.backends.base.config_generator import expand_db_url

        connection = expand_db_url(url)
        connection["credentials"].setdefault("synchronous", "NORMAL")
        # Transactions take the write lock as they begin: one that read first is never
        # refused for a write another process committed meanwhile (fedisora.sqlitebackend).
        connection["engine"] = "fedisora.sqlitebackend"
    elif url.startswith("asyncpg://"):
        from tortoise.backends.base.config_generator import expand_db_url

        from fedisora.pgconnection import PooledConnection

        connection = expand_db_url(url)
        connection["credentials"]["connection_class"] = PooledConnection
    return {
        "connections": {"default": connection},
        "apps": {
            "fedisora": {
                "models": ["fedisora.models"],
                "migrations": "migrations",
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# name -> (Settings field, parser). The parser gets the full variable name for its messages.
_PARSERS: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "DOMAIN": ("domain", _check_domain),
    "DATA_DIR": ("data_dir", lambda _n, raw: Path(raw)),
    "DATABASE_URL": ("database_url", _check_database_url),
    "REDIS_URL": ("redis_url", _check_redis_url),
    "MEDIA_ROOT": ("media_root", lambda _n, raw: Path(raw)),
    "SECRET_KEY": ("secret_key", _check_secret),
    "MEDIA_BACKEND": ("media_backend", _check_choice(MEDIA_BACKENDS)),
    "S3_ENDPOINT": ("s3_endpoint", _check_http_url),
    "S3_BUCKET": ("s3_bucket", _check_bucket),
    "S3_REGION": ("s3_region", lambda _n, raw: raw.strip() or "us-east-1"),
    "S3_ACCESS_KEY": ("s3_access_key", lambda _n, raw: raw.strip()),
    "S3_SECRET_KEY": ("s3_secret_key", lambda _n, raw: raw.strip()),
    "S3_PUBLIC_URL": ("s3_public_url", _check_http_url),
    "S3_SERVE": ("s3_serve", _check_choice(S3_SERVE_MODES)),
    "S3_URL_SECONDS": ("s3_url_seconds", lambda n, raw: _parse_int(n, raw, 60, 7 * 24 * 3600)),
    "RENDER_MODEL": ("render_model", _check_model),
    "MODELS_DIR": ("models_dir", lambda _n, raw: Path(raw)),
    "INSECURE_HTTP": ("insecure_http", _parse_bool),
    "LIMITED_FEDERATION": ("limited_federation", _parse_bool),
    "REGISTRATIONS": ("registrations", _check_choice(REGISTRATION_MODES)),
    "INVITES": ("invites", _check_choice(INVITE_ROLES)),
    "REGISTRATIONS_MESSAGE": (
        "registrations_message",
        lambda n, raw: _parse_text(n, raw, 1000),
    ),
    "MAX_CLIP_SECONDS": ("max_clip_seconds", lambda n, raw: _parse_float(n, raw, 0.5, 10.0)),
    "INSTANCE_NAME": ("instance_name", lambda _n, raw: raw.strip() or "fedisora"),
    "WORKER_LEASE_SECONDS": (
        "worker_lease_seconds",
        lambda n, raw: _parse_int(n, raw, 5, 3600),
    ),
    "WORKER_STOP_GRACE_SECONDS": (
        "worker_stop_grace_seconds",
        lambda n, raw: _parse_float(n, raw, 0.0, 3600.0),
    ),
    "RENDER_STEPS": ("render_steps", lambda n, raw: _parse_int(n, raw, 0, 100)),
    "RENDER_TIMEOUT_SECONDS": (
        "render_timeout_seconds",
        lambda n, raw: _parse_float(n, raw, 0.0, 86400.0),
    ),
    "RENDER_CLIPS_PER_DAY": ("render_clips_per_day", lambda n, raw: _parse_int(n, raw, 0, 100000)),
    "RENDER_GPU_SECONDS_PER_DAY": (
        "render_gpu_seconds_per_day",
        lambda n, raw: _parse_float(n, raw, 0.0, 86400.0 * 64),
    ),
    "RENDER_CONCURRENT_JOBS": (
        "render_concurrent_jobs",
        lambda n, raw: _parse_int(n, raw, 1, 1000),
    ),
    "RENDER_SLOTS": ("render_slots", lambda n, raw: _parse_int(n, raw, 1, 1000)),
    "RENDER_FAMILY": ("render_family", _check_render_family),
    "RENDER_DTYPE": ("render_dtype", _check_choice(RENDER_DTYPES)),
    "RENDER_VAE_TILING": ("render_vae_tiling", _parse_bool),
    "RENDER_COMPILE": ("render_compile", _parse_bool),
    "RENDER_OFFLOAD": ("render_offload", _check_choice(("none", "model"))),
    "RENDER_FIRST_BLOCK_CACHE": (
        "render_first_block_cache",
        lambda n, raw: _parse_float(n, raw, 0.0, 1.0),
    ),
    "INBOX_ACTOR_MAX_ITEMS": (
        "inbox_actor_max_items",
        lambda n, raw: _parse_int(n, raw, 1, 10_000_000),
    ),
    # At least 1 MB: an activity of the largest size accepted (1 MiB) must fit an empty budget.
    "INBOX_ACTOR_MAX_MB": ("inbox_actor_max_mb", lambda n, raw: _parse_int(n, raw, 1, 1_000_000)),
    "INBOX_HOST_MAX_ITEMS": (
        "inbox_host_max_items",
        lambda n, raw: _parse_int(n, raw, 1, 10_000_000),
    ),
    "INBOX_HOST_MAX_MB": ("inbox_host_max_mb", lambda n, raw: _parse_int(n, raw, 1, 1_000_000)),
    "RETAIN_INBOX_IGNORED_MINUTES": (
        "retain_inbox_ignored_minutes",
        lambda n, raw: _parse_int(n, raw, 0, 60 * 24 * 365),
    ),
    "RETAIN_INBOX_PROCESSED_MINUTES": (
        "retain_inbox_processed_minutes",
        lambda n, raw: _parse_int(n, raw, 0, 60 * 24 * 365),
    ),
    "RETAIN_FAILED_DAYS": ("retain_failed_days", lambda n, raw: _parse_int(n, raw, 0, 3650)),
    "INBOX_DEDUPE_DAYS": ("inbox_dedupe_days", lambda n, raw: _parse_int(n, raw, 1, 3650)),
    "RETAIN_DELIVERED_HOURS": (
        "retain_delivered_hours",
        lambda n, raw: _parse_int(n, raw, 0, 24 * 3650),
    ),
    "RETAIN_WORK_DAYS": ("retain_work_days", lambda n, raw: _parse_int(n, raw, 0, 3650)),
    "MEDIA_UNATTACHED_HOURS": (
        "media_unattached_hours",
        lambda n, raw: _parse_int(n, raw, 1, 24 * 3650),
    ),
    "CAMEO_RECHECK_HOURS": (
        "cameo_recheck_hours",
        lambda n, raw: _parse_int(n, raw, 1, 24 * 365),
    ),
    "STREAMS_PER_IP": ("streams_per_ip", lambda n, raw: _parse_int(n, raw, 1, 1_000_000)),
    "STREAMS_PER_TOKEN": ("streams_per_token", lambda n, raw: _parse_int(n, raw, 1, 1_000_000)),
    "ENTITY_CACHE_SIZE": (
        "entity_cache_size",
        lambda n, raw: _parse_int(n, raw, 0, 10_000_000),
    ),
    "LOG_LEVEL": ("log_level", _check_choice(("debug", "info", "warning", "error"))),
    "SOURCE_URL": ("source_url", _check_source_url),
    "TRUSTED_PROXIES": ("trusted_proxies", _check_trusted_proxies),
    "METRICS_ALLOW": ("metrics_allow", _check_trusted_proxies),
    "METRICS_TOKEN": ("metrics_token", lambda _n, raw: raw.strip()),
    "LIKENESS_CHECK": ("likeness_check", _check_likeness_check),
    "RATE_LIMITS": ("rate_limits", _check_rate_limits),
    "SMTP_URL": ("smtp_url", _check_smtp_url),
    "SMTP_FROM": ("smtp_from", _check_mail_from),
    "LIKENESS_CHECK_TIMEOUT_SECONDS": (
        "likeness_check_timeout_seconds",
        lambda n, raw: _parse_float(n, raw, 0.1, 3600.0),
    ),
}
# Not settings themselves, but read by tooling around them.
_ALLOWED_OTHER = {"CONFIG"}
# The test suite's own variables (FEDISORA_TEST_POSTGRES, FEDISORA_TEST_REDIS...): a test that
# runs the CLI with its environment must not have them refused as unknown settings.
_TEST_PREFIX = "TEST_"

assert {f for f, _ in _PARSERS.values()} <= {f.name for f in fields(Settings)}


def read_env_file(path: Path) -> dict[str, str]:
    """Read ``KEY=value`` lines (``#`` comments, optional quotes) from *path*."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"{path}:{number}: expected NAME=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from *environ* (default ``os.environ``) over ``<data dir>/fedisora.env``."""
    env = dict(os.environ if environ is None else environ)
    data_dir = Path(env.get(ENV_PREFIX + "DATA_DIR") or "data")
    env_file = Path(env.get(ENV_PREFIX + "CONFIG") or data_dir / ENV_FILE_NAME)
    merged: dict[str, str] = {}
    if env_file.is_file():
        merged.update(read_env_file(env_file))
    merged.update({k: v for k, v in env.items() if k.startswith(ENV_PREFIX)})

    values: dict[str, Any] = {}
    for key, raw in merged.items():
        if not key.startswith(ENV_PREFIX):
            raise ConfigError(f"{env_file}: {key} is not a fedisora setting")
        short = key[len(ENV_PREFIX) :]
        if short in _ALLOWED_OTHER or short.startswith(_TEST_PREFIX):
            continue
        if short not in _PARSERS:
            known = ", ".join(ENV_PREFIX + name for name in sorted(_PARSERS))
            raise ConfigError(f"unknown setting {key}; known settings are: {known}")
        attr, parse = _PARSERS[short]
        values[attr] = parse(key, raw)

    data_dir = values.setdefault("data_dir", Path("data"))
    if not values.get("database_url"):
        values["database_url"] = f"sqlite://{(data_dir / 'fedisora.sqlite3').as_posix()}"
    if not values.get("media_root") or values["media_root"] == Path(""):
        values["media_root"] = data_dir / "media"
    if not values.get("models_dir") or values["models_dir"] == Path(""):
        values["models_dir"] = data_dir / "models"
    _check_media_store(values)
    return Settings(**values)
