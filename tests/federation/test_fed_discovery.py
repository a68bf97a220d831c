"""WebFinger, host-meta, NodeInfo, the instance actor, actor documents and objects."""

from __future__ import annotations

import time

import httpx
import pytest
from factories import local_account, rendered_video
from fedhelpers import DOMAIN, RemoteActor, make_remote

from activitypub.keys import load_public_key_pem, public_key_from_multibase
from activitypub.signatures import Request, sign_request
from fedisora.models import Account
from fedisora.services import follows, posts
from fedisora.services.accounts import create_instance_actor

AP = {"Accept": "application/activity+json"}
LD = {"Accept": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'}


async def test_webfinger_acct_and_url(client: httpx.AsyncClient) -> None:
    ann = await local_account("ann")
    r = await client.get("/.well-known/webfinger", params={"resource": f"acct:ann@{DOMAIN}"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/jrd+json")
    jrd = r.json()
    assert jrd["subject"] == f"acct:ann@{DOMAIN}"
    [self_link] = [link for link in jrd["links"] if link["rel"] == "self"]
    assert self_link == {"rel": "self", "type": "application/activity+json", "href": ann.uri}

    by_url = await client.get("/.well-known/webfinger", params={"resource": ann.uri})
    assert by_url.status_code == 200
    assert by_url.json()["subject"] == jrd["subject"]


async def test_webfinger_errors(client: httpx.AsyncClient) -> None:
    await local_account("ann")
    missing = await client.get("/.well-known/webfinger")
    assert missing.status_code == 400
    assert "resource" in missing.json()["error"]
    for resource in ("acct:nobody@fedisora.test", "acct:ann@other.example", "mailto:x"):
        r = await client.get("/.well-known/webfinger", params={"resource": resource})
        assert r.status_code == 404, resource
        assert r.json()["error"]


async def test_instance_actor_discovery(client: httpx.AsyncClient) -> None:
    actor = await create_instance_actor()
    r = await client.get("/.well-known/webfinger", params={"resource": f"acct:{DOMAIN}@{DOMAIN}"})
    assert r.status_code == 200
    [self_link] = [link for link in r.json()["links"] if link["rel"] == "self"]
    assert self_link["href"] == f"https://{DOMAIN}/actor" == actor.uri
    doc = (await client.get("/actor", headers=AP)).json()
    assert doc["type"] == "Application"
    assert doc["id"] == actor.uri
    assert doc["publicKey"]["id"] == f"https://{DOMAIN}/actor#main-key"
    assert doc["inbox"] == f"https://{DOMAIN}/actor/inbox"


async def test_host_meta(client: httpx.AsyncClient) -> None:
    r = await client.get("/.well-known/host-meta")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/xrd+xml")
    assert f'template="https://{DOMAIN}/.well-known/webfinger?resource={{uri}}"' in r.text


async def test_nodeinfo(client: httpx.AsyncClient) -> None:
    ann = await local_account("ann")
    await local_account("ben")
    await posts.post_clip(ann, await rendered_video(ann), caption="hello #fox")
    links = (await client.get("/.well-known/nodeinfo")).json()["links"]
    hrefs = {link["rel"].rsplit("/", 1)[-1]: link["href"] for link in links}
    assert hrefs["2.0"] == f"https://{DOMAIN}/nodeinfo/2.0"
    assert hrefs["2.1"] == f"https://{DOMAIN}/nodeinfo/2.1"
    for version in ("2.0", "2.1"):
        r = await client.get(f"/nodeinfo/{version}")
        assert r.status_code == 200
        assert f"schema/{version}#" in r.headers["content-type"]
        doc = r.json()
        assert doc["version"] == version
        assert doc["software"]["name"] == "fedisora"
        assert doc["protocols"] == ["activitypub"]
        assert doc["openRegistrations"] is False  # FEDISORA_REGISTRATIONS=closed
        assert doc["usage"]["users"]["total"] == 2
        assert doc["usage"]["localPosts"] == 1
    assert (await client.get("/nodeinfo/1.0")).status_code == 404


async def test_usage_counts_are_made_again_after_a_while(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NodeInfo's usage and the client API's instance stats are counted at most every
    ``USAGE_TTL`` seconds (crawlers and client apps ask often; each count reads every local
    clip, comment, user or remote account): a clip posted meanwhile counts after that."""
    from fedisora import usage

    clock = [1000.0]
    monkeypatch.setattr(usage.time, "monotonic", lambda: clock[0])
    ann = await local_account("ann")
    await posts.post_clip(ann, await rendered_video(ann))

    async def counts() -> tuple[int, int, int]:
        node = (await client.get("/nodeinfo/2.0")).json()["usage"]["localPosts"]
        v1 = (await client.get("/api/v1/instance")).json()["stats"]["status_count"]
        v2 = (await client.get("/api/v2/instance")).json()["usage"]["users"]["active_month"]
        return node, v1, v2

    assert await counts() == (1, 1, 1)
    bob = await local_account("bob")
    await posts.post_clip(bob, await rendered_video(bob))
    clock[0] += usage.USAGE_TTL - 1
    assert await counts() == (1, 1, 1)  # served again
    clock[0] += 1
    assert await counts() == (2, 2, 2)


async def test_actor_document(client: httpx.AsyncClient) -> None:
    ann = await local_account("ann")
    await Account.filter(pk=ann.pk).update(locked=True, avatar_url="https://x/a.png")
    ann = await Account.get(pk=ann.pk)
    for headers in (AP, LD):
        r = await client.get("/users/ann", headers=headers)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/activity+json")
        doc = r.json()
        assert doc["id"] == ann.uri
        assert doc["type"] == "Person"
        assert doc["preferredUsername"] == "ann"
        assert doc["inbox"] == f"https://{DOMAIN}/users/ann/inbox"
        assert doc["outbox"] == f"https://{DOMAIN}/users/ann/outbox"
        assert doc["followers"] == f"https://{DOMAIN}/users/ann/followers"
        assert doc["following"] == f"https://{DOMAIN}/users/ann/following"
        assert doc["featured"] == f"https://{DOMAIN}/users/ann/collections/featured"
        assert doc["endpoints"] == {"sharedInbox": f"https://{DOMAIN}/inbox"}
        assert doc["manuallyApprovesFollowers"] is True
        assert doc["discoverable"] is True and doc["indexable"] is True
        assert doc["icon"]["url"] == "https://x/a.png"
        assert doc["publicKey"]["owner"] == ann.uri
        assert doc["publicKey"]["publicKeyPem"] == ann.public_key_pem
        load_public_key_pem(doc["publicKey"]["publicKeyPem"])
        [method] = doc["assertionMethod"]
        assert method["type"] == "Multikey" and method["controller"] == ann.uri
        public_key_from_multibase(method["publicKeyMultibase"])  # a valid Ed25519 key
    page = await client.get("/users/ann", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "@ann@fedisora.test" in page.text
    assert (await client.get("/users/nobody", headers=AP)).status_code == 404


async def test_clip_objects_and_visibility(client: httpx.AsyncClient) -> None:
    ann = await local_account("ann")
    public = await posts.post_clip(ann, await rendered_video(ann), caption="open #fox")
    private = await posts.post_clip(
        ann, await rendered_video(ann), caption="friends only", visibility="private"
    )
    path = public.uri.removeprefix(f"https://{DOMAIN}")
    doc = (await client.get(path, headers=AP)).json()
    assert doc["type"] == "Note" and doc["id"] == public.uri
    assert doc["attachment"][0]["mediaType"] == "video/mp4"
    assert doc["aiGenerated"] is True
    assert doc["tag"][0]["name"] == "#fox"
    assert doc["interactionPolicy"]["canQuote"]["automaticApproval"] == [
        "https://www.w3.org/ns/activitystreams#Public"
    ]
    likes = (await client.get(f"{path}/likes", headers=AP)).json()
    assert likes["totalItems"] == 0

    hidden = await client.get(private.uri.removeprefix(f"https://{DOMAIN}"), headers=AP)
    assert hidden.status_code == 404

    outbox = (await client.get("/users/ann/outbox", headers=AP)).json()
    assert outbox["totalItems"] == 1  # the followers-only clip is not in the public outbox
    page = (await client.get("/users/ann/outbox?page=true", headers=AP)).json()
    assert [item["object"]["id"] for item in page["orderedItems"]] == [public.uri]

    await posts.delete_clip(ann, public)
    gone = await client.get(path, headers=AP)
    assert gone.status_code == 410
    assert gone.json()["type"] == "Tombstone"


async def test_ids_that_cannot_name_a_row_are_404_or_400_not_500(
    client: httpx.AsyncClient,
) -> None:
    ann = await local_account("ann")
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="open")
    browser = {"Accept": "text/html"}
    # Past the 64-bit id column, past int()'s 4300 digits, digits int() refuses, and no number.
    for bad in (str(2**63), "9" * 5000, "\u00b2", "x1"):
        for headers in (AP, browser):
            for path in (f"/users/ann/clips/{bad}", f"/users/ann/clips/{bad}/likes"):
                answer = await client.get(path, headers=headers)
                assert answer.status_code == 404, (path, headers, answer.status_code)
        answer = await client.get(f"/users/ann/comments/{bad}", headers=AP)
        assert answer.status_code == 404
        outbox = await client.get(f"/users/ann/outbox?page=true&max_id={bad}", headers=AP)
        assert outbox.status_code == 400 and "max_id" in outbox.json()["error"]
    # The largest id is still an id: a cursor above every clip, so the page holds them all.
    page = await client.get(f"/users/ann/outbox?page=true&max_id={2**63 - 1}", headers=AP)
    assert [item["object"]["id"] for item in page.json()["orderedItems"]] == [clip.uri]
    assert page.json()["id"].endswith(f"max_id={2**63 - 1}")


async def test_names_and_resources_that_cannot_be_an_account_are_404_not_500(
    client: httpx.AsyncClient,
) -> None:
    """A NUL character (PostgreSQL refuses it in a query) or an over-long value in a path
    name or a WebFinger resource names nobody: 404, and no query is made with it."""
    await local_account("ann")
    rita = await make_remote("rita")
    for name in ("ann%00", "ann%00x", "a" * 300, "%C2%B2"):
        for path in (f"/users/{name}", f"/users/{name}/outbox", f"/users/{name}/followers"):
            for headers in (AP, {"Accept": "text/html"}):
                answer = await client.get(path, headers=headers)
                assert answer.status_code == 404, (path, headers, answer.status_code)
        body, signed = rita.signed(f"https://{DOMAIN}/users/{name}/inbox", {"type": "Like"})
        answer = await client.post(f"/users/{name}/inbox", content=body, headers=signed)
        assert answer.status_code == 404 and "error" in answer.json()
    for resource in (
        f"acct:ann\x00@{DOMAIN}",
        f"acct:{'a' * 300}@{DOMAIN}",
        f"https://{DOMAIN}/users/ann\x00",
        f"https://{DOMAIN}/users/{'a' * 3000}",
    ):
        finger = await client.get("/.well-known/webfinger", params={"resource": resource})
        assert finger.status_code in (400, 404), (resource, finger.status_code)


async def test_followers_only_clip_needs_a_signed_fetch_by_a_follower(
    client: httpx.AsyncClient,
) -> None:
    ann = await local_account("ann")
    clip = await posts.post_clip(
        ann, await rendered_video(ann), caption="friends only", visibility="private"
    )
    rita = await make_remote("rita")
    otto = await make_remote("otto")
    await follows.follow(rita.account, ann)
    path = clip.uri.removeprefix(f"https://{DOMAIN}")

    def signed(remote: RemoteActor) -> dict[str, str]:
        headers = dict(AP)
        headers.update(
            sign_request(
                Request("GET", clip.uri, headers),
                f"{remote.uri}#main-key",
                remote.private_key,
                now=time.time(),
            )
        )
        return headers

    assert (await client.get(path, headers=AP)).status_code == 404
    assert (await client.get(path, headers=signed(otto))).status_code == 404
    r = await client.get(path, headers=signed(rita))
    assert r.status_code == 200
    doc = r.json()
    assert doc["id"] == clip.uri
    assert doc["to"] == [ann.followers_uri]
    assert "https://www.w3.org/ns/activitystreams#Public" not in doc["to"] + doc["cc"]
