"""Fuzzing the processing of received activities: hostile shapes are ignored, never crash it.

Processing runs off the request, in a durable inbox item; an exception other than ``Ignored``
(or a fetch failure, which is retried as trouble that may pass) sends the item through hours of
retries to ``failed`` for something that will never read better. Activities of every type we
handle are mutated at random (fields dropped, replaced by junk of every JSON type, over-long
strings, NUL characters, other hosts' and local URIs, nested activities) and processed
directly, as the inbox's worker would, on both databases. The generator is seeded, so a run is
repeatable; raise ``ROUNDS`` locally to dig deeper (it found the cases now in
``test_fed_inbox.test_hostile_shapes_are_ignored_once_not_retried``).
"""

from __future__ import annotations

import copy
import random
import traceback
from typing import Any

from factories import local_account, rendered_video
from fedhelpers import REMOTE, Peer, make_remote

from activitypub.objects import id_of
from fedisora.federation.actors import ActorError
from fedisora.federation.context import Federation
from fedisora.federation.http import FetchError
from fedisora.federation.ingest import Ignored, handle_activity
from fedisora.services import follows, interactions, posts

ROUNDS = 1500
FETCHED_ROUNDS = 500
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
#: Keys an activity or object may grow, with a junk value.
EXTRA_KEYS = (
    "inReplyTo",
    "quote",
    "quoteAuthorization",
    "summary",
    "sensitive",
    "published",
    "contentMap",
    "url",
    "to",
    "cc",
    "instrument",
    "result",
    "target",
    "alsoKnownAs",
    "movedTo",
    "name",
    "duration",
    "icon",
)


def crash_key(exc: Exception) -> str:
    """The exception and the last line of our code it came through (one report per place)."""
    ours = [
        line.strip()
        for line in traceback.format_exc().splitlines()
        if line.strip().startswith('File "') and "site-packages" not in line
    ]
    return f"{type(exc).__name__}: {exc!s:.200} at {ours[-1] if ours else '?'}"


class Junk:
    """Random JSON values of the kinds that reach the handlers."""

    def __init__(self, rnd: random.Random, uris: list[str], templates: list[dict[str, Any]]):
        self.rnd, self.uris, self.templates = rnd, uris, templates

    def value(self, depth: int = 0) -> Any:
        rnd = self.rnd
        choices: list[Any] = [
            None,
            rnd.randrange(-5, 2**70),
            rnd.random() * 1e308,
            rnd.choice([True, False]),
            "x" * rnd.choice([0, 1, 3000, 70000]),
            rnd.choice([*self.uris, "http://127.0.0.1/x", "not a url", "", "a\x00b", PUBLIC]),
            rnd.choice(["Note", "Video", "Person", "Tombstone", "Hashtag", "Mention", "Link"]),
            "2026-13-45T99:00:00Z",
            [PUBLIC],
        ]
        if depth < 3:
            choices += [
                [self.value(depth + 1) for _ in range(rnd.randrange(4))],
                {
                    rnd.choice(["id", "type", "href", "url", "object", "actor"]): self.value(
                        depth + 1
                    )
                    for _ in range(rnd.randrange(4))
                },
                copy.deepcopy(rnd.choice(self.templates)),
            ]
        return rnd.choice(choices)

    def mutate(self, doc: Any, rate: float) -> Any:
        rnd = self.rnd
        if isinstance(doc, dict):
            out = {}
            for key, value in doc.items():
                r = rnd.random()
                if r < rate * 0.4:
                    continue  # dropped
                out[key] = self.value() if r < rate else self.mutate(value, rate)
            if rnd.random() < rate:
                out[rnd.choice(EXTRA_KEYS)] = self.value()
            return out
        if isinstance(doc, list):
            return [self.mutate(item, rate) for item in doc if rnd.random() > rate * 0.3]
        return doc


