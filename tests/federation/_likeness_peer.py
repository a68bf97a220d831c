"""Act on likeness consent as a user of one running instance (its FEDISORA_* environment).

Used by test_fed_likeness_grants.py, in the manner of ``_peer.py``: each call is a separate
process going through the real services; the instance's own server delivers what they send.

    python tests/federation/_likeness_peer.py owner erin everyone "never in politics"
    python tests/federation/_likeness_peer.py user bob
    python tests/federation/_likeness_peer.py request bob erin@127.0.0.1:8001 accept
    python tests/federation/_likeness_peer.py api-request bob erin@127.0.0.1:8001 [accept]
    python tests/federation/_likeness_peer.py approve erin | reject erin
    python tests/federation/_likeness_peer.py forge erin <grantee> expired|other|wrongkey|tampered
    python tests/federation/_likeness_peer.py store bob <owner uri> '<grant json>'
    python tests/federation/_likeness_peer.py render bob <owner uri> [publish]
    python tests/federation/_likeness_peer.py fetch <grant uri>  # a signed GET of its stills
    python tests/federation/_likeness_peer.py localgrant erin carol
    python tests/federation/_likeness_peer.py revoke erin <grant uri>
    python tests/federation/_likeness_peer.py send bob <owner uri> '<activity json>'
    python tests/federation/_likeness_peer.py owner fran approved - approval  # approves each use
    python tests/federation/_likeness_peer.py api-grant fran dave@127.0.0.1:8002  # ahead of asking
    python tests/federation/_likeness_peer.py render-request dave <owner uri>  # the render API's
    python tests/federation/_likeness_peer.py render-job dave <owner uri> <job id>  # the worker's
    python tests/federation/_likeness_peer.py post-cameo dave <owner uri> "caption"
    python tests/federation/_likeness_peer.py user bob :: user carol   # several at once
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "tests" / "api"))

from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402
from likenesses import verified_likeness  # noqa: E402

from activitypub import consent  # noqa: E402
from activitypub.errors import ConsentError  # noqa: E402
from activitypub.keys import load_private_key_pem  # noqa: E402
from fedisora import federation as fed_module  # noqa: E402
from fedisora import urls  # noqa: E402
from fedisora.config import load_settings  # noqa: E402
from fedisora.db import close_db, init_db  # noqa: E402
from fedisora.federation import likeness as federated  # noqa: E402
from fedisora.federation.actors import resolve_acct  # noqa: E402
from fedisora.federation.context import get_federation  # noqa: E402
from fedisora.models import (  # noqa: E402
    Account,
    LikenessGrant,
    LikenessRequest,
    MediaFile,
    MediaKind,
    RenderJob,
    utcnow,
)
from fedisora.services import events, posts  # noqa: E402
from fedisora.services import likeness as svc  # noqa: E402
from fedisora.services.accounts import create_local_account  # noqa: E402
from render.consent import (  # noqa: E402
    check_cameo_consent,
    check_cameos_for_request,
    record_requested,
)


def _is_file(path: str) -> bool:
    return os.path.isfile(path)


async def _me(name: str) -> Account:
    return await Account.get(username=name, domain=None)


async def _user(name: str) -> Account:
    found = await Account.get_or_none(username=name, domain=None)
    if found is not None:
        return found
    return await create_local_account(name, f"{name}@example.com", "correct horse battery")


def _forge(owner: Account, grantee: str, variant: str) -> dict[str, Any]:
    """A grant from *owner* that must be refused: signed by the owner's real key but expired
    or for another grantee, signed by another key, or changed after signing."""
    now = utcnow().replace(microsecond=0)
    key = load_private_key_pem(owner.ed25519_private_pem or "")
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    published, expires = now, now + timedelta(days=30)
    if variant == "expired":
        published, expires = now - timedelta(days=2), now - timedelta(days=1)
    if variant == "other":
        grantee = grantee.rsplit("/", 1)[0] + "/someone-else"
    if variant == "wrongkey":
        key = ed25519.Ed25519PrivateKey.generate()
    doc = consent.build_grant(
        grant_id=f"{owner.uri.split('/users/')[0]}/likeness/grants/forged-{variant}",
        owner=owner.uri,
        grantee=grantee,
        scope="drafts",
        restrictions_digest=consent.restrictions_digest(""),
        published=published,
        expires=expires,
    )
    signed = consent.sign_grant(doc, key, key_id=f"{owner.uri}#ed25519-key", created=published)
    if variant == "tampered":
        signed["scope"] = "publish"
    return signed


async def run(action: str, args: list[str]) -> Any:
    if action == "user":
        return {"uri": (await _user(args[0])).uri}
    if action == "owner":
        me = await _user(args[0])
        policy: dict[str, Any] = {"audience": args[1]}
        if len(args) > 2 and args[2] != "-":
            policy["restrictions"] = args[2]
        if args[3:] == ["approval"]:
            policy["approval_required"] = True
        await verified_likeness(me, SETTINGS, **policy)
        return {"uri": me.uri}
    if action == "request":
        me = await _me(args[0])
        owner = await resolve_acct(get_federation(SETTINGS), args[1])
        row = await svc.request_use(me, owner, accept_restrictions=args[2:] == ["accept"])
        return {"id": row.pk, "state": row.state, "uri": row.uri}
    if action == "api-request":  # the client API, as an app of the user would call it
        import httpx
        from apihelpers import login

        from fedisora.app import create_app

        app = create_app(SETTINGS, run_work=False, manage_db=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=SETTINGS.base_url) as http:
            who = await login(http, await _me(args[0]))
            answer = await http.post(
                "/api/fedisora/v1/likeness/requests",
                data={"acct": args[1], "accept_restrictions": str(args[2:] == ["accept"]).lower()},
                headers=who.headers,
            )
        return {"status": answer.status_code, **answer.json()}
    if action == "api-grant":  # POST .../likeness/grants for an account, maybe remote
        import httpx
        from apihelpers import login

        from fedisora.app import create_app

        grantee = await resolve_acct(get_federation(SETTINGS), args[1])
        app = create_app(SETTINGS, run_work=False, manage_db=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=SETTINGS.base_url) as http:
            who = await login(http, await _me(args[0]))
            reply = await http.post(
                "/api/fedisora/v1/likeness/grants",
                data={"account_id": str(grantee.pk)},
                headers=who.headers,
            )
        return {"status": reply.status_code, "body": reply.json()}
    if action == "render-request":  # what the render API asks before it queues a job
        me = await _me(args[0])
        owner = await Account.get(uri=args[1])
        decision, consents = await check_cameos_for_request(me, [owner.pk])
        job = None
        if decision.allowed:
            job = await RenderJob.create(account_id=me.pk, state="rendering", spec={})
            await record_requested(consents, me, job)
        return {
            "allowed": decision.allowed,
            "reason": decision.reason,
            "job": job.pk if job is not None else None,
        }
    if action == "render-job":  # the worker's check right before rendering *job*
        owner = await Account.get(uri=args[1])
        job = await RenderJob.get(pk=int(args[2]))
        decision = await check_cameo_consent(job, [owner.pk], publish=False, settings=SETTINGS)
        federated.discard_references(SETTINGS, job.pk)
        return {"allowed": decision.allowed, "reason": decision.reason}
    if action == "post-cameo":  # a clip with the owner's cameo, under the grant held here
        me = await _me(args[0])
        owner = await Account.get(uri=args[1])
        held = await LikenessGrant.get(owner_id=owner.pk, grantee_id=me.pk, remote=True)
        media = await MediaFile.create(
            account=me,
            kind=MediaKind.VIDEO,
            file=f"clips/{me.pk}-{await MediaFile.all().count()}.mp4",
            content_type="video/mp4",
            width=256,
            height=448,
            duration=3.0,
            provenance={"state": "trusted", "local": True, "manifest_digest": "sha256:e2e"},
        )
        clip = await posts.post_clip(me, media, caption=args[2], cameos=[(owner, held.uri)])
        return {"uri": clip.uri}
    if action in ("approve", "reject"):
        me = await _me(args[0])
        done = []
        for row in await LikenessRequest.filter(owner_id=me.pk, state="pending"):
            decide = svc.approve_request if action == "approve" else svc.reject_request
            done.append((await decide(me, row.pk)).state)
        return {"answered": done}
    if action == "forge":
        return _forge(await _me(args[0]), args[1], args[2])
    if action == "store":
        me = await _me(args[0])
        owner = await Account.get(uri=args[1])
        try:
            kept = await federated.store_grant(
                get_federation(SETTINGS), me, owner, json.loads(args[2])
            )
        except ConsentError as exc:
            return {"stored": False, "reason": exc.reason}
        return {"stored": True, "uri": kept.uri}
    if action == "render":  # what the render worker asks right before rendering
        me = await _me(args[0])
        owner = await Account.get(uri=args[1])
        job = await RenderJob.create(account_id=me.pk, state="rendering", spec={})
        decision = await check_cameo_consent(
            job, [owner.pk], publish=args[2:] == ["publish"], settings=SETTINGS
        )
        fetched = [p for p in decision.references if _is_file(p)]
        federated.discard_references(SETTINGS, job.pk)  # as the worker does after the job
        return {
            "allowed": decision.allowed,
            "reason": decision.reason,
            "refs": list(decision.refs),
            "fetched": len(fetched),
            "left_after_job": any(_is_file(p) for p in decision.references),
            "job": job.pk,
        }
    if action == "fetch":  # a signed GET of a grant's stills list, by this instance
        fed = get_federation(SETTINGS)
        response, body = await fed.client.request(
            "GET", federated.references_url(args[0]), auth=await fed.instance_auth()
        )
        return {"status": response.status_code, "body": json.loads(body or b"null")}
    if action == "localgrant":
        made = await svc.grant(await _me(args[0]), await _user(args[1]))
        return {"uri": made.uri}
    if action == "revoke":
        me = await _me(args[0])
        revoked = await LikenessGrant.get(uri=args[1], owner_id=me.pk)
        await svc.revoke_grant(me, revoked.pk)
        return {"revoked": args[1]}
    if action == "send":  # any activity, from a local user, through the outbox
        me = await _me(args[0])
        to = await Account.get(uri=args[1])
        async with events.transaction() as conn:
            await federated.emit_activity(conn, me, json.loads(args[2]), [to])
        return {"sent": True}
    raise SystemExit(f"unknown action {action}")


SETTINGS = load_settings()


async def main() -> None:
    urls.configure(SETTINGS)
    await init_db(SETTINGS)
    fed_module.install(None)
    # Several actions in one process (each imports the whole app): separated by "::".
    batches: list[list[str]] = [[]]
    for arg in sys.argv[1:]:
        if arg == "::":
            batches.append([])
        else:
            batches[-1].append(arg)
    try:
        results = [await run(batch[0], batch[1:]) for batch in batches]
    finally:
        await fed_module.uninstall()
        await close_db()
    print(json.dumps(results[0] if len(results) == 1 else results, default=str))


if __name__ == "__main__":
    asyncio.run(main())
