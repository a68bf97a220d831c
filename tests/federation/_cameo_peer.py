"""Likeness and cameo actions run inside one running instance (its FEDISORA_* environment).

Used by test_fed_likeness_clips.py, like ``_peer.py``: each call is a separate process.

    python tests/federation/_cameo_peer.py likeness admin
    python tests/federation/_cameo_peer.py grants admin '[["bob@b", "publish", false]]'
    python tests/federation/_cameo_peer.py post-cameos admin <owner uri> '[["caption", grant]]'
    python tests/federation/_cameo_peer.py revoke admin <grant uri> take_down|keep
    python tests/federation/_cameo_peer.py send admin <inbox url> '[activity, ...]'
    python tests/federation/_cameo_peer.py remove-use admin <clip uri>

(The test reads each instance's state from its SQLite database directly.)
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from activitypub import consent  # noqa: E402
from activitypub.keys import load_private_key_pem  # noqa: E402
from fedisora import federation, urls  # noqa: E402
from fedisora.config import load_settings  # noqa: E402
from fedisora.db import close_db, init_db  # noqa: E402
from fedisora.federation.actors import fetch_actor, resolve_acct  # noqa: E402
from fedisora.federation.context import get_federation  # noqa: E402
from fedisora.models import (  # noqa: E402
    Account,
    Audience,
    Likeness,
    LikenessGrant,
    LikenessState,
    LikenessUse,
    MediaFile,
    MediaKind,
    utcnow,
)
from fedisora.services import likeness, posts  # noqa: E402


async def _me(username: str) -> Account:
    return await Account.get(username=username, domain=None)


async def _media(account: Account) -> MediaFile:
    return await MediaFile.create(
        account=account,
        kind=MediaKind.VIDEO,
        file=f"clips/{account.pk}-{await MediaFile.all().count()}.mp4",
        content_type="video/mp4",
        width=256,
        height=448,
        duration=3.0,
        provenance={"state": "trusted", "local": True, "manifest_digest": "sha256:e2e"},
    )


async def _grant(fed: Any, me: Account, acct: str, scope: str, expired: bool = False) -> Any:
    grantee = await resolve_acct(fed, acct)
    now = utcnow().replace(microsecond=0)
    created, expires = now, None
    if expired:
        created, expires = now - timedelta(hours=2), now - timedelta(hours=1)
    row = await LikenessGrant.create(
        owner_id=me.pk,
        grantee_id=grantee.pk,
        scope=scope,
        restrictions_digest=consent.restrictions_digest(""),
        expires_at=expires,
        created_at=created,
    )
    uri = f"{urls.current().base}/likeness/grants/{row.pk}"
    key = load_private_key_pem(me.ed25519_private_pem or "")
    doc = consent.build_grant(
        grant_id=uri,
        owner=me.uri,
        grantee=grantee.uri,
        scope="publish" if scope == "publish" else "drafts",
        restrictions_digest=row.restrictions_digest,
        published=created,
        expires=expires,
    )
    signed = consent.sign_grant(
        doc,
        key,  # type: ignore[arg-type]
        key_id=f"{me.uri}#ed25519-key",
        created=created,
    )
    await LikenessGrant.filter(pk=row.pk).update(uri=uri, document=signed)
    return signed


async def run(action: str, args: list[str]) -> Any:
    fed = get_federation(SETTINGS)
    if action == "likeness":  # a verified likeness, approved people only
        me = await _me(args[0])
        now = utcnow()
        await Likeness.create(
            account=me,
            state=LikenessState.VERIFIED,
            verified_at=now,
            verification_method="test",
            audience=Audience.APPROVED,
        )
        return {"likeness": me.uri}
    if action == "grants":  # signed grants by a local owner: [[grantee acct, scope, expired?]]
        me = await _me(args[0])
        return [await _grant(fed, me, *spec) for spec in json.loads(args[1])]
    if action == "post-cameos":  # clips presenting consents (the grants' copies here)
        me = await _me(args[0])
        owner = await fetch_actor(fed, args[1])
        uris = []
        for caption, doc in json.loads(args[2]):
            await LikenessGrant.get_or_create(
                uri=doc["id"],
                defaults={
                    "owner_id": owner.pk,
                    "grantee_id": me.pk,
                    "scope": doc.get("scope", "publish"),
                    "document": doc,
                    "remote": True,
                },
            )
            clip = await posts.post_clip(
                me, await _media(me), caption=caption, cameos=[(owner, doc["id"])]
            )
            uris.append(clip.uri)
        return uris
    if action == "revoke":
        me = await _me(args[0])
        row = await LikenessGrant.get(uri=args[1], owner_id=me.pk)
        done = await likeness.revoke_grant(me, row.pk, take_down=args[2] == "take_down")
        return {"revocation": done.revocation}
    if action == "send":  # POST signed activities as a local user, as a delivery would
        me = await _me(args[0])
        statuses = []
        for activity in json.loads(args[2]):
            body = json.dumps(activity).encode()
            response = await fed.client.post_activity(args[1], body, fed.auth_for(me))
            statuses.append(response.status_code)
        return statuses
    if action == "remove-use":
        me = await _me(args[0])
        use = await LikenessUse.get(owner_id=me.pk, clip_uri=args[1])
        done = await likeness.remove_from_clip(me, use.pk)
        return {"removed": done.removed_at is not None}
    raise SystemExit(f"unknown action {action}")


SETTINGS = load_settings()


async def main() -> None:
    urls.configure(SETTINGS)
    await init_db(SETTINGS)
    federation.install(None)
    try:
        result = await run(sys.argv[1], sys.argv[2:])
    finally:
        await federation.uninstall()
        await close_db()
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
