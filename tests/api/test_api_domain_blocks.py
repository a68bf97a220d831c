"""Domain blocks in Mastodon's API: the admin's blocks and allows (scopes, roles, bad input,
the audit log), the public list, silenced domains out of the public timelines and a user's
own domain blocks."""

from __future__ import annotations

import hashlib

import httpx
from apihelpers import login
from factories import local_account, remote_account
from test_api_conformance import check

from fedisora.ids import new_id
from fedisora.models import Account, AuditEntry, Clip, DomainBlock, Follow, FollowState
from fedisora.services import follows, posts

SCOPES = "read write admin:read:domain_blocks admin:write:domain_blocks"
APP_SCOPES = "read write admin:read admin:write"
B = "/api/v1/admin/domain_blocks"
A = "/api/v1/admin/domain_allows"


async def _admin(client: httpx.AsyncClient, scope: str = SCOPES) -> dict[str, str]:
    boss = await Account.get_or_none(username="boss", domain=None) or await local_account(
        "boss", admin=True
    )
    return (await login(client, boss, scope, app_scopes=APP_SCOPES)).headers


async def test_admin_crud(client: httpx.AsyncClient, db: str) -> None:
    h = await _admin(client)
    r = await client.post(
        B,
        headers=h,
        json={
            "domain": "https://Spam.Example/about",
            "severity": "suspend",
            "reject_media": True,
            "obfuscate": True,
            "private_comment": "seen in #42",
            "public_comment": "spam",
        },
    )
    assert r.status_code == 200, r.text
    created = r.json()
    check("AdminDomainBlock", created)
    assert created["domain"] == "spam.example"
    assert created["digest"] == hashlib.sha256(b"spam.example").hexdigest()
    assert (created["severity"], created["reject_media"], created["obfuscate"]) == (
        "suspend",
        True,
        True,
    )
    assert created["private_comment"] == "seen in #42"
    again = await client.post(B, headers=h, data={"domain": "spam.example"})
    assert again.status_code == 422
    assert again.json()["existing_domain_block"]["id"] == created["id"]
    listed = await client.get(B, headers=h)
    assert [b["domain"] for b in listed.json()] == ["spam.example"]
    one = await client.get(f"{B}/{created['id']}", headers=h)
    assert one.json() == created
    r = await client.put(f"{B}/{created['id']}", headers=h, json={"severity": "silence"})
    assert r.status_code == 200 and r.json()["severity"] == "silence"
    assert r.json()["reject_media"] is True  # left as it was
    assert (
        await client.put(f"{B}/{created['id']}", headers=h, json={"severity": "x"})
    ).status_code == 422
    assert (await client.delete(f"{B}/{created['id']}", headers=h)).status_code == 200
    assert (await client.get(f"{B}/{created['id']}", headers=h)).status_code == 404
    assert (await client.get(f"{B}/nope", headers=h)).status_code == 404
    actions = [
        str(a) for a in await AuditEntry.all().order_by("id").values_list("action", flat=True)
    ]
    assert actions == ["domain_block.create", "domain_block.update", "domain_block.delete"]


async def test_bad_input_is_refused(client: httpx.AsyncClient, db: str) -> None:
    h = await _admin(client)
    for domain, message in (
        ("fedisora.test", "own domain"),
        ("not a domain", "not a valid domain"),
        ("", "required"),
    ):
        r = await client.post(B, headers=h, data={"domain": domain, "severity": "suspend"})
        assert r.status_code == 422 and message in r.json()["error"], r.text
    r = await client.post(B, headers=h, data={"domain": "x.example", "severity": "ban"})
    assert r.status_code == 422
    r = await client.post(B, headers=h, data={"domain": "x.example", "reject_media": "perhaps"})
    assert r.status_code == 422
    assert await DomainBlock.all().count() == 0
    assert await AuditEntry.all().count() == 0


async def test_scopes_and_roles(client: httpx.AsyncClient, db: str) -> None:
    plain = await _admin(client, "read write")
    assert (await client.get(B, headers=plain)).status_code == 403
    reader = await _admin(client, "admin:read:domain_blocks")
    assert (await client.get(B, headers=reader)).status_code == 200
    r = await client.post(B, headers=reader, data={"domain": "x.example"})
    assert r.status_code == 403
    broad = await _admin(client, "admin:write")
    assert (await client.post(B, headers=broad, data={"domain": "x.example"})).status_code == 200
    bob = await local_account("bob")
    user = (await login(client, bob, SCOPES, app_scopes=APP_SCOPES)).headers
    for method, path in (("GET", B), ("POST", B), ("GET", A), ("POST", A)):
        r = await client.request(method, path, headers=user, data={"domain": "y.example"})
        assert r.status_code == 403 and r.json()["error"] == "This action is not allowed"
    assert (await client.get(B)).status_code == 401
    assert await DomainBlock.all().count() == 1


async def test_allows(client: httpx.AsyncClient, db: str) -> None:
    h = await _admin(client)
    r = await client.post(A, headers=h, data={"domain": "Friends.Example"})
    assert r.status_code == 200
    check("AdminDomainAllow", r.json())
    assert r.json()["domain"] == "friends.example"
    assert (await client.post(A, headers=h, data={"domain": "friends.example"})).json()[
        "id"
    ] == r.json()["id"]
    assert [a["domain"] for a in (await client.get(A, headers=h)).json()] == ["friends.example"]
    assert (await client.get(f"{A}/{r.json()['id']}", headers=h)).status_code == 200
    assert (await client.post(A, headers=h, data={"domain": "fedisora.test"})).status_code == 422
    assert (await client.delete(f"{A}/{r.json()['id']}", headers=h)).status_code == 200
    assert (await client.get(A, headers=h)).json() == []
    actions = [
        str(a) for a in await AuditEntry.all().order_by("id").values_list("action", flat=True)
    ]
    assert actions == ["domain_allow.create", "domain_allow.delete"]


