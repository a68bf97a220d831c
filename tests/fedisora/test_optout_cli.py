"""``fedisora optout list|approve|reject|remove|lists|subscribe|mode|fetch|apply|discard|...``:
the opt-out registry from the command line, through the services the admin page uses; the
audit log names the command line as the actor; refusals are one clear line and exit code 1.

In-process: :func:`optout_command` on the test's database, and :func:`main` (in a thread, as
the program runs it) on an instance's own SQLite database for the exit codes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from instance import seed_database
from optout_peer import LIST_URL, serving

from fedisora.cli import CommandError, build_parser, main, optout_command
from fedisora.config import load_settings
from fedisora.federation.context import get_federation
from fedisora.models import (
    AuditEntry,
    OptOut,
    OptOutMode,
    OptOutPublication,
    OptOutState,
    OptOutSubscription,
    PolicySource,
    PolicyTerm,
)
from fedisora.policy.optout_list import ListEntry
from fedisora.services import optouts

LIST = LIST_URL  # lists.example's, which optout_peer serves


async def _run(*argv: str, insecure: bool = False) -> str:
    return await optout_command(build_parser().parse_args(["optout", *argv]), insecure=insecure)


async def _refused(*argv: str, insecure: bool = False) -> str:
    with pytest.raises(CommandError) as caught:
        await _run(*argv, insecure=insecure)
    return str(caught.value)


async def _logged() -> list[tuple[str | None, str, str, str]]:
    rows = await AuditEntry.all().order_by("id")
    return [(r.actor_label, r.action, r.target_label, r.detail) for r in rows]


async def test_list_approve_and_reject(db: str) -> None:
    taylor = await optouts.submit(
        who="Taylor Swift", kind="public_figure", terms=[], contact="legal@example.com"
    )
    mouse = await optouts.submit(
        who="Mouse Studio",
        kind="protected_work",
        terms=["Mickey Mouse", "Minnie Mouse"],
        contact="https://mouse.example/legal",
    )
    assert await _run("list") == "\n".join(
        [
            f"{mouse.pk}\tpending\tprotected_work\tMouse Studio\tMickey Mouse; Minnie Mouse\tlocal",
            f"{taylor.pk}\tpending\tpublic_figure\tTaylor Swift\tTaylor Swift\tlocal",
        ]
    )

    said = await _run("approve", str(taylor.pk))
    assert said == f"approved opt-out {taylor.pk} (Taylor Swift): Taylor Swift"
    approved = await OptOut.get(pk=taylor.pk)
    assert approved.state == OptOutState.APPROVED and approved.reviewed_by_id is None
    terms = [t.term for t in await PolicyTerm.filter(source=PolicySource.OPTOUT)]
    assert terms == ["Taylor Swift"]

    said = await _run("reject", str(mouse.pk), "--reason", "  not the rights holder ")
    assert said == f"rejected opt-out {mouse.pk} (Mouse Studio): not the rights holder"
    assert (await OptOut.get(pk=mouse.pk)).state == OptOutState.REJECTED
    assert await PolicyTerm.filter(source=PolicySource.OPTOUT).count() == 1

    assert await _logged() == [
        ("cli", "optout.approve", "Taylor Swift", "Taylor Swift"),
        ("cli", "optout.reject", "Mouse Studio", "not the rights holder"),
    ]
    assert await AuditEntry.filter(actor_id__not_isnull=True).count() == 0

    assert (await _run("list", "--state", "approved")).split("\t")[:2] == [
        str(taylor.pk),
        "approved",
    ]
    rejected = await _run("list", "--state", "rejected")
    assert rejected.endswith("\tlocal\tnot the rights holder")
    assert await _run("list", "--state", "pending") == "no opt-outs pending"

    # Refusals: decided already, an unknown id; nothing changes, nothing is logged.
    for argv in (("approve", str(taylor.pk)), ("reject", str(taylor.pk), "--reason", "no")):
        assert await _refused(*argv) == (
            f"cannot {argv[0]} opt-out {taylor.pk}: the opt-out is approved, not pending"
        )
    assert await _refused("approve", str(mouse.pk)) == (
        f"cannot approve opt-out {mouse.pk}: the opt-out is rejected, not pending"
    )
    assert await _refused("approve", "424242") == (
        "no opt-out 424242: `fedisora optout list` shows them"
    )
    assert await _refused("reject", "424242", "--reason", "no") == (
        "no opt-out 424242: `fedisora optout list` shows them"
    )
    late = await optouts.submit(who="Someone", kind="public_figure", terms=[], contact="a@b.cd")
    assert "at most 1000" in await _refused("reject", str(late.pk), "--reason", "x" * 1001)
    assert (await OptOut.get(pk=late.pk)).state == OptOutState.PENDING
    assert len(await _logged()) == 2


async def test_subscribe_and_unsubscribe(db: str) -> None:
    said = await _run("subscribe", f" {LIST} ")
    assert said.startswith(f"subscribed to {LIST} (review): ")
    review = await OptOutSubscription.get(url=LIST)
    assert review.mode == OptOutMode.REVIEW and review.created_by_id is None
    other = "https://other.example/optouts.json"
    assert (await _run("subscribe", other, "--auto")).startswith(f"subscribed to {other} (auto)")
    assert (await OptOutSubscription.get(url=other)).mode == OptOutMode.AUTO

    assert await _refused("subscribe", LIST) == "this list is subscribed already"
    for bad in ("http://lists.example/list", "ftp://lists.example/list", "lists.example"):
        assert await _refused("subscribe", bad) == (
            "the list's URL must be an https URL with a host"
        )
    assert await _refused("subscribe", "") == "the list's URL is needed"
    too_long = "https://lists.example/" + "x" * 1024
    assert await _refused("subscribe", too_long) == (
        "the list's URL is too long (at most 1024 characters)"
    )
    assert await _refused("subscribe", "https://lists.example:port/list") == (
        "the list's URL is not a valid URL"
    )
    # On an instance serving plain HTTP (as the page allows there), http:// too.
    plain = "http://lists.example/list"
    assert (await _run("subscribe", plain, insecure=True)).startswith(f"subscribed to {plain}")

    # An entry the list brought leaves the policy with it.
    entry = await OptOut.create(
        who="Listed", kind="public_figure", terms=["Listed"], state=OptOutState.APPROVED,
        source=LIST, remote_id=f"{LIST}#1", contact=LIST,
    )  # fmt: skip
    await PolicyTerm.create(
        list_name="public_figure", term="Listed", key="listed", source=PolicySource.OPTOUT,
        source_ref=f"optout:{entry.pk}",
    )  # fmt: skip
    said = await _run("unsubscribe", LIST)
    assert said == f"unsubscribed from {LIST}: the opt-outs it brought left the prompt policy"
    assert not await OptOutSubscription.filter(url=LIST).exists()
    assert not await OptOut.filter(pk=entry.pk).exists()
    assert not await PolicyTerm.filter(source=PolicySource.OPTOUT).exists()
    assert await _refused("unsubscribe", LIST) == f"no subscription to {LIST}"

    logged = await _logged()
    assert [(a, action, target) for a, action, target, _ in logged] == [
        ("cli", "optout.subscribe", LIST),
        ("cli", "optout.subscribe", other),
        ("cli", "optout.subscribe", plain),
        ("cli", "optout.unsubscribe", LIST),
    ]
    assert [detail for *_, detail in logged[:2]] == ["review", "auto"]


def _waiting(version: int, *entries: ListEntry) -> dict[str, object]:
    """A version's changes waiting for review, as a fetch in review mode keeps them."""
    return {
        "version": version,
        "issued_at": "2026-12-01T00:00:00Z",
        "added": [e.public() for e in entries],
        "removed": [],
    }


