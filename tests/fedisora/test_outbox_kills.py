"""A kill between the commit of a change and the hand-over of its events, at every place that
emits one, loses nothing and doubles nothing (SQLite and PostgreSQL).

The places are found in the source, not listed by hand: every ``events.emit(...)`` call and
every call of ``notify``/``notify_approved`` (which emit ``notification.created``), with the
function around it (:func:`emit_sites`). Each must be claimed by a scenario below
(:func:`test_every_emit_site_has_a_kill_scenario`): a new emitter without one fails the suite.

A scenario sets up a small world (local ``ann`` and ``ben``; remote ``rita``, who follows
``ann``; ``fan`` and ``idol`` elsewhere), with every event processed as it commits. Then it
acts, and the first transaction committing an event of its first site is cut right after
its commit, before its events are handed on:

- **killed**: :class:`Killed` is raised there. It models a ``kill -9``: it aborts everything
  the request or work handler would have done after the commit (nothing on those paths
  catches a ``BaseException``; the one cleanup that sees it, in ``ingest._store_clip``,
  touches only a clip that was not committed), and nothing the dead process held in memory
  is used after it: recovery is a fresh engine and runner reading only the database, whose
  clock is past the lease of the work row the killed handler held (a new worker's view), so
  that row's handler runs again as it would. :mod:`test_outbox` shows the same end state
  after a real SIGKILL of a process at that point.
- **control**: the events are handed on as usual, and then the rest is cut off the same way.

Either way, a fresh runner then produces exactly the effects the scenario declares (the
events processed, each heard once by the stream listener; the Delivery rows; the
notifications), and a second fresh runner adds nothing. And the database was not changed
between the start of the act and the beginning of the cut transaction: the change and its
events are that one transaction, so no kill in between could have separated them.
"""

from __future__ import annotations

import ast
import contextlib
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import local_account, remote_account, rendered_video
from tortoise import Tortoise

sys.path.insert(0, str(Path(__file__).parents[1] / "federation"))
sys.path.insert(0, str(Path(__file__).parents[1] / "api"))

from apihelpers import login
from fedhelpers import DOMAIN, REMOTE, Peer, RemoteActor, make_remote

from activitypub import integrity, keys, objects
from fedisora import urls
from fedisora.config import Settings, load_settings
from fedisora.federation import install, uninstall
from fedisora.federation.context import Federation, set_federation
from fedisora.federation.delivery import quote_request_id
from fedisora.federation.http import PeerClient
from fedisora.federation.ingest import handle_activity, quote_stamp
from fedisora.federation.likeness import likeness_use
from fedisora.models import (
    Account,
    AccountWarning,
    Appeal,
    Audience,
    Clip,
    Delivery,
    InboxItem,
    Likeness,
    LikenessGrant,
    LikenessState,
    Notification,
    NotificationType,
    OutboxEvent,
    QuoteCheck,
    RemoteMediaCheck,
    RenderJob,
    Report,
    User,
    utcnow,
)
from fedisora.services import (
    account_deletion,
    comment_edits,
    events,
    follows,
    interactions,
    likeness,
    moderation,
    posts,
    reports,
    signup,
)
from fedisora.services.notify import notify
from fedisora.services.outbox import build_machine
from fedisora.work.engine import Engine
from fedisora.work.machines import build_machines
from fedisora.work.runner import InProcessRunner

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("activitypub", "fedisora", "render", "web")
NOTIFIERS = frozenset({"notify", "notify_approved"})
LEASE = timedelta(seconds=60)

Site = tuple[str, str, str | None]
"""Where an event is emitted: file, function, kind (None: the kind is passed in a variable)."""


# --- the emit sites, from the source ---------------------------------------------------------


class _Sites(ast.NodeVisitor):
    def __init__(self, path: str, found: set[Site]) -> None:
        self.path = path
        self.found = found
        self.functions: list[str] = []

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module == "fedisora.services.events":
            assert "emit" not in {a.name for a in node.names}, f"{self.path}: call events.emit"

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "emit"
            and isinstance(func.value, ast.Name)
            and func.value.id == "events"
        ):
            kind = node.args[1] if len(node.args) > 1 else None
            literal = kind.value if isinstance(kind, ast.Constant) else None
            assert literal is None or isinstance(literal, str), f"{self.path}: kind {literal!r}"
            self.found.add((self.path, self.functions[-1], literal))
        elif isinstance(func, ast.Name) and func.id in NOTIFIERS:
            self.found.add((self.path, self.functions[-1], "notification.created"))
        self.generic_visit(node)


def emit_sites() -> set[Site]:
    """Every place in the source that emits an event, directly or through a notification."""
    found: set[Site] = set()
    for package in SOURCES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            _Sites(rel, found).visit(ast.parse(path.read_text(), rel))
    return found


def _frames() -> set[tuple[str, str]]:
    """(file, function) of each frame of the source on the stack (awaiting callers too)."""
    found: set[tuple[str, str]] = set()
    frame = sys._getframe(1)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.is_relative_to(ROOT) and path.relative_to(ROOT).parts[0] in SOURCES:
            found.add((path.relative_to(ROOT).as_posix(), frame.f_code.co_name))
        frame = frame.f_back  # type: ignore[assignment]
    return found


def _hit(site: Site, kind: str, frames: set[tuple[str, str]]) -> bool:
    return (site[0], site[1]) in frames and site[2] in (None, kind)


# --- the world and the effects ---------------------------------------------------------------


class Killed(BaseException):
    """The process died here (see the module docstring)."""


class Stopped(BaseException):
    """The control run's cut, at the same place, after the events were handed on."""


async def _fingerprint() -> list[tuple[str, list[str]]]:
    """Every row of every table, without the lease columns a claim writes."""
    tables = []
    for model in Tortoise.apps["fedisora"].values():
        rows = [
            repr(sorted((k, v) for k, v in row.items() if k not in ("locked_until", "lock_token")))
            for row in await model.all().values()
        ]
        tables.append((model._meta.db_table, sorted(rows)))
    return sorted(tables)


