"""Likenesses and the consent audit in the admin pages: the list (waiting ones first), one
likeness with its sample, stills and challenge code, the Verify and Reject buttons (the
service the CLI uses, behind the CSRF token), the private files only an admin's session gets,
and the consent checks, newest first, paged and filterable."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from factories import local_account, remote_account
from likenesses import face_png, verified_likeness
from PIL import Image
from webhelpers import DOMAIN, browser, form_csrf, logged_in

from fedisora.config import Settings
from fedisora.errors import Forbidden
from fedisora.models import Account, ConsentCheck, Likeness, LikenessState
from fedisora.services import likeness as svc
from web import likenesses as admin_likenesses


async def _pending(account: Account, settings: Settings, *, stills: int = 2) -> Likeness:
    """*account*'s likeness as its owner registers it (through the service): pending."""
    challenge = await svc.new_challenge(account)
    return await svc.register(
        account,
        references=[face_png(120 + 10 * i, 120) for i in range(stills)],
        verification=face_png(300, 300, color=(10, 200, 30)),
        challenge=challenge.code,
        settings=settings,
    )


async def _raw_get(
    web: httpx.ASGITransport, raw_path: str, http: httpx.AsyncClient
) -> tuple[int, bytes]:
    """GET *raw_path* exactly as sent (httpx would resolve ``..`` segments first; a server
    such as uvicorn hands the app the path undecoded in ``raw_path`` and percent-decoded in
    ``path``), with the cookies of the browser *http*."""
    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", DOMAIN.encode()),
            (b"accept", b"text/html"),
            (b"cookie", cookie.encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": (DOMAIN, 443),
    }
    sent: list[MutableMapping[str, Any]] = []
    requested, done = False, asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()  # then the browser goes away
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await web.app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


def _usernames(page: str, section: str) -> list[str]:
    """The accounts listed in the table after the heading *section* on *page*."""
    start = page.index(section)
    end = page.find("</table>", start)
    return re.findall(r"<td>@(\w+)</td>", page[start:end])