async def test_remove_mode_apply_and_discard(db: str) -> None:
    taylor = await optouts.submit(
        who="Taylor Swift", kind="public_figure", terms=[], contact="legal@example.com"
    )
    assert await _refused("remove", str(taylor.pk), "--reason", "withdrawn") == (
        f"cannot remove opt-out {taylor.pk}: the opt-out is pending, not approved"
    )
    await _run("approve", str(taylor.pk))
    assert await _refused("remove", str(taylor.pk), "--reason", " ") == (
        f"cannot remove opt-out {taylor.pk}: give a reason (the rights holder may be told it)"
    )
    said = await _run("remove", str(taylor.pk), "--reason", "asked to withdraw")
    assert said == (
        f"removed opt-out {taylor.pk} (Taylor Swift): asked to withdraw; its terms left the "
        "prompt policy and the published list"
    )
    removed = await OptOut.get(pk=taylor.pk)
    assert removed.state == OptOutState.REJECTED and removed.reason == "asked to withdraw"
    assert not await PolicyTerm.filter(source=PolicySource.OPTOUT).exists()
    assert (await OptOutPublication.get(pk=1)).version == 2  # approved, then removed
    assert await _refused("remove", str(taylor.pk), "--reason", "again") == (
        f"cannot remove opt-out {taylor.pk}: the opt-out is rejected, not approved"
    )
    assert await _refused("remove", "424242", "--reason", "no") == (
        "no opt-out 424242: `fedisora optout list` shows them"
    )

    # A subscribed list: its mode, and a version waiting for review applied or discarded.
    assert await _run("lists") == "no subscribed lists"
    for argv in (("mode", LIST, "auto"), ("apply", LIST), ("discard", LIST)):
        assert await _refused(*argv) == f"no subscription to {LIST}"
    await _run("subscribe", LIST)
    sub = await OptOutSubscription.get(url=LIST)
    assert await _refused("apply", LIST) == "nothing is waiting for review in this subscription"
    assert await _refused("discard", LIST) == "nothing is waiting for review in this subscription"
    ann = ListEntry(f"{LIST}#1", "Ann Star", "public_figure", ("Ann Star",))
    await OptOutSubscription.filter(pk=sub.pk).update(pending=_waiting(2, ann))
    assert await _run("lists") == (
        f"{LIST}\treview\tversion 0 applied\twaiting for review: version 2: +1 -0 (+Ann Star)"
    )
    assert await _run("mode", f" {LIST} ", "auto") == (
        f"{LIST} is in auto mode: new versions are applied as fetched; version 2: +1 -0 "
        "(+Ann Star) still waits for review (`fedisora optout apply` or discard)"
    )
    assert (await OptOutSubscription.get(pk=sub.pk)).mode == OptOutMode.AUTO
    assert await _run("apply", LIST) == f"applied version 2: +1 -0 (+Ann Star) of {LIST}"
    [listed] = await OptOut.filter(source=LIST)
    assert (listed.who, listed.state, listed.remote_id) == (
        "Ann Star",
        OptOutState.APPROVED,
        ann.id,
    )
    assert [t.term for t in await PolicyTerm.filter(source=PolicySource.OPTOUT)] == ["Ann Star"]
    assert await _refused("apply", LIST) == "nothing is waiting for review in this subscription"

    owl = ListEntry(f"{LIST}#2", "Owl Works", "protected_work", ("Professor Owl",))
    await OptOutSubscription.filter(pk=sub.pk).update(pending=_waiting(3, ann, owl))
    assert await _run("mode", LIST, "review") == (
        f"{LIST} is in review mode: new versions wait for review; version 3: +2 -0 "
        "(+Ann Star, +Owl Works) still waits for review (`fedisora optout apply` or discard)"
    )
    assert await _run("discard", LIST) == (
        f"discarded version 3 of {LIST}: only a newer version comes back"
    )
    after = await OptOutSubscription.get(pk=sub.pk)
    assert after.applied_version == 3 and after.pending is None
    assert [o.who for o in await OptOut.filter(source=LIST)] == ["Ann Star"]
    assert await _run("lists") == f"{LIST}\treview\tversion 3 applied"

    assert await _logged() == [
        ("cli", "optout.approve", "Taylor Swift", "Taylor Swift"),
        ("cli", "optout.remove", "Taylor Swift", "asked to withdraw"),
        ("cli", "optout.subscribe", LIST, "review"),
        ("cli", "optout.mode", LIST, "auto"),
        ("cli", "optout.apply", LIST, "version 2: +1 -0 (+Ann Star)"),
        ("cli", "optout.mode", LIST, "review"),
        ("cli", "optout.discard", LIST, "version 3"),
    ]