@dataclass
class World:
    settings: Settings
    fed: Federation
    peer: Peer
    ann: Account
    ben: Account
    rita: RemoteActor  # on REMOTE; follows ann
    fan: Account  # on fans.example
    idol: Account  # on idols.example
    heard: list[events.Event]
    rows: dict[str, Any] = field(default_factory=dict)  # what a scenario's setup made
    baseline: list[Any] = field(default_factory=list)  # the database as the act begins

    async def begin(self) -> None:
        """The act begins here (after rows it stores first, as the inbox stores an item)."""
        self.baseline[:] = [await _fingerprint()]


@dataclass(frozen=True)
class Effects:
    events: Counter[str]  # the kinds the stream listener heard (each event once)
    deliveries: Counter[tuple[str, str]]  # (activity, inbox host)
    notifications: Counter[tuple[str, NotificationType]]  # (recipient, type)


@pytest.fixture
async def world(db: str, tmp_path: Path) -> AsyncIterator[World]:
    settings = load_settings(
        {
            "FEDISORA_DOMAIN": DOMAIN,
            "FEDISORA_DATA_DIR": str(tmp_path),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_DATABASE_URL": db,
        }
    )
    urls.configure(settings)
    peer = Peer()
    fed = Federation(settings, PeerClient(insecure=True, transport=httpx.MockTransport(peer)))
    set_federation(fed)
    install(None)  # the setup's events are processed as they commit
    heard: list[events.Event] = []

    async def listen(event: events.Event) -> None:
        heard.append(event)

    events.subscribe(listen)
    try:
        ann = await local_account("ann")
        ben = await local_account("ben")
        rita = await make_remote("rita", REMOTE)
        await follows.follow(rita.account, ann, uri=f"{rita.uri}#follows/ann")
        fan = await remote_account("fan", "fans.example")
        idol = await remote_account("idol", "idols.example")
        yield World(settings, fed, peer, ann, ben, rita, fan, idol, heard)
    finally:
        events.unsubscribe(listen)
        await uninstall()
        set_federation(None)


def _label(activity: dict[str, Any]) -> str:
    inner = activity.get("object")
    kind = inner.get("type") if isinstance(inner, dict) else None
    return f"{activity['type']}({kind})" if kind else str(activity["type"])


async def _effects(w: World, notes_after: int) -> Effects:
    deliveries: Counter[tuple[str, str]] = Counter()
    for row in await Delivery.all():
        deliveries[(_label(row.payload), row.host)] += 1
    notes: Counter[tuple[str, NotificationType]] = Counter()
    for note in await Notification.filter(id__gt=notes_after).prefetch_related("recipient"):
        notes[(note.recipient.username, NotificationType(note.type))] += 1
    return Effects(Counter(e.kind for e in w.heard), deliveries, notes)


WORK = {
    "inbox_items": "fedisora.federation.inbox:machines",
    "quote_checks": "fedisora.federation.quote_verify:machines",
    "remote_media_checks": "fedisora.federation.media_check:machines",
    "render_jobs": "render.queue:machines",
    "fingerprints": "fedisora.services.fingerprints:machines",
}


async def _advance(w: World, table: str, pk: int) -> None:
    """Run one step of a work row, as a runner would (its handler may be the one cut)."""
    engine = Engine(build_machines(w.settings, [WORK[table]]), context={"settings": w.settings})
    await engine.advance(table, pk)


async def _recover(w: World, work: str | None) -> None:
    """A fresh runner of the outbox (and of the killed handler's machine), with only the
    database to go by, its clock past the lease of whatever the dead process held."""
    machines = [build_machine()]
    if work is not None:
        machines += build_machines(w.settings, [WORK[work]])

    def later() -> Any:
        return utcnow() + LEASE + timedelta(seconds=1)

    engine = Engine(machines, lease=LEASE, clock=later, context={"settings": w.settings})
    await InProcessRunner(engine, poll_interval=3600).drain()


# --- scenarios -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    sites: tuple[Site, ...]  # the first names the transaction that is cut
    act: Callable[[World], Awaitable[object]]
    events: dict[str, int]
    deliveries: dict[tuple[str, str], int] = field(default_factory=dict)
    notifications: dict[tuple[str, NotificationType], int] = field(default_factory=dict)
    setup: Callable[[World], Awaitable[None]] | None = None
    work: str | None = None  # the work table whose handler the act runs in

    def expected(self) -> Effects:
        return Effects(Counter(self.events), Counter(self.deliveries), Counter(self.notifications))


POSTS = "fedisora/services/posts.py"
FOLLOWS = "fedisora/services/follows.py"
INTERACTIONS = "fedisora/services/interactions.py"
DELETION = "fedisora/services/account_deletion.py"
INGEST = "fedisora/federation/ingest.py"
QUOTES = "fedisora/federation/quote_check.py"
QUOTE_MACHINE = "fedisora/federation/quote_verify.py"
RENDER = "render/queue.py"
NOTIFY: Site = ("fedisora/services/notify.py", "notify", "notification.created")
FANS, IDOLS = "fans.example", "idols.example"
N = NotificationType


async def _clip(w: World, author: Account | None = None, caption: str = "a clip") -> Clip:
    author = author or w.ann
    video = await rendered_video(author)  # rendered before: the act is the posting
    await w.begin()
    return await posts.post_clip(author, video, caption=caption)


def _note(actor: RemoteActor | Account, n: int, **extra: Any) -> dict[str, Any]:
    uri = f"{actor.uri}/clips/{n}"
    return {
        "id": uri,
        "type": "Note",
        "attributedTo": actor.uri,
        "content": f"<p>clip {n}</p>",
        "to": [objects.PUBLIC],
        "cc": [f"{actor.uri}/followers"],
        "attachment": [
            {"type": "Document", "mediaType": "video/mp4", "url": f"{actor.uri}/{n}.mp4"}
        ],
        **extra,
    }


async def _remote_clip(w: World, actor: RemoteActor | Account, n: int, **extra: Any) -> Clip:
    """A remote clip, received as the inbox machine receives one."""
    note = _note(actor, n, **extra)
    create = {"id": f"{note['id']}/activity", "type": "Create", "actor": actor.uri, "object": note}
    await handle_activity(w.fed, create)
    return await Clip.get(uri=note["id"])


