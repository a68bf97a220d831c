"""Fuzzing the inbox endpoints: hostile POSTs get a 4xx with a JSON error, or a 202, never more.

Signed POSTs to every inbox path (and to paths that only look like one) with mangled activities,
bodies, signature headers, digests, lengths and content types, on both databases. Seeded, so a
run is repeatable; raise ``ROUNDS`` locally to dig deeper (it found the NUL in a path name now in
``test_fed_discovery.test_names_and_resources_that_cannot_be_an_account_are_404_not_500``).
"""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
from factories import local_account
from fedhelpers import DOMAIN, make_remote

from fedisora.federation.context import Federation

ROUNDS = 800
PATHS = (
    "/inbox",
    "/users/ann/inbox",
    "/actor/inbox",
    "/users/nobody/inbox",
    "/users/ann%00/inbox",
    "/users/" + "a" * 300 + "/inbox",
)


def mangled_activity(rnd: random.Random, activity: dict[str, Any]) -> Any:
    kind = rnd.randrange(8)
    if kind == 0:
        return {**activity, "id": "x" * rnd.choice([2048, 2049, 10000])}
    if kind == 1:
        actor = rnd.choice([None, 5, [activity["actor"]], {"id": activity["actor"]}, "y" * 3000])
        return {**activity, "actor": actor}
    if kind == 2:
        return rnd.choice([[], 5, "s", None, [activity]])
    if kind == 3:
        return {**activity, "type": rnd.choice([None, 5, ["Like"], "", "x" * 5000])}
    if kind == 4:
        return {**activity, "id": rnd.choice([None, 5, [], "https://other.example/1", ""])}
    return activity


def mangled_body(rnd: random.Random, body: bytes) -> bytes:
    kind = rnd.randrange(8)
    if kind == 0:
        return body[: rnd.randrange(len(body))]
    if kind == 1:
        return b"[" * 100_000 + b"]" * 100_000
    if kind == 2:
        return b'{"a": 1e99999, "id": 1}'
    if kind == 3:
        return b"\xff\xfe" + body
    return body


def mangle_headers(rnd: random.Random, headers: dict[str, str], key_id: str) -> None:
    kind = rnd.randrange(10)
    if kind == 0:
        headers["signature-input"] = rnd.choice(
            [
                "",
                "sig1=",
                'sig1=("@method");created=1',
                "x" * 9000,
                'sig1=("@method" "@target-uri" "content-digest");created=99999999999;'
                f'keyid="{key_id}"',
            ]
        )
    elif kind == 1:
        headers["signature"] = rnd.choice(
            ["", "sig1=:!!:", "sig1=:" + "A" * 5000 + ":", 'keyId="x",signature="y"']
        )
    elif kind == 2:
        headers["content-digest"] = rnd.choice(["", "sha-256=:AAAA:", "garbage"])
    elif kind == 3:
        headers.pop("signature", None)
    elif kind == 4:
        headers["content-length"] = rnd.choice(["-1", "abc", "99999999999999999999", "0"])
    elif kind == 5:
        headers["content-type"] = rnd.choice(["text/plain", "", "application/json; charset=x"])


async def test_hostile_posts_get_a_4xx_with_an_error_or_a_202(
    client: httpx.AsyncClient, federation: Federation
) -> None:
    ann = await local_account("ann")
    rita = await make_remote()
    rnd = random.Random(20261208)
    statuses: dict[int, int] = {}
    wrong: list[tuple[Any, ...]] = []
    for i in range(ROUNDS):
        activity = {
            "id": f"{rita.uri}#fuzz/{i}",
            "type": rnd.choice(["Like", "Follow", "Create", "Move"]),
            "actor": rita.uri,
            "object": ann.uri,
        }
        body = mangled_body(rnd, json.dumps(mangled_activity(rnd, activity)).encode())
        path = rnd.choice(PATHS)
        body, headers = rita.signed(f"https://{DOMAIN}{path}", body)
        mangle_headers(rnd, headers, f"{rita.uri}#main-key")
        try:
            answer = await client.post(path, content=body, headers=headers)
        except Exception as exc:  # what the server would have turned into a 500
            wrong.append((path, type(exc).__name__, str(exc)[:200]))
            continue
        statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
        if answer.status_code == 202:
            continue
        if answer.status_code not in (400, 401, 404, 413) or "error" not in answer.json():
            wrong.append((path, answer.status_code, answer.text[:200]))
    assert not wrong, wrong[:10]
    assert {202, 400, 401, 404, 413} <= set(statuses), statuses  # every kind of answer came
