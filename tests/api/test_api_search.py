"""``/api/v2/search``: accounts, hashtags and statuses, visibility, and remote resolution
of ``user@domain`` through WebFinger against a second real instance on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apihelpers import Login, login
from factories import local_account, remote_account, rendered_video
from instance import Instance, running_instance


async def _clip(client: httpx.AsyncClient, me: Login, text: str, **extra: str) -> str:
    media = await rendered_video(me.account)
    r = await client.post(
        "/api/v1/statuses",
        data={"status": text, "media_ids[]": str(media.pk), **extra},
        headers=me.headers,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def _search(client: httpx.AsyncClient, me: Login | None, **params: str) -> httpx.Response:
    return await client.get("/api/v2/search", params=params, headers=me.headers if me else {})


async def test_accounts_by_prefix_and_acct(client: httpx.AsyncClient, db: str) -> None:
    alice = await login(client, await local_account("alice"))
    await local_account("alison", display_name="Ali Son")
    await local_account("bob", display_name="Bob the Builder")
    await remote_account("alfred", domain="far.example")

    r = await _search(client, alice, q="ali", type="accounts")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"accounts", "statuses", "hashtags"}
    assert {a["acct"] for a in body["accounts"]} == {"alice", "alison"}
    r = await _search(client, alice, q="builder", type="accounts")  # a word of the display name
    assert [a["acct"] for a in r.json()["accounts"]] == ["bob"]
    r = await _search(client, alice, q="@alfred@far.example")
    assert [a["acct"] for a in r.json()["accounts"]] == ["alfred@far.example"]
    r = await _search(client, alice, q="alice@fedisora.test", type="accounts")  # own domain
    assert [a["acct"] for a in r.json()["accounts"]] == ["alice"]
    r = await _search(client, alice, q="al", type="accounts", limit="1")
    assert len(r.json()["accounts"]) == 1
    # exact username first
    r = await _search(client, alice, q="alice", type="accounts")
    assert r.json()["accounts"][0]["acct"] == "alice"
    # following=true: only followed accounts
    bob_id = r.json()["accounts"][0]["id"]
    r = await _search(client, alice, q="ali", type="accounts", following="true")
    assert r.json()["accounts"] == [] and bob_id
    alison = (await client.get("/api/v1/accounts/lookup", params={"acct": "alison"})).json()
    await client.post(f"/api/v1/accounts/{alison['id']}/follow", headers=alice.headers)
    r = await _search(client, alice, q="ali", type="accounts", following="true")
    assert [a["acct"] for a in r.json()["accounts"]] == ["alison"]
    # a block hides the blocker from the blocked
    bob = await login(client, await local_account("bobby"))
    await client.post(f"/api/v1/accounts/{alice.account.pk}/block", headers=bob.headers)
    r = await _search(client, alice, q="bobby", type="accounts")
    assert r.json()["accounts"] == []
    # the instance actor is never listed
    r = await _search(client, alice, q="fedisora.test", type="accounts")
    assert all(a["username"] != "fedisora.test" for a in r.json()["accounts"])


async def test_hashtags_and_statuses(client: httpx.AsyncClient, db: str) -> None:
    alice = await login(client, await local_account("alice"))
    bob = await login(client, await local_account("bob"))
    stranger = await login(client, await local_account("stranger"))
    await client.post(f"/api/v1/accounts/{alice.account.pk}/follow", headers=bob.headers)
    public = await _clip(client, alice, "a sunset over the bay #sunsets")
    secret = await _clip(client, alice, "a private sunset #sunsets", visibility="private")
    await _clip(client, bob, "city lights #sunrise")
    reply = await client.post(
        "/api/v1/statuses",
        data={"status": "what a SUNSET", "in_reply_to_id": public},
        headers=bob.headers,
    )
    assert reply.status_code == 200, reply.text

    r = await _search(client, None, q="#sun", type="hashtags")
    tags = r.json()["hashtags"]
    assert [t["name"] for t in tags] == ["sunrise", "sunsets"]
    sunsets = tags[1]
    assert sunsets["url"].endswith("/tags/sunsets")
    # the private clip is not counted (tests/api/test_api_tag_visibility.py)
    assert sunsets["history"][0]["uses"] == "1" and sunsets["history"][0]["accounts"] == "1"
    # without a user, no statuses (as Mastodon without full-text search for the public)
    r = await _search(client, None, q="sunset")
    assert r.json()["statuses"] == [] and r.json()["hashtags"][0]["name"] == "sunsets"

    r = await _search(client, bob, q="sunset", type="statuses")
    assert [s["id"] for s in r.json()["statuses"]] == [reply.json()["id"], secret, public]
    r = await _search(client, stranger, q="sunset", type="statuses")
    assert [s["id"] for s in r.json()["statuses"]] == [reply.json()["id"], public]
    r = await _search(
        client, stranger, q="sunset", type="statuses", account_id=str(alice.account.pk)
    )
    assert [s["id"] for s in r.json()["statuses"]] == [public]
    r = await _search(client, bob, q="sunset", type="statuses", limit="1", offset="1")
    assert [s["id"] for s in r.json()["statuses"]] == [secret]
    # a status URL finds that status, if visible
    url = (await client.get(f"/api/v1/statuses/{secret}", headers=bob.headers)).json()["url"]
    r = await _search(client, bob, q=url, type="statuses")
    assert [s["id"] for s in r.json()["statuses"]] == [secret]
    r = await _search(client, stranger, q=url, type="statuses")
    assert r.json()["statuses"] == []
    # muting alice hides her statuses from stranger's search
    await client.post(f"/api/v1/accounts/{alice.account.pk}/mute", headers=stranger.headers)
    r = await _search(client, stranger, q="sunset", type="statuses")
    assert [s["id"] for s in r.json()["statuses"]] == [reply.json()["id"]]


async def test_bad_search_requests(client: httpx.AsyncClient, db: str) -> None:
    alice = await login(client, await local_account("alice"))
    r = await _search(client, None, q="x", resolve="true")
    assert r.status_code == 401 and set(r.json()) == {"error"}
    r = await _search(client, None, q="x", offset="5")
    assert r.status_code == 401
    r = await _search(client, alice, q="x", type="videos")
    assert r.status_code == 422 and "type" in r.json()["error"]
    r = await client.get("/api/v2/search", headers=alice.headers)
    assert r.status_code == 422
    r = await _search(client, alice, q="   ")
    assert r.status_code == 422 and r.json() == {"error": "q is required"}
    r = await _search(client, alice, q="#")
    assert r.json() == {"accounts": [], "statuses": [], "hashtags": []}
    write_only = await login(client, await local_account("writer"), scope="write")
    r = await _search(client, write_only, q="alice")
    assert r.status_code == 403
    # an unknown remote account with resolve: not found, not an error
    r = await _search(client, alice, q="nobody@127.0.0.1:9", resolve="true")
    assert r.status_code == 200 and r.json()["accounts"] == []


@pytest.fixture(scope="module")
def two_instances(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Instance, Instance]]:
    base: Path = tmp_path_factory.mktemp("search")
    with running_instance(base / "a") as a, running_instance(base / "b") as b:
        yield a, b


def _token(instance: Instance, username: str) -> str:
    with httpx.Client(base_url=instance.url, timeout=30) as http:
        app = http.post(
            "/api/v1/apps",
            data={
                "client_name": "t",
                "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
                "scopes": "read write follow",
            },
        ).json()
        creds = {"client_id": app["client_id"], "client_secret": app["client_secret"]}
        app_token = http.post(
            "/oauth/token",
            data={**creds, "grant_type": "client_credentials", "scope": "read write follow"},
        ).json()["access_token"]
        r = http.post(
            "/api/v1/accounts",
            headers={"Authorization": f"Bearer {app_token}"},
            data={
                "username": username,
                "email": f"{username}@example.com",
                "password": "a long password 1",
                "agreement": "true",
            },
        )
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])


def test_resolve_remote_account_over_webfinger(two_instances: tuple[Instance, Instance]) -> None:
    a, b = two_instances
    a_token = _token(a, "searcher")
    _token(b, "faraway")
    b_domain = b.url.removeprefix("http://")
    headers = {"Authorization": f"Bearer {a_token}"}
    with httpx.Client(base_url=a.url, timeout=60, headers=headers) as http:
        # not known yet, and without resolve nothing is fetched
        r = http.get("/api/v2/search", params={"q": f"@faraway@{b_domain}"})
        assert r.status_code == 200 and r.json()["accounts"] == []
        r = http.get("/api/v2/search", params={"q": f"@faraway@{b_domain}", "resolve": "true"})
        assert r.status_code == 200, r.text
        [found] = r.json()["accounts"]
        assert found["acct"] == f"faraway@{b_domain}"
        assert found["uri"] == f"{b.url}/users/faraway"
        # now cached: found without resolve, and usable (follow it)
        r = http.get("/api/v2/search", params={"q": f"faraway@{b_domain}", "type": "accounts"})
        assert [x["id"] for x in r.json()["accounts"]] == [found["id"]]
        r = http.post(f"/api/v1/accounts/{found['id']}/follow")
        assert r.status_code == 200, r.text
        # an actor URL resolves too
        r = http.get("/api/v2/search", params={"q": f"{b.url}/users/faraway", "resolve": "1"})
        assert [x["id"] for x in r.json()["accounts"]] == [found["id"]]
        # an acct that does not exist on the peer
        r = http.get("/api/v2/search", params={"q": f"nobody@{b_domain}", "resolve": "true"})
        assert r.status_code == 200 and r.json()["accounts"] == []
