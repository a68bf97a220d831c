"""Responses match the entity schemas of the Mastodon 4.7 OpenAPI description (fixtures/).

Formats are not checked: the description is stricter than Mastodon itself in places (it types
``last_status_at`` as a date and some timestamps as date-times interchangeably). One defect is
patched in memory: ``Status.quote`` is ``oneOf [ShallowQuote, Quote, null]``, but every Quote is
also a valid ShallowQuote (both only require ``state``), so no response could ever satisfy
``oneOf``; it is checked as ``anyOf``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import referencing
from apihelpers import login, register_app
from factories import local_account, rendered_video

SPEC = Path(__file__).parent / "fixtures" / "mastodon-openapi-4.7.0.json"


@cache
def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(SPEC.read_text(encoding="utf-8"))
    quote = spec["components"]["schemas"]["Status"]["properties"]["quote"]
    if "oneOf" in quote:
        quote["anyOf"] = quote.pop("oneOf")
    return spec


def check(entity: str, data: Any) -> None:
    """Validate *data* against ``components.schemas[entity]``; fail with every error found."""
    from referencing.jsonschema import DRAFT202012

    spec = _spec()
    resource = referencing.Resource.from_contents(spec, default_specification=DRAFT202012)
    registry = referencing.Registry().with_resource("urn:mastodon", resource)
    schema = {"$ref": f"urn:mastodon#/components/schemas/{entity}"}
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{entity} at {list(e.absolute_path)}: {e.message[:300]}" for e in errors[:10]
    )


async def test_entities_match_the_mastodon_openapi_description(
    client: httpx.AsyncClient, db: str
) -> None:
    r = await client.post(
        "/api/v1/apps",
        data={"client_name": "c", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "read"},
    )
    check("CredentialApplication", r.json())
    alice = await login(client, await local_account("alice", admin=True))
    bob = await login(client, await local_account("bob"))
    check(
        "Application",
        (await client.get("/api/v1/apps/verify_credentials", headers=alice.headers)).json(),
    )
    cid, secret = await register_app(client, "read")
    r = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
    )
    check("Token", r.json())

    check(
        "CredentialAccount",
        (await client.get("/api/v1/accounts/verify_credentials", headers=alice.headers)).json(),
    )
    check("Account", (await client.get(f"/api/v1/accounts/{bob.account.pk}")).json())

    source_media = await rendered_video(alice.account)
    r = await client.post(
        "/api/v1/statuses",
        data={"status": "#tag @bob hi", "media_ids[]": str(source_media.pk)},
        headers=alice.headers,
    )
    source = r.json()
    check("Status", source)
    remix_media = await rendered_video(bob.account)
    r = await client.post(
        "/api/v1/statuses",
        data={
            "status": "remix",
            "media_ids[]": str(remix_media.pk),
            "quoted_status_id": source["id"],
        },
        headers=bob.headers,
    )
    check("Status", r.json())
    reply = await client.post(
        "/api/v1/statuses",
        data={"status": "reply", "in_reply_to_id": source["id"]},
        headers=bob.headers,
    )
    check("Status", reply.json())
    check("MediaAttachment", source["media_attachments"][0])
    boosted = await client.post(f"/api/v1/statuses/{source['id']}/reblog", headers=bob.headers)
    check("Status", boosted.json())
    await client.post(f"/api/v1/statuses/{source['id']}/favourite", headers=bob.headers)
    check("Context", (await client.get(f"/api/v1/statuses/{source['id']}/context")).json())

    for note in (await client.get("/api/v1/notifications", headers=alice.headers)).json():
        check("Notification", note)
    grouped = (await client.get("/api/v2/notifications", headers=alice.headers)).json()
    check("GroupedNotificationsResults", grouped)
    kinds = {g["type"] for g in grouped["notification_groups"]}
    assert kinds == {"mention", "favourite", "quote", "reblog"}
    await client.post(f"/api/v1/accounts/{alice.account.pk}/follow", headers=bob.headers)
    rels = await client.get(
        "/api/v1/accounts/relationships",
        params={"id[]": str(alice.account.pk)},
        headers=bob.headers,
    )
    check("Relationship", rels.json()[0])
    for status in (await client.get("/api/v1/timelines/home", headers=bob.headers)).json():
        check("Status", status)
    for tag in (await client.get("/api/v1/trends/tags")).json():
        check("Tag", tag)
    check("Instance", (await client.get("/api/v2/instance")).json())
    check("V1Instance", (await client.get("/api/v1/instance")).json())
