"""Small helpers that create rows through the real services."""

from __future__ import annotations

import itertools
from typing import Any

from fedisora.models import Account, MediaFile, MediaKind
from fedisora.services.accounts import create_local_account

_counter = itertools.count(1)


async def local_account(username: str | None = None, **kwargs: Any) -> Account:
    n = next(_counter)
    username = username or f"user{n}"
    return await create_local_account(
        username, f"{username}@example.com", "correct horse battery", **kwargs
    )


async def remote_account(username: str, domain: str = "remote.example", **kwargs: Any) -> Account:
    uri = f"https://{domain}/users/{username}"
    return await Account.create(
        username=username,
        domain=domain,
        uri=uri,
        inbox_uri=f"{uri}/inbox",
        shared_inbox_uri=f"https://{domain}/inbox",
        **kwargs,
    )


async def rendered_video(account: Account, **provenance: Any) -> MediaFile:
    """A media row as the render queue leaves it: a video with a trusted local manifest."""
    prov = {"state": "trusted", "local": True, "manifest_digest": "sha256:test"}
    prov.update(provenance)
    return await MediaFile.create(
        account=account,
        kind=MediaKind.VIDEO,
        file=f"clips/{next(_counter)}.mp4",
        content_type="video/mp4",
        width=256,
        height=448,
        duration=3.0,
        fps=16.0,
        frames=49,
        provenance=prov,
    )
