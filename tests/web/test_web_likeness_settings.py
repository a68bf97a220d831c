"""One's likeness in the browser (``/settings/likeness`` and its pages, web.likeness_settings):
registering it with the one-time code, its state and how it was verified, the policy, revoking
it after a confirmation, requests (incoming, outgoing, asked from a profile), grants, uses with
"Remove me from this clip" and the consent checks; every form through the service the API
calls, refused in words in the page, behind the CSRF token, and only on one's own rows."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from factories import local_account, rendered_video
from likenesses import face_png, faceless_png, verified_likeness
from webhelpers import form_csrf, logged_in, peer_account

from fedisora.config import Settings
from fedisora.models import (
    Account,
    Clip,
    ConsentCheck,
    Likeness,
    LikenessChallenge,
    LikenessGrant,
    LikenessRequest,
    LikenessState,
    LikenessUse,
    RenderJob,
    utcnow,
)
from fedisora.services import follows, posts
from fedisora.services import likeness as svc

L = "/settings/likeness"


def _stills(n: int) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [
        ("reference_images", (f"me{i}.png", face_png(120 + 10 * i, 120), "image/png"))
        for i in range(n)
    ]


def _sample(data: bytes | None = None) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("verification", ("code.png", data or face_png(300, 300), "image/png"))]


def _code(page: str) -> str:
    found = re.search(r'name="challenge" value="([^"]+)"', page)
    assert found is not None, page[:3000]
    return found.group(1)


def _alert(page: str) -> str:
    found = re.search(r'role="alert"[^>]*>(.*?)</p>', page, re.S)
    return found.group(1) if found else ""


async def test_register_with_the_code_and_see_each_state(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    ann = await local_account("ann")
    async with logged_in(web, "ann") as http:
        index = (await http.get("/settings")).text
        assert 'href="/settings/likeness"' in index
        r = await http.get(L)
        assert r.status_code == 200
        assert 'data-likeness-state="none"' in r.text
        assert 'name="challenge"' not in r.text  # no code until asked for one
        csrf = form_csrf(r.text)
        # A change without the form's token is refused and changes nothing.
        assert (await http.post(f"{L}/challenge", data={})).status_code == 403
        assert await LikenessChallenge.filter(account_id=ann.pk).count() == 0
        r = await http.post(f"{L}/challenge", data={"csrf": csrf})
        assert r.status_code == 303 and r.headers["location"].startswith(f"{L}?done=challenge")
        page = (await http.get(L)).text
        code = _code(page)
        assert f'<code class="challenge-code" id="challenge-code">{code}</code>' in page
        assert (await http.get(L)).text.count(code) >= 2  # a reload shows the same code
        assert await LikenessChallenge.filter(account_id=ann.pk).count() == 1
        # Without the token the upload is refused and nothing is stored.
        r = await http.post(
            f"{L}/register", data={"challenge": code}, files=[*_stills(2), *_sample()]
        )
        assert r.status_code == 403
        assert not await Likeness.exists(account_id=ann.pk)
        r = await http.post(
            f"{L}/register",
            data={"csrf": csrf, "challenge": code},
            files=[*_stills(2), *_sample()],
        )
        assert r.status_code == 303, r.text
        page = (await http.get(r.headers["location"])).text
        assert "Registered: your likeness waits for verification" in page
        assert 'data-likeness-state="pending"' in page
        assert "Waiting for verification by this instance." in page
        likeness = await Likeness.get(account_id=ann.pk)
        assert likeness.state == LikenessState.PENDING and len(likeness.reference_files) == 2
        # Rejected: the reason in words (escaped), and the form to register again.
        await svc.reject("ann", reason='<img src=x onerror="alert(1)"> the code is cut off')
        page = (await http.get(L)).text
        assert 'data-likeness-state="rejected"' in page
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; the code is cut off" in page
        assert "<img src=x" not in page
        assert "Register again" in page
        # Verified: how, and no registration form any more; the policy form instead.
        await svc.verify("ann", method="admin")
        page = (await http.get(L)).text
        assert 'data-likeness-state="verified"' in page
        assert "Verified by an admin of this instance on" in page
        assert 'action="/settings/likeness/register"' not in page
        assert 'action="/settings/likeness/policy"' in page
        for sub in ("requests", "grants", "uses", "checks", "revoke"):
            r = await http.get(f"{L}/{sub}")
            assert r.status_code == 200, (sub, r.text[:500])
    # Logged out: the pages ask to log in first.
    async with httpx.AsyncClient(transport=web, base_url="https://fedisora.test") as anon:
        r = await anon.get(L)
        assert r.status_code == 303 and r.headers["location"] == f"/login?next={L}"
