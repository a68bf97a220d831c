"""The instance settings page: admins edit the name, descriptions, contact e-mail,
registration mode and message and the rate limits at /admin/settings (CSRF-checked,
audited, all or nothing), and every reader follows: the instance API (v1 and v2), NodeInfo,
page titles, sign-up, the rate-limit store."""

from __future__ import annotations

import html
import re

import httpx
from factories import local_account
from webhelpers import PASSWORD, browser, form_csrf, logged_in

from fedisora import ratelimits
from fedisora.models import AuditEntry, InstanceSetting
from fedisora.ratelimits import Limit
from fedisora.services import instance_settings


def _form(page: str, **changes: str) -> dict[str, str]:
    """The settings form as shown (its current values), with *changes*."""
    fields: dict[str, str] = {"csrf": form_csrf(page)}
    for name, value in re.findall(r'<input name="(\w+)" value="([^"]*)"', page):
        fields[name] = value
    for name, value in re.findall(r'<input type="email" name="(\w+)" value="([^"]*)"', page):
        fields[name] = value
    for name, value in re.findall(r'<textarea name="(\w+)"[^>]*>([^<]*)</textarea>', page, re.S):
        fields[name] = value
    checked = re.search(r'name="registrations" value="(\w+)" checked', page)
    assert checked is not None
    fields["registrations"] = checked.group(1)
    return {**{k: html.unescape(v) for k, v in fields.items()}, **changes}


async def test_admins_edit_the_settings_and_every_reader_follows(
    web: httpx.ASGITransport,
) -> None:
    await local_account("boss", admin=True)
    await local_account("somebody")
    async with browser(web) as anon:
        assert (await anon.get("/admin/settings")).status_code == 401
    async with logged_in(web, "somebody") as user:
        assert (await user.get("/admin/settings")).status_code == 403
        page = await user.get("/admin")  # a CSRF token of the user's own session
        r = await user.post("/admin/settings", data={"instance_name": "Mine"})
        assert r.status_code == 403
    async with logged_in(web, "boss") as admin:
        page = await admin.get("/admin/settings")
        assert page.status_code == 200
        assert '<a href="/admin/settings">Settings</a>' in page.text
        assert 'value="fedisora"' in page.text  # the environment's default

        # Refused values: every field's message, nothing saved (not even the valid name).
        r = await admin.post(
            "/admin/settings",
            data=_form(
                page.text,
                instance_name="Clip Town",
                rate_limits="render=10/1h,bogus=1/1s",
                contact_email="not an address",
            ),
        )
        assert r.status_code == 422
        assert "Nothing was saved: 2 fields" in r.text
        assert "Rate limits: unknown limit &#39;bogus&#39;" in r.text
        assert "Contact e-mail: &#39;not an address&#39; is not an e-mail address" in r.text
        assert "render=10/1h,bogus=1/1s" in r.text  # what was typed, to correct
        assert await InstanceSetting.all().count() == 0
        assert await AuditEntry.filter(action="instance.settings").count() == 0

        # Without the form's token: refused.
        r = await admin.post("/admin/settings", data={"instance_name": "Clip Town"})
        assert r.status_code == 403

        r = await admin.post(
            "/admin/settings",
            data=_form(
                page.text,
                instance_name="Clip Town",
                short_description="Tiny films, made up.",
                description="Line one.\n\nSecond paragraph & more.",
                contact_email="Admin@Clip.Town",
                registrations="closed",
                registrations_message="Come back in spring.",
                rate_limits="signup=1/1h, render=10/1h",
            ),
        )
        assert r.status_code == 303 and r.headers["location"] == "/admin/settings?saved=1"
        page = await admin.get("/admin/settings?saved=1")
        assert "Saved." in page.text and "<title>Instance settings · Admin · Clip Town" in page.text
        assert "signup=1/1h,render=10/1h" in page.text

        entry = await AuditEntry.get(action="instance.settings")
        assert entry.actor_label == "@boss" and entry.target_label == "fedisora.test"
        for name in ("name", "short description", "description", "contact e-mail"):
            assert name in entry.detail
        assert "registrations (closed)" in entry.detail
        assert "rate limits (signup=1/1h,render=10/1h)" in entry.detail

        # Saving the same values again changes (and audits) nothing.
        r = await admin.post("/admin/settings", data=_form(page.text))
        assert r.status_code == 303
        assert await AuditEntry.filter(action="instance.settings").count() == 1

    async with browser(web) as http:
        v1 = (await http.get("/api/v1/instance")).json()
        assert v1["title"] == "Clip Town" and v1["email"] == "admin@clip.town"
        assert v1["short_description"] == "Tiny films, made up."
        assert v1["description"] == "Line one.\n\nSecond paragraph & more."
        assert v1["registrations"] is False and v1["approval_required"] is False
        v2 = (await http.get("/api/v2/instance")).json()
        assert v2["title"] == "Clip Town" and v2["description"] == "Tiny films, made up."
        assert v2["contact"]["email"] == "admin@clip.town"
        assert v2["registrations"]["enabled"] is False
        assert v2["registrations"]["message"] == "Come back in spring."
        extended = (await http.get("/api/v1/instance/extended_description")).json()
        assert extended["content"] == "<p>Line one.</p><p>Second paragraph &amp; more.</p>"
        nodeinfo = (await http.get("/nodeinfo/2.0")).json()
        assert nodeinfo["metadata"]["nodeName"] == "Clip Town"
        assert nodeinfo["openRegistrations"] is False

        # The sign-up page and the API refuse with the saved message.
        signup = await http.get("/signup")
        assert "Come back in spring." in signup.text and 'action="/signup"' not in signup.text
        assert "<title>Sign up · Clip Town</title>" in signup.text
        assert '<meta name="description" content="Tiny films, made up.">' in signup.text
        r = await http.post(
            "/signup",
            data={
                "csrf": form_csrf((await http.get("/login")).text),
                "username": "late",
                "email": "late@example.com",
                "password": PASSWORD,
                "confirm_password": PASSWORD,
                "agreement": "yes",
            },
        )
        assert r.status_code == 403 and "Come back in spring." in r.text

    # The app's rate-limit store counts against the saved limits.
    store = ratelimits.for_app(web.app)
    assert store.limits["signup"] == Limit(1, 3600.0)
    assert store.limits["render"] == Limit(10, 3600.0)
    assert store.limits["api"] == ratelimits.DEFAULTS["api"]


async def test_another_process_sees_a_saved_change_within_the_cache_time(
    web: httpx.ASGITransport,
) -> None:
    """Each process reads the saved values again after CACHE_SECONDS; saving the default
    again removes the row (the environment's value applies again)."""
    boss = await local_account("boss", admin=True)
    settings = web.app.state.settings  # type: ignore[attr-defined]
    assert (await instance_settings.effective(settings)).instance_name == "fedisora"
    # Written by another process: this one keeps its copy until it is older than the TTL.
    await InstanceSetting.create(key="instance_name", value="Elsewhere")
    assert (await instance_settings.effective(settings)).instance_name == "fedisora"
    key = id(settings)
    entry = instance_settings._cache[key]
    instance_settings._cache[key] = (entry[0], entry[1] - instance_settings.CACHE_SECONDS, entry[2])
    assert (await instance_settings.effective(settings)).instance_name == "Elsewhere"

    changed = await instance_settings.save(settings, boss, {"instance_name": "fedisora"})
    assert changed == ["instance_name"]
    assert await InstanceSetting.filter(key="instance_name").count() == 0
    assert (await instance_settings.effective(settings)).instance_name == "fedisora"
