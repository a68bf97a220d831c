"""The web create form under the ``render`` rate limit (counted in the render service, as the
API's): the refusal is a 429 page with the message, the person's input kept."""

from __future__ import annotations

import re
from dataclasses import replace

import httpx
from factories import local_account
from webhelpers import logged_in

from fedisora.app import create_app
from fedisora.config import Settings
from fedisora.models import RenderJob
from fedisora.ratelimits import parse_limits


def _hidden(page: str) -> dict[str, str]:
    fields = {}
    for name in ("csrf", "form_token"):
        found = re.search(rf'name="{name}" value="([^"]+)"', page)
        assert found is not None, page[:2000]
        fields[name] = found.group(1)
    return fields


async def test_renders_over_the_limit_refused_on_the_form(settings: Settings) -> None:
    limited = replace(settings, rate_limits=parse_limits("render=1/1h"))
    web = httpx.ASGITransport(app=create_app(limited, run_work=False, manage_db=False))
    await local_account("alice")
    empty = {"still": ("", b"", "")}
    async with logged_in(web, "alice") as http:
        first = await http.get("/create")
        fields = {**_hidden(first.text), "prompt": "a lighthouse", "seconds": "1"}
        r = await http.post("/create", data=fields, files=empty)
        assert r.status_code == 303, r.text[:2000]
        second = await http.get("/create")
        fields = {**_hidden(second.text), "prompt": "a harbour at dusk", "seconds": "1"}
        r = await http.post("/create", data=fields, files=empty)
        assert r.status_code == 429
        assert r.headers["content-type"].startswith("text/html")
        assert "Too many renders started; try again later" in r.text
        assert "a harbour at dusk" in r.text  # what was typed is kept
        assert r.headers["X-RateLimit-Limit"] == "1" and int(r.headers["Retry-After"]) > 0
    assert await RenderJob.all().count() == 1
