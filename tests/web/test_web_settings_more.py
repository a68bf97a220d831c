"""Settings in the browser: the profile (through the same service as the API's
update_credentials), the authorized apps with revoke, and the export of one's clips with
their provenance intact."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import httpx
from factories import local_account, rendered_video
from PIL import Image
from webhelpers import DOMAIN, api_token, browser, form_csrf, logged_in

from fedisora.config import Settings
from fedisora.models import Account, OAuthAccessToken
from fedisora.services import posts


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 120, 200)).save(buf, format="PNG")
    return buf.getvalue()


async def test_profile_edits_go_through_the_one_service(web: httpx.ASGITransport) -> None:
    await local_account("alice")
    async with logged_in(web, "alice") as http:
        page = await http.get("/settings/profile")
        assert page.status_code == 200 and 'name="display_name"' in page.text
        csrf = form_csrf(page.text)
        r = await http.post(
            "/settings/profile",
            data={
                "csrf": csrf,
                "display_name": "Alice \u202eevil",
                "note": "I make clips",
                "locked": "on",
            },
            files={"avatar": ("me.png", _png(), "image/png")},
        )
        assert r.status_code == 200 and "Saved" in r.text, r.text
        alice = await Account.get(username="alice", domain=None)
        assert alice.display_name == "Alice evil"  # cleaned as the API cleans it
        assert alice.note == "I make clips" and alice.locked and not alice.discoverable
        assert alice.avatar_url and alice.avatar_url.startswith(f"https://{DOMAIN}/")
        assert 'alt="Your current profile picture"' in r.text
        # Refusals are shown in the page and change nothing.
        r = await http.post(
            "/settings/profile",
            data={"csrf": csrf, "display_name": "New name", "note": ""},
            files={"avatar": ("x.png", b"not an image at all", "image/png")},
        )
        assert r.status_code == 422 and 'role="alert"' in r.text
        r = await http.post(
            "/settings/profile", data={"csrf": csrf, "display_name": "x", "note": "n" * 501}
        )
        assert r.status_code == 422 and "longer than 500" in r.text
        r = await http.post("/settings/profile", data={"csrf": "forged", "display_name": "x"})
        assert r.status_code == 403
        alice = await Account.get(username="alice", domain=None)
        assert alice.display_name == "Alice evil" and alice.note == "I make clips"
    async with browser(web) as visitor:
        r = await visitor.get("/settings/profile")
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


async def test_authorized_apps_are_listed_and_revoked(web: httpx.ASGITransport) -> None:
    alice = await local_account("alice")
    await local_account("bob")
    api = httpx.AsyncClient(transport=web, base_url=f"https://{DOMAIN}")
    headers = await api_token(api, alice.username)  # (an app named "tests", read write)
    async with logged_in(web, "alice") as http:
        page = await http.get("/settings/apps")
        assert "tests" in page.text and "read, write" in page.text
        app_id = page.text.split('data-app-id="')[1].split('"')[0]
        # Bob cannot revoke Alice's app.
        async with logged_in(web, "bob") as bob:
            bob_page = await bob.get("/settings/apps")
            assert "No app can act for you." in bob_page.text
            r = await bob.post(
                f"/settings/apps/{app_id}/revoke", data={"csrf": form_csrf(bob_page.text)}
            )
            assert r.status_code == 404
        assert (
            await api.get("/api/v1/accounts/verify_credentials", headers=headers)
        ).status_code == 200
        r = await http.post(f"/settings/apps/{app_id}/revoke", data={"csrf": form_csrf(page.text)})
        assert r.status_code == 303
        assert (
            await api.get("/api/v1/accounts/verify_credentials", headers=headers)
        ).status_code == 401
        assert "No app can act for you." in (await http.get("/settings/apps")).text
        assert await OAuthAccessToken.filter(account_id=alice.pk, revoked_at=None).count() == 0
    await api.aclose()


async def test_export_holds_every_clip_byte_for_byte(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    alice = await local_account("alice")
    bob = await local_account("bob")
    mine = []
    for n in range(2):
        media = await rendered_video(alice)
        # Stand-ins for signed MP4 files (what matters is that they come out untouched).
        body = b"\x00\x00\x00\x18ftypmp42" + bytes([n]) * (300_000 + n)
        path = settings.media_root / str(media.file)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        media.sha256 = hashlib.sha256(body).hexdigest()
        await media.save()
        mine.append(await posts.post_clip(alice, media, caption=f"clip {n} #waves"))
    # A clip whose file is gone is listed without one.
    lost = await posts.post_clip(alice, await rendered_video(alice), caption="lost file")
    await posts.post_clip(bob, await rendered_video(bob), caption="not Alice's")
    async with logged_in(web, "alice") as http:
        assert "Download my clips" in (await http.get("/settings/export")).text
        r = await http.get("/settings/export.zip")
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        assert "attachment" in r.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert archive.testzip() is None
    index = json.loads(archive.read("clips.json"))
    captions = [c["caption"] for c in index["clips"]]
    assert captions == ["clip 0 #waves", "clip 1 #waves", "lost file"]
    assert index["clips"][2]["file"] is None and index["clips"][2]["uri"] == lost.uri
    for clip, entry in zip(mine, index["clips"][:2], strict=True):
        await clip.fetch_related("media")
        stored = (settings.media_root / clip.media.file).read_bytes()
        exported = archive.read(entry["file"])
        assert exported == stored  # the signed file, untouched
        assert entry["sha256"] == hashlib.sha256(stored).hexdigest() == clip.media.sha256
        assert entry["uri"] == clip.uri
    assert "c2patool" in archive.read("README.txt").decode()
    async with browser(web) as visitor:
        r = await visitor.get("/settings/export.zip")
        assert r.status_code == 303
