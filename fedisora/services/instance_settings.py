"""The instance's own settings that admins edit at ``/admin/settings``: its name and
descriptions, the contact e-mail, the registration mode and its message, and the rate limits.

Each has a default from the environment (``FEDISORA_INSTANCE_NAME``,
``FEDISORA_REGISTRATIONS``, ``FEDISORA_REGISTRATIONS_MESSAGE``, ``FEDISORA_RATE_LIMITS``; the
descriptions and the contact e-mail have built-in ones); a value saved on the page is an
:class:`~fedisora.models.InstanceSetting` row that overrides it (saving the default again
removes the row: the setting follows the environment again).

Every reader (the instance API, NodeInfo, the pages' titles and link previews, sign-up, the
rate-limit store) reads :func:`effective`, never ``Settings`` directly. It is cached in each
process for :data:`CACHE_SECONDS`: several web processes converge on a saved change within
that, with no restart; the process that saved it sees it at once. Synchronous code (template
rendering) reads :func:`cached`, the copy the request's middleware loaded
(:func:`refresh_for_app`), which also hands changed rate limits to the app's store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from fedisora.config import REGISTRATION_MODES, Settings
from fedisora.errors import Conflict, Invalid
from fedisora.models import InstanceSetting, utcnow
from fedisora.ratelimits import DEFAULTS, Limit, for_app, parse_limits

if TYPE_CHECKING:
    from fedisora.services import audit

__all__ = [
    "CACHE_SECONDS",
    "DEFAULT_DESCRIPTION",
    "FIELDS",
    "InstanceValues",
    "SettingsInvalid",
    "cached",
    "defaults",
    "effective",
    "limits_text",
    "refresh_for_app",
    "reset",
    "save",
]

log = logging.getLogger("fedisora.instance_settings")

CACHE_SECONDS = 3.0
"""How long a process uses its copy of the saved settings before reading them again."""

DEFAULT_DESCRIPTION = "A federated home for AI-generated short video."

MAX_NAME = 100
MAX_SHORT_DESCRIPTION = 500
MAX_DESCRIPTION = 5000
MAX_MESSAGE = 1000  # as FEDISORA_REGISTRATIONS_MESSAGE


@dataclass(frozen=True)
class InstanceValues:
    """The effective values: saved ones over the environment's defaults."""

    instance_name: str
    short_description: str
    description: str
    contact_email: str
    registrations: str
    registrations_message: str
    rate_limits: str  # the FEDISORA_RATE_LIMITS syntax ("" : the built-in defaults)
    limits: Mapping[str, Limit] = field(default_factory=dict, compare=False)
    """Every limit in force: :data:`~fedisora.ratelimits.DEFAULTS` with the overrides."""

    @property
    def closed_message(self) -> str:
        """What a visitor is told when sign-ups are closed."""
        return self.registrations_message or "Registrations are closed on this server."


FIELDS: dict[str, str] = {
    "instance_name": "name",
    "short_description": "short description",
    "description": "description",
    "contact_email": "contact e-mail",
    "registrations": "registrations",
    "registrations_message": "registrations message",
    "rate_limits": "rate limits",
}
"""The settings the page edits, with their names for people (messages, the audit log)."""


class SettingsInvalid(Invalid):
    """Values that cannot be saved, one message per field (nothing was saved)."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{FIELDS[k]}: {v}" for k, v in errors.items()))


def limits_text(limits: Mapping[str, Limit]) -> str:
    """Limits in the FEDISORA_RATE_LIMITS syntax (``render=30/1h,upload=60/30m``)."""
    return ",".join(f"{name}={limit}" for name, limit in limits.items())


def _with_limits(values: InstanceValues) -> InstanceValues:
    return replace(values, limits={**DEFAULTS, **parse_limits(values.rate_limits)})


def defaults(settings: Settings) -> InstanceValues:
    """The values the environment gives (what applies with nothing saved)."""
    return _with_limits(
        InstanceValues(
            instance_name=settings.instance_name,
            short_description=DEFAULT_DESCRIPTION,
            description=DEFAULT_DESCRIPTION,
            contact_email="",
            registrations=settings.registrations,
            registrations_message=settings.registrations_message,
            rate_limits=limits_text(settings.rate_limits),
        )
    )


def _text(value: str, limit: int, *, lines: bool = False) -> str | None:
    """Why *value* is refused, or None."""
    if len(value) > limit:
        return f"at most {limit} characters ({len(value)} given)"
    if not all(c.isprintable() or (lines and c in "\r\n") for c in value):
        return "no control characters"
    return None


def _validate(raw: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The cleaned values of the fields in *raw*, and the errors by field."""
    from fedisora.services.accounts import EMAIL_RE

    clean: dict[str, str] = {}
    errors: dict[str, str] = {}
    for key, value in raw.items():
        if key not in FIELDS:
            continue
        value = value.replace("\r\n", "\n").strip()
        error: str | None = None
        if key == "instance_name":
            error = "required" if not value else _text(value, MAX_NAME)
        elif key == "short_description":
            error = _text(value, MAX_SHORT_DESCRIPTION, lines=True)
        elif key == "description":
            error = _text(value, MAX_DESCRIPTION, lines=True)
        elif key == "registrations_message":
            error = _text(value, MAX_MESSAGE, lines=True)
        elif key == "contact_email":
            value = value.lower()
            if value and (len(value) > 254 or not EMAIL_RE.match(value)):
                error = f"{value!r} is not an e-mail address"
        elif key == "registrations":
            value = value.lower()
            if value not in REGISTRATION_MODES:
                error = f"one of {', '.join(REGISTRATION_MODES)}"
        elif key == "rate_limits":
            try:
                value = limits_text(parse_limits(value))
            except ValueError as exc:
                error = str(exc)
        if error is not None:
            errors[key] = error
        else:
            clean[key] = value
    return clean, errors