async def _inbox(w: World, activity: dict[str, Any]) -> None:
    """Store *activity* as the inbox does, then run its item's handler."""
    now = utcnow()
    item = await InboxItem.create(
        activity_id=activity["id"],
        actor_uri=activity["actor"],
        payload=activity,
        state="received",
        state_changed_at=now,
        next_attempt_at=now,
        created_at=now,
    )
    await w.begin()
    await _advance(w, "inbox_items", item.pk)


async def _setup_clip(w: World) -> None:
    w.rows["clip"] = await _clip(w)


async def _setup_ben_clip(w: World) -> None:
    w.rows["clip"] = await _clip(w, w.ben, "ben's clip")


async def _setup_boosted(w: World) -> None:
    w.rows["clip"] = await _clip(w)
    await interactions.boost(w.ben, w.rows["clip"])


async def _setup_locked_request(w: World) -> None:
    await Account.filter(pk=w.ann.pk).update(locked=True)
    w.ann = await Account.get(pk=w.ann.pk)
    w.rows["follow"] = await follows.follow(w.fan, w.ann, uri=f"{w.fan.uri}#follows/1")


async def _setup_following_idol(w: World) -> None:
    await follows.follow(w.ann, w.idol)


async def _setup_blocked_idol(w: World) -> None:
    await follows.block(w.ann, w.idol)


async def _setup_rita_clip(w: World) -> None:
    w.rows["clip"] = await _remote_clip(w, w.rita, 1)


async def _setup_reply_forwarding(w: World) -> None:
    """ann's clip, followed by fan (another server than rita's); rita publishes an Ed25519
    Multikey, as a Fedify actor does."""
    w.rows["clip"] = await posts.post_clip(w.ann, await rendered_video(w.ann), caption="sea")
    await follows.follow(w.fan, w.ann, uri="https://fans.example/users/fan#follows/ann")
    key = keys.generate_ed25519_key()
    multibase = keys.public_key_to_multibase(key.public_key())
    await Account.filter(pk=w.rita.account.pk).update(ed25519_public_multibase=multibase)
    w.rows["key"] = key


async def _act_proven_reply(w: World) -> None:
    note = {
        "id": f"{w.rita.uri}/notes/reply",
        "type": "Note",
        "attributedTo": w.rita.uri,
        "inReplyTo": w.rows["clip"].uri,
        "content": "<p>what light!</p>",
        "to": [objects.PUBLIC],
        "cc": [f"{w.rita.uri}/followers"],
    }
    create = {
        "@context": [objects.AS_CONTEXT, integrity.DATA_INTEGRITY_CONTEXT],
        "id": f"{note['id']}/activity",
        "type": "Create",
        "actor": w.rita.uri,
        "object": note,
        "to": note["to"],
        "cc": note["cc"],
    }
    key_id = f"{w.rita.uri}#ed25519-key"
    await _inbox(w, integrity.sign(create, w.rows["key"], key_id, created=utcnow()))


async def _act_follow_again(w: World) -> None:
    follow = {"type": "Follow", "actor": w.rita.uri, "object": w.ann.uri}
    await _inbox(w, {"id": f"{w.rita.uri}#follows/ann-again", **follow})


async def _setup_clip_to_fingerprint(w: World) -> None:
    """ann's public clip with a real video on disk, its fingerprint waiting (rita follows)."""
    import shutil

    from fedisora.models import Fingerprint

    media = await rendered_video(w.ann)
    target = w.settings.media_root / str(media.file)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(__file__).parents[1] / "fixtures" / "video" / "tiny.mp4", target)
    clip = await posts.post_clip(w.ann, media, caption="a storm at sea")
    w.rows["fingerprint"] = await Fingerprint.get(clip_id=clip.pk)


async def _act_fingerprint(w: World) -> None:
    await w.begin()
    await _advance(w, "fingerprints", w.rows["fingerprint"].pk)


async def _setup_liked(w: World) -> None:
    w.rows["clip"] = await _remote_clip(w, w.rita, 1)
    await interactions.like(w.ann, w.rows["clip"])


async def _setup_comment(w: World) -> None:
    clip = await _clip(w, w.ben, "ben's clip")
    w.rows["comment"] = await interactions.comment(w.ann, clip, "nice")


async def _setup_boost_of_ben(w: World) -> None:
    w.rows["clip"] = await _clip(w, w.ben, "ben's clip")
    await interactions.boost(w.ann, w.rows["clip"])


async def _setup_suspended(w: World) -> None:
    w.ann = await account_deletion.suspend_account(w.ann)


async def _setup_api(w: World) -> None:
    from fedisora.app import create_app

    app = create_app(w.settings, run_work=False, manage_db=False)
    w.rows["http"] = http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=f"https://{DOMAIN}"
    )
    w.rows["login"] = await login(http, w.ann)


async def _act_api(w: World) -> None:
    http: httpx.AsyncClient = w.rows["http"]
    try:
        await http.patch(
            "/api/v1/accounts/update_credentials",
            data={"display_name": "Ann"},
            headers=w.rows["login"].headers,
        )
    finally:
        await http.aclose()


async def _setup_stamped_remix(w: World) -> None:
    """ann's remix of rita's clip, approved by rita's stamp."""
    source = await _remote_clip(w, w.rita, 1)
    remix = await posts.remix_clip(w.ann, source, await rendered_video(w.ann), caption="mine")
    stamp = f"{w.rita.uri}/quote_authorizations/1"
    await Clip.filter(pk=remix.pk).update(quote_authorization_uri=stamp, quote_state="accepted")
    w.rows.update(source=source, remix=await Clip.get(pk=remix.pk))


async def _act_reject(w: World) -> None:
    remix, source = w.rows["remix"], w.rows["source"]
    await _inbox(
        w,
        {
            "id": f"{w.rita.uri}#answers/1",
            "type": "Reject",
            "actor": w.rita.uri,
            "object": {
                "id": quote_request_id(remix),
                "type": "QuoteRequest",
                "actor": w.ann.uri,
                "object": source.uri,
                "instrument": remix.uri,
            },
        },
    )