async def test_mutated_activities_are_processed_or_ignored_never_crash(
    federation: Federation,
) -> None:
    ann = await local_account("ann")
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="hi #x")
    await interactions.comment(ann, clip, text="a comment")
    rita = await make_remote()
    await follows.follow(ann, rita.account)
    r = rita.uri
    note = {
        "id": f"{r}/statuses/1",
        "type": "Note",
        "attributedTo": r,
        "content": "<p>x</p>",
        "to": [PUBLIC],
        "attachment": [
            {"type": "Document", "mediaType": "video/mp4", "url": f"https://{REMOTE}/v.mp4"}
        ],
        "quote": clip.uri,
        "tag": [{"type": "Hashtag", "name": "#x"}, {"type": "Mention", "href": ann.uri}],
    }
    templates: list[dict[str, Any]] = [
        {"type": "Follow", "object": ann.uri},
        {"type": "Like", "object": clip.uri},
        {"type": "EmojiReact", "object": clip.uri, "content": "x"},
        {"type": "Announce", "object": clip.uri, "to": [PUBLIC]},
        {"type": "Create", "object": note},
        {"type": "Create", "object": {**note, "inReplyTo": clip.uri, "attachment": []}},
        {"type": "Update", "object": note},
        {"type": "Update", "object": rita.document()},
        {"type": "Delete", "object": note["id"]},
        {"type": "Undo", "object": {"type": "Like", "actor": r, "object": clip.uri}},
        {"type": "Undo", "object": {"type": "Follow", "actor": r, "object": ann.uri}},
        {"type": "Accept", "object": {"type": "Follow", "actor": ann.uri, "object": r}},
        {"type": "Reject", "object": {"type": "Follow", "actor": ann.uri, "object": r}},
        {"type": "QuoteRequest", "object": clip.uri, "instrument": note},
        {
            "type": "Accept",
            "object": {"type": "QuoteRequest", "actor": ann.uri, "object": r},
            "result": f"{r}/stamps/1",
        },
        {"type": "Move", "object": r, "target": f"https://{REMOTE}/users/other"},
        {"type": "Block", "object": ann.uri},
    ]
    rnd = random.Random(20261206)
    junk = Junk(rnd, [clip.uri, ann.uri, r, note["id"], "https://other.example/x"], templates)
    crashes: dict[str, str] = {}
    handled: dict[str, int] = {}
    for i in range(ROUNDS):
        # Blocks and moves end the relationships the rest needs: only now and then.
        base = copy.deepcopy(rnd.choice(templates[:-2] if i % 50 else templates))
        if isinstance(base.get("object"), dict) and base["object"].get("type") == "Note":
            base["object"]["id"] = f"{r}/statuses/{i}"  # a new post each time
        elif base["type"] == "Delete":
            base["object"] = f"{r}/statuses/{rnd.randrange(max(i, 1))}"  # an earlier one
        activity = junk.mutate(base, rnd.choice([0.02, 0.05, 0.35]))
        activity.update(id=f"{r}/activities/{i}", actor=r, type=base["type"])
        if id_of(activity.get("object")) == r and base["type"] == "Delete":
            activity["object"] = note["id"]  # not the actor's own deletion: it would end the run
        try:
            await handle_activity(federation, activity)
            handled[base["type"]] = handled.get(base["type"], 0) + 1
        except (Ignored, FetchError, ActorError):
            pass
        except Exception as exc:
            crashes.setdefault(crash_key(exc), repr(activity))
    assert not crashes, "\n".join(f"{k}\n  {v[:800]}" for k, v in crashes.items())
    # The run reached the handlers' work, not only their first refusals.
    assert {"Create", "Update", "Delete", "QuoteRequest"} <= set(handled), handled


async def test_mutated_fetched_posts_are_stored_or_refused_never_crash(
    federation: Federation, peer: Peer
) -> None:
    """The same for what a peer serves when we fetch a post (here, one a follow boosts):
    Mastodon-like Notes and PeerTube-like Videos, mutated."""
    ann = await local_account("ann")
    clip = await posts.post_clip(ann, await rendered_video(ann), caption="hi #x")
    rita = await make_remote()
    bob = await make_remote("bob", "b.example")
    peer.documents[bob.uri] = bob.document()
    await follows.follow(ann, rita.account)

    def note(i: int) -> dict[str, Any]:
        return {
            "id": f"{bob.uri}/statuses/{i}",
            "type": "Note",
            "attributedTo": bob.uri,
            "content": "<p>x</p>",
            "to": [PUBLIC],
            "attachment": [
                {
                    "type": "Document",
                    "mediaType": "video/mp4",
                    "url": "https://b.example/v.mp4",
                    "width": 5,
                    "height": 5,
                    "icon": {"type": "Image", "url": "https://b.example/p.jpg"},
                }
            ],
            "quote": clip.uri,
            "tag": [{"type": "Hashtag", "name": "#x"}],
            "published": "2026-01-01T00:00:00Z",
            "summary": "cw",
            "sensitive": True,
        }

    def video(i: int) -> dict[str, Any]:
        return {
            "id": f"https://b.example/videos/watch/{i}",
            "type": "Video",
            "attributedTo": [bob.uri],
            "name": "v",
            "duration": "PT5S",
            "to": [PUBLIC],
            "url": [{"type": "Link", "mediaType": "video/mp4", "href": "https://b.example/v.mp4"}],
            "icon": [{"url": "https://b.example/i.jpg", "width": 10}],
        }

    rnd = random.Random(20261207)
    uris = [clip.uri, ann.uri, rita.uri, bob.uri, f"{bob.uri}/statuses/1"]
    junk = Junk(rnd, uris, [note(0), video(0)])
    crashes: dict[str, str] = {}
    stored = 0
    for i in range(FETCHED_ROUNDS):
        base = rnd.choice([note, video])(i)
        doc = junk.mutate(base, rnd.choice([0.02, 0.05, 0.35]))
        doc["id"] = base["id"]
        peer.documents[base["id"]] = doc
        boost = {
            "id": f"{rita.uri}/announces/{i}",
            "type": "Announce",
            "actor": rita.uri,
            "object": base["id"],
            "to": [PUBLIC],
        }
        try:
            await handle_activity(federation, boost)
            stored += 1
        except (Ignored, FetchError, ActorError):
            pass
        except Exception as exc:
            crashes.setdefault(crash_key(exc), repr(doc))
    assert not crashes, "\n".join(f"{k}\n  {v[:800]}" for k, v in crashes.items())
    assert stored > FETCHED_ROUNDS // 4  # most mutations are mild: the posts were stored
