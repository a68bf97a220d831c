"""The automatic likeness check of the admin's choosing (FEDISORA_LIKENESS_CHECK): a real
program written by the test (verified, rejected, crashing, hanging) and python: callables,
run by the ``likeness_checks`` housekeeping chore (durable work), never in the request."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from chores import Clock, engine_for, run_chore
from factories import local_account
from likenesses import face_png

from fedisora.config import ConfigError, Settings, load_settings
from fedisora.errors import Conflict
from fedisora.models import Account, Chore, Likeness
from fedisora.services import likeness as svc
from fedisora.services import likeness_check

CHECK_MODULE = """
import asyncio
from fedisora.services.likeness_check import Verdict

CALLS = []

async def approve(data):
    CALLS.append(data)
    assert data.sample.is_file() and all(p.is_file() for p in data.references)
    await asyncio.sleep(0)
    return Verdict("verified", f"the code {data.challenge} is shown")

def refuse(data):
    CALLS.append(data)
    return ("rejected", "two different people")

def broken(data):
    raise RuntimeError("the model is missing")

def nonsense(data):
    return "maybe"

async def slow(data):
    await asyncio.sleep(30)
"""


def settings_with(tmp_path: Path, check: str, seconds: float = 10) -> Settings:
    return load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": str(tmp_path / "data"),
            "FEDISORA_LIKENESS_CHECK": check,
            "FEDISORA_LIKENESS_CHECK_TIMEOUT_SECONDS": str(seconds),
            "FEDISORA_SECRET_KEY": "k" * 40,
        }
    )


def program(tmp_path: Path, body: str) -> Path:
    """An executable Python script that logs its arguments, then runs *body*."""
    path = tmp_path / "check-likeness"
    path.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys, time, subprocess\n"
        f"log = {str(tmp_path / 'calls.jsonl')!r}\n"
        "with open(log, 'a') as f:\n"
        "    f.write(json.dumps({'argv': sys.argv[1:], 'env': sorted(os.environ)}) + '\\n')\n"
        + body
    )
    path.chmod(0o755)
    return path


def is_file(path: str) -> bool:
    return Path(path).is_file()


def calls(tmp_path: Path) -> list[dict[str, Any]]:
    import json

    log = tmp_path / "calls.jsonl"
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


async def register(account: Account, settings: Settings) -> Likeness:
    challenge = await svc.new_challenge(account)
    return await svc.register(
        account,
        references=[face_png(), face_png(160, 160)],
        verification=face_png(300, 300),
        challenge=challenge.code,
        settings=settings,
    )


async def check_once(settings: Settings) -> Chore:
    row: Chore = await run_chore(engine_for(settings, Clock()), likeness_check.CHORE)
    return row


def test_the_setting_is_validated() -> None:
    base = {"FEDISORA_DOMAIN": "fedisora.test"}
    assert load_settings(base).likeness_check == ""
    for good in ("command:/usr/local/bin/check", "python:my_checks.faces:check"):
        assert load_settings({**base, "FEDISORA_LIKENESS_CHECK": good}).likeness_check == good
    for bad, message in (
        ("command:check", "absolute path"),
        ("python:my_checks", "package.module:function"),
        ("python:1bad:x", "package.module:function"),
        ("shell:rm -rf", "must be empty"),
    ):
        with pytest.raises(ConfigError, match=message):
            load_settings({**base, "FEDISORA_LIKENESS_CHECK": bad})
    with pytest.raises(ConfigError, match="TIMEOUT_SECONDS"):
        load_settings({**base, "FEDISORA_LIKENESS_CHECK_TIMEOUT_SECONDS": "0"})


async def test_a_program_verifies_with_the_sample_references_and_code(
    db: str, tmp_path: Path
) -> None:
    exe = program(tmp_path, "print('the code is shown, same person')\nprint('more')\n")
    settings = settings_with(tmp_path, f"command:{exe}")
    alice = await local_account("alice")
    likeness = await register(alice, settings)
    # Registration does not run the check (it is durable work), it makes the chore due.
    assert calls(tmp_path) == [] and likeness.state == "pending"
    chore = await Chore.get(name=likeness_check.CHORE)
    assert chore.next_attempt_at is not None
    row = await check_once(settings)
    assert row.progress["last"]["counts"] == {"likeness_verified": 1}
    done = await Likeness.get(pk=likeness.pk)
    assert done.state == "verified" and done.verified_at is not None
    assert done.verification_method == likeness_check.label(f"command:{exe}")
    assert done.verification_method.endswith("/check-likeness")
    assert len(done.verification_method) <= 64
    assert done.verified_by_id is None and done.reason == "the code is shown, same person"
    [call] = calls(tmp_path)
    sample, code, *refs = call["argv"]
    assert code == likeness.challenge_code and sample.endswith(".png") and is_file(sample)
    assert refs == list(svc.reference_paths(likeness, settings))
    assert not {"FEDISORA_SECRET_KEY", "FEDISORA_DATABASE_URL"} & set(call["env"])
    # Nothing more to check: the next run runs nothing.
    await check_once(settings)
    assert len(calls(tmp_path)) == 1


async def test_a_program_rejects_with_its_first_line_as_reason(db: str, tmp_path: Path) -> None:
    exe = program(tmp_path, "print('no code visible in the sample')\nprint('x')\nsys.exit(1)\n")
    settings = settings_with(tmp_path, f"command:{exe}")
    alice = await local_account("alice")
    likeness = await register(alice, settings)
    await check_once(settings)
    done = await Likeness.get(pk=likeness.pk)
    assert done.state == "rejected" and done.reason == "no code visible in the sample"
    assert done.verification_method.startswith("check command:") and done.verified_by_id is None
    # Registering anew (a rejected likeness may be sent again) is checked again.
    await register(alice, settings)
    await check_once(settings)
    assert len(calls(tmp_path)) == 2


async def test_a_crashing_program_leaves_it_for_an_admin(
    db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    exe = program(tmp_path, "sys.stderr.write('Traceback: boom\\n')\nsys.exit(3)\n")
    settings = settings_with(tmp_path, f"command:{exe}")
    alice = await local_account("alice")
    admin = await local_account("root", admin=True)
    likeness = await register(alice, settings)
    with caplog.at_level(logging.ERROR, logger="fedisora.likeness"):
        row = await check_once(settings)
    assert row.progress["last"]["counts"] == {"likeness_undecided": 1}
    assert any("exited with 3" in r.message and "boom" in r.message for r in caplog.records)
    left = await Likeness.get(pk=likeness.pk)
    assert left.state == "pending" and left.verified_at is None
    assert left.verification_method.endswith(": undecided") and "exit status 3" in left.reason
    await check_once(settings)  # not run again for the same registration
    assert len(calls(tmp_path)) == 1
    done = await svc.verify("alice", by=admin, method="admin")
    assert done.state == "verified" and done.verification_method == "admin"


async def test_a_hanging_program_is_killed_with_what_it_started(
    db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pids = tmp_path / "pids"
    exe = program(
        tmp_path,
        "child = subprocess.Popen(['sleep', '60'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(60)\n",
    )
    settings = settings_with(tmp_path, f"command:{exe}", seconds=1.5)
    alice = await local_account("alice")
    likeness = await register(alice, settings)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="fedisora.likeness"):
        await check_once(settings)
    assert time.monotonic() - started < 15
    assert any("did not finish" in r.message for r in caplog.records)
    left = await Likeness.get(pk=likeness.pk)
    assert left.state == "pending" and left.verification_method.endswith(": undecided")
    assert "did not finish in 1.5 s" in left.reason
    for pid in map(int, pids.read_text().split()):
        for _ in range(50):  # the grandchild is reaped by init: give it a moment
            if gone(pid):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail(f"process {pid} of the check is still running")


def gone(pid: int) -> bool:
    """Whether process *pid* ended (a zombie, killed and not reaped yet, has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


async def test_a_missing_program_is_undecided(db: str, tmp_path: Path) -> None:
    settings = settings_with(tmp_path, f"command:{tmp_path / 'nowhere'}")
    alice = await local_account("alice")
    likeness = await register(alice, settings)
    await check_once(settings)
    left = await Likeness.get(pk=likeness.pk)
    assert left.state == "pending" and "could not be started" in left.reason


@pytest.fixture
def check_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    folder = tmp_path / "mods"
    folder.mkdir()
    name = f"likeness_check_{os.getpid()}_{time.monotonic_ns()}"
    (folder / f"{name}.py").write_text(CHECK_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    return name


@pytest.mark.parametrize(
    ("func", "state", "reason"),
    [
        ("approve", "verified", "the code {code} is shown"),
        ("refuse", "rejected", "two different people"),
        ("broken", "pending", "the check failed: RuntimeError"),
        ("nonsense", "pending", "the check failed: TypeError"),
        ("slow", "pending", "did not finish in 0.5 s"),
    ],
)
async def test_a_python_check(
    db: str, tmp_path: Path, check_module: str, func: str, state: str, reason: str
) -> None:
    settings = settings_with(tmp_path, f"python:{check_module}:{func}", seconds=0.5)
    alice = await local_account("alice")
    likeness = await register(alice, settings)
    await check_once(settings)
    done = await Likeness.get(pk=likeness.pk)
    assert done.state == state
    assert reason.format(code=likeness.challenge_code) in done.reason
    assert done.verification_method.startswith(f"check python:{check_module}")
    if state != "pending":
        assert done.verified_at is not None and done.verified_by_id is None
        assert sys.modules[check_module].CALLS[0].username == "alice"
    else:
        assert done.verification_method.endswith(": undecided")


async def test_an_admin_decision_first_wins_and_no_check_is_configured(
    db: str, tmp_path: Path
) -> None:
    exe = program(tmp_path, "print('ok')\n")
    settings = settings_with(tmp_path, f"command:{exe}")
    alice, bob = await local_account("alice"), await local_account("bob")
    await register(alice, settings)
    await svc.reject("alice", reason="blurry", method="admin")
    await check_once(settings)
    assert calls(tmp_path) == []
    assert (await Likeness.get(account_id=alice.pk)).state == "rejected"
    # The check's own write only applies to the registration it looked at.
    likeness = await register(bob, settings)
    with pytest.raises(Conflict):
        await svc.verify("bob", method="check x", unchecked="NOT-THE-CODE")
    assert (await Likeness.get(pk=likeness.pk)).state == "pending"
    # Without a check configured, the chore leaves every likeness to the admins.
    plain = settings_with(tmp_path, "")
    await check_once(plain)
    assert calls(tmp_path) == [] and (await Likeness.get(pk=likeness.pk)).state == "pending"


async def test_a_check_interrupted_again_and_again_is_left_for_an_admin(
    db: str, tmp_path: Path
) -> None:
    exe = program(tmp_path, "print('ok')\n")
    settings = settings_with(tmp_path, f"command:{exe}")
    alice = await local_account("alice")
    likeness = await register(alice, settings)
    # As a runner killed during the check leaves it: the try counted, nothing decided.
    trying = {"likeness": likeness.pk, "code": likeness.challenge_code, "tries": 2}
    await Chore.filter(name=likeness_check.CHORE).update(progress={"trying": trying})
    await check_once(settings)  # the third try runs
    assert len(calls(tmp_path)) == 1
    assert (await Likeness.get(pk=likeness.pk)).state == "verified"
    bob = await local_account("bob")
    again = await register(bob, settings)
    trying = {"likeness": again.pk, "code": again.challenge_code, "tries": 3}
    await Chore.filter(name=likeness_check.CHORE).update(progress={"trying": trying})
    await check_once(settings)  # a fourth is not tried
    assert len(calls(tmp_path)) == 1
    left = await Likeness.get(pk=again.pk)
    assert left.state == "pending" and "interrupted 3 times" in left.reason


def test_fedisora_check_names_what_keeps_a_check_from_running(
    tmp_path: Path, check_module: str
) -> None:
    exe = program(tmp_path, "print('ok')\n")
    assert likeness_check.problem(f"command:{exe}") is None
    plain = tmp_path / "plain.txt"
    plain.write_text("not a program")
    assert "not an executable file" in str(likeness_check.problem(f"command:{plain}"))
    assert "not an executable file" in str(likeness_check.problem("command:/nowhere/at/all"))
    assert likeness_check.problem(f"python:{check_module}:approve") is None
    assert "cannot be loaded" in str(likeness_check.problem(f"python:{check_module}:absent"))
    assert "cannot be loaded" in str(likeness_check.problem("python:no_such_module_here:f"))