# --------------------------------------------------------------------------- the cache

# id(settings) -> (settings, loaded at (monotonic), values). The settings object is held so
# that its id is not reused while cached.
_cache: dict[int, tuple[Settings, float, InstanceValues]] = {}


def reset() -> None:
    """Forget every process copy (after a save; tests with a fresh database)."""
    _cache.clear()


def cached(settings: Settings) -> InstanceValues:
    """This process's copy (however old), or the environment's defaults before the first
    load: for synchronous code on a request, whose middleware loaded it
    (:func:`refresh_for_app`)."""
    entry = _cache.get(id(settings))
    if entry is not None and entry[0] is settings:
        return entry[2]
    return defaults(settings)


async def effective(settings: Settings) -> InstanceValues:
    """The values in force: saved over the environment's, read again at most every
    :data:`CACHE_SECONDS`. A database that cannot be read leaves the last copy (or the
    defaults) in use rather than failing the caller."""
    now = time.monotonic()
    entry = _cache.get(id(settings))
    if entry is not None and entry[0] is settings and now - entry[1] < CACHE_SECONDS:
        return entry[2]
    try:
        rows = await InstanceSetting.all().values_list("key", "value")
    except Exception as exc:  # an outage: the last copy stands, the request goes on
        log.warning("instance settings: could not read them (%s); using the last copy", exc)
        values = entry[2] if entry is not None and entry[0] is settings else defaults(settings)
    else:
        saved = {str(k): str(v) for k, v in rows if k in FIELDS}
        values = _merge(defaults(settings), saved)
    if len(_cache) > 16:  # a test process makes many settings objects
        _cache.clear()
    _cache[id(settings)] = (settings, now, values)  # (after a failure: tried again in a TTL)
    return values


def _merge(base: InstanceValues, saved: Mapping[str, str]) -> InstanceValues:
    clean, errors = _validate(saved)
    for key in errors:  # written by an older version, or by hand: the default stands
        log.warning("instance settings: saved %s is invalid (%s); ignored", key, errors[key])
    changes: dict[str, Any] = dict(clean)
    return _with_limits(replace(base, **changes)) if changes else base


async def refresh_for_app(app: Any) -> InstanceValues:
    """Load the values for a request of *app* (:func:`effective`), and give the app's
    rate-limit store the limits when they changed since they were last given to it
    (``app.state.instance_limits``, the environment's at first: see ``create_app``)."""
    values = await effective(app.state.settings)
    # The same copy as the last request's (the usual case): nothing to compare.
    if getattr(app.state, "instance_values", None) is not values:
        app.state.instance_values = values
        limits = dict(values.limits)
        if getattr(app.state, "instance_limits", None) != limits:
            for_app(app).set_limits(limits)
            app.state.instance_limits = limits
    return values


# --------------------------------------------------------------------------- saving


async def save(settings: Settings, by: audit.Actor, raw: Mapping[str, str]) -> list[str]:
    """Save the fields of *raw* (the page's form) and audit the change; return the fields
    that changed. A value equal to the environment's default removes the saved row.

    Raises :class:`SettingsInvalid` (every field's problem at once) and saves nothing when
    any value is refused."""

    clean, errors = _validate(raw)
    if errors:
        raise SettingsInvalid(errors)
    current = await _fresh(settings)
    base = defaults(settings)
    changed = [k for k, v in clean.items() if getattr(current, k) != v]
    if not changed:
        return []
    now = utcnow()
    try:
        await _write(settings, by, clean, changed, base, now)
    except IntegrityError:  # another admin saved the same setting at the same instant
        raise Conflict("the settings were saved by someone else meanwhile: try again") from None
    reset()
    return changed


async def _write(
    settings: Settings,
    by: audit.Actor,
    clean: dict[str, str],
    changed: list[str],
    base: InstanceValues,
    now: datetime,
) -> None:
    from fedisora.services import audit

    async with in_transaction():
        for key in changed:
            value = clean[key]
            if value == getattr(base, key):
                await InstanceSetting.filter(key=key).delete()
            elif not await InstanceSetting.filter(key=key).update(value=value, updated_at=now):
                await InstanceSetting.create(key=key, value=value, updated_at=now)
        await audit.record(
            by,
            "instance.settings",
            audit.target("instance", settings.domain),
            detail="changed: " + ", ".join(_described(k, clean[k]) for k in changed),
        )


def _described(key: str, value: str) -> str:
    if key in ("registrations", "rate_limits"):
        return f"{FIELDS[key]} ({value or 'defaults'})"
    return FIELDS[key]


async def _fresh(settings: Settings) -> InstanceValues:
    reset()
    return await effective(settings)


assert set(FIELDS) <= {f.name for f in fields(InstanceValues)}
