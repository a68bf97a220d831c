"""The likeness consent endpoints (``/api/fedisora/v1/likeness...``) over the real app."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from apihelpers import Login, login
from factories import local_account
from likenesses import face_png, faceless_png, verified_likeness
from PIL import Image

from fedisora.app import create_app
from fedisora.config import Settings, load_settings
from fedisora.models import (
    ConsentCheck,
    Likeness,
    LikenessChallenge,
    LikenessGrant,
    LikenessRequest,
    Notification,
    NotificationType,
)
from fedisora.services import likeness as svc

DOMAIN = "fedisora.test"
L = "/api/fedisora/v1/likeness"


@pytest.fixture
def settings(tmp_path: Path, db: str) -> Settings:
    loaded = load_settings(
        {
            "FEDISORA_DOMAIN": DOMAIN,
            "FEDISORA_DATA_DIR": str(tmp_path / "data"),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_CONFIG": str(tmp_path / "none.env"),
        }
    )
    return replace(loaded, database_url=db)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, run_work=False, manage_db=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.9", 1234))
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{DOMAIN}") as c:
        yield c


async def challenge(client: httpx.AsyncClient, who: Login) -> str:
    r = await client.get(f"{L}/challenge", headers=who.headers)
    assert r.status_code == 200, r.text
    code: str = r.json()["challenge"]
    return code


def files(n: int = 2, **extra: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [
        ("reference_images[]", (f"face{i}.png", face_png(), "image/png")) for i in range(n)
    ]
    out.append(("verification", ("sample.png", face_png(300, 300), "image/png")))
    return out


async def test_register_show_policy_and_revoke(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    alice = await login(client, await local_account("alice"))
    r = await client.get(L, headers=alice.headers)
    assert r.status_code == 404 and "error" in r.json()
    code = await challenge(client, alice)
    r = await client.post(L, data={"challenge": code}, files=files(3), headers=alice.headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["state"] == "pending" and body["reference_images"] == 3
    assert body["policy"]["audience"] == "nobody"
    # The reference images are nowhere under the public media root.
    assert not settings.media_root.exists() or not any(settings.media_root.rglob("*.png"))
    r = await client.post(L, data={"challenge": code}, files=files(), headers=alice.headers)
    assert r.status_code == 422 and "used already" in r.json()["error"]

    await svc.verify("alice")
    r = await client.put(
        f"{L}/policy",
        json={"audience": "everyone", "drafts_only": True, "restrictions": "no ads"},
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    policy = r.json()["policy"]
    assert policy == {
        "audience": "everyone",
        "approval_required": False,
        "drafts_only": True,
        "restrictions": "no ads",
        "default_expires_in": None,
    }
    for bad in (
        {"audience": "friends"},
        {"drafts_only": "maybe"},
        {"default_expires_in": 3},
        {"restrictions": "x" * 1001},
    ):
        r = await client.put(f"{L}/policy", json=bad, headers=alice.headers)
        assert r.status_code == 422 and "error" in r.json(), bad
    r = await client.get(L, headers=alice.headers)
    assert r.json()["state"] == "verified" and r.json()["policy"]["drafts_only"] is True

    r = await client.delete(L, headers=alice.headers)
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    assert r.json()["reference_images"] == 0
    base = svc.private_dir(settings)
    assert not any(p.is_file() for p in base.rglob("*"))
    r = await client.delete(L, headers=alice.headers)
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("no images", 422, "reference_images"),
        ("six images", 422, "at most 5"),
        ("seven files", 400, "Too many files"),
        ("not an image", 422, "not a readable image"),
        ("no face", 422, "no face found in reference image 2"),
        ("text as image", 422, "must be a file"),
        ("no verification", 422, "verification is required"),
        ("bad verification", 422, "verification must be"),
        ("no challenge", 422, "challenge is required"),
        ("wrong challenge", 422, "unknown code"),
        ("oversized", 413, "larger than"),
    ],
)
async def test_register_refusals_store_nothing(
    client: httpx.AsyncClient, settings: Settings, case: str, status: int, message: str
) -> None:
    alice = await login(client, await local_account("alice"))
    code = await challenge(client, alice)
    data: dict[str, Any] = {"challenge": code}
    parts = files()
    if case == "no images":
        parts = parts[-1:]
    elif case == "six images":
        parts = [("reference_images[]", ("f.png", face_png(), "image/png"))] * 6
    elif case == "seven files":  # more file parts than the route takes: the parser refuses
        parts = [("reference_images[]", ("f.png", face_png(), "image/png"))] * 6 + parts[-1:]
    elif case == "not an image":
        parts[0] = ("reference_images[]", ("x.png", b"GIF89a not really", "image/png"))
    elif case == "no face":
        parts[1] = ("reference_images[]", ("wall.png", faceless_png(), "image/png"))
    elif case == "text as image":
        parts = parts[1:]
        data["reference_images[]"] = "hello"
    elif case == "no verification":
        parts = parts[:-1]
    elif case == "bad verification":
        parts[-1] = ("verification", ("v.bin", b"\x7fELF binary", "application/octet-stream"))
    elif case == "no challenge":
        data = {}
    elif case == "wrong challenge":
        data["challenge"] = "NOPE-NOPE-NOPE"
    elif case == "oversized":
        big = io.BytesIO()
        Image.effect_noise((2400, 2000), 100).convert("RGB").save(big, format="PNG")
        blob = big.getvalue() + b"\0" * max(0, svc.MAX_REFERENCE_BYTES + 1 - len(big.getvalue()))
        parts[0] = ("reference_images[]", ("big.png", blob, "image/png"))
    r = await client.post(L, data=data, files=parts, headers=alice.headers)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    assert await Likeness.all().count() == 0
    assert await LikenessChallenge.filter(consumed_at__not_isnull=True).count() == 0
    base = svc.private_dir(settings)
    assert not base.exists() or not any(p.is_file() for p in base.rglob("*"))


async def test_nobody_registers_for_another_account(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    alice = await login(client, await local_account("alice"))
    mallory = await login(client, await local_account("mallory"))
    code = await challenge(client, alice)
    # Mallory holds alice's code: it is not hers, and any account_id she adds is ignored.
    r = await client.post(
        L,
        data={"challenge": code, "account_id": str(alice.account.pk)},
        files=files(),
        headers=mallory.headers,
    )
    assert r.status_code == 422 and "unknown code" in r.json()["error"]
    assert await Likeness.all().count() == 0
    # Without a token, or with a read-only one, nothing at all.
    r = await client.post(L, data={"challenge": code}, files=files())
    assert r.status_code == 401
    reader = await login(client, alice.account, scope="read")
    r = await client.post(L, data={"challenge": code}, files=files(), headers=reader.headers)
    assert r.status_code == 403


async def test_requests_grants_uses_checks_and_picker(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    owner = await login(client, await local_account("owner"))
    bob = await login(client, await local_account("bob"))
    carl = await login(client, await local_account("carl"))
    await verified_likeness(owner.account, settings, audience="approved", restrictions="no ads")

    r = await client.post(f"{L}/requests", json={"acct": "owner"}, headers=bob.headers)
    assert r.status_code == 422 and "no ads" in r.json()["error"]
    assert await LikenessRequest.all().count() == 0
    r = await client.post(f"{L}/requests", json={"acct": "ghost"}, headers=bob.headers)
    assert r.status_code == 404
    r = await client.post(f"{L}/requests", json={}, headers=bob.headers)
    assert r.status_code == 422
    r = await client.post(
        f"{L}/requests",
        json={"account_id": str(owner.account.pk), "accept_restrictions": True},
        headers=bob.headers,
    )
    assert r.status_code == 200 and r.json()["state"] == "pending"
    request_id = r.json()["id"]
    note = await Notification.get(recipient_id=owner.account.pk)
    assert note.type == NotificationType.LIKENESS_REQUEST
    r = await client.get("/api/v1/notifications", headers=owner.headers)
    assert r.json()[0]["type"] == "fedisora.likeness_request"

    r = await client.get(f"{L}/requests", headers=owner.headers)
    assert [x["id"] for x in r.json()["incoming"]] == [request_id]
    assert r.json()["outgoing"] == []
    r = await client.post(f"{L}/requests/{request_id}/approve", headers=bob.headers)
    assert r.status_code == 404
    r = await client.post(
        f"{L}/requests/{request_id}/approve",
        json={"expires_at": "tomorrow"},
        headers=owner.headers,
    )
    assert r.status_code == 422
    r = await client.post(f"{L}/requests/{request_id}/approve", headers=owner.headers)
    assert r.status_code == 200 and r.json()["state"] == "approved"
    r = await client.post(f"{L}/requests/{request_id}/reject", headers=owner.headers)
    assert r.status_code == 409

    # Approve carl ahead of a request, with an expiry.
    r = await client.post(
        f"{L}/grants",
        json={"account_id": str(carl.account.pk), "expires_at": "2099-01-01T00:00:00Z"},
        headers=owner.headers,
    )
    assert r.status_code == 200 and r.json()["expires_at"].startswith("2099-01-01")
    carl_grant = r.json()["id"]
    r = await client.post(
        f"{L}/grants",
        json={"account_id": str(carl.account.pk), "expires_at": "2001-01-01T00:00:00Z"},
        headers=owner.headers,
    )
    assert r.status_code == 422
    r = await client.get(f"{L}/grants", headers=owner.headers)
    assert len(r.json()["given"]) == 2 and r.json()["held"] == []
    r = await client.get(f"{L}/grants", headers=bob.headers)
    assert len(r.json()["held"]) == 1 and r.json()["held"][0]["scope"] == "publish"

    # The picker: bob may (restrictions accepted), carl not yet (restrictions pending).
    r = await client.get("/api/fedisora/v1/likenesses", params={"q": "ow"}, headers=bob.headers)
    assert [a["username"] for a in r.json()] == ["owner"]
    r = await client.get("/api/fedisora/v1/likenesses", headers=carl.headers)
    assert r.status_code == 200 and r.json() == []
    r = await client.delete(f"{L}/grants/{carl_grant}", headers=bob.headers)
    assert r.status_code == 404
    r = await client.delete(
        f"{L}/grants/{carl_grant}", params={"take_down": "true"}, headers=owner.headers
    )
    assert r.status_code == 200 and r.json()["revoked_at"] and r.json()["take_down"] is True
    assert (await LikenessGrant.get(pk=int(carl_grant))).revoked_at is not None

    # Uses and the audit: a refused render request is told to the owner and audited.
    r = await client.post(
        "/api/fedisora/v1/renders",
        json={"prompt": "carl with owner", "cameo_ids": [str(owner.account.pk)]},
        headers=carl.headers,
    )
    assert r.status_code == 422 and "cameo refused" in r.json()["error"]
    assert "revoked" in r.json()["error"]
    r = await client.get(f"{L}/uses", headers=owner.headers)
    assert r.status_code == 200 and r.json()[0]["kind"] == "refused"
    assert r.json()[0]["account"]["username"] == "carl"
    r = await client.get(f"{L}/checks", headers=owner.headers)
    assert r.status_code == 200 and r.json()[0]["allowed"] is False
    assert "revoked" in r.json()[0]["reason"]
    r = await client.get(f"{L}/checks", params={"all": "true"}, headers=owner.headers)
    assert r.status_code == 403
    assert await ConsentCheck.all().count() == 1
    r = await client.post(f"{L}/uses/999/remove", headers=owner.headers)
    assert r.status_code == 404


def test_registration_bodies_have_their_own_bounds() -> None:
    from fedisora.boundary.limits import FORM_BODY_LIMIT, LIKENESS_BODY_LIMIT, body_class

    registration = body_class("POST", L)
    assert registration.limit == LIKENESS_BODY_LIMIT and registration.files == 6
    total = svc.MAX_REFERENCE_IMAGES * svc.MAX_REFERENCE_BYTES + svc.MAX_VERIFICATION_BYTES
    assert total < LIKENESS_BODY_LIMIT < total + 128 * 1024
    assert body_class("PUT", f"{L}/policy").limit == FORM_BODY_LIMIT
    assert body_class("POST", f"{L}/requests").files == 4


async def test_a_signed_grant_is_served_at_its_id(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    owner = await local_account("owner")
    hal = await local_account("hal")
    await verified_likeness(owner, settings, audience="approved")
    row = await svc.grant(owner, hal)
    assert row.uri is not None
    path = row.uri.removeprefix(f"https://{DOMAIN}")
    r = await client.get(path, headers={"Accept": "application/activity+json"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/activity+json")
    assert r.json() == row.document and "proof" in r.json()
    await svc.revoke_grant(owner, row.pk)
    r = await client.get(path)
    assert r.status_code == 410 and r.json()["type"] == "LikenessRevocation"
    r = await client.get("/likeness/grants/999999")
    assert r.status_code == 404 and "error" in r.json()
