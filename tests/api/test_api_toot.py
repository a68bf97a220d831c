"""The unmodified ``toot`` command-line client drives a real running instance.

toot keeps its config under ``$XDG_CONFIG_HOME/toot``: each test points that at a temporary
directory. toot accepts an ``http://`` instance URL as given, so no TLS is needed on loopback.
It cannot attach a rendered video, so the clip it replies to is posted through the API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from instance import Instance, finished_render, running_instance

PASSWORD = "a long password 1"
TOOT = Path(sys.executable).with_name("toot")


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    with running_instance(tmp_path_factory.mktemp("toot")) as inst:
        yield inst


def toot(config: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEDISORA_", "XDG_"))}
    env.update(XDG_CONFIG_HOME=str(config), NO_COLOR="1", COLUMNS="120")
    done = subprocess.run(
        [str(TOOT), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"toot {args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def sign_up(http: httpx.Client, username: str) -> str:
    app = http.post(
        "/api/v1/apps",
        data={
            "client_name": "setup",
            "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
            "scopes": "read write follow",
        },
    ).json()
    app_token = http.post(
        "/oauth/token",
        data={
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "grant_type": "client_credentials",
            "scope": "read write follow",
        },
    ).json()["access_token"]
    r = http.post(
        "/api/v1/accounts",
        headers={"Authorization": f"Bearer {app_token}"},
        data={
            "username": username,
            "email": f"{username}@example.com",
            "password": PASSWORD,
            "agreement": "true",
        },
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_toot_end_to_end(instance: Instance, tmp_path: Path) -> None:
    config = tmp_path / "config"
    with httpx.Client(base_url=instance.url, timeout=30) as http:
        bob_token = sign_up(http, "bob")
        sign_up(http, "tooter")
        bob = {"Authorization": f"Bearer {bob_token}"}
        media = finished_render(instance, "bob")
        clip: dict[str, Any] = http.post(
            "/api/v1/statuses",
            headers=bob,
            data={"status": "a tide pool at dawn #sea", "media_ids[]": str(media)},
        ).json()

        out = toot(
            config,
            "login_cli",
            "--instance",
            instance.url,
            "--email",
            "tooter@example.com",
            "--password",
            PASSWORD,
        )
        assert "Successfully logged in" in out
        stored = json.loads((config / "toot" / "config.json").read_text())
        assert stored["active_user"] == f"tooter@{instance.url.removeprefix('http://')}"

        me = json.loads(toot(config, "whoami", "--json"))
        assert me["username"] == "tooter" and me["acct"] == "tooter"
        assert "@tooter" in toot(config, "whoami")

        assert "You are now following bob" in toot(config, "follow", "bob")
        home = toot(config, "timeline", "--once")
        assert "a tide pool at dawn" in home and "@bob" in home
        assert "a tide pool at dawn" in toot(config, "timeline", "--public", "--once")
        assert "a tide pool at dawn" in toot(config, "timeline", "--tag", "sea", "--once")

        reply = json.loads(
            toot(config, "post", "--json", "--reply-to", clip["id"], "@bob what a find")
        )
        assert reply["in_reply_to_id"] == clip["id"]
        context = http.get(f"/api/v1/statuses/{clip['id']}/context", headers=bob).json()
        assert [s["id"] for s in context["descendants"]] == [reply["id"]]

        faved = json.loads(toot(config, "favourite", "--json", clip["id"]))
        assert faved["id"] == clip["id"] and faved["favourited"] is True
        likers = http.get(f"/api/v1/statuses/{clip['id']}/favourited_by", headers=bob).json()
        assert [a["acct"] for a in likers] == ["tooter"]

        thread = toot(config, "thread", clip["id"])
        assert "a tide pool at dawn" in thread and "what a find" in thread

        # bob follows back and mentions tooter: both show in toot's notifications
        tooter_id = me["id"]
        assert http.post(f"/api/v1/accounts/{tooter_id}/follow", headers=bob).status_code == 200
        r = http.post(
            "/api/v1/statuses",
            headers=bob,
            data={"status": "@tooter thanks!", "in_reply_to_id": reply["id"]},
        )
        assert r.status_code == 200, r.text
        notes = json.loads(toot(config, "notifications", "--json"))
        assert [n["type"] for n in notes[:2]] == ["mention", "follow"]
        assert notes[0]["status"]["id"] == r.json()["id"]
        text = toot(config, "notifications")
        assert "bob" in text and "thanks!" in text

        found = json.loads(toot(config, "search", "--json", "bob"))
        assert [a["acct"] for a in found["accounts"]] == ["bob"]
        assert [
            t["name"] for t in json.loads(toot(config, "search", "--json", "#se"))["hashtags"]
        ] == ["sea"]