async def _setup_remote_remix(w: World) -> None:
    """rita's remix of ann's clip, stored pending (its check not run)."""
    w.rows["clip"] = clip = await _clip(w)
    remix_uri = f"{w.rita.uri}/clips/7"
    w.rows["remix"] = await _remote_clip(
        w, w.rita, 7, quote=clip.uri, quoteAuthorization=quote_stamp(clip, remix_uri)
    )


async def _act_quote_request(w: World) -> None:
    clip, remix = w.rows["clip"], w.rows["remix"]
    await _inbox(
        w,
        {
            "id": f"{w.rita.uri}/quote_requests/1",
            "type": "QuoteRequest",
            "actor": w.rita.uri,
            "object": clip.uri,
            "instrument": remix.uri,
        },
    )


async def _act_quote_check(w: World) -> None:
    row = await QuoteCheck.get(remix_uri=w.rows["remix"].uri)
    await _advance(w, "quote_checks", row.pk)


async def _setup_third_party_remix(w: World) -> None:
    """fan's remix of rita's clip, presenting rita's stamp (verified earlier)."""
    source = await _remote_clip(w, w.rita, 1)
    stamp = f"{w.rita.uri}/quote_authorizations/9"
    remix = await _remote_clip(w, w.fan, 5, quote=source.uri, quoteAuthorization=stamp)
    await Clip.filter(pk=remix.pk).update(quote_state="accepted", remix_of_id=source.pk)
    w.rows["stamp"] = stamp


async def _act_stamp_deleted(w: World) -> None:
    stamp = w.rows["stamp"]
    await _inbox(
        w, {"id": f"{stamp}#delete", "type": "Delete", "actor": w.rita.uri, "object": stamp}
    )


async def _act_remote_update(w: World) -> None:
    note = _note(w.rita, 1, content="<p>clip 1, edited</p>")
    await _inbox(
        w, {"id": f"{note['id']}#updates/1", "type": "Update", "actor": w.rita.uri, "object": note}
    )


async def _act_media_check(w: World) -> None:
    row = await RemoteMediaCheck.get(clip_uri=w.rows["clip"].uri)
    await _advance(w, "remote_media_checks", row.pk)  # the video answers 404: unverified


async def _rendering_job(w: World, since: timedelta, **spec: Any) -> RenderJob:
    """ann's render job, in ``rendering`` for *since*, due now, held by nobody."""
    now = utcnow()
    return await RenderJob.create(
        account=w.ann,
        state="rendering",
        state_changed_at=now - since,
        next_attempt_at=now,
        spec={"prompt": "a cat", "seed": 1, "seconds": 1.0, **spec},
    )


async def _setup_timed_out_render(w: World) -> None:
    w.rows["job"] = await _rendering_job(w, timedelta(days=1))  # past the state's timeout


async def _setup_refused_render(w: World) -> None:
    # A cameo of ben: the rendering handler refuses it (no likeness consent) and fails it.
    w.rows["job"] = await _rendering_job(w, timedelta(0), cameos=[w.ben.pk])


async def _act_render(w: World) -> None:
    await _advance(w, "render_jobs", w.rows["job"].pk)
    assert (await RenderJob.get(pk=w.rows["job"].pk)).state == "failed"


async def _setup_grant_to_fan(w: World) -> None:
    # ann's likeness, and a signed grant to fan (on another instance).
    mine = await Likeness.create(
        account=w.ann, state=LikenessState.VERIFIED, audience=Audience.APPROVED
    )
    w.rows["grant"] = await likeness._new_grant(
        w.ann, w.fan, mine, basis="approved", digest="", expires_at=None
    )


async def _setup_ann_approves_each_use(w: World) -> None:
    await Likeness.create(
        account=w.ann,
        state=LikenessState.VERIFIED,
        audience=Audience.EVERYONE,
        approval_required=True,
    )


async def _act_use_of_ann(w: World) -> None:
    # ben renders a draft with ann's likeness (the decision allowed it): ann is told.
    mine = await Likeness.get(account=w.ann)
    decision = likeness.Consent(allowed=True, reason="allowed", owner=w.ann, likeness=mine)
    await likeness.record_use(decision, w.ben, "draft")


async def _act_fan_tells_a_use(w: World) -> None:
    # fan (on fans.example) rendered a draft with ann's likeness under her grant.
    grant = w.rows["grant"]
    await _inbox(
        w,
        likeness_use(f"{w.fan.uri}/uses/1", w.fan.uri, w.ann.uri, grant=grant.uri, kind="draft"),
    )


async def _act_use_of_fan(w: World) -> None:
    # ann renders a draft with fan's likeness, under fan's grant: fan's instance is told.
    grant = await LikenessGrant.create(
        owner=w.fan,
        grantee=w.ann,
        basis="approved",
        scope="drafts",
        restrictions_digest="",
        remote=True,
        uri=f"{w.fan.uri}/likeness/grants/1",
        document={},
    )
    await w.begin()
    decision = likeness.Consent(allowed=True, reason="allowed", owner=w.fan, grant=grant)
    await likeness.record_use(decision, w.ann, "draft")


async def _act_refused_clip_of_ann(w: World) -> None:
    # A clip by fan presenting ann's consent is refused here: ann is told (a refused use).
    from fedisora.federation.cameo_clips import Judgement, tell_refused

    found = Judgement(
        [], reason="consent revoked", failed=w.ann, failed_consent=w.rows["grant"].uri
    )
    await tell_refused(w.fan, found, f"{w.fan.uri}/clips/1")


async def _act_notify_alone(w: World) -> None:
    await notify(w.ann, N.RENDER_FINISHED, dedupe_key="render:0")


async def _setup_instance_actor(w: World) -> None:
    from fedisora.services.accounts import create_instance_actor

    await create_instance_actor()  # made once, before: the act is the report


async def _act_report_rita_forwarded(w: World) -> None:
    # ann reports rita and asks for her instance to be told: a Flag from the instance actor.
    await reports.file_report(w.ann, w.rita.account, comment="spam", forward=True)


