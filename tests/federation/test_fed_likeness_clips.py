"""Cameos across three real instances on loopback: consents verified, refused, revoked.

a's admin owns a likeness and signs grants (on a, with a's key; the grant-request flow is
another module's). b's admin publishes clips presenting those grants, b acting as a server
that checks nothing (its rows are written directly). c follows b and verifies each clip's
consents before showing it, fetching a's actor for the key; a hears of each clip (the cameo
owner is addressed) and verifies it too. Revocations go from a to b as ``Delete{instrument:
LikenessRevocation}``; b, hosting the clip, deletes it and its ``Delete`` reaches c.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from fedinstances import ROOT, Instance, instances

from activitypub import consent
from fedisora.federation.cameo_clips import revocation_activity

# Its tests build on each other's state: the suite runs a module's tests in one test process,
# in order (``--dist loadscope`` in scripts/test).
pytestmark = pytest.mark.slow

PEER = Path(__file__).with_name("_cameo_peer.py")


def act(instance: Instance, *args: str) -> Any:
    out = subprocess.run(
        [sys.executable, str(PEER), *args],
        env=instance.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, f"{instance.name} {args}: {out.stderr[-3000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def state(instance: Instance) -> dict[str, Any]:
    """What the instance holds, read from its SQLite database (read-only, while it runs)."""
    path = Path(instance.env["FEDISORA_DATA_DIR"]) / "fedisora.sqlite3"
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        rows = lambda sql: db.execute(sql).fetchall()  # noqa: E731
        return {
            "clips": [
                {"uri": u, "local": bool(loc), "deleted": d is not None}
                for u, loc, d in rows("SELECT uri, local, deleted_at FROM clips")
            ],
            "checks": [
                {"clip": c, "state": st, "outcome": o, "reason": r, "error": e}
                for c, st, o, r, e in rows(
                    "SELECT clip_uri, state, outcome, reason, last_error FROM cameo_checks "
                    "ORDER BY id"
                )
            ],
            "revocations": [u for (u,) in rows("SELECT uri FROM likeness_revocations_received")],
            "grants": {
                u: {"revoked": r is not None, "remote": bool(rem)}
                for u, r, rem in rows("SELECT uri, revoked_at, remote FROM likeness_grants")
            },
            "uses": [
                {"clip": c, "kind": k, "removed": r is not None}
                for c, k, r in rows("SELECT clip_uri, kind, removed_at FROM likeness_uses")
            ],
            "inbox": [
                {"id": i, "state": st, "type": json.loads(p or "{}").get("type"), "error": e}
                for i, st, p, e in rows(
                    "SELECT activity_id, state, payload, last_error FROM inbox_items ORDER BY id"
                )
            ],
            "deliveries": [
                {"state": st, "type": json.loads(p).get("type"), "inbox": i}
                for st, p, i in rows("SELECT state, payload, inbox_url FROM deliveries")
            ],
            "follows": rows(
                "SELECT f.state, a.uri FROM follows f JOIN accounts a ON a.id = f.target_id"
            ),
        }


def wait(instance: Instance, check: Callable[[dict[str, Any]], bool], what: str) -> Any:
    # 90 s: a check that met a transient fetch error on a loaded machine is retried after
    # 30 s (the cameo checks' first retry); a deadline, not a speed check.
    deadline = time.monotonic() + 90
    found: dict[str, Any] = {}
    while time.monotonic() < deadline:
        found = state(instance)
        if check(found):
            return found
        time.sleep(0.2)
    # The rows that say why first (CI output keeps only the start of a long message).
    unfinished = {
        key: [r for r in rows if not (isinstance(r, dict) and r.get("state") == "delivered")]
        for key, rows in found.items()
        if key in ("checks", "inbox", "deliveries")
    }
    raise AssertionError(
        f"{instance.name}: timed out waiting for {what}; {unfinished}; state {found}"
    )


def clip(found: dict[str, Any], uri: str) -> dict[str, Any] | None:
    return next((c for c in found["clips"] if c["uri"] == uri), None)


def check(found: dict[str, Any], uri: str) -> dict[str, Any] | None:
    done = [c for c in found["checks"] if c["clip"] == uri and c["state"] == "checked"]
    return done[-1] if done else None


@pytest.fixture(scope="module")
def abc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Instance, ...]]:
    with instances(tmp_path_factory.mktemp("cameos"), "a", "b", "c") as started:
        yield started


def test_cameo_consents_across_instances(abc: tuple[Instance, ...]) -> None:
    a, b, c = abc
    a_admin, b_admin = f"{a.base}/users/admin", f"{b.base}/users/admin"
    to_b, to_c = f"admin@{b.domain}", f"admin@{c.domain}"

    # c follows b; a's admin has a verified likeness and signs grants.
    c.act("follow", "admin", to_b)
    act(a, "likeness", "admin")
    grants = act(
        a,
        "grants",
        "admin",
        json.dumps(
            [
                [to_b, "publish"],  # valid
                [to_b, "drafts"],  # drafts only, used to publish
                [to_b, "drafts"],  # to be tampered with
                [to_b, "publish", True],  # expired
                [to_c, "publish"],  # for another grantee
                [to_b, "publish"],  # a second valid one
            ]
        ),
    )
    valid, drafts, tampered, expired, elsewhere, second = grants
    tampered = {**tampered, "scope": "publish"}
    assert valid["proof"]["verificationMethod"] == f"{a_admin}#ed25519-key"
    wait(c, lambda s: ("accepted", b_admin) in s["follows"], "c's follow of b")

    # A clip with a valid consent: shown at c (which fetched a's key) and at a, which lists
    # the use for its owner.
    (shown,) = act(b, "post-cameos", "admin", a_admin, json.dumps([["dunes", valid]]))
    found = wait(c, lambda s: clip(s, shown) is not None, "the clip with a valid consent at c")
    assert check(found, shown) == {
        "clip": shown,
        "state": "checked",
        "outcome": "shown",
        "reason": "every consent verified",
        "error": "",
    }
    found = wait(a, lambda s: clip(s, shown) is not None, "the clip at the owner's instance")
    assert {"clip": shown, "kind": "published", "removed": False} in found["uses"]

    # Consents that do not hold: each clip is refused (never stored) and the reason kept.
    stranger = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    now = datetime.now(UTC).replace(microsecond=0)
    wrong_key = consent.sign_grant(
        consent.build_grant(
            grant_id=f"{a.base}/likeness/grants/9999",
            owner=a_admin,
            grantee=b_admin,
            scope="publish",
            restrictions_digest=consent.restrictions_digest(""),
            published=now,
        ),
        stranger,
        key_id=f"{a_admin}#ed25519-key",
        created=now,
    )
    cases = {
        "drafts": (drafts, "allows drafts only"),
        "tampered": (tampered, "bad proof"),
        "expired": (expired, "expired at"),
        "elsewhere": (elsewhere, f"is for {c.base}/users/admin, not {b_admin}"),
        "wrong_key": (wrong_key, "bad proof"),
    }
    uris = act(
        b,
        "post-cameos",
        "admin",
        a_admin,
        json.dumps([[name, doc] for name, (doc, _) in cases.items()]),
    )
    posted = dict(zip(cases, uris, strict=True))
    found = wait(c, lambda s: all(check(s, uri) for uri in uris), "the refusals at c")
    for name, uri in posted.items():
        verdict = check(found, uri)
        assert verdict is not None
        assert verdict["outcome"] == "refused", name
        assert cases[name][1] in verdict["reason"], (name, verdict["reason"])
        assert clip(found, uri) is None, name  # not shown anywhere: never stored
    refused = [i for i in found["inbox"] if i["state"] == "ignored" and i["type"] == "Create"]
    assert len(refused) == len(cases)

    # The owner revokes the valid grant with a take-down: b (grantee and host) deletes the
    # clip and its Delete reaches c.
    revocation = act(a, "revoke", "admin", valid["id"], "take_down")["revocation"]
    assert revocation["takeDown"] is True
    found = wait(b, lambda s: (clip(s, shown) or {}).get("deleted") is True, "the take-down at b")
    assert found["revocations"] == [revocation["id"]]
    assert found["grants"][valid["id"]] == {"revoked": True, "remote": True}
    wait(c, lambda s: (clip(s, shown) or {}).get("deleted") is not False, "the Delete at c")
    sent = state(a)["deliveries"]
    assert {"state": "delivered", "type": "Delete", "inbox": f"{b.base}/inbox"} in sent

    # A second clip (second consent); then, sent by a's admin to b: the same revocation in
    # another activity (a replay), a revocation of the second consent signed by another key
    # (forged), and one attributed to another owner.
    (kept,) = act(b, "post-cameos", "admin", a_admin, json.dumps([["tide", second]]))
    replay = {**revocation_activity(revocation), "id": f"{revocation['id']}#replay"}
    forged = consent.sign_revocation(
        consent.build_revocation(
            revocation_id=f"{a.base}/likeness/revocations/forged",
            owner=a_admin,
            revoked=second["id"],
            published=now,
            take_down=True,
        ),
        stranger,
        key_id=f"{a_admin}#ed25519-key",
        created=now,
    )
    other_owner = {**revocation_activity(forged), "id": f"{a.base}/forged-2"}
    other_owner["instrument"] = {**forged, "attributedTo": f"{c.base}/users/admin"}
    wait(c, lambda s: clip(s, kept) is not None, "the second clip at c")
    statuses = act(
        a,
        "send",
        "admin",
        f"{b.base}/inbox",
        json.dumps([replay, revocation_activity(forged), other_owner]),
    )
    assert statuses == [202, 202, 202]
    found = wait(
        b,
        lambda s: (
            sum(1 for i in s["inbox"] if i["state"] in ("processed", "ignored")) >= 3
            and any(i["id"] == replay["id"] and i["state"] == "processed" for i in s["inbox"])
            and sum(1 for i in s["inbox"] if "revocation refused" in i["error"]) == 2
        ),
        "the replay applied as nothing new and the forged revocations refused at b",
    )
    assert found["revocations"] == [revocation["id"]]  # the replay changed nothing
    assert found["grants"][second["id"]]["revoked"] is False
    assert (clip(found, kept) or {}).get("deleted") is False

    # b ignores the revocation and publishes with the revoked consent again: a, which knows
    # the revocation, refuses the clip.
    (again,) = act(b, "post-cameos", "admin", a_admin, json.dumps([["again", valid]]))
    found = wait(a, lambda s: check(s, again) is not None, "the check at a")
    verdict = check(found, again)
    assert verdict is not None and verdict["outcome"] == "refused"
    assert "revoked" in verdict["reason"]
    assert clip(found, again) is None

    # The owner removes themselves from the second clip, hosted on b: the grant is revoked
    # with a take-down, b deletes the clip, c drops it.
    wait(a, lambda s: any(u["clip"] == kept for u in s["uses"]), "the second use at a")
    assert act(a, "remove-use", "admin", kept) == {"removed": True}
    wait(b, lambda s: (clip(s, kept) or {}).get("deleted") is True, "the removal at b")
    wait(c, lambda s: (clip(s, kept) or {}).get("deleted") is not False, "the removal at c")
