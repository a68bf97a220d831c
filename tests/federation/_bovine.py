"""Runs inside bovine-herd's own virtualenv (see test_fed_bovine.py); never imported by
fedisora. Each call prints one JSON line.

    python _bovine.py serve PORT DB          bovine-herd (Quart on hypercorn), 127.0.0.1:PORT
    python _bovine.py register PORT DB NAME  a new actor: its id, key id, inbox, outbox
    python _bovine.py post PORT DB NAME JSON POST an activity to the actor's outbox (signed)
    python _bovine.py inbox PORT DB NAME     the activities in the actor's inbox (signed GET)
    python _bovine.py fetch PORT DB NAME URL a signed GET by the actor
    python _bovine.py whoami PORT DB NAME    the actor's id, inbox and outbox
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any


def db_url(path: str) -> str:
    return f"sqlite://{path}"


async def register(port: int, db: str, name: str) -> dict[str, str]:
    from bovine_store import bovine_admin_store
    from bovine_store.utils.cli import create_tables

    await create_tables(db_url(db))
    async with bovine_admin_store(db_url(db), domain=f"http://127.0.0.1:{port}") as store:
        await store.register(name)
    return {"registered": name}


def serve(port: int, db: str) -> None:
    from bovine_herd import BovineHerd
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config
    from quart import Quart

    app = Quart(__name__)
    BovineHerd(app, db_url=db_url(db))
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    asyncio.run(hypercorn_serve(app, config))


async def as_actor(port: int, db: str, name: str) -> tuple[Any, dict[str, Any]]:
    from bovine import BovineActor
    from bovine_store import bovine_admin_store
    from bovine_store.models import BovineActor as Row

    async with bovine_admin_store(db_url(db), domain=f"http://127.0.0.1:{port}") as store:
        row = await Row.get(handle_name=name).prefetch_related("keypairs", "endpoints")
        stored = await store.actor_for_name(row.bovine_name)
        doc = stored.actor_object.build()
        key = next(k for k in row.keypairs if k.name == "serverKey")
    actor = BovineActor(
        actor_id=doc["id"], public_key_url=doc["publicKey"]["id"], secret=key.private_key
    )
    await actor.init()
    return actor, doc


async def stored(db: str, items: list[Any]) -> list[Any]:
    """What bovine stored for each inbox item (the collection lists ids)."""
    from bovine_store import bovine_admin_store
    from bovine_store.models import StoredJsonObject

    out: list[Any] = []
    async with bovine_admin_store(db_url(db)):
        for item in items:
            if isinstance(item, str):
                row = await StoredJsonObject.get_or_none(id=item)
                item = row.content if row is not None else {"id": item, "missing": True}
            out.append(item)
    return out


async def main() -> Any:
    cmd, port, db = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if cmd == "register":
        await register(port, db, sys.argv[4])
        actor, doc = await as_actor(port, db, sys.argv[4])
        await actor.session.close()
        return {
            "id": doc["id"],
            "inbox": doc["inbox"],
            "outbox": doc["outbox"],
            "key_id": doc["publicKey"]["id"],
        }
    actor, doc = await as_actor(port, db, sys.argv[4])
    try:
        if cmd == "post":
            response = await actor.post(doc["outbox"], json.loads(sys.argv[5]))
            return {"status": response.status, "location": response.headers.get("location")}
        if cmd == "inbox":
            items = await actor.get_ordered_collection(doc["inbox"], max_items=100)
            return {"items": await stored(db, items["items"])}
        if cmd == "whoami":
            return {"id": doc["id"], "inbox": doc["inbox"], "outbox": doc["outbox"]}
        if cmd == "fetch":
            return await actor.get(sys.argv[5])
    finally:
        await actor.session.close()
    raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
    else:
        print(json.dumps(asyncio.run(main())))