async def test_the_list_puts_waiting_likenesses_first(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    await local_account("boss", admin=True)
    ann, bob, cat = [await local_account(n) for n in ("ann", "bob", "cat")]
    await verified_likeness(ann, settings)
    await _pending(bob, settings)
    await _pending(cat, settings)
    await svc.reject("cat", reason="the code is not visible")
    dan = await local_account("dan")
    await _pending(dan, settings)
    async with logged_in(web, "boss") as admin:
        r = await admin.get("/admin/likenesses")
        assert r.status_code == 200
        page = r.text
        assert _usernames(page, "Waiting for verification (2)") == ["bob", "dan"]
        assert _usernames(page, "Decided") == ["cat", "ann"]
        assert "the code is not visible" in page
        # One state, a page at a time.
        only = (await admin.get("/admin/likenesses", params={"state": "rejected"})).text
        assert re.findall(r"<td>@(\w+)</td>", only) == ["cat"]
        assert (await admin.get("/admin/likenesses?state=bogus")).status_code == 400
        assert (await admin.get("/admin/likenesses?state=pending&after=x")).status_code == 400
        # The overview links here, with the number waiting.
        overview = (await admin.get("/admin")).text
        assert 'href="/admin/likenesses">2 likenesses waiting for verification' in overview
        assert 'href="/admin/consent-checks"' in overview


async def test_the_waiting_list_pages(
    web: httpx.ASGITransport, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await local_account("boss", admin=True)
    for name in ("ann", "bob", "cat"):
        await _pending(await local_account(name), settings, stills=1)
    monkeypatch.setattr(admin_likenesses, "ADMIN_PAGE", 2)
    async with logged_in(web, "boss") as admin:
        first = (await admin.get("/admin/likenesses")).text
        assert _usernames(first, "Waiting for verification (3)") == ["ann", "bob"]
        assert 'href="/admin/likenesses?state=pending">All waiting' in first
        queue = (await admin.get("/admin/likenesses?state=pending")).text
        assert re.findall(r"<td>@(\w+)</td>", queue) == ["ann", "bob"]
        found = re.search(
            r'rel="next" href="/admin/likenesses\?state=pending&amp;after=(\d+)"', queue
        )
        assert found is not None
        rest = await admin.get("/admin/likenesses", params={"state": "pending", "after": found[1]})
        assert re.findall(r"<td>@(\w+)</td>", rest.text) == ["cat"]
        assert 'rel="next"' not in rest.text


async def test_an_admin_verifies_with_the_sample_and_the_code_in_view(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    boss = await local_account("boss", admin=True)
    bob = await local_account("bob")
    likeness = await _pending(bob, settings)
    async with logged_in(web, "boss") as admin:
        r = await admin.get(f"/admin/likenesses/{likeness.pk}")
        assert r.status_code == 200
        page = r.text
        assert likeness.challenge_code and likeness.challenge_code in page
        sample = f"/admin/likenesses/{likeness.pk}/files/verification"
        assert f'<img class="likeness-sample" src="{sample}"' in page
        for i in range(2):
            assert f'src="/admin/likenesses/{likeness.pk}/files/reference-{i}"' in page
        assert "/media/" not in page  # nothing of it under the public media root
        # Each file the page shows is served, to the admin, never cached.
        for name in ("verification", "reference-0", "reference-1"):
            f = await admin.get(f"/admin/likenesses/{likeness.pk}/files/{name}")
            assert f.status_code == 200, name
            assert f.headers["content-type"] == "image/png"
            assert f.headers["cache-control"] == "private, no-store"
            assert f.headers["x-content-type-options"] == "nosniff"
            with Image.open(io.BytesIO(f.content)) as image:
                side = svc.REFERENCE_SIDE
                assert image.size == ((300, 300) if name == "verification" else (side, side))
        # Verify: a POST with the form's CSRF token; without it, nothing changes.
        refused = await admin.post(f"/admin/likenesses/{likeness.pk}/verify", data={})
        assert refused.status_code == 403
        assert (await Likeness.get(pk=likeness.pk)).state == LikenessState.PENDING
        done = await admin.post(
            f"/admin/likenesses/{likeness.pk}/verify", data={"csrf": form_csrf(page)}
        )
        assert done.status_code == 303
        assert done.headers["location"] == f"/admin/likenesses/{likeness.pk}"
        after = await Likeness.get(pk=likeness.pk)
        assert after.state == LikenessState.VERIFIED
        assert after.verified_by_id == boss.pk and after.verification_method == "admin"
        shown = (await admin.get(f"/admin/likenesses/{likeness.pk}")).text
        assert "admin by @boss" in shown


async def test_an_admin_rejects_with_a_reason(web: httpx.ASGITransport, settings: Settings) -> None:
    boss = await local_account("boss", admin=True)
    bob = await local_account("bob")
    likeness = await _pending(bob, settings)
    url = f"/admin/likenesses/{likeness.pk}"
    async with logged_in(web, "boss") as admin:
        csrf = form_csrf((await admin.get(url)).text)
        empty = await admin.post(f"{url}/reject", data={"csrf": csrf, "reason": "  "})
        assert empty.status_code == 422
        assert "a reason is required" in empty.text
        assert (await Likeness.get(pk=likeness.pk)).state == LikenessState.PENDING
        reason = '<script>alert("x")</script> the code is cut off'
        done = await admin.post(f"{url}/reject", data={"csrf": csrf, "reason": reason})
        assert done.status_code == 303
        after = await Likeness.get(pk=likeness.pk)
        assert after.state == LikenessState.REJECTED and after.reason == reason
        assert after.verified_by_id == boss.pk and after.verification_method == "admin"
        page = (await admin.get(url)).text
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; the code is cut off" in page
        # A revoked likeness has nothing left to decide (and its files are gone).
        await svc.revoke_likeness(bob, settings=settings)
        revoked = (await admin.get(url)).text
        assert 'action="/admin/likenesses/' not in revoked
        again = await admin.post(f"{url}/verify", data={"csrf": csrf})
        assert again.status_code == 409
        assert (await Likeness.get(pk=likeness.pk)).state == LikenessState.REVOKED
        gone = await admin.get(f"{url}/files/reference-0")
        assert gone.status_code == 404


async def test_nobody_but_an_admin_reaches_the_pages_or_the_files(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    await local_account("boss", admin=True)
    bob = await local_account("bob")
    likeness = await _pending(bob, settings)
    base = f"/admin/likenesses/{likeness.pk}"
    files = [f"{base}/files/{n}" for n in ("verification", "reference-0", "reference-1")]
    async with browser(web) as anon:
        for path in ("/admin/likenesses", base, "/admin/consent-checks"):
            r = await anon.get(path)
            assert r.status_code == 303 and r.headers["location"] == f"/login?next={path}"
        for path in files:
            r = await anon.get(path)
            assert r.status_code == 401 and b"\x89PNG" not in r.content
        for action in ("verify", "reject"):
            r = await anon.post(f"{base}/{action}", data={"reason": "x"})
            assert r.status_code == 401
    async with logged_in(web, "bob") as owner:  # not even the likeness's own owner
        for path in ("/admin/likenesses", base, "/admin/consent-checks", *files):
            r = await owner.get(path)
            assert r.status_code == 403 and b"\x89PNG" not in r.content, path
        csrf = form_csrf((await owner.get("/settings")).text)
        r = await owner.post(f"{base}/verify", data={"csrf": csrf})
        assert r.status_code == 403
    assert (await Likeness.get(pk=likeness.pk)).state == LikenessState.PENDING


async def test_the_file_route_refuses_path_tricks(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    await local_account("boss", admin=True)
    bob = await local_account("bob")
    likeness = await _pending(bob, settings)
    base = f"/admin/likenesses/{likeness.pk}/files"
    secret = settings.data_dir / "secret.txt"
    secret.write_text("not for anyone")
    async with logged_in(web, "boss") as admin:
        for name in (
            "../../etc/passwd",
            "..%2F..%2Fetc%2Fpasswd",
            "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
            "..",
            "reference-0/../../../../etc/passwd",
            "reference-2",
            "reference-9",
            "reference--1",
            "reference-00",
            "verification.png",
            "reference-0.png",
            "%00verification",
        ):
            status, body = await _raw_get(web, f"{base}/{name}", admin)
            assert status in (404, 400), (name, status)
            assert b"root:" not in body and b"\x89PNG" not in body
        status, body = await _raw_get(web, f"{base}/reference-0", admin)  # the helper works
        assert status == 200 and body.startswith(b"\x89PNG")
        # A row naming a file outside the private directory is refused as well.
        await Likeness.filter(pk=likeness.pk).update(
            reference_files=["../../secret.txt", "/etc/passwd"],
            verification_file="../../../secret.txt",
        )
        for name in ("reference-0", "reference-1", "verification"):
            r = await admin.get(f"{base}/{name}")
            assert r.status_code == 404 and b"not for anyone" not in r.content
        # Another instance's likeness (no files here) has no page.
        remote = await remote_account("eve", "peer.example")
        other = await Likeness.create(account_id=remote.pk, uri="https://peer.example/l/1")
        assert (await admin.get(f"/admin/likenesses/{other.pk}")).status_code == 404
        assert (await admin.get("/admin/likenesses/nope")).status_code == 404
        assert (await admin.get("/admin/likenesses/99999999999999999999")).status_code == 404


async def test_the_consent_audit_newest_first_paged_and_filtered(
    web: httpx.ASGITransport, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await local_account("boss", admin=True)
    ann = await local_account("ann")
    bob = await local_account("bob")
    cat = await local_account("cat")
    await verified_likeness(ann, settings, audience="everyone")
    await _pending(cat, settings)
    await svc.check_consent(bob, ann, publish=False)  # allowed
    await svc.check_consent(bob, cat, publish=True)  # refused: not verified
    await svc.check_consent(ann, cat, publish=False, stage="render")  # refused
    assert await ConsentCheck.all().count() == 3
    monkeypatch.setattr(admin_likenesses, "AUDIT_PAGE", 2)
    async with logged_in(web, "boss") as admin:
        page = (await admin.get("/admin/consent-checks")).text
        rows = re.findall(r"<tr>\s*<td>[^<]*</td>\s*<td>@(\w+)</td>\s*<td>@(\w+)</td>", page)
        assert rows == [("ann", "cat"), ("bob", "cat")]
        assert "render (draft)" in page and "request (publish)" in page
        assert "<td>refused</td>" in page
        found = re.search(r'rel="next" href="(/admin/consent-checks\?[^"]+)"', page)
        assert found is not None
        older = (await admin.get(found[1].replace("&amp;", "&"))).text
        rows = re.findall(r"<tr>\s*<td>[^<]*</td>\s*<td>@(\w+)</td>\s*<td>@(\w+)</td>", older)
        assert rows == [("bob", "ann")] and "<td>allowed</td>" in older
        # By account: the checks it made and those of its likeness.
        mine = (await admin.get("/admin/consent-checks", params={"account": "@ann"})).text
        rows = re.findall(r"<tr>\s*<td>[^<]*</td>\s*<td>@(\w+)</td>\s*<td>@(\w+)</td>", mine)
        assert rows == [("ann", "cat"), ("bob", "ann")]
        # By owner: the checks of that account's likeness only.
        owned = (await admin.get("/admin/consent-checks", params={"owner": "ann"})).text
        rows = re.findall(r"<tr>\s*<td>[^<]*</td>\s*<td>@(\w+)</td>\s*<td>@(\w+)</td>", owned)
        assert rows == [("bob", "ann")]
        owned = (await admin.get("/admin/consent-checks", params={"owner": "cat"})).text
        rows = re.findall(r"<tr>\s*<td>[^<]*</td>\s*<td>@(\w+)</td>\s*<td>@(\w+)</td>", owned)
        assert rows == [("ann", "cat"), ("bob", "cat")]
        refused = await admin.get(
            "/admin/consent-checks", params={"owner": "cat", "result": "allowed"}
        )
        assert "No consent check matches" in refused.text
        assert (await admin.get("/admin/consent-checks?owner=nobody")).status_code == 404
        full = await admin.get("/admin/consent-checks", params={"account": "bob@fedisora.test"})
        rows = re.findall(r"<tr>\s*<td>[^<]*</td>\s*<td>@(\w+)</td>\s*<td>@(\w+)</td>", full.text)
        assert rows == [("bob", "cat"), ("bob", "ann")]
        allowed = await admin.get("/admin/consent-checks", params={"result": "allowed"})
        assert "<td>refused</td>" not in allowed.text and "<td>allowed</td>" in allowed.text
        # Bad input is a clear 4xx.
        assert (await admin.get("/admin/consent-checks?account=nobody")).status_code == 404
        assert (await admin.get("/admin/consent-checks?result=maybe")).status_code == 400
        assert (await admin.get("/admin/consent-checks?before=-1")).status_code == 400
        # The likeness's page shows its latest checks and links to the rest.
        likeness = await Likeness.get(account_id=cat.pk)
        detail = (await admin.get(f"/admin/likenesses/{likeness.pk}")).text
        assert 'href="/admin/consent-checks?account=cat"' in detail
        assert 'href="/admin/consent-checks?owner=cat"' in detail
        latest = await ConsentCheck.filter(owner_id=cat.pk).order_by("-id").first()
        assert latest is not None and latest.reason and not latest.allowed
        assert f"<td>{latest.reason}</td>" in detail


async def test_a_video_sample_is_shown_as_a_video(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    await local_account("boss", admin=True)
    bob = await local_account("bob")
    challenge = await svc.new_challenge(bob)
    mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64
    likeness = await svc.register(
        bob,
        references=[face_png()],
        verification=mp4,
        challenge=challenge.code,
        settings=settings,
    )
    async with logged_in(web, "boss") as admin:
        r = await admin.get(f"/admin/likenesses/{likeness.pk}")
        assert "script-src 'self'" in r.headers["content-security-policy"]
        src = f"/admin/likenesses/{likeness.pk}/files/verification"
        assert f'<video controls preload="metadata" class="likeness-sample" src="{src}">' in r.text
        f = await admin.get(src)
        assert f.status_code == 200 and f.content == mp4
        assert f.headers["content-type"] == "video/mp4"
        assert f.headers["cache-control"] == "private, no-store"


async def test_the_service_reads_the_audit_for_owners_and_admins(
    db: str, settings: Settings
) -> None:
    boss = await local_account("boss", admin=True)
    ann, bob = await local_account("ann"), await local_account("bob")
    await verified_likeness(ann, settings, audience="everyone")
    await verified_likeness(bob, settings)
    await svc.check_consent(bob, ann, publish=False)
    await svc.check_consent(ann, bob, publish=False)
    mine = await svc.consent_checks(ann)
    assert [(c.requester_id, c.owner_id) for c in mine] == [(bob.pk, ann.pk)]
    assert [c.owner_id for c in await svc.consent_checks(ann, owner=ann)] == [ann.pk]
    with pytest.raises(Forbidden):
        await svc.consent_checks(ann, owner=bob)
    with pytest.raises(Forbidden):
        await svc.consent_checks(ann, involving=bob)
    every = await svc.consent_checks(boss, admin=True)
    assert [c.owner_id for c in every] == [bob.pk, ann.pk]
    assert [c.owner_id for c in await svc.consent_checks(boss, admin=True, owner=bob)] == [bob.pk]
    involving = await svc.consent_checks(boss, admin=True, involving=bob)
    assert len(involving) == 2
    assert await svc.consent_checks(boss, admin=True, allowed=True, owner=bob) == []
    older = await svc.consent_checks(boss, admin=True, max_id=every[0].pk, limit=10_000)
    assert [c.pk for c in older] == [every[1].pk]


async def test_how_each_likeness_was_verified_is_shown(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    """An automatic check's verdict (FEDISORA_LIKENESS_CHECK) shows as such in the list and
    on the likeness's page, as does one it left for an admin."""
    from fedisora.services.likeness_check import Verdict, _record

    await local_account("boss", admin=True)
    checked = await _pending(await local_account("ann"), settings)
    waiting = await _pending(await local_account("bob"), settings)
    spec = "command:/usr/local/bin/faces"  # how the chore records a program's verdicts
    assert await _record(checked, spec, Verdict("verified", "the code is visible")) == "verified"
    assert await _record(waiting, spec, Verdict("undecided", "exit status 3")) == "undecided"
    async with logged_in(web, "boss") as admin:
        page = (await admin.get("/admin/likenesses")).text
        assert "check command:/usr/local/bin/faces (automatic)" not in page  # list: no suffix
        assert "check command:/usr/local/bin/faces, " in page
        assert "check command:/usr/local/bin/faces: undecided: waiting for an admin" in page
        one = (await admin.get(f"/admin/likenesses/{checked.pk}")).text
        assert "check command:/usr/local/bin/faces (automatic), " in one
        assert "the code is visible" in one
        other = (await admin.get(f"/admin/likenesses/{waiting.pk}")).text
        assert "likeness-undecided" in other and "waiting for an admin" in other