async def _setup_report_about_ben(w: World) -> None:
    w.rows["report"] = await Report.create(
        account_id=w.ann.pk, target_account_id=w.ben.pk, comment="rude"
    )


async def _act_warn_ben(w: World) -> None:
    # A moderator acted on the report (the action itself is other sites'): ben is told.
    await w.begin()
    await moderation.warn(w.ben, "suspend", "please stop", report=w.rows["report"])


async def _setup_appeal_of_ben(w: World) -> None:
    await _setup_report_about_ben(w)
    warning = await AccountWarning.create(
        account_id=w.ben.pk, report_id=w.rows["report"].pk, action="silence", text="calm down"
    )
    w.rows["warning"] = warning
    w.rows["appeal"] = await Appeal.create(
        account_id=w.ben.pk, account_warning_id=warning.pk, text="I was calm"
    )


async def _act_tell_ben_of_the_appeal(w: World) -> None:
    # A moderator decided ben's appeal (the decision itself is other sites'): ben is told.
    await w.begin()
    await moderation._tell(w.ben, w.rows["warning"], w.rows["appeal"], N.APPEAL_APPROVED)


async def _setup_clip_and_comment_of_ann(w: World) -> None:
    await _setup_comment(w)
    w.rows["clip"] = await _clip(w)


async def _act_mark_ann_sensitive(w: World) -> None:
    # A moderator (ben) marks ann's clip and comment sensitive: an Update of each.
    await w.begin()
    ids = [w.rows["clip"].pk, w.rows["comment"].pk]
    await moderation.mark_sensitive(w.ann, ids, by=w.ben)


async def _setup_appeal_of_a_mark(w: World) -> None:
    clip = w.rows["clip"] = await _clip(w)
    await Clip.filter(pk=clip.pk).update(sensitive=True)
    warning = w.rows["warning"] = await AccountWarning.create(
        account_id=w.ann.pk, action="mark_statuses_as_sensitive", status_ids=[clip.pk]
    )
    w.rows["appeal"] = await Appeal.create(
        account_id=w.ann.pk, account_warning_id=warning.pk, text="a documentary"
    )


async def _act_approve_the_appeal(w: World) -> None:
    # ben approves ann's appeal: the flag is lifted (an Update) and ann told, together.
    await w.begin()
    await moderation.approve_appeal(w.rows["appeal"], w.ben)


async def _setup_ann_admin_and_a_warning_of_ben(w: World) -> None:
    await _setup_ann_admin(w)
    await _setup_report_about_ben(w)
    w.rows["warning"] = await AccountWarning.create(
        account_id=w.ben.pk, report_id=w.rows["report"].pk, action="silence", text="calm down"
    )


async def _act_ben_appeals(w: World) -> None:
    # ben appeals his warning: the appeal and the staff's notice (ann's) commit together.
    await moderation.file_appeal(w.ben, w.rows["warning"], "I was calm")


async def _setup_ann_admin_and_a_report(w: World) -> None:
    await _setup_ann_admin(w)
    await _setup_report_about_ben(w)


async def _act_tell_staff_of_the_report(w: World) -> None:
    # A report about ben from rita (a Flag) was stored (other sites'): the staff, ann, are told.
    await w.begin()
    await reports._tell_staff(w.rows["report"], w.rita.account)


async def _setup_ann_admin(w: World) -> None:
    await User.filter(account_id=w.ann.pk).update(is_admin=True)


async def _act_tell_admins_of_ben(w: World) -> None:
    # ben signed up and waits for approval (the account is other sites'): admins are told.
    await w.begin()
    await signup._tell_admins(w.ben)


LIKENESS = "fedisora/services/likeness.py"
REPORTS = "fedisora/services/reports.py"
MODERATION = "fedisora/services/moderation.py"

