"""The prompt policy: admin-edited lists of protected public figures and of protected
characters and works, checked before anything is rendered.

The lists are :class:`~fedisora.models.PolicyTerm` rows; :func:`add_term` and
:func:`remove_term` edit them (from ``/admin/policy`` and ``fedisora policy``) and write the
audit log. :func:`check_render` is the one check, called by
:func:`render.service.submit_render` (so the API, the web create form and the CLI all apply
it) on every text that shapes a render: the prompt, the remixed clip's caption and prompt,
the input still's description and the restrictions of the cameos' likenesses. How names are
matched is :mod:`fedisora.policy.matcher`.

The compiled matcher is cached per process and rebuilt when the terms change: at once in the
process that changed them, and in the others when the cheap fingerprint of the table (its row
count and newest row) differs from the cached one.

Terms of rights holders' approved opt-outs join the same lists with ``source="optout"`` and
``source_ref`` naming the opt-out (:func:`add_term`'s keywords).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from fedisora.errors import Invalid, NotFound
from fedisora.models import Account, PolicyList, PolicySource, PolicyTerm
from fedisora.policy.matcher import (
    LISTS,
    Entry,
    Match,
    Matcher,
    TermError,
    check_term,
    spelling_key,
)
from fedisora.services import audit

__all__ = [
    "MAX_NOTE_CHARS",
    "PolicyRefused",
    "add_term",
    "check_render",
    "check_texts",
    "current_matcher",
    "remove_term",
    "terms",
]

MAX_NOTE_CHARS = 1000


class PolicyRefused(Invalid):
    """A text of a render request names a protected entry (422); ``match`` says which."""

    def __init__(self, match: Match, subject: str) -> None:
        super().__init__(match.refusal(subject))
        self.match = match
        self.subject = subject


def _list(name: str) -> PolicyList:
    try:
        return PolicyList(name)
    except ValueError:
        known = ", ".join(LISTS)
        raise Invalid(f"no such policy list {name!r}; the lists are {known}") from None


async def terms(list_name: str | None = None) -> list[PolicyTerm]:
    """The terms (of one list, or both), by list then term."""
    query = PolicyTerm.all()
    if list_name is not None:
        query = query.filter(list_name=_list(list_name))
    return list(await query.order_by("list_name", "key", "id"))


async def add_term(
    by: audit.Actor,
    list_name: str,
    term: str,
    note: str = "",
    *,
    source: PolicySource = PolicySource.ADMIN,
    source_ref: str = "",
) -> PolicyTerm:
    """Add *term* to *list_name* (``public_figure`` or ``protected_work``); :class:`Invalid`
    for an unknown list, an unusable term, an over-long note, or a term the list holds
    already from the same source (whatever its case, accents or punctuation)."""
    kind = _list(list_name)
    try:
        tidy = check_term(term)
    except TermError as exc:
        raise Invalid(str(exc)) from None
    note = note.strip()
    if len(note) > MAX_NOTE_CHARS:
        raise Invalid(f"the note is {len(note)} characters long; at most {MAX_NOTE_CHARS}")
    key = spelling_key(tidy)
    same = await PolicyTerm.filter(list_name=kind, key=key, source=source).first()
    if same is not None:
        raise Invalid(f"the list of {LISTS[kind]} has “{same.term}” already")
    row = await PolicyTerm.create(
        list_name=kind,
        term=tidy,
        key=key,
        note=note,
        source=source,
        source_ref=source_ref,
        created_by_id=by.pk if isinstance(by, Account) else None,
    )
    _forget()
    await audit.record(by, "policy.add", audit.target("policy_term", row.pk, tidy), kind.value)
    return row


async def remove_term(by: audit.Actor, term_id: int) -> PolicyTerm:
    """Remove the term *term_id* (:class:`NotFound` when there is none); returns it. A term
    of an opt-out is refused (:class:`Invalid`): it leaves with its opt-out
    (:mod:`fedisora.services.optouts`)."""
    row = await PolicyTerm.get_or_none(pk=term_id)
    if row is None:
        raise NotFound("no such policy term")
    if row.source == PolicySource.OPTOUT:
        raise Invalid("this term comes from an opt-out: withdraw the opt-out at /admin/optouts")
    await PolicyTerm.filter(pk=row.pk).delete()
    _forget()
    await audit.record(
        by, "policy.remove", audit.target("policy_term", row.pk, row.term), row.list_name.value
    )
    return row


# --------------------------------------------------------------------------- the check

_Fingerprint = tuple[int, int, datetime | None]
_cached: tuple[_Fingerprint, Matcher] | None = None


def _forget() -> None:
    global _cached
    _cached = None


async def _fingerprint() -> _Fingerprint:
    # Ids only grow, so any add or remove changes the count or the newest id; the newest
    # row's time tells a table emptied and refilled (its ids restarted) from the old one.
    count = await PolicyTerm.all().count()
    newest = await PolicyTerm.all().order_by("-id").first()
    if newest is None:
        return (0, 0, None)
    return (count, newest.pk, newest.created_at)


async def current_matcher() -> Matcher:
    """The compiled policy as the table now stands (cached while it does not change)."""
    global _cached
    fingerprint = await _fingerprint()
    if _cached is not None and _cached[0] == fingerprint:
        return _cached[1]
    rows = await PolicyTerm.all().order_by("id")
    matcher = Matcher(
        Entry(
            r.list_name.value,
            r.term,
            r.pk,
            origin=r.note if r.source == PolicySource.OPTOUT else "",
        )
        for r in rows
    )
    _cached = (fingerprint, matcher)
    return matcher


async def check_texts(texts: Iterable[tuple[str, str]]) -> None:
    """Refuse (:class:`PolicyRefused`) the first of *texts* — ``(subject, text)`` pairs,
    the subject naming the text in the refusal — that names a protected entry."""
    pairs = [(subject, text) for subject, text in texts if text and text.strip()]
    if not pairs:
        return
    matcher = await current_matcher()
    if not len(matcher):
        return
    for subject, text in pairs:
        found = matcher.find(text)
        if found is not None:
            raise PolicyRefused(found, subject)


async def check_render(
    *,
    prompt: str,
    remix_caption: str = "",
    remix_prompt: str = "",
    image_description: str = "",
    cameo_restrictions: Sequence[tuple[str, str]] = (),
) -> None:
    """The policy check of a render request: its prompt, the remixed clip's caption and
    prompt, the input still's description, and each cameo likeness's restrictions
    (``(acct, text)`` pairs). The negative prompt is not checked: naming someone there
    asks the model to keep them out."""
    await check_texts(
        [
            ("This prompt", prompt),
            ("The clip to remix", remix_caption),
            ("The prompt of the clip to remix", remix_prompt),
            ("The description of the still image", image_description),
            *(
                (f"The restriction text of @{acct}'s likeness", text)
                for acct, text in cameo_restrictions
            ),
        ]
    )
