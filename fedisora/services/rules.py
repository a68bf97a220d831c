"""The instance's rules (Mastodon's ``Rule``): written by admins at ``/admin/rules``, listed at
``/api/v1/instance/rules`` and in ``/api/v1/instance`` and ``/api/v2/instance``, shown on the
sign-up page and the report page, and cited by reports (``rule_ids``, checked against them
by :mod:`fedisora.services.reports`).

Rules are kept in ``position`` order (ties: oldest first); :func:`add` appends one,
:func:`edit` changes one's text and hint, :func:`remove` deletes it, :func:`move` swaps it
with its neighbour. Each change is audited (``rule.add``, ``rule.edit``, ``rule.remove``,
``rule.move``, target ``rule:<id>``).
"""

from __future__ import annotations

from fedisora.errors import Invalid, NotFound
from fedisora.models import Rule, utcnow
from fedisora.services import audit

__all__ = [
    "MAX_HINT",
    "MAX_RULES",
    "MAX_TEXT",
    "add",
    "edit",
    "get",
    "move",
    "remove",
    "rules",
]

MAX_TEXT = 300
"""Characters of a rule's text."""
MAX_HINT = 1000
"""Characters of its hint (the longer explanation)."""
MAX_RULES = 100


async def rules() -> list[Rule]:
    """The rules, in order."""
    return list(await Rule.all().order_by("position", "id"))


async def get(rule_id: int) -> Rule:
    rule = await Rule.get_or_none(pk=rule_id)
    if rule is None:
        raise NotFound("no such rule")
    return rule


def _clean(text: str, hint: str) -> tuple[str, str]:
    text, hint = text.strip(), hint.strip()
    if not text:
        raise Invalid("a rule needs its text")
    if len(text) > MAX_TEXT:
        raise Invalid(f"a rule's text is at most {MAX_TEXT} characters")
    if len(hint) > MAX_HINT:
        raise Invalid(f"a rule's hint is at most {MAX_HINT} characters")
    return text, hint


def _target(rule: Rule) -> str:
    return audit.target("rule", rule.pk, f"rule #{rule.pk}")


async def add(text: str, hint: str, by: audit.Actor) -> Rule:
    text, hint = _clean(text, hint)
    if await Rule.all().count() >= MAX_RULES:
        raise Invalid(f"an instance has at most {MAX_RULES} rules")
    last = await Rule.all().order_by("-position").first()
    rule = await Rule.create(text=text, hint=hint, position=(last.position + 1) if last else 0)
    await audit.record(by, "rule.add", _target(rule), text)
    return rule


async def edit(rule: Rule, text: str, hint: str, by: audit.Actor) -> Rule:
    text, hint = _clean(text, hint)
    await Rule.filter(pk=rule.pk).update(text=text, hint=hint, updated_at=utcnow())
    await audit.record(by, "rule.edit", _target(rule), text)
    return await get(rule.pk)


async def remove(rule: Rule, by: audit.Actor) -> None:
    if await Rule.filter(pk=rule.pk).delete():
        await audit.record(by, "rule.remove", _target(rule), rule.text)


async def move(rule: Rule, up: bool, by: audit.Actor) -> list[Rule]:
    """Swap *rule* with the one before it (*up*) or after it; at an end, nothing moves."""
    ordered = await rules()
    index = next((i for i, r in enumerate(ordered) if r.pk == rule.pk), None)
    if index is None:
        raise NotFound("no such rule")
    other = index - 1 if up else index + 1
    if 0 <= other < len(ordered):
        ordered[index], ordered[other] = ordered[other], ordered[index]
        for position, row in enumerate(ordered):
            if row.position != position:
                await Rule.filter(pk=row.pk).update(position=position)
        await audit.record(by, "rule.move", _target(rule), "up" if up else "down")
    return await rules()