SCENARIOS = [
    Scenario(
        "ann reports rita, forwarded to rita's instance",
        ((REPORTS, "file_report", "report.forwarded"),),
        _act_report_rita_forwarded,
        {"report.forwarded": 1},
        {("Flag", REMOTE): 1},
        setup=_setup_instance_actor,
    ),
    Scenario(
        "a moderator's action on a report, told to ben",
        ((MODERATION, "warn", "notification.created"), NOTIFY),
        _act_warn_ben,
        {"notification.created": 1},
        {},
        {("ben", N.MODERATION_WARNING): 1},
        setup=_setup_report_about_ben,
    ),
    Scenario(
        "a moderator marks ann's clip and comment sensitive",
        (
            (MODERATION, "_flag", "clip.updated"),
            (MODERATION, "_flag", "comment.updated"),
        ),
        _act_mark_ann_sensitive,
        {"clip.updated": 1, "comment.updated": 1},
        {("Update(Note)", REMOTE): 2},
        setup=_setup_clip_and_comment_of_ann,
    ),
    Scenario(
        "ann's appeal of a mark approved: lifted and told",
        ((MODERATION, "_flag", "clip.updated"), (MODERATION, "_tell", "notification.created")),
        _act_approve_the_appeal,
        {"clip.updated": 1, "notification.created": 1},
        {("Update(Note)", REMOTE): 1},
        {("ann", N.APPEAL_APPROVED): 1},
        setup=_setup_appeal_of_a_mark,
    ),
    Scenario(
        "an appeal decided, told to ben",
        (("fedisora/services/moderation.py", "_tell", "notification.created"), NOTIFY),
        _act_tell_ben_of_the_appeal,
        {"notification.created": 1},
        {},
        {("ben", N.APPEAL_APPROVED): 1},
        setup=_setup_appeal_of_ben,
    ),
    Scenario(
        "an appeal filed, told to the staff",
        (("fedisora/services/moderation.py", "_tell_staff", "notification.created"), NOTIFY),
        _act_ben_appeals,
        {"notification.created": 1},
        {},
        {("ann", N.ADMIN_APPEAL): 1},
        setup=_setup_ann_admin_and_a_warning_of_ben,
    ),
    Scenario(
        "a new report, told to the staff",
        ((REPORTS, "_tell_staff", "notification.created"), NOTIFY),
        _act_tell_staff_of_the_report,
        {"notification.created": 1},
        {},
        {("ann", N.ADMIN_REPORT): 1},
        setup=_setup_ann_admin_and_a_report,
    ),
    Scenario(
        "a sign-up waiting for approval, told to the admins",
        (("fedisora/services/signup.py", "_tell_admins", "notification.created"), NOTIFY),
        _act_tell_admins_of_ben,
        {"notification.created": 1},
        {},
        {("ann", N.ADMIN_SIGN_UP): 1},
        setup=_setup_ann_admin,
    ),
    Scenario(
        "fan tells ann of a draft with her likeness",
        (("fedisora/federation/likeness.py", "on_likeness_use", "notification.created"),),
        _act_fan_tells_a_use,
        {"notification.created": 1},
        {},
        {("ann", N.LIKENESS_USE): 1},
        setup=_setup_grant_to_fan,
        work="inbox_items",
    ),
    Scenario(
        "a draft with fan's likeness, told to fans.example",
        (("fedisora/federation/likeness.py", "emit_activity", None),),
        _act_use_of_fan,
        {"likeness.federate": 1},
        {("LikenessUse", FANS): 1},
    ),
    Scenario(
        "a received clip refused on ann's consent",
        (
            ("fedisora/federation/cameo_clips.py", "tell_refused", "notification.created"),
            NOTIFY,
        ),
        _act_refused_clip_of_ann,
        {"notification.created": 1},
        {},
        {("ann", N.LIKENESS_USE): 1},
        setup=_setup_grant_to_fan,
    ),
    Scenario(
        "ask for ann's likeness, which waits for her",
        ((LIKENESS, "request_use", "notification.created"), NOTIFY),
        lambda w: likeness.request_use(w.ben, w.ann, accept_restrictions=True),
        {"notification.created": 1},
        {},
        {("ann", N.LIKENESS_REQUEST): 1},
        setup=_setup_ann_approves_each_use,
    ),
    Scenario(
        "a draft with ann's likeness",
        ((LIKENESS, "record_use", "notification.created"), NOTIFY),
        _act_use_of_ann,
        {"notification.created": 1},
        {},
        {("ann", N.LIKENESS_USE): 1},
        setup=_setup_ann_approves_each_use,
    ),
    Scenario(
        "revoke a grant to a remote account",
        ((LIKENESS, "revoke_grant", "likeness.revoked"),),
        lambda w: likeness.revoke_grant(w.ann, w.rows["grant"].pk, take_down=True),
        {"likeness.revoked": 1},
        {("Delete", FANS): 1},
        setup=_setup_grant_to_fan,
    ),
    Scenario(
        "revoke a whole likeness granted to a remote account",
        ((LIKENESS, "revoke_likeness", "likeness.revoked"),),
        lambda w: likeness.revoke_likeness(w.ann, settings=w.settings),
        {"likeness.revoked": 1},
        {("Delete", FANS): 1},
        setup=_setup_grant_to_fan,
    ),
    Scenario(
        "post a clip mentioning ben",
        (
            (POSTS, "store_clip", "clip.created"),
            (POSTS, "store_clip", "notification.created"),
            NOTIFY,
        ),
        lambda w: _clip(w, caption="hi @ben"),
        {"clip.created": 1, "notification.created": 1},
        {("Create(Note)", REMOTE): 1},
        {("ben", N.MENTION): 1},
    ),
    Scenario(
        "edit a boosted clip",
        ((POSTS, "edit_clip", "clip.updated"), (POSTS, "edit_clip", "notification.created")),
        lambda w: posts.edit_clip(w.ann, w.rows["clip"], caption="edited"),
        {"clip.updated": 1, "notification.created": 1},
        {("Update(Note)", REMOTE): 1},
        {("ben", N.UPDATE): 1},
        setup=_setup_boosted,
    ),
    Scenario(
        "delete a clip",
        ((POSTS, "delete_clip", "clip.deleted"),),
        lambda w: posts.delete_clip(w.ann, w.rows["clip"]),
        {"clip.deleted": 1},
        {("Delete(Tombstone)", REMOTE): 1},
        setup=_setup_clip,
    ),
    Scenario(
        "follow a remote account",
        ((FOLLOWS, "follow", "follow.requested"),),
        lambda w: follows.follow(w.ann, w.idol),
        {"follow.requested": 1},
        {("Follow", IDOLS): 1},
    ),
    Scenario(
        "a remote account follows ann (accepted at once)",
        ((FOLLOWS, "follow", "follow.accepted"), (FOLLOWS, "follow", "notification.created")),
        lambda w: follows.follow(w.fan, w.ann, uri=f"{w.fan.uri}#follows/1"),
        {"follow.requested": 1, "follow.accepted": 1, "notification.created": 1},
        {("Accept(Follow)", FANS): 1},
        {("ann", N.FOLLOW): 1},
    ),
    Scenario(
        "accept a follow request",
        (
            (FOLLOWS, "accept_follow", "follow.accepted"),
            (FOLLOWS, "accept_follow", "notification.created"),
        ),
        lambda w: follows.accept_follow(w.ann, w.rows["follow"]),
        {"follow.accepted": 1, "notification.created": 1},
        {("Accept(Follow)", FANS): 1},
        {("ann", N.FOLLOW): 1},
        setup=_setup_locked_request,
    ),
    Scenario(
        "reject a follow request",
        ((FOLLOWS, "_remove", None),),
        lambda w: follows.reject_follow(w.ann, w.rows["follow"]),
        {"follow.rejected": 1},
        {("Reject(Follow)", FANS): 1},
        setup=_setup_locked_request,
    ),
    Scenario(
        "unfollow",
        ((FOLLOWS, "_remove", None),),
        lambda w: follows.unfollow(w.ann, w.idol),
        {"follow.deleted": 1},
        {("Undo(Follow)", IDOLS): 1},
        setup=_setup_following_idol,
    ),
    Scenario(
        "block a follower",
        ((FOLLOWS, "block", "block.created"), (FOLLOWS, "_remove", None)),
        lambda w: follows.block(w.ann, w.rita.account),
        {"follow.deleted": 1, "block.created": 1},
        {("Block", REMOTE): 1},
    ),
    Scenario(
        "unblock",
        ((FOLLOWS, "unblock", "block.deleted"),),
        lambda w: follows.unblock(w.ann, w.idol),
        {"block.deleted": 1},
        {("Undo(Block)", IDOLS): 1},
        setup=_setup_blocked_idol,
    ),
    Scenario(
        "like a remote clip",
        ((INTERACTIONS, "like", "like.created"),),
        lambda w: interactions.like(w.ann, w.rows["clip"]),
        {"like.created": 1},
        {("Like", REMOTE): 1},
        setup=_setup_rita_clip,
    ),
    Scenario(
        "like ben's clip",
        ((INTERACTIONS, "like", "notification.created"),),
        lambda w: interactions.like(w.ann, w.rows["clip"]),
        {"like.created": 1, "notification.created": 1},
        {},
        {("ben", N.FAVOURITE): 1},
        setup=_setup_ben_clip,
    ),
    Scenario(
        "unlike",
        ((INTERACTIONS, "unlike", "like.deleted"),),
        lambda w: interactions.unlike(w.ann, w.rows["clip"]),
        {"like.deleted": 1},
        {("Undo(Like)", REMOTE): 1},
        setup=_setup_liked,
    ),
    Scenario(
        "comment on ben's clip",
        (
            (INTERACTIONS, "store_comment", "comment.created"),
            (INTERACTIONS, "store_comment", "notification.created"),
        ),
        lambda w: interactions.comment(w.ann, w.rows["clip"], "nice"),
        {"comment.created": 1, "notification.created": 1},
        {("Create(Note)", REMOTE): 1},
        {("ben", N.MENTION): 1},
        setup=_setup_ben_clip,
    ),
    Scenario(
        "rita's proven reply to ann's clip, forwarded to ann's followers elsewhere",
        (
            (INTERACTIONS, "store_comment", "comment.created"),
            (INTERACTIONS, "store_comment", "notification.created"),
            ("fedisora/federation/delivery.py", "forward_reply", None),
        ),
        _act_proven_reply,
        {"comment.created": 1, "notification.created": 1, "activity.forwarded": 1},
        {("Create(Note)", "fans.example"): 1},
        {("ann", N.MENTION): 1},
        setup=_setup_reply_forwarding,
        work="inbox_items",
    ),
    Scenario(
        "rita follows ann again (a new Follow id): accepted again",
        ((FOLLOWS, "_followed_again", "follow.accepted"),),
        _act_follow_again,
        {"follow.accepted": 1},
        {("Accept(Follow)", REMOTE): 1},
        work="inbox_items",
    ),
    Scenario(
        "ann's public clip fingerprinted: an Update carries the fingerprint",
        (("fedisora/services/fingerprints.py", "_compute", "clip.updated"),),
        _act_fingerprint,
        {"clip.updated": 1},
        {("Update(Note)", REMOTE): 1},
        setup=_setup_clip_to_fingerprint,
        work="fingerprints",
    ),
    Scenario(
        "delete a comment",
        ((INTERACTIONS, "delete_comment", "comment.deleted"),),
        lambda w: interactions.delete_comment(w.ann, w.rows["comment"]),
        {"comment.deleted": 1},
        {("Delete(Tombstone)", REMOTE): 1},
        setup=_setup_comment,
    ),
    Scenario(
        "edit a comment",
        (("fedisora/services/comment_edits.py", "edit_comment", "comment.updated"),),
        lambda w: comment_edits.edit_comment(w.ann, w.rows["comment"], text="nicer"),
        {"comment.updated": 1},
        {("Update(Note)", REMOTE): 1},
        setup=_setup_comment,
    ),
    Scenario(
        "boost ben's clip",
        ((INTERACTIONS, "boost", "boost.created"), (INTERACTIONS, "boost", "notification.created")),
        lambda w: interactions.boost(w.ann, w.rows["clip"]),
        {"boost.created": 1, "notification.created": 1},
        {("Announce", REMOTE): 1},
        {("ben", N.REBLOG): 1},
        setup=_setup_ben_clip,
    ),
    Scenario(
        "unboost",
        ((INTERACTIONS, "unboost", "boost.deleted"),),
        lambda w: interactions.unboost(w.ann, w.rows["clip"]),
        {"boost.deleted": 1},
        {("Undo(Announce)", REMOTE): 1},
        setup=_setup_boost_of_ben,
    ),
    Scenario(
        "suspend a local account",
        ((DELETION, "suspend_account", "account.suspended"),),
        lambda w: account_deletion.suspend_account(w.ann),
        {"account.suspended": 1},
        {("Update(Person)", REMOTE): 1},
    ),
    Scenario(
        "unsuspend a local account",
        ((DELETION, "unsuspend_account", "account.unsuspended"),),
        lambda w: account_deletion.unsuspend_account(w.ann),
        {"account.unsuspended": 1},
        {("Update(Person)", REMOTE): 1},
        setup=_setup_suspended,
    ),
    Scenario(
        "delete a local account (cut after its first step)",
        ((DELETION, "_mark_deleted", "account.deleted"),),
        lambda w: account_deletion.delete_local_account(w.ann, settings=w.settings),
        {"account.deleted": 1},
        {("Delete", REMOTE): 1},
    ),
    Scenario(
        "update the profile (Mastodon API)",
        (("fedisora/services/profiles.py", "update_profile", "account.updated"),),
        _act_api,
        {"account.updated": 1},
        {("Update(Person)", REMOTE): 1},
        setup=_setup_api,
    ),
    Scenario(
        "a remote clip's Update",
        ((INGEST, "_update", "clip.updated"),),
        _act_remote_update,
        {"clip.updated": 1},
        setup=_setup_rita_clip,
        work="inbox_items",
    ),
    Scenario(
        "the source's author rejects a stamped remix (revoked)",
        ((INGEST, "_set_stamp", "clip.updated"),),
        _act_reject,
        {"clip.updated": 1},
        {("Update(Note)", REMOTE): 1},
        setup=_setup_stamped_remix,
        work="inbox_items",
    ),
    Scenario(
        "a QuoteRequest approves a remote remix",
        (
            (INGEST, "_quote_request", "notification.created"),
            ("fedisora/services/remixes.py", "notify_approved", "notification.created"),
        ),
        _act_quote_request,
        {"notification.created": 1},
        {("Accept(QuoteRequest)", REMOTE): 1},
        {("ann", N.REMIX): 1},
        setup=_setup_remote_remix,
        work="inbox_items",
    ),
    Scenario(
        "a quote check approves a remote remix",
        (
            (QUOTE_MACHINE, "_verify", "clip.updated"),
            (QUOTE_MACHINE, "_verify", "notification.created"),
        ),
        _act_quote_check,
        {"clip.updated": 1, "notification.created": 1},
        {},
        {("ann", N.REMIX): 1},
        setup=_setup_remote_remix,
        work="quote_checks",
    ),
    Scenario(
        "a quoted author deletes the stamp of a third party's remix",
        ((QUOTES, "stamp_deleted", "clip.updated"),),
        _act_stamp_deleted,
        {"clip.updated": 1},
        setup=_setup_third_party_remix,
        work="inbox_items",
    ),
    Scenario(
        "a remote clip's media check",
        (("fedisora/federation/media_check.py", "_check", "clip.updated"),),
        _act_media_check,
        {"clip.updated": 1},
        setup=_setup_rita_clip,
        work="remote_media_checks",
    ),
    Scenario(
        "the engine fails a render that timed out",
        ((RENDER, "_on_move", "notification.created"), NOTIFY),
        _act_render,
        {"notification.created": 1},
        {},
        {("ann", N.RENDER_FAILED): 1},
        setup=_setup_timed_out_render,
        work="render_jobs",
    ),
    Scenario(
        "a render's handler fails it (a cameo refused)",
        ((RENDER, "_on_move", "notification.created"), NOTIFY),
        _act_render,
        {"notification.created": 1},
        {},
        {("ann", N.RENDER_FAILED): 1},
        setup=_setup_refused_render,
        work="render_jobs",
    ),
    Scenario(
        "a notification outside any transaction",
        (NOTIFY,),
        _act_notify_alone,
        {"notification.created": 1},
        {},
        {("ann", N.RENDER_FINISHED): 1},
    ),
]


