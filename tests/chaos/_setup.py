"""Prepare a chaos instance's users, run with the instance's FEDISORA_* environment; print JSON.

    python tests/chaos/_setup.py USERS TOKENS MEDIA

Creates USERS local accounts through the real service, TOKENS OAuth access tokens for each
(the API allows 300 requests per token in five minutes, so the load generator spreads its
requests over several), and MEDIA finished videos per user as the render queue leaves them
(trusted local provenance; no file on disk), so that the load can post many clips without
waiting for as many renders. Real renders are part of the load too.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fedisora import urls  # noqa: E402
from fedisora.api.oauth import issue_token  # noqa: E402
from fedisora.config import load_settings  # noqa: E402
from fedisora.db import close_db, init_db  # noqa: E402
from fedisora.models import MediaFile, MediaKind, OAuthApplication  # noqa: E402
from fedisora.services.accounts import create_local_account  # noqa: E402

PASSWORD = "chaos password 1"
SCOPES = ["read", "write", "follow", "push"]


async def main(users: int, tokens: int, media: int) -> None:
    settings = load_settings()
    urls.configure(settings)
    await init_db(settings)
    try:
        app = await OAuthApplication.create(
            name="chaos load",
            redirect_uris="urn:ietf:wg:oauth:2.0:oob",
            scopes=" ".join(SCOPES),
            client_id="chaos-load",
            client_secret="chaos-load-secret",
        )
        out = []
        for n in range(users):
            account = await create_local_account(f"load{n}", f"load{n}@chaos.test", PASSWORD)
            issued = [(await issue_token(app, account, SCOPES)).token for _ in range(tokens)]
            seeded = [
                (
                    await MediaFile.create(
                        account=account,
                        kind=MediaKind.VIDEO,
                        file=f"clips/seeded-{account.pk}-{i}.mp4",
                        content_type="video/mp4",
                        width=64,
                        height=112,
                        duration=1.0,
                        fps=16.0,
                        frames=17,
                        provenance={"state": "trusted", "local": True, "seeded": True},
                    )
                ).pk
                for i in range(media)
            ]
            out.append(
                {
                    "id": account.pk,
                    "username": account.username,
                    "uri": account.uri,
                    "tokens": issued,
                    "media": seeded,
                }
            )
    finally:
        await close_db()
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(*(int(a) for a in sys.argv[1:4])))
