"""Names with bidi overrides or invisible characters, sent by a peer or typed by a user.

A remote actor whose name held U+202E was stored and shown as sent (display-name spoofing).
Now a display name is cleaned when it is stored (remote and local), a username holding such
characters makes the actor refused, and every page and API entity shows names cleaned, also
for rows stored before.
"""

from __future__ import annotations

import httpx
import pytest
from factories import local_account, rendered_video
from webhelpers import DOMAIN, PEER, api_token, browser, create, peer_account, receive

from fedisora.federation.actors import ActorError, store_actor
from fedisora.federation.context import Federation
from fedisora.models import Account, Comment
from fedisora.services import interactions, posts

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE
SPOOF = f"Bank{RLO}\u2066support\u200b\u2069"
CONTROLS = ("\u202e", "\u2066", "\u2069", "\u200b", "&#8238;", "&#x202e;")


def _actor(username: str, name: str) -> dict[str, object]:
    uri = f"https://{PEER}/users/{username.encode('ascii', 'ignore').decode() or 'x'}"
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": uri,
        "type": "Person",
        "preferredUsername": username,
        "name": name,
        "inbox": f"{uri}/inbox",
        "followers": f"{uri}/followers",
    }


async def test_remote_names_are_cleaned_when_stored_and_odd_usernames_refused(
    web: httpx.ASGITransport,
) -> None:
    stored = await store_actor(_actor("rita", SPOOF), f"https://{PEER}/users/rita")
    assert stored.display_name == "Banksupport"
    emoji = "\U0001f469\u200d\U0001f4bb Rita \U0001f3f3\ufe0f\u200d\U0001f308"
    stored = await store_actor(_actor("rita", emoji), f"https://{PEER}/users/rita")
    assert stored.display_name == emoji  # emoji sequences keep their joiners

    for username in ("ad\u200bmin", f"{RLO}nimda", "ad\u2066min"):
        with pytest.raises(ActorError, match="invisible characters"):
            await store_actor(_actor(username, "x"), f"https://{PEER}/users/{username}")
    assert await Account.filter(domain=PEER).count() == 1


async def test_names_stored_before_are_shown_cleaned(
    web: httpx.ASGITransport, fed: Federation
) -> None:
    ann = await local_account("ann")
    rita = await peer_account("rita")
    # Rows as they could be stored before names were cleaned.
    await Account.filter(pk=rita.pk).update(display_name=SPOOF, username=f"ri{RLO}ta")
    rita = await Account.get(pk=rita.pk)
    clip = await receive(fed, create(rita, 1, content="<p>#Sea</p>", hashtags=["Sea"]))
    mine = await posts.post_clip(ann, await rendered_video(ann), caption="mine")
    comment = await interactions.comment(ann, mine, "hello")
    await Comment.filter(pk=comment.pk).update(account_id=rita.pk)  # as if rita had written it

    async with browser(web) as anon:
        pages = [
            (await anon.get("/tags/sea")).text,
            (await anon.get(f"/@ann/{mine.pk}")).text,
        ]
        api = await anon.get(f"/api/v1/statuses/{clip.pk}", headers={"accept": "application/json"})
    assert "<strong>Banksupport</strong>" in pages[0] and f"@rita@{PEER}" in pages[0]
    assert "<strong>Banksupport</strong>" in pages[1] and f"@rita@{PEER}" in pages[1]
    for text in (*pages, api.text):
        for control in CONTROLS:
            assert control not in text, (control, text[:200])
    account = api.json()["account"]
    assert (account["display_name"], account["username"], account["acct"]) == (
        "Banksupport",
        "rita",
        f"rita@{PEER}",
    )


async def test_local_display_names_are_cleaned_as_set(web: httpx.ASGITransport) -> None:
    ann = await local_account("ann")
    async with httpx.AsyncClient(transport=web, base_url=f"https://{DOMAIN}") as client:
        r = await client.patch(
            "/api/v1/accounts/update_credentials",
            data={"display_name": f"{RLO}nnA \u200bthe\u2066 admin"},
            headers=await api_token(client, "ann", "write"),
        )
        assert r.status_code == 200 and r.json()["display_name"] == "nnA the admin"
    assert (await Account.get(pk=ann.pk)).display_name == "nnA the admin"
    bob = await local_account("bob", display_name=f"B{RLO}ob\u200d")
    assert bob.display_name == "Bob"
