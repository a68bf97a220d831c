"""A likeness registered through the API is checked by the automatic check of the admin's
choosing (FEDISORA_LIKENESS_CHECK) as durable work of the running instance, after the
request answered."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from pathlib import Path

import httpx
from apihelpers import login
from factories import local_account
from likenesses import face_png

from fedisora.app import create_app
from fedisora.config import load_settings


async def test_a_registration_through_the_api_is_checked_by_the_running_instance(
    db: str, tmp_path: Path
) -> None:
    """The request answers at once (pending); the instance's in-process runner, woken by the
    registration, runs the program and the likeness turns verified."""
    exe = tmp_path / "check-likeness"
    exe.write_text(
        f"#!{sys.executable}\nimport sys, time\n"
        f"open({str(tmp_path / 'ran')!r}, 'a').write(sys.argv[2] + '\\n')\n"
        "time.sleep(1)\nprint('looks like the same person')\n"
    )
    exe.chmod(0o755)
    settings = load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": str(tmp_path / "data"),
            "FEDISORA_SECRET_KEY": "k" * 40,
            "FEDISORA_CONFIG": str(tmp_path / "none.env"),
            "FEDISORA_LIKENESS_CHECK": f"command:{exe}",
        }
    )
    settings = replace(settings, database_url=db)
    app = create_app(settings, run_work=True, manage_db=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.9", 1234))
        async with httpx.AsyncClient(
            transport=transport, base_url="https://fedisora.test"
        ) as client:
            alice = await login(client, await local_account("alice"))
            r = await client.get("/api/fedisora/v1/likeness/challenge", headers=alice.headers)
            code = r.json()["challenge"]
            parts = [
                ("reference_images[]", ("face.png", face_png(), "image/png")),
                ("verification", ("sample.png", face_png(300, 300), "image/png")),
            ]
            r = await client.post(
                "/api/fedisora/v1/likeness",
                data={"challenge": code},
                files=parts,
                headers=alice.headers,
            )
            assert r.status_code == 201, r.text
            assert r.json()["state"] == "pending"  # the check is not run in the request
            for _ in range(200):
                r = await client.get("/api/fedisora/v1/likeness", headers=alice.headers)
                if r.json()["state"] != "pending":
                    break
                await asyncio.sleep(0.1)
            body = r.json()
            assert body["state"] == "verified", body
            assert body["verification"]["method"].startswith("check command:")
            assert body["verification"]["reason"] == "looks like the same person"
    assert (tmp_path / "ran").read_text() == f"{code}\n"  # once, with the challenge code
