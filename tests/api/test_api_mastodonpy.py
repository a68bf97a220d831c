"""An unmodified Mastodon.py drives a real running instance (``fedisora init`` + ``serve``).

Covers app registration, sign-up, the password grant and the OAuth code flow through the
consent page, posting a clip from a finished render, timelines, favourites, replies,
notifications and Link-header pagination.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mastodon
import pytest
from instance import Instance, finished_render, running_instance

SCOPES = ["read", "write", "follow", "push"]
PASSWORD = "a long password 1"


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    with running_instance(tmp_path_factory.mktemp("mastodonpy")) as inst:
        yield inst


def client(instance: Instance, **kwargs: Any) -> Any:
    return mastodon.Mastodon(api_base_url=instance.url, request_timeout=30, **kwargs)


def test_mastodonpy_end_to_end(instance: Instance, tmp_path: Path) -> None:
    cid, secret = mastodon.Mastodon.create_app(
        "e2e", api_base_url=instance.url, scopes=SCOPES, to_file=str(tmp_path / "app.secret")
    )
    # Sign-up through the API (open registrations by default)
    anon = client(instance, client_id=cid, client_secret=secret)
    assert anon.retrieve_mastodon_version().startswith("4.3")
    assert anon.mastodon_api_version >= 2
    token = anon.create_account("alice", PASSWORD, "alice@example.com", agreement=True)
    assert token
    alice = client(instance, access_token=token)
    me = alice.me()
    assert me.username == "alice" and me.acct == "alice"

    bob_signup = client(instance, client_id=cid, client_secret=secret)
    bob_signup.create_account("bob", PASSWORD, "bob@example.com", agreement=True)

    # Bob logs in with the password grant (advertised in grant_types_supported)
    bob = client(instance, client_id=cid, client_secret=secret)
    bob.log_in("bob@example.com", PASSWORD, scopes=SCOPES, allow_http=True)
    assert bob.account_verify_credentials().username == "bob"

    # Carol logs in through the OAuth code flow: the consent page shows an out-of-band code
    client(instance, client_id=cid, client_secret=secret).create_account(
        "carol", PASSWORD, "carol@example.com", agreement=True
    )
    carol = client(instance, client_id=cid, client_secret=secret)
    url = carol.auth_request_url(scopes=SCOPES, allow_http=True)
    with httpx.Client(follow_redirects=True) as browser:
        page = browser.get(url)
        assert "Log in" in page.text
        page = browser.post(
            f"{instance.url}/login",
            data={
                "login": "carol",
                "password": PASSWORD,
                "next": page.url.params["next"],
                "csrf": re.findall(r'name="csrf" value="([^"]*)"', page.text)[0],
            },
        )
        assert "Authorize e2e" in page.text, page.text
        form = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page.text))
        page = browser.post(f"{instance.url}/oauth/authorize", data={**form, "decision": "approve"})
        code = re.search(r'id="authorization-code">([^<]+)<', page.text)
        assert code is not None, page.text
    carol.log_in(code=code.group(1), scopes=SCOPES, allow_http=True)
    assert carol.me().username == "carol"

    # Follow and post a clip from a finished render
    bob.account_follow(me.id)
    carol.account_follow(me.id)
    media_id = finished_render(instance, "alice")
    clip = alice.status_post("my first #clip", media_ids=[media_id], idempotency_key="k1")
    again = alice.status_post("my first #clip", media_ids=[media_id], idempotency_key="k1")
    assert again.id == clip.id
    (video,) = clip.media_attachments
    assert video.type == "video" and video.meta.original.duration == 3.0
    assert [t.name for t in clip.tags] == ["clip"]
    assert [s.id for s in bob.timeline_home()] == [clip.id]
    assert [s.id for s in bob.timeline_public(local=True)] == [clip.id]
    assert [s.id for s in bob.timeline_hashtag("clip")] == [clip.id]

    # Favourite and reply; notifications arrive
    assert bob.status_favourite(clip.id).favourited is True
    reply = carol.status_post("lovely", in_reply_to_id=clip.id)
    assert reply.in_reply_to_id == clip.id
    context = alice.status_context(clip.id)
    assert [s.id for s in context.descendants] == [reply.id]
    notes = alice.notifications()
    assert [n.type for n in notes[:2]] == ["mention", "favourite"]
    assert {n.type for n in notes} >= {"follow", "favourite", "mention"}
    assert notes[0].status.id == reply.id and notes[1].account.acct == "bob"

    # Pagination through Link headers
    more = [finished_render(instance, "alice") for _ in range(3)]
    posted = [alice.status_post(f"clip {n}", media_ids=[m]).id for n, m in enumerate(more)]
    first = bob.timeline_home(limit=2)
    assert [s.id for s in first] == [posted[2], posted[1]]
    second = bob.fetch_next(first)
    assert [s.id for s in second] == [posted[0], clip.id]
    assert bob.fetch_next(second) in (None, [])
    newer = bob.fetch_previous(second)
    assert [s.id for s in newer] == [posted[2], posted[1]]

    # Raw responses: ids are strings, errors are {"error": ...}
    raw = httpx.get(f"{instance.url}/api/v1/statuses/{clip.id}")
    assert raw.json()["id"] == str(clip.id)
    raw = httpx.get(f"{instance.url}/api/v1/timelines/home")
    assert raw.status_code == 401 and set(raw.json()) == {"error"}
    with pytest.raises(mastodon.MastodonNotFoundError):
        bob.status(123)
    bob.revoke_access_token(allow_http=True)
    with pytest.raises(mastodon.MastodonUnauthorizedError):
        bob.account_verify_credentials()
    assert json.loads(raw.text)["error"]
