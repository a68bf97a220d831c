"""Two real instances on loopback: cameos of a remote owner, the grant side (issue 14).

``a`` holds the owners' likenesses, ``b`` the grantee. b's ``CameoRequest`` is answered by
a's policy (the same code as a local request): a Reject naming the restrictions to accept,
an Accept carrying the signed grant at once, or later once the owner approves. b verifies
each grant by the owner's key from a's actor document and stores it; forged grants are
refused and audited. b's render worker check fetches the owner's stills from a, signed,
for one job; a serves them only for a valid grant of an account of b. Each use reaches
the owner at a as a ``LikenessUse``; forged notices are ignored. The instances are shared
by the module's tests (they build on one another, in order).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fedinstances import ROOT, Instance, instances

pytestmark = pytest.mark.slow

PEER = Path(__file__).with_name("_likeness_peer.py")


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


def wait(instance: Instance, check: Callable[[dict[str, Any]], bool], what: str) -> Any:
    deadline = time.monotonic() + 30
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = act(instance, "state")
        if check(state):
            return state
        time.sleep(0.3)
    raise AssertionError(f"{instance.name}: timed out waiting for {what}; state {state}")


@pytest.fixture(scope="module")
def ab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Instance, Instance]]:
    with instances(tmp_path_factory.mktemp("likeness"), "a", "b") as (a, b):
        act(a, "owner", "erin", "everyone", "never in political content")
        act(a, "owner", "admin", "approved")
        act(b, "user", "bob")
        yield a, b


def uri(instance: Instance, name: str) -> str:
    return f"{instance.base}/users/{name}"


def grants_for(state: dict[str, Any], owner: str, grantee: str) -> list[dict[str, Any]]:
    return [g for g in state["grants"] if g["owner"] == owner and g["grantee"] == grantee]


def test_the_owners_policy_answers_at_once(ab: tuple[Instance, Instance]) -> None:
    a, b = ab
    erin, bob = uri(a, "erin"), uri(b, "bob")
    # Restrictions not accepted: a's policy refuses, the Reject says why.
    asked = act(b, "request", "bob", f"erin@{a.domain}")
    assert asked["state"] == "pending" and asked["uri"].startswith(f"{b.base}/likeness/requests/")
    state = wait(b, lambda s: s["requests"][-1]["state"] == "rejected", "the Reject at b")
    [refusal] = [c for c in state["checks"] if c["stage"] == "request"]
    assert not refusal["allowed"] and "never in political content" in refusal["reason"]
    assert not grants_for(state, erin, bob)

    # Accepted: audience everyone answers at once with the signed grant, verified and kept.
    act(b, "request", "bob", f"erin@{a.domain}", "accept")
    state = wait(b, lambda s: s["requests"][-1]["state"] == "approved", "the Accept at b")
    [grant] = grants_for(state, erin, bob)
    assert grant["remote"] and grant["signed"] and grant["uri"].startswith(f"{a.base}/likeness/")
    assert state["requests"][-1]["grant_id"] == grant["id"]
    assert any(c["stage"] == "grant" and c["allowed"] for c in state["checks"])
    a_state = act(a, "state")
    [given] = grants_for(a_state, erin, bob)
    assert (given["uri"], given["remote"]) == (grant["uri"], False)
    assert [r["state"] for r in a_state["requests"] if r["owner"] == erin] == ["approved"]


def test_a_request_waits_for_the_owner_who_approves_it(ab: tuple[Instance, Instance]) -> None:
    a, b = ab
    admin, bob = uri(a, "admin"), uri(b, "bob")
    act(b, "request", "bob", f"admin@{a.domain}")
    a_state = wait(
        a,
        lambda s: any(r["owner"] == admin and r["state"] == "pending" for r in s["requests"]),
        "the pending request at a",
    )
    assert {"to": admin, "type": "fedisora.likeness_request"} in a_state["notifications"]
    assert not grants_for(act(b, "state"), admin, bob)
    assert act(a, "approve", "admin") == {"answered": ["approved"]}
    state = wait(b, lambda s: bool(grants_for(s, admin, bob)), "the grant at b")
    assert [r["state"] for r in state["requests"] if r["owner"] == admin] == ["approved"]


@pytest.mark.parametrize(
    ("variant", "reason"),
    [
        ("expired", "expired"),
        ("other", "someone-else"),
        ("wrongkey", "bad proof"),
        ("tampered", "bad proof"),
    ],
)
def test_a_bad_grant_is_refused_and_audited(
    ab: tuple[Instance, Instance], variant: str, reason: str
) -> None:
    a, b = ab
    erin, bob = uri(a, "erin"), uri(b, "bob")
    forged = act(a, "forge", "erin", bob, variant)
    result = act(b, "store", "bob", erin, json.dumps(forged))
    assert result["stored"] is False and reason in result["reason"]
    state = act(b, "state")
    assert forged["id"] not in {g["uri"] for g in state["grants"]}
    assert any(
        c["stage"] == "grant" and not c["allowed"] and reason in c["reason"]
        for c in state["checks"]
    )


def test_stills_are_fetched_for_one_job_and_each_use_is_told(
    ab: tuple[Instance, Instance],
) -> None:
    a, b = ab
    erin, bob = uri(a, "erin"), uri(b, "bob")
    [grant] = grants_for(act(b, "state"), erin, bob)

    # The worker's check before rendering: consent, the stills from a, gone after the job.
    render = act(b, "render", "bob", erin)
    assert render["allowed"], render
    assert (render["fetched"], render["left_after_job"]) == (2, False)
    assert render["refs"] == [grant["uri"]]
    b_state = act(b, "state")
    assert any(c["stage"] == "fetch" and c["allowed"] for c in b_state["checks"])
    a_state = wait(
        a,
        lambda s: any(u["kind"] == "draft" and u["remote"] for u in s["uses"]),
        "the draft's LikenessUse at a",
    )
    [use] = [u for u in a_state["uses"] if u["remote"]]
    assert (use["owner"], use["user"]) == (erin, bob)
    assert use["uri"].startswith(f"{b.base}/likeness/uses/")
    assert {"to": erin, "type": "fedisora.likeness_use"} in a_state["notifications"]
    fetches = [c for c in a_state["checks"] if c["stage"] == "fetch"]
    assert fetches and all(c["allowed"] and c["requester"] == bob for c in fetches)

    # Publishing needs scope publish: erin's policy allows it, so this passes too.
    assert act(b, "render", "bob", erin, "publish")["allowed"]

    # Never served otherwise: unsigned (401), a grant for no account of b (403).
    unsigned = httpx.get(f"{grant['uri']}/references", timeout=10)
    assert unsigned.status_code == 401 and "error" in unsigned.json()
    one = httpx.get(f"{grant['uri']}/references/0", timeout=10)
    assert one.status_code == 401
    local = act(a, "localgrant", "erin", "carol")["uri"]
    other = act(b, "fetch", local)
    assert other["status"] == 403 and "error" in other["body"]
    assert act(b, "fetch", grant["uri"])["status"] == 200

    # Revoked at a: the stills are gone (410), and b's worker refuses the job (a refusal
    # the owner is told of).
    act(a, "revoke", "erin", grant["uri"])
    assert act(b, "fetch", grant["uri"])["status"] == 410
    refused = act(b, "render", "bob", erin)
    assert not refused["allowed"] and "410" in refused["reason"]
    assert refused["fetched"] == 0
    wait(
        a,
        lambda s: any(u["kind"] == "refused" and u["remote"] for u in s["uses"]),
        "the refusal's LikenessUse at a",
    )


def test_forged_use_notices_are_ignored(ab: tuple[Instance, Instance]) -> None:
    a, b = ab
    erin, admin, bob = uri(a, "erin"), uri(a, "admin"), uri(b, "bob")
    b_state = act(b, "state")
    [admins_grant] = [g["uri"] for g in grants_for(b_state, admin, bob)]
    a_state = act(a, "state")
    before = len([u for u in a_state["uses"] if u["remote"]])
    received = len([i for i in a_state["inbox"] if i["type"] == "LikenessUse"])
    # Naming admin's grant as if it were erin's; and a grant that does not exist.
    for n, (owner, grant) in enumerate(
        [(erin, admins_grant), (erin, f"{a.base}/likeness/grants/999999")]
    ):
        notice = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{b.base}/likeness/uses/forged-{n}",
            "type": "LikenessUse",
            "actor": bob,
            "object": owner,
            "instrument": grant,
            "summary": "published",
        }
        act(b, "send", "bob", owner, json.dumps(notice))
    state = wait(
        a,
        lambda s: len([i for i in s["inbox"] if i["type"] == "LikenessUse"]) >= received + 2
        and all(i["state"] != "received" for i in s["inbox"]),
        "the forged notices at a",
    )
    assert len([u for u in state["uses"] if u["remote"]]) == before
    ignored = [i for i in state["inbox"] if i["type"] == "LikenessUse" and i["state"] == "ignored"]
    assert len(ignored) == 2
    assert all("no grant of this owner" in i["error"] for i in ignored)
