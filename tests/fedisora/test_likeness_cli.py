"""``fedisora likeness verify|reject USERNAME`` and ``likeness list`` as an admin runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from instance import ROOT, cli_fails, cli_ok, fedisora, free_port, instance_env
from likenesses import face_png

REGISTER = """
import asyncio, sys
from pathlib import Path
from fedisora import urls
from fedisora.config import load_settings
from fedisora.db import close_db, init_db
from fedisora.models import Account
from fedisora.services import likeness

def png():
    return Path(sys.argv[2]).read_bytes()  # a still with a face (tests/support/likenesses.py)

async def main():
    settings = load_settings()
    urls.configure(settings)
    await init_db(settings)
    try:
        bob = await Account.get(username=sys.argv[1], domain=None)
        code = (await likeness.new_challenge(bob)).code
        await likeness.register(
            bob, references=[png()], verification=png(), challenge=code, settings=settings
        )
    finally:
        await close_db()

asyncio.run(main())
"""


def register(env: dict[str, str], username: str, tmp_path: Path) -> None:
    still = tmp_path / "face.png"
    still.write_bytes(face_png(128, 128))
    done = subprocess.run(
        [sys.executable, "-c", REGISTER, username, str(still)],
        env=env,
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_verify_and_reject_from_the_command_line(tmp_path: Path) -> None:
    env = instance_env(tmp_path / "data", free_port())
    cli_ok(fedisora(["init"], env))
    cli_ok(
        fedisora(
            ["createuser", "bob", "--email", "bob@example.com", "--password", "a good password"],
            env,
        )
    )
    cli_fails(fedisora(["likeness", "verify", "bob"], env), "has not registered a likeness")
    cli_fails(fedisora(["likeness", "verify", "nobody"], env), "no local account @nobody")
    register(env, "bob", tmp_path)
    cli_fails(fedisora(["likeness", "reject", "bob"], env), "needs --reason")
    out = cli_ok(fedisora(["likeness", "reject", "bob", "--reason", "code unreadable"], env))
    assert "likeness of @bob: rejected" in out
    listed = cli_ok(fedisora(["likeness", "list"], env))
    assert "@bob\trejected\tadmin (command line), " in listed and "code unreadable" in listed
    out = cli_ok(fedisora(["likeness", "verify", "@bob"], env))
    assert "likeness of @bob: verified" in out
    listed = cli_ok(fedisora(["likeness", "list", "--state", "verified"], env))
    assert listed.startswith("@bob\tverified\tadmin (command line), ")
    assert "no likeness in state pending" in cli_ok(
        fedisora(["likeness", "list", "--state", "pending"], env)
    )
    cli_fails(fedisora(["likeness", "verify"], env), "needs the USERNAME")
    usage = fedisora(["likeness", "approve", "bob"], env)
    assert usage.returncode == 2 and "invalid choice" in usage.stderr