async def test_fetch(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``optout fetch URL``: the admin page's "Fetch now", through the same service."""
    settings = load_settings(
        {"FEDISORA_DOMAIN": "fedisora.test", "FEDISORA_DATA_DIR": str(tmp_path),
         "FEDISORA_SECRET_KEY": "s" * 40, "FEDISORA_DATABASE_URL": db}
    )  # fmt: skip
    ann = ListEntry(f"{LIST}#1", "Ann Star", "public_figure", ("Ann Star",))
    async with serving(settings, monkeypatch) as peer:
        fed = get_federation(settings)

        async def fetch() -> str:
            return await optout_command(
                build_parser().parse_args(["optout", "fetch", LIST]), fed=fed
            )

        with pytest.raises(CommandError) as caught:
            await fetch()
        assert str(caught.value) == f"no subscription to {LIST}"
        await _run("subscribe", LIST)
        peer.publish(1, ann)
        assert await fetch() == (
            f"fetched {LIST}: version 1: +1 -0 (+Ann Star) waits for review "
            "(`fedisora optout apply` or discard)"
        )
        assert await _run("apply", LIST) == f"applied version 1: +1 -0 (+Ann Star) of {LIST}"
        assert await fetch() == f"fetched {LIST}: no newer version (version 1 applied)"
        await _run("mode", LIST, "auto")
        peer.publish(2)
        assert await fetch() == f"fetched {LIST}: version 2 is applied"
        assert not await OptOut.filter(source=LIST).exists()
        peer.publish(3, ann)
        peer.document["entries"] = []  # tampered with: the proof no longer holds
        with pytest.raises(CommandError) as caught:
            await fetch()
        assert str(caught.value) == (
            f"the fetch of {LIST} failed: BadSignature: bad proof: the signature does not "
            "verify (tampered, or another key)"
        )
    assert (await OptOutSubscription.get(url=LIST)).applied_version == 2
    assert [(action, detail) for _, action, _, detail in await _logged()] == [
        ("optout.subscribe", "review"),
        ("optout.fetch", "pending"),
        ("optout.apply", "version 1: +1 -0 (+Ann Star)"),
        ("optout.fetch", "unchanged"),
        ("optout.mode", "auto"),
        ("optout.sync", "version 2: +0 -1 (-Ann Star)"),
        ("optout.fetch", "applied"),
        (
            "optout.fetch",
            "error: BadSignature: bad proof: the signature does not verify (tampered, or "
            "another key)",
        ),
    ]


def _main(*argv: str) -> int:
    # The program calls asyncio.run: a thread keeps it off the test session's event loop.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(main, ["optout", *argv]).result()


def test_exit_codes_of_the_program(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("FEDISORA_DATABASE_URL", "FEDISORA_MEDIA_ROOT", "FEDISORA_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    env = {"FEDISORA_DATA_DIR": str(tmp_path / "data"), "FEDISORA_DOMAIN": "clips.example"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FEDISORA_LOG_LEVEL", "warning")
    seed_database(env)  # a migrated database, as `fedisora init` leaves it

    assert _main("list") == 0
    assert capsys.readouterr().out == "no opt-outs\n"
    for argv, message in (
        (("approve", "424242"), "error: no opt-out 424242: `fedisora optout list` shows them"),
        (("approve", "abc"), "error: 'abc' is not an opt-out id"),
        (("reject", "424242"), "error: optout reject needs --reason"),
        (("remove", "424242"), "error: optout remove needs --reason"),
        (("remove", "x", "--reason", "r"), "error: 'x' is not an opt-out id"),
        (("remove", "424242", "--reason", "r"), "error: no opt-out 424242: `fedisora optout"),
        (("mode", LIST, "auto"), f"error: no subscription to {LIST}"),
        (("apply", LIST), f"error: no subscription to {LIST}"),
        (("fetch", LIST), f"error: no subscription to {LIST}"),
        (("subscribe", "ftp://lists.example/list"), "error: the list's URL must be an https URL"),
        (("unsubscribe", LIST), f"error: no subscription to {LIST}"),
    ):
        assert _main(*argv) == 1, argv
        captured = capsys.readouterr()
        assert captured.err.startswith(message), captured.err
        assert "Traceback" not in captured.err and captured.out == ""
    assert _main("subscribe", LIST) == 0
    assert capsys.readouterr().out.startswith(f"subscribed to {LIST} (review)")
    assert _main("apply", LIST) == 1
    assert capsys.readouterr().err == (
        "error: nothing is waiting for review in this subscription\n"
    )
    assert _main("lists") == 0
    assert capsys.readouterr().out == f"{LIST}\treview\tversion 0 applied\n"
    with pytest.raises(SystemExit) as unknown:  # argparse: the mode is review or auto
        _main("mode", LIST, "sometimes")
    assert unknown.value.code == 2
    with pytest.raises(SystemExit) as malformed:  # argparse: exit code 2, its usage line
        _main("approve")
    assert malformed.value.code == 2
