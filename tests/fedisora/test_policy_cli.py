"""``fedisora policy list|add|remove`` as an admin runs them: the terms change, the audit log
names the command line as the actor, and bad input is a one-line error."""

from __future__ import annotations

from pathlib import Path

from instance import cli_fails, cli_ok, fedisora, free_port, instance_env


def test_policy_from_the_command_line(tmp_path: Path) -> None:
    env = instance_env(tmp_path / "data", free_port())
    cli_ok(fedisora(["init"], env))
    assert cli_ok(fedisora(["policy", "list"], env)).strip() == "no terms"
    added = cli_ok(
        fedisora(["policy", "add", "public_figure", "Taylor", "Swift", "--note", "asked"], env)
    )
    assert added.startswith("added ") and added.rstrip().endswith("public_figure\tTaylor Swift")
    term_id = added.split()[1]
    cli_ok(fedisora(["policy", "add", "protected_work", "Mickey Mouse"], env))
    listed = cli_ok(fedisora(["policy", "list"], env)).splitlines()
    assert f"{term_id}\tpublic_figure\tTaylor Swift\tadmin\tasked" in listed
    assert len(listed) == 2
    only = cli_ok(fedisora(["policy", "list", "protected_work"], env)).splitlines()
    assert len(only) == 1 and only[0].endswith("protected_work\tMickey Mouse\tadmin")

    cli_fails(fedisora(["policy", "add", "public_figure", "taylor-swift"], env), "already")
    cli_fails(fedisora(["policy", "add", "villains", "Darth Vader"], env), "no such policy list")
    cli_fails(fedisora(["policy", "add", "public_figure"], env), "needs the LIST")
    cli_fails(fedisora(["policy", "remove", "abc"], env), "needs the ID")
    cli_fails(fedisora(["policy", "remove", "999999"], env), "no such policy term")

    removed = cli_ok(fedisora(["policy", "remove", term_id], env))
    assert removed.startswith(f"removed {term_id}\t")
    assert len(cli_ok(fedisora(["policy", "list"], env)).splitlines()) == 1
