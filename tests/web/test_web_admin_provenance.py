"""``/admin/provenance``: the signing root and the root history, their downloads, and replacing
the root (admins only, CSRF-checked, confirmed, audited); a clip signed before the replacement
keeps verifying, and the render queue's signing step signs the next clip under the new root
in the same process (no restart).

No render here: an encoded clip is made from plain frames and signed by the render queue's
own signing step (``render.queue._sign``), as it signs a rendered one.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
from factories import local_account
from webhelpers import browser, form_csrf, logged_in

from fedisora.config import Settings
from fedisora.models import AuditEntry
from fedisora.services import audit, roles
from render.encode import encode_mp4
from render.instance import (
    load_credentials,
    retired_roots,
    root_fingerprint,
    root_info,
    trusted_roots,
    write_credentials,
)
from render.provenance import verify_mp4
from render.queue import _ENCODED_META, _sign, work_dir

PEM_TYPE = "application/x-pem-file"
PAGES = ("/admin/provenance", "/admin/provenance/root.pem", "/admin/provenance/roots.pem")


def _signed_clip(settings: Settings, job_id: int, keep: Path) -> Path:
    """A clip signed by the render queue's signing step for job *job_id*, copied to *keep*."""
    src = work_dir(settings, job_id)
    src.mkdir(parents=True, exist_ok=True)
    frames = np.random.default_rng(job_id).integers(0, 255, (9, 64, 64, 3), dtype=np.uint8)
    encode_mp4(frames, src / "encoded.mp4", fps=8, poster=src / "poster.jpg")
    (src / _ENCODED_META).write_text(json.dumps({"blurhash": "L00000fQfQfQfQfQfQfQfQfQfQfQ"}))
    job: Any = SimpleNamespace(pk=job_id, spec={"prompt": "a kite", "seed": 7})
    values = _sign(settings, job, "https://web.example/users/boss", ())
    keep.write_bytes((settings.media_root / values["file"]).read_bytes())
    return keep


async def test_admins_see_download_and_replace_the_signing_root(
    web: httpx.ASGITransport, settings: Settings, tmp_path: Path
) -> None:
    assert write_credentials(settings).outcome == "created"  # as `fedisora init` does
    first = load_credentials(settings)[0]
    first_info = root_info(first)
    before = _signed_clip(settings, 1, tmp_path / "before.mp4")
    assert verify_mp4(before, [first]).trusted

    await local_account("boss", admin=True)
    await local_account("somebody")
    mod = await local_account("mod")
    await roles.set_role(mod, "moderator", by=audit.CLI)
    async with browser(web) as anon:
        for path in PAGES:
            assert (await anon.get(path)).status_code == 401
    for who in ("somebody", "mod"):
        async with logged_in(web, who) as user:
            for path in PAGES:
                assert (await user.get(path)).status_code == 403
            token = form_csrf((await user.get("/create")).text)  # a token of their own
            r = await user.post("/admin/provenance/replace", data={"csrf": token, "confirm": "yes"})
            assert r.status_code == 403
    async with logged_in(web, "mod") as moderator:  # the overview, without this page's link
        overview = await moderator.get("/admin")
        assert overview.status_code == 200 and 'href="/admin/provenance"' not in overview.text
    assert load_credentials(settings)[0] == first

    async with logged_in(web, "boss") as admin:
        page = await admin.get("/admin/provenance")
        assert page.status_code == 200
        assert '<a href="/admin/provenance">Provenance</a>' in page.text
        assert first_info.subject in page.text
        assert first_info.fingerprint_colons() in page.text
        assert first_info.not_after.strftime("%Y-%m-%d") in page.text
        assert "Retired roots" in page.text and "<p>none</p>" in page.text

        root = await admin.get("/admin/provenance/root.pem")
        assert root.status_code == 200 and root.text == first
        assert root.headers["content-type"].startswith(PEM_TYPE)
        host = settings.domain.split(":")[0]
        assert root.headers["content-disposition"] == (
            f'attachment; filename="{host}-provenance-root.pem"'
        )
        assert "PRIVATE KEY" not in root.text

        # Refused: no CSRF token; no confirmation. Nothing replaced, nothing audited.
        token = form_csrf(page.text)
        r = await admin.post("/admin/provenance/replace", data={"confirm": "yes"})
        assert r.status_code == 403
        r = await admin.post("/admin/provenance/replace", data={"csrf": token})
        assert r.status_code == 400 and "tick the box" in r.text
        assert load_credentials(settings)[0] == first
        assert not await AuditEntry.filter(action__startswith="provenance.").exists()

        r = await admin.post("/admin/provenance/replace", data={"csrf": token, "confirm": "yes"})
        assert r.status_code == 303 and r.headers["location"] == "/admin/provenance?replaced=1"
        second = load_credentials(settings)[0]
        assert second != first
        assert retired_roots(settings) == [first]
        entry = await AuditEntry.get(action="provenance.root_replace")
        assert entry.actor_label == "@boss" and entry.target_id == root_fingerprint(second)
        assert first_info.fingerprint in entry.detail

        page = await admin.get("/admin/provenance?replaced=1")
        assert "The root was replaced" in page.text
        current, retired = page.text.split('id="retired"')
        assert root_info(second).fingerprint_colons() in current
        assert first_info.fingerprint_colons() in retired
        bundle = await admin.get("/admin/provenance/roots.pem")
        assert bundle.headers["content-type"].startswith(PEM_TYPE)
        assert "roots.pem" in bundle.headers["content-disposition"]
        assert bundle.text == second + first  # the current root first

    # The clip signed before still verifies (the retired root is trusted for our clips), not
    # under the new root alone; the next clip the render queue signs, in this same process,
    # is signed under the new root: nothing was cached.
    assert verify_mp4(before, trusted_roots(settings)).trusted
    assert not verify_mp4(before, [second]).trusted
    after = _signed_clip(settings, 2, tmp_path / "after.mp4")
    assert verify_mp4(after, [second]).trusted
    assert not verify_mp4(after, [first]).trusted
