"""What a failed fetch met never shows on a public page or in the API.

A remote clip whose video could not be fetched once showed the error on every page it was on
("the video could not be fetched: GET https://...: ConnectError: [Errno 111] ... 10.0.0.5"):
server-side addresses and resolver answers, to anyone. The check now stores a fixed reason
(tests/federation/test_fed_media_check.py); a reason stored before that is shown as the same
fixed text, on the pages and in the API.
"""

from __future__ import annotations

import httpx
import pytest
from webhelpers import browser, card, create, peer_account, receive

from fedisora.federation.context import Federation
from fedisora.federation.provenance_check import CHECK_GAVE_UP, FETCH_FAILED, NO_C2PA_DATA
from fedisora.models import MediaFile

INTERNAL = ("10.0.0.5", "Errno", "ConnectError", "/srv/fedisora/tmp", "resolves")


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        (
            "the video could not be fetched: GET https://media.peer.example/v.mp4: ConnectError: "
            "[Errno 111] Connection refused (10.0.0.5)",
            FETCH_FAILED,
        ),
        (
            "the video could not be checked: GET https://media.peer.example/v.mp4: media.peer."
            "example resolves to a non-public address (10.0.0.5)",
            CHECK_GAVE_UP,
        ),
        (
            "no readable C2PA data in the file (cannot open /srv/fedisora/tmp/remote-media/1.mp4)",
            NO_C2PA_DATA,
        ),
    ],
)
async def test_stored_fetch_errors_are_shown_as_a_fixed_text(
    web: httpx.ASGITransport, fed: Federation, stored: str, shown: str
) -> None:
    rita = await peer_account("rita")
    clip = await receive(fed, create(rita, 1, content="<p>#Sea</p>", hashtags=["Sea"]))
    media = await MediaFile.get(pk=clip.media_id)
    await MediaFile.filter(pk=media.pk).update(
        provenance={
            **media.provenance,
            "state": "unverified",
            "reason": stored,
            "checked_at": "2026-01-02T03:04:05+00:00",
        }
    )
    async with browser(web) as anon:
        page = await anon.get("/tags/sea")
        api = await anon.get(f"/api/v1/statuses/{clip.pk}", headers={"accept": "application/json"})
    assert page.status_code == 200 and api.status_code == 200
    shown_card = card(page.text, clip)
    assert f'<small class="prov-reason">{shown}</small>' in shown_card
    meta = api.json()["media_attachments"][0]["meta"]["fedisora"]
    assert meta["provenance_reason"] == shown
    for word in INTERNAL:
        assert word not in page.text and word not in api.text, word
