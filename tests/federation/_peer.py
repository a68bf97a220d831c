"""Act as a user of one running instance (its FEDISORA_* environment), print JSON.

Used by test_fed_two_instances.py and test_fed_three_instances.py: each call is a separate
process, like a CLI command, so the test process never holds two instances' databases at
once. Actions go through the real services; the federation listener turns them into
Delivery rows that the instance's own server process then delivers.

    python tests/federation/_peer.py follow admin admin@127.0.0.1:8001
    python tests/federation/_peer.py post admin "caption" [public|unlisted|private|direct]
    python tests/federation/_peer.py like admin <clip uri>
    python tests/federation/_peer.py comment admin <clip uri> "text"
    python tests/federation/_peer.py remix admin <clip uri> "caption"
    python tests/federation/_peer.py delete admin <clip uri>
    python tests/federation/_peer.py unfollow admin <actor uri>
    python tests/federation/_peer.py status admin <clip uri>   # the Mastodon API entity
    python tests/federation/_peer.py state
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fedisora import federation, urls  # noqa: E402
from fedisora.config import load_settings  # noqa: E402
from fedisora.db import close_db, init_db  # noqa: E402
from fedisora.federation.actors import resolve_acct  # noqa: E402
from fedisora.federation.context import get_federation  # noqa: E402
from fedisora.models import (  # noqa: E402
    Account,
    Clip,
    Comment,
    Delivery,
    Follow,
    InboxItem,
    MediaFile,
    MediaKind,
    QuoteCheck,
    Visibility,
)
from fedisora.services import follows, interactions, posts  # noqa: E402


async def _media(account: Account) -> MediaFile:
    """A finished render as the render queue leaves it (trusted local manifest)."""
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


async def run(action: str, args: list[str]) -> Any:
    if action == "follow":
        me = await Account.get(username=args[0], domain=None)
        target = await resolve_acct(get_federation(SETTINGS), args[1])
        row = await follows.follow(me, target)
        return {"follow": row.uri, "target": target.uri}
    if action == "post":
        me = await Account.get(username=args[0], domain=None)
        visibility = Visibility(args[2]) if len(args) > 2 else Visibility.PUBLIC
        clip = await posts.post_clip(me, await _media(me), caption=args[1], visibility=visibility)
        return {"uri": clip.uri}
    if action == "post_video":  # a clip of this video file, fingerprinted as the worker does
        import shutil

        from fedisora.models import Fingerprint
        from fedisora.services import events, fingerprints
        from render.fingerprint import fingerprint_file, hashes_to_hex

        me = await Account.get(username=args[0], domain=None)
        media = await _media(me)
        target = SETTINGS.media_root / media.file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args[1], target)
        clip = await posts.post_clip(me, media, caption=args[2])
        hashes = hashes_to_hex(fingerprint_file(target).hashes)
        row = await Fingerprint.get(clip_id=clip.pk)
        async with events.transaction() as conn:
            await (
                Fingerprint.filter(pk=row.pk)
                .using_db(conn)
                .update(state="done", hashes=hashes, computed_at=row.created_at)
            )
            await fingerprints.index(conn, row.pk, hashes)
            await events.emit(conn, "clip.updated", me.pk, clip_id=clip.pk, fingerprint=True)
        return {"uri": clip.uri, "id": str(clip.pk)}
    if action == "fingerprints":  # the clips whose fingerprints are indexed here
        from fedisora.models import Fingerprint

        rows = await Fingerprint.filter(state="done").values_list("clip__uri", "origin")
        return {"fingerprints": [{"uri": u, "origin": o} for u, o in rows]}
    if action == "remix":
        me = await Account.get(username=args[0], domain=None)
        source = await Clip.get(uri=args[1])
        clip = await posts.remix_clip(me, source, await _media(me), caption=args[2])
        return {"uri": clip.uri}
    if action == "delete":
        me = await Account.get(username=args[0], domain=None)
        await posts.delete_clip(me, await Clip.get(uri=args[1]))
        return {"deleted": args[1]}
    if action == "unfollow":
        me = await Account.get(username=args[0], domain=None)
        return {"unfollowed": await follows.unfollow(me, await Account.get(uri=args[1]))}
    if action == "like":
        me = await Account.get(username=args[0], domain=None)
        like = await interactions.like(me, await Clip.get(uri=args[1]))
        return {"like": like.uri}
    if action == "comment":
        me = await Account.get(username=args[0], domain=None)
        reply = await interactions.comment(me, await Clip.get(uri=args[1]), args[2])
        return {"comment": reply.uri}
    if action == "status":  # as a Mastodon client of this user sees the clip
        from fedisora.api.entities import status_entities

        me = await Account.get(username=args[0], domain=None)
        return (await status_entities(me, [await Clip.get(uri=args[1])]))[0]
    if action == "state":
        follow_rows = await Follow.all().prefetch_related("follower", "target")
        return {
            "follows": [
                {
                    "follower": f.follower.uri,
                    "target": f.target.uri,
                    "state": f.state.value,
                    "uri": f.uri,
                }
                for f in follow_rows
            ],
            "clips": [
                {
                    "uri": c.uri,
                    "local": c.local,
                    "likes": c.likes_count,
                    "boosts": c.boosts_count,
                    "comments": c.comments_count,
                    "remixes": c.remixes_count,
                    "remix_of": c.remix_of_uri,
                    "stamp": c.quote_authorization_uri,
                    "quote_state": c.quote_state,
                    "caption": c.caption,
                }
                for c in await Clip.filter(deleted_at=None)
            ],
            "comments": [c.uri for c in await Comment.all()],
            "accounts": {
                a.uri: {
                    "suspended": a.suspended_at is not None,  # by a moderator here
                    "origin_suspended": a.origin_suspended_at is not None,  # by its server
                }
                for a in await Account.all()
            },
            "deliveries": [
                {
                    "state": d.state,
                    "type": d.payload.get("type"),
                    "error": d.last_error,
                    "id": d.activity_id,
                    "inbox": d.inbox_url,
                }
                for d in await Delivery.all()
            ],
            "inbox": [
                {"state": i.state, "type": i.payload.get("type"), "error": i.last_error}
                for i in await InboxItem.all()
            ],
            "quote_checks": [
                {
                    "remix": q.remix_uri,
                    "stamp": q.stamp_uri,
                    "withdrawn": q.withdrawn,
                    "state": q.state,
                    "outcome": q.outcome,
                    "reason": q.reason,
                    "error": q.last_error,
                }
                for q in await QuoteCheck.all().order_by("id")
            ],
        }
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
