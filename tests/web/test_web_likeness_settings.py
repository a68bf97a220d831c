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
        assert "Pending: waiting for verification by this instance." in page
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
        assert (await anon.post(f"{L}/policy", data={"audience": "everyone"})).status_code == 401
        r = await anon.post("/@ann/cameo", data={})
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/@ann"
    assert (await Likeness.get(account_id=ann.pk)).audience == "nobody"


async def test_registration_refusals_are_words_in_the_page(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    ann = await local_account("ann")
    async with logged_in(web, "ann") as http:
        csrf = form_csrf((await http.get(L)).text)
        await http.post(f"{L}/challenge", data={"csrf": csrf})
        code = _code((await http.get(L)).text)

        async def send(files: list, challenge: str = code) -> httpx.Response:
            return await http.post(
                f"{L}/register", data={"csrf": csrf, "challenge": challenge}, files=files
            )

        cases = [
            (_sample(), "send 1 to 5 stills of your face, not 0"),
            ([*_stills(6), *_sample()], "send 1 to 5 stills of your face, not 6"),
            (
                [("reference_images", ("me.png", faceless_png(), "image/png")), *_sample()],
                "no face found in reference image 1",
            ),
            (
                [("reference_images", ("me.png", b"GIF89a no image", "image/png")), *_sample()],
                "reference image 1 is not a readable image",
            ),
            ([*_stills(1)], "verification sample is missing or empty"),
            (
                [*_stills(1), *_sample(b"just some text, no picture")],
                "verification must be a JPEG, PNG or WebP still or an MP4 video",
            ),
        ]
        for files, words in cases:
            r = await send(files)
            assert r.status_code == 422, (words, r.status_code)
            assert words.lower() in _alert(r.text).lower(), (words, _alert(r.text))
            assert _code(r.text) == code  # the code is kept for the next try
            assert 'aria-invalid="true"' in r.text
        # More parts than a registration can hold: told in the page too.
        r = await send([*_stills(12), *_sample()])
        assert r.status_code == 400 and "Too many files" in _alert(r.text)
        # An unknown, then an expired code.
        r = await send([*_stills(1), *_sample()], challenge="0000-0000-0000")
        assert r.status_code == 422 and "unknown code" in _alert(r.text)
        await LikenessChallenge.filter(code=code).update(expires_at=utcnow() - timedelta(1))
        r = await send([*_stills(1), *_sample()])
        assert r.status_code == 422 and "this code expired; get a new one" in _alert(r.text)
        assert 'name="challenge"' not in r.text  # no usable code is left: ask for a new one
        assert "Get my one-time code" in r.text
        assert not await Likeness.exists(account_id=ann.pk)
        # A verified likeness is not replaced: revoke it first.
        await verified_likeness(ann, settings)
        await http.post(f"{L}/challenge", data={"csrf": csrf})
        r = await send([*_stills(1), *_sample()], challenge=(await svc.open_challenge(ann)).code)
        assert r.status_code == 409 and "revoke it" in _alert(r.text)


async def test_the_policy_form_saves_and_refuses_in_words(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    ann = await local_account("ann")
    await verified_likeness(ann, settings)
    async with logged_in(web, "ann") as http:
        page = (await http.get(L)).text
        csrf = form_csrf(page)
        assert 'name="audience" value="nobody" checked' in page
        form = {
            "csrf": csrf,
            "audience": "approved",
            "approval_required": "on",
            "restrictions": "never in ads </textarea><script>alert(1)</script>",
            "default_expires_in": "604800",
        }
        assert (await http.post(f"{L}/policy", data={**form, "csrf": ""})).status_code == 403
        r = await http.post(f"{L}/policy", data=form)
        assert r.status_code == 303 and r.headers["location"] == f"{L}?done=policy#policy"
        likeness = await Likeness.get(account_id=ann.pk)
        assert likeness.audience == "approved" and likeness.approval_required
        assert not likeness.drafts_only and likeness.default_expires_in == 604800
        assert likeness.restrictions.startswith("never in ads </textarea>")
        page = (await http.get(f"{L}?done=policy")).text
        assert "Saved: who may use your likeness" in page
        assert 'name="audience" value="approved" checked' in page
        assert '<option value="604800" selected>1 week</option>' in page
        assert "never in ads &lt;/textarea&gt;&lt;script&gt;" in page
        assert "<script>alert(1)" not in page
        # Refusals: the message in the page, the values as entered, nothing changed.
        for changes, status, words in (
            ({"audience": "friends"}, 422, "audience must be one of nobody, me, approved"),
            ({"restrictions": "x" * 1001}, 422, "restrictions: at most 1000 characters"),
            ({"default_expires_in": "5"}, 422, "default_expires_in must be between 60"),
            ({"default_expires_in": "soon"}, 422, "one of the lifetimes offered"),
        ):
            r = await http.post(f"{L}/policy", data={**form, "drafts_only": "on", **changes})
            assert r.status_code == status, (changes, r.status_code)
            assert words.lower() in _alert(r.text).lower(), (changes, _alert(r.text))
            assert 'name="drafts_only" checked' in r.text  # kept as entered
        assert not (await Likeness.get(account_id=ann.pk)).drafts_only
        # "Never" clears the expiry.
        r = await http.post(f"{L}/policy", data={**form, "default_expires_in": ""})
        assert r.status_code == 303
        assert (await Likeness.get(account_id=ann.pk)).default_expires_in is None


async def test_revoking_asks_first_and_can_take_the_clips_down(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    await verified_likeness(ann, settings, audience="approved")
    grant = await svc.grant(ann, bob)
    async with logged_in(web, "ann") as http:
        page = (await http.get(L)).text
        assert 'href="/settings/likeness/revoke"' in page
        r = await http.get(f"{L}/revoke")
        assert r.status_code == 200 and "the 1 permission you gave ends" in r.text
        csrf = form_csrf(r.text)
        assert (await http.post(f"{L}/revoke", data={"take_down": "no"})).status_code == 403
        r = await http.post(f"{L}/revoke", data={"csrf": csrf})
        assert r.status_code == 422 and "Choose whether the clips" in _alert(r.text)
        assert (await Likeness.get(account_id=ann.pk)).state == LikenessState.VERIFIED
        r = await http.post(f"{L}/revoke", data={"csrf": csrf, "take_down": "yes"})
        assert r.status_code == 303 and r.headers["location"] == f"{L}?done=revoked"
        likeness = await Likeness.get(account_id=ann.pk)
        assert likeness.state == LikenessState.REVOKED and likeness.reference_files == []
        revoked = await LikenessGrant.get(pk=grant.pk)
        assert revoked.revoked_at is not None and revoked.take_down
        page = (await http.get(f"{L}?done=revoked")).text
        assert 'data-likeness-state="revoked"' in page and "Register again" in page
        assert (await http.get(f"{L}/revoke")).status_code == 404


def _cameo(page: str) -> str:
    """The Cameo part of a profile card ('' when the profile shows none)."""
    found = re.search(r'<div class="cameo-ask" id="cameo">.*?</div>', page, re.S)
    return found.group(0) if found else ""


async def test_request_cameo_from_a_profile_and_answer_it(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    await local_account("carl")
    await verified_likeness(
        ann, settings, audience="approved", restrictions='no ads <b>"ever"</b>\nno politics'
    )
    async with logged_in(web, "bob") as http:
        page = (await http.get("/@ann")).text
        cameo = _cameo(page)
        assert "Request cameo" in cameo and 'action="/@ann/cameo"' in cameo
        assert "no ads &lt;b&gt;&#34;ever&#34;&lt;/b&gt;\nno politics" in cameo
        assert 'name="accept_restrictions" required' in cameo
        csrf = form_csrf(page)
        assert (await http.post("/@ann/cameo", data={})).status_code == 403
        # The restrictions not ticked: refused in words, nothing stored.
        r = await http.post("/@ann/cameo", data={"csrf": csrf})
        assert r.status_code == 422
        assert "@ann asks you to accept these restrictions first" in _alert(r.text)
        assert await LikenessRequest.all().count() == 0
        r = await http.post("/@ann/cameo", data={"csrf": csrf, "accept_restrictions": "on"})
        assert r.status_code == 200
        assert "Asked: waiting for @ann to answer." in _cameo(r.text)
        assert "Your request waits for @ann's answer" in _cameo((await http.get("/@ann")).text)
        outgoing = (await http.get(f"{L}/requests")).text
        assert "waiting for their answer" in outgoing
    request = await LikenessRequest.get(requester_id=bob.pk)
    assert request.state == "pending"
    # Nobody but the owner answers it.
    async with logged_in(web, "carl") as http:
        csrf = form_csrf((await http.get(f"{L}/requests")).text)
        for answer in ("approve", "reject"):
            r = await http.post(f"{L}/requests/{request.pk}/{answer}", data={"csrf": csrf})
            assert r.status_code == 404, answer
        assert (await http.post(f"{L}/requests/x/approve", data={"csrf": csrf})).status_code == 404
    assert (await LikenessRequest.get(pk=request.pk)).state == "pending"
    async with logged_in(web, "ann") as http:
        assert f"{L}/requests" in (await http.get(L)).text  # "1 request waiting"
        page = (await http.get(f"{L}/requests")).text
        item = re.search(rf'<li data-request-id="{request.pk}".*?</li>', page, re.S)
        assert item is not None and "@bob" in item.group(0)
        assert "They accepted your restrictions." in item.group(0)
        csrf = form_csrf(page)
        url = f"{L}/requests/{request.pk}/approve"
        assert (await http.post(url, data={"expires": "86400"})).status_code == 403
        r = await http.post(url, data={"csrf": csrf, "expires": "86400"})
        assert r.status_code == 303 and r.headers["location"] == f"{L}/requests?done=approved"
        grant = await LikenessGrant.get(owner_id=ann.pk, grantee_id=bob.pk)
        assert grant.expires_at is not None
        assert timedelta(hours=23) < grant.expires_at - utcnow() <= timedelta(days=1)
        r = await http.post(f"{L}/requests/{request.pk}/reject", data={"csrf": csrf})
        assert r.status_code == 409 and "already approved" in _alert(r.text)
    async with logged_in(web, "bob") as http:
        cameo = _cameo((await http.get("/@ann")).text)
        assert "You may put @ann in your clips" in cameo and "<form" not in cameo
        held = (await http.get(f"{L}/grants")).text
        assert f'<li data-grant-id="{grant.pk}">' in held and "@ann" in held


async def test_the_answer_in_words_granted_at_once_or_refused(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    ann = await local_account("ann")
    dan = await local_account("dan")
    await local_account("bob")
    await verified_likeness(ann, settings, audience="everyone")
    await verified_likeness(dan, settings, audience="me")
    async with logged_in(web, "bob") as http:
        page = (await http.get("/@ann")).text
        r = await http.post("/@ann/cameo", data={"csrf": form_csrf(page)})
        assert r.status_code == 200
        assert "Granted at once: @ann&#39;s settings let you use their likeness" in _cameo(r.text)
        assert "You may put @ann in your clips" in _cameo(r.text)
        # Someone who lets nobody else use theirs: no action on the profile; asked anyway
        # (by name on the requests page), refused with the reason.
        assert _cameo((await http.get("/@dan")).text) == ""
        csrf = form_csrf(page)
        r = await http.post(f"{L}/requests", data={"csrf": csrf, "acct": "@dan"})
        assert r.status_code == 403 and "@dan lets nobody else use their likeness" in _alert(r.text)
        assert 'value="@dan"' in r.text  # kept as entered
        r = await http.post(f"{L}/requests", data={"csrf": csrf, "acct": "nobody.here"})
        assert r.status_code == 404
        assert 'value="nobody.here"' in r.text
        r = await http.post(f"{L}/requests", data={"csrf": csrf, "acct": " "})
        assert r.status_code == 422 and "Name the person" in _alert(r.text)
    # A blocked requester is refused too; the owner sees their own profile without it.
    await follows.block(ann, await Account.get(username="bob"))
    async with logged_in(web, "bob") as http:
        page = (await http.get("/@ann")).text
        r = await http.post("/@ann/cameo", data={"csrf": form_csrf(page)})
        assert r.status_code == 403
        assert "@ann does not allow you to use their likeness" in _alert(r.text)
    async with logged_in(web, "ann") as http:
        assert _cameo((await http.get("/@ann")).text) == ""


async def test_asking_and_granting_a_remote_account(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    ann = await local_account("ann")
    await verified_likeness(ann, settings, audience="approved")
    rita = await peer_account("rita")
    async with logged_in(web, "ann") as http:
        csrf = form_csrf((await http.get(f"{L}/requests")).text)
        r = await http.post(
            f"{L}/requests",
            data={"csrf": csrf, "acct": "rita@peer.example", "accept_restrictions": "on"},
        )
        assert r.status_code == 200, _alert(r.text)
        assert "waiting for @rita@peer.example&#39;s server to answer" in r.text
        row = await LikenessRequest.get(requester_id=ann.pk, owner_id=rita.pk)
        assert row.state == "pending" and row.uri is not None
        r = await http.post(f"{L}/grants", data={"csrf": csrf, "acct": "@rita@peer.example"})
        assert r.status_code == 303 and r.headers["location"] == f"{L}/grants?done=granted"
        page = (await http.get(f"{L}/grants")).text
        grant = await LikenessGrant.get(owner_id=ann.pk, grantee_id=rita.pk)
        item = re.search(rf'<li data-grant-id="{grant.pk}".*?</li>', page, re.S)
        assert item is not None and "@rita@peer.example" in item.group(0)
        assert 'rel="nofollow noopener ugc"' in item.group(0)


async def test_grants_listed_given_ahead_and_revoked(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    carl = await local_account("carl")
    await verified_likeness(carl, settings, audience="approved")
    carls = await svc.grant(carl, ann)  # someone else's grant
    await verified_likeness(ann, settings, audience="approved")
    async with logged_in(web, "ann") as http:
        page = (await http.get(f"{L}/grants")).text
        assert "You have given no permission." in page
        csrf = form_csrf(page)
        form = {"csrf": csrf, "acct": "@bob", "expires": "604800"}
        assert (await http.post(f"{L}/grants", data={**form, "csrf": "x"})).status_code == 403
        for acct, status, words in (
            ("@ann", 422, "you do not need a grant for your own likeness"),
            ("@ghost", 404, "Record not found"),
            ("@bob", 422, "one of the lifetimes offered"),
        ):
            expires = "a week" if acct == "@bob" else "604800"
            r = await http.post(f"{L}/grants", data={**form, "acct": acct, "expires": expires})
            assert r.status_code == status, (acct, r.status_code)
            assert words.lower() in _alert(r.text).lower(), (acct, _alert(r.text))
            assert f'value="{acct}"' in r.text
        r = await http.post(f"{L}/grants", data=form)
        assert r.status_code == 303
        grant = await LikenessGrant.get(owner_id=ann.pk, grantee_id=bob.pk)
        assert grant.expires_at is not None
        assert grant.expires_at - utcnow() > timedelta(days=6)
        page = (await http.get(f"{L}/grants?done=granted")).text
        assert "Granted: they may use your likeness." in page
        item = re.search(rf'<li data-grant-id="{grant.pk}".*?</li>', page, re.S)
        assert item is not None and "@bob" in item.group(0) and "approved by you" in item.group(0)
        assert 'Revoke<span class="visually-hidden"> the permission of @bob</span>' in page
        held = re.search(rf'<li data-grant-id="{carls.pk}".*?</li>', page, re.S)
        assert held is not None and "@carl" in held.group(0)  # held, with no revoke button
        assert f"/grants/{carls.pk}/revoke" not in page
        # Someone else's grant cannot be revoked; one's own, with its clips taken down.
        r = await http.post(f"{L}/grants/{carls.pk}/revoke", data={"csrf": csrf})
        assert r.status_code == 404
        assert (await LikenessGrant.get(pk=carls.pk)).revoked_at is None
        r = await http.post(
            f"{L}/grants/{grant.pk}/revoke", data={"csrf": csrf, "take_down": "yes"}
        )
        assert r.status_code == 303 and r.headers["location"] == f"{L}/grants?done=grant_revoked"
        revoked = await LikenessGrant.get(pk=grant.pk)
        assert revoked.revoked_at is not None and revoked.take_down
        page = (await http.get(f"{L}/grants")).text
        assert f"/grants/{grant.pk}/revoke" not in page and "its clips taken down" in page


async def test_uses_with_remove_me_and_the_consent_checks(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    ann = await local_account("ann")
    bob = await local_account("bob")
    carl = await local_account("carl")
    await verified_likeness(ann, settings, audience="everyone")
    await verified_likeness(carl, settings, audience="everyone")
    draft_job = await RenderJob.create(account=bob, state="ready", spec={"prompt": "ann dances"})
    decision = await svc.check_consent(bob, ann, publish=False, job=draft_job, stage="render")
    draft = await svc.record_use(decision, bob, "draft", job=draft_job)
    clip = await posts.post_clip(bob, await rendered_video(bob), caption="with ann")
    decision = await svc.check_consent(bob, ann, publish=True, stage="publish")
    posted = await svc.record_use(decision, bob, "published", clip=clip)
    rita = await peer_account("rita")
    ritas = await svc.grant(ann, rita)
    remote = await LikenessUse.create(  # as rita's server reports it (a LikenessUse notice)
        owner_id=ann.pk,
        user_id=rita.pk,
        grant_id=ritas.pk,
        kind="published",
        clip_uri="https://peer.example/@rita/7",
        remote=True,
    )
    await svc.update_policy(ann, audience="nobody")
    await svc.check_consent(bob, ann, publish=False, stage="request")  # refused: audited
    theirs = await svc.record_use(
        await svc.check_consent(bob, carl, publish=False, stage="render"), bob, "requested"
    )
    async with logged_in(web, "ann") as http:
        page = (await http.get(f"{L}/uses")).text
        ids = [int(i) for i in re.findall(r'data-use-id="(\d+)"', page)]
        assert ids == [remote.pk, posted.pk, draft.pk]
        item = re.search(rf'<li data-use-id="{posted.pk}".*?</li>', page, re.S)
        assert item is not None and f'href="/@bob/{clip.pk}"' in item.group(0)
        assert "posted a clip with it" in item.group(0)
        item = re.search(rf'<li data-use-id="{remote.pk}".*?</li>', page, re.S)
        assert item is not None
        assert 'href="https://peer.example/@rita/7" rel="nofollow noopener ugc"' in item.group(0)
        assert "@rita@peer.example" in item.group(0) and "on another server" in item.group(0)
        item = re.search(rf'<li data-use-id="{draft.pk}".*?</li>', page, re.S)
        assert item is not None and "used it in a draft (not posted)" in item.group(0)
        assert page.count("Remove me from this clip") == 3
        csrf = form_csrf(page)
        assert (await http.post(f"{L}/uses/{posted.pk}/remove", data={})).status_code == 403
        r = await http.post(f"{L}/uses/{theirs.pk}/remove", data={"csrf": csrf})
        assert r.status_code == 404  # a use of someone else's likeness
        r = await http.post(f"{L}/uses/{posted.pk}/remove", data={"csrf": csrf})
        assert r.status_code == 303 and r.headers["location"] == f"{L}/uses?done=removed"
        assert (await Clip.get(pk=clip.pk)).deleted_at is not None
        assert (await LikenessUse.get(pk=posted.pk)).removed_at is not None
        page = (await http.get(f"{L}/uses?done=removed")).text
        assert "Removed: you are no longer in that clip." in page
        assert page.count("Remove me from this clip") == 2
        # A clip on rita's server: the permission it was made with is taken back, with a
        # take-down (the signed revocation goes to her server, which deletes it).
        r = await http.post(f"{L}/uses/{remote.pk}/remove", data={"csrf": csrf})
        assert r.status_code == 303
        taken = await LikenessGrant.get(pk=ritas.pk)
        assert taken.revoked_at is not None and taken.take_down
        assert (await LikenessUse.get(pk=remote.pk)).removed_at is not None
        assert (await http.get(f"{L}/uses?max_id=x")).status_code == 400
        # The audit: every check of ann's likeness, newest first, and not carl's.
        page = (await http.get(f"{L}/checks")).text
        ids = [int(i) for i in re.findall(r'data-check-id="(\d+)"', page)]
        mine = await ConsentCheck.filter(owner_id=ann.pk).order_by("-id")
        assert ids == [c.pk for c in mine] and len(ids) == 3
        assert f'<li data-check-id="{mine[0].pk}" data-allowed="false">' in page
        assert "Refused</strong>: " in page and "on asking" in page
        assert "before posting" in page and "(to post)" in page


def test_the_registration_page_has_the_registration_bounds() -> None:
    from fedisora.boundary.limits import FORM_BODY_LIMIT, LIKENESS_BODY_LIMIT, body_class

    page = body_class("POST", f"{L}/register")
    assert page.limit == LIKENESS_BODY_LIMIT and page.files > svc.MAX_REFERENCE_IMAGES + 1
    assert body_class("POST", f"{L}/policy").limit == FORM_BODY_LIMIT
    assert body_class("POST", f"{L}/requests").limit == FORM_BODY_LIMIT


async def test_every_form_of_these_pages_needs_the_csrf_token(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    from web import likeness_settings

    ann = await local_account("ann")
    bob = await local_account("bob")
    await verified_likeness(ann, settings, audience="approved")
    request = await svc.request_use(bob, ann)
    grant = await svc.grant(ann, bob)
    posts_ = {
        route.path
        for route in likeness_settings.routes()
        if "POST" in (getattr(route, "methods", None) or ())
    }
    assert len(posts_) == 11
    async with logged_in(web, "ann") as http:
        for path in sorted(posts_):
            row = grant.pk if "grants" in path else request.pk
            url = path.replace("{id}", str(row)).replace("{username}", "bob")
            data = {"csrf": "forged", "take_down": "yes", "acct": "@bob", "audience": "nobody"}
            r = await http.post(url, data=data)
            assert r.status_code == 403, (url, r.status_code)
    assert (await LikenessRequest.get(pk=request.pk)).state == "pending"
    assert (await LikenessGrant.get(pk=grant.pk)).revoked_at is None
    likeness = await Likeness.get(account_id=ann.pk)
    assert likeness.state == LikenessState.VERIFIED and likeness.audience == "approved"
    assert await LikenessRequest.all().count() == 1


async def test_a_suspended_account_can_still_take_back_its_likeness(
    web: httpx.ASGITransport, settings: Settings
) -> None:
    """Consent to a person's likeness is never held by a suspension: the restricted session
    reaches the revocation (and nothing else of these pages) from its suspension page."""
    from fedisora.services import moderation

    boss = await local_account("boss", admin=True)
    ann = await local_account("ann")
    bob = await local_account("bob")
    await verified_likeness(ann, settings, audience="approved")
    grant = await svc.grant(ann, bob)
    await moderation.act_on_account(ann, "suspend", by=boss, text="Spam.")
    async with logged_in(web, "ann") as http:
        page = await http.get("/settings/suspended")
        assert 'href="/settings/likeness/revoke"' in page.text
        for other in (L, f"{L}/requests", f"{L}/grants", f"{L}/uses"):
            r = await http.get(other)
            assert r.status_code == 303 and r.headers["location"] == "/settings/suspended"
        r = await http.get(f"{L}/revoke")
        assert r.status_code == 200
        csrf = form_csrf(r.text)
        r = await http.post(f"{L}/revoke", data={"csrf": csrf, "take_down": "no"})
        assert r.status_code == 303 and r.headers["location"] == "/settings/suspended"
        assert (await Likeness.get(account_id=ann.pk)).state == LikenessState.REVOKED
        assert (await LikenessGrant.get(pk=grant.pk)).revoked_at is not None
        page = await http.get("/settings/suspended")
        assert 'href="/settings/likeness/revoke"' not in page.text