async def test_public_list_obfuscates(client: httpx.AsyncClient, db: str) -> None:
    h = await _admin(client)
    for domain, extra in (
        ("hidden.example", {"obfuscate": True, "severity": "suspend", "public_comment": "spam"}),
        ("open.example", {"severity": "silence", "private_comment": "secret"}),
        ("quiet.example", {"severity": "noop", "reject_media": True}),
    ):
        assert (
            await client.post(B, headers=h, json={"domain": domain, **extra})
        ).status_code == 200
    r = await client.get("/api/v1/instance/domain_blocks")
    assert r.status_code == 200
    for entry in r.json():
        check("DomainBlock", entry)
    assert r.json() == [
        {
            "domain": "hidd**.****ple",  # as Mastodon obfuscates it
            "digest": hashlib.sha256(b"hidden.example").hexdigest(),
            "severity": "suspend",
            "comment": "spam",
        },
        {
            "domain": "open.example",
            "digest": hashlib.sha256(b"open.example").hexdigest(),
            "severity": "silence",
            "comment": None,
        },
    ]
    assert "secret" not in r.text


async def _remote_clip(account: Account) -> Clip:
    return await posts.store_clip(
        Clip(
            id=new_id(),
            account=account,
            uri=f"{account.uri}/clips/{new_id()}",
            url=f"{account.uri}/clips/1",
            caption="remote",
            content="<p>remote</p>",
            local=False,
        ),
        account,
    )


async def _public_ids(client: httpx.AsyncClient, **params: str) -> set[int]:
    r = await client.get("/api/v1/timelines/public", params=params)
    assert r.status_code == 200
    return {int(s["id"]) for s in r.json()}


async def test_silenced_domain_is_out_of_public_timelines(
    client: httpx.AsyncClient, db: str
) -> None:
    h = await _admin(client)
    fan = await local_account("fan")
    loud_account = await remote_account("loud", "a.loud.example")
    await follows.follow(fan, loud_account)  # (accepted once its server answers)
    await Follow.filter(follower_id=fan.pk).update(state=FollowState.ACCEPTED)
    loud = await _remote_clip(loud_account)
    calm = await _remote_clip(await remote_account("calm", "calm.example:8443"))
    assert {loud.pk, calm.pk} <= await _public_ids(client)
    r = await client.post(B, headers=h, data={"domain": "loud.example", "severity": "silence"})
    assert r.status_code == 200
    assert loud.pk not in await _public_ids(client)
    assert loud.pk not in await _public_ids(client, remote="true")
    assert calm.pk in await _public_ids(client)
    # Its followers still see it at home.
    fan_h = (await login(client, fan)).headers
    home = await client.get("/api/v1/timelines/home", headers=fan_h)
    assert [int(s["id"]) for s in home.json()] == [loud.pk]
    # A noop block leaves it in.
    block = await DomainBlock.get(domain="loud.example")
    assert (
        await client.put(f"{B}/{block.pk}", headers=h, data={"severity": "noop"})
    ).status_code == 200
    assert loud.pk in await _public_ids(client)


async def test_user_domain_blocks(client: httpx.AsyncClient, db: str) -> None:
    me = await login(client, await local_account("me"))
    other = await login(client, await local_account("other"))
    clip = await _remote_clip(await remote_account("x", "sub.annoying.example"))
    fine = await _remote_clip(await remote_account("y", "fine.example"))

    async def seen(headers: dict[str, str]) -> set[int]:
        r = await client.get("/api/v1/timelines/public", headers=headers)
        return {int(s["id"]) for s in r.json()}

    assert clip.pk in await seen(me.headers)
    r = await client.post(
        "/api/v1/domain_blocks", headers=me.headers, data={"domain": "Annoying.Example"}
    )
    assert r.status_code == 200
    assert (await client.get("/api/v1/domain_blocks", headers=me.headers)).json() == [
        "annoying.example"
    ]
    assert clip.pk not in await seen(me.headers) and fine.pk in await seen(me.headers)
    assert clip.pk in await seen(other.headers)  # only that user's
    # Nor do its accounts notify that user.
    await follows.follow(await Account.get(pk=clip.account_id), me.account)
    await follows.follow(await Account.get(pk=fine.account_id), me.account)
    notes = await client.get("/api/v1/notifications", headers=me.headers)
    assert [n["account"]["acct"] for n in notes.json()] == ["y@fine.example"]
    bad = await client.post("/api/v1/domain_blocks", headers=me.headers, data={"domain": "no way"})
    assert bad.status_code == 422
    own = await client.post(
        "/api/v1/domain_blocks", headers=me.headers, data={"domain": "fedisora.test"}
    )
    assert own.status_code == 422
    assert (
        await client.post("/api/v1/domain_blocks", data={"domain": "a.example"})
    ).status_code == 401
    r = await client.request(
        "DELETE", "/api/v1/domain_blocks", headers=me.headers, params={"domain": "annoying.example"}
    )
    assert r.status_code == 200
    assert clip.pk in await seen(me.headers)
    assert (await client.get("/api/v1/domain_blocks", headers=me.headers)).json() == []