SCENARIO_IDS = [re.sub(r"\W+", "_", s.name).strip("_") for s in SCENARIOS]


def test_every_emit_site_has_a_kill_scenario() -> None:
    sites = emit_sites()
    claimed = {site for scenario in SCENARIOS for site in scenario.sites}
    assert sites - claimed == set(), "emit sites no kill scenario covers"
    assert claimed - sites == set(), "scenarios naming emit sites that do not exist"
    assert {kind for scenario in SCENARIOS for kind in scenario.events} == events.KINDS


def _cut(exc: BaseException, wanted: type[BaseException]) -> bool:
    """Whether *exc* is (or, raised through a task group, holds) the *wanted* cut."""
    if isinstance(exc, wanted):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_cut(inner, wanted) for inner in exc.exceptions)
    return False


@pytest.mark.parametrize("kill", [True, False], ids=["killed", "control"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=SCENARIO_IDS)
async def test_a_kill_after_the_commit_loses_and_doubles_nothing(
    world: World, scenario: Scenario, kill: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    if scenario.setup is not None:
        await scenario.setup(w)
    assert not await OutboxEvent.exclude(state="done").exists()  # the setup's all went through
    await Delivery.all().delete()
    last = await Notification.all().order_by("-id").first()
    notes_after = last.pk if last is not None else 0
    w.heard.clear()

    emitted: dict[int, tuple[str, set[tuple[str, str]]]] = {}
    real_emit = events.emit

    async def recording_emit(conn: Any, kind: str, actor_id: int, **data: Any) -> OutboxEvent:
        row = await real_emit(conn, kind, actor_id, **data)
        emitted[row.pk] = (kind, _frames())
        return row

    real_committed = events._committed
    cut: list[list[int]] = []
    target = scenario.sites[0]

    async def committed(rows: list[OutboxEvent]) -> None:
        if not cut and any(_hit(target, *emitted[row.pk]) for row in rows):
            cut.append([row.pk for row in rows])
            # Nothing committed between the act's start and this transaction's beginning.
            assert began[-1] == w.baseline[0], "the change was committed before its events"
            if kill:
                raise Killed
            await real_committed(rows)
            raise Stopped
        await real_committed(rows)

    real_transaction = events.transaction
    began: list[list[Any]] = []  # the database as each outermost transaction began

    @contextlib.asynccontextmanager
    async def transaction() -> AsyncIterator[Any]:
        if events._pending.get() is None:
            began.append(await _fingerprint())
        async with real_transaction() as conn:
            yield conn

    monkeypatch.setattr(events, "emit", recording_emit)
    monkeypatch.setattr(events, "_committed", committed)
    monkeypatch.setattr(events, "transaction", transaction)
    wanted = Killed if kill else Stopped
    await w.begin()
    try:
        await scenario.act(w)
    except BaseException as exc:
        if not _cut(exc, wanted):
            raise
    assert cut, f"{scenario.name}: no transaction committed an event of {target}"
    for site in scenario.sites:
        assert any(_hit(site, *emitted[pk]) for pk in cut[0]), f"{site} not in the cut"

    monkeypatch.setattr(events, "_committed", real_committed)
    events.clear_runner()  # the process is gone: nothing hands its rows on
    await _recover(w, scenario.work)
    effects = await _effects(w, notes_after)
    assert effects == scenario.expected()
    assert not await OutboxEvent.exclude(state="done").exists()
    assert not await OutboxEvent.filter(attempts__gt=0).exists()

    await _recover(w, scenario.work)  # another fresh runner: nothing is done twice
    assert await _effects(w, notes_after) == effects
    assert await Delivery.all().count() == sum(scenario.deliveries.values())
    if scenario.work == "inbox_items":
        assert not await InboxItem.filter(state="received").exists()
