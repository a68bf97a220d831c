"""ActivityPub relays (issue 19, point 4): a small instance sees more of the network.

The Mastodon/LitePub relay protocol: the admin names a relay (its inbox URL, as Mastodon
asks for, or its actor's URL, as LitePub relays give); the instance actor sends it a
``Follow`` whose object is ``https://www.w3.org/ns/activitystreams#Public``; the relay answers
``Accept`` (or ``Reject``). While accepted, every public clip's ``Create``, ``Update`` and
``Delete`` also go to the relay's inbox (:func:`inboxes`, read by the delivery audience), and
what the relay ``Announce``s is taken in as a remote clip fetched from its origin (never as a
boost by the relay: :func:`is_relay`). Removing a relay sends ``Undo`` of the Follow.

The row and its Follow's delivery are written in one transaction (the delivery row is picked
up by the delivery sweep, or woken at once when this process runs work), so an added relay
is never left without its Follow. Each change is audited.
"""

from __future__ import annotations

import secrets
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from fedisora import urls
from fedisora.boundary.peer_urls import check_peer_url
from fedisora.errors import Invalid, NotFound
from fedisora.models import Account, Relay, RelayState, utcnow
from fedisora.services import audit, domain_blocks

__all__ = ["add", "answered", "inboxes", "is_relay", "list_relays", "remove"]

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
MAX_URL = 2048


async def list_relays() -> list[Relay]:
    return await Relay.all().order_by("id")


async def add(url: str, *, by: audit.Actor, fed: Any) -> Relay:
    """Subscribe to the relay at *url*. Its actor is looked up first (a LitePub relay's
    actor URL names its inbox); otherwise *url* is taken as the inbox (Mastodon's form).
    Raises :class:`Invalid` for a bad URL, our own host, a blocked domain or a relay added
    already."""
    from fedisora.federation.actors import domain_of
    from fedisora.federation.http import FetchError, UnsafeURL

    url = check_peer_url(url, what="a relay", insecure=fed.settings.insecure_http)
    host = domain_of(url)
    if host == domain_of(urls.current().base):
        raise Invalid("that is this instance, not a relay")
    if await domain_blocks.is_blocked(host, fed.settings):
        raise Invalid(f"{host} is blocked here")
    inbox, actor_uri = url, None
    try:
        final, doc = await fed.client.get_json(url, auth=await fed.instance_auth())
    except UnsafeURL as exc:
        raise Invalid(f"the relay's address is refused ({exc})") from None
    except FetchError:
        doc = None  # an inbox does not answer GETs: Mastodon's form
    if isinstance(doc, dict) and isinstance(doc.get("inbox"), str):
        if domain_of(doc["inbox"]) != host or domain_of(str(doc.get("id") or final)) != host:
            raise Invalid("the relay's actor points at another host")
        inbox, actor_uri = doc["inbox"], str(doc.get("id") or final)
    if await Relay.filter(inbox_url=inbox).exists():
        raise Invalid("this relay is added already")
    instance = await fed.instance_actor()
    follow_uri = f"{urls.current().base}/relays/{secrets.token_hex(8)}"
    follow = _follow(follow_uri, instance.uri)
    try:
        async with in_transaction() as conn:
            row = await Relay.create(
                inbox_url=inbox,
                actor_uri=actor_uri,
                follow_uri=follow_uri,
                created_by_id=by.pk if isinstance(by, Account) else None,
                using_db=conn,
            )
            await _send(instance, follow, inbox, conn)
            await audit.record(by, "relay.add", target=inbox)
    except IntegrityError:
        raise Invalid("this relay is added already") from None
    return row


async def remove(relay_id: int, *, by: audit.Actor, fed: Any) -> None:
    """Unsubscribe: ``Undo`` of the Follow to the relay, and the row is gone; the relay's
    follow of the instance actor (a LitePub relay's follow back) is removed too."""
    row = await Relay.get_or_none(pk=relay_id)
    if row is None:
        raise NotFound("no such relay")
    instance = await fed.instance_actor()
    undo = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{row.follow_uri}#undo",
        "type": "Undo",
        "actor": instance.uri,
        "object": _follow(row.follow_uri, instance.uri, context=False),
    }
    async with in_transaction() as conn:
        await Relay.filter(pk=row.pk).using_db(conn).delete()
        await _send(instance, undo, row.inbox_url, conn)
        await audit.record(by, "relay.remove", target=row.inbox_url)
    await _drop_follow_back(row, instance)


async def _drop_follow_back(row: Relay, instance: Account) -> None:
    """A LitePub relay follows the instance actor back as part of the subscription; with the
    subscription gone that follower goes too, with a ``Reject`` as Mastodon's "remove
    follower" sends (ActivityRelay answers our Undo with an Undo of that Undo, not of its own
    Follow, so it would otherwise stay a follower for good)."""
    from fedisora.models import Follow
    from fedisora.services import follows

    if row.actor_uri is None:
        return
    relay = await Account.get_or_none(uri=row.actor_uri)
    if relay is None:
        return
    back = await Follow.get_or_none(follower_id=relay.pk, target_id=instance.pk)
    if back is not None:
        await follows.reject_follow(instance, back)


def _follow(uri: str, actor: str, *, context: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": uri, "type": "Follow", "actor": actor, "object": PUBLIC}
    return {"@context": "https://www.w3.org/ns/activitystreams", **doc} if context else doc


def _inbox_only(inbox: str) -> Account:
    """An unsaved account standing for a relay's inbox: what the delivery reads of one."""
    from fedisora.federation.actors import domain_of

    return Account(inbox_uri=inbox, shared_inbox_uri=None, domain=domain_of(inbox))


async def _send(sender: Account, activity: dict[str, Any], inbox: str, conn: Any) -> None:
    from fedisora.federation.delivery import enqueue

    await enqueue(sender, activity, [_inbox_only(inbox)], conn)


async def inboxes() -> list[Account]:
    """The accepted relays' inboxes, as recipients of a public clip's activities."""
    rows = await Relay.filter(state=RelayState.ACCEPTED).values_list("inbox_url", flat=True)
    return [_inbox_only(str(inbox)) for inbox in rows]


async def is_relay(actor: Account) -> bool:
    """Whether *actor* is a relay this instance subscribed to (its Announces bring clips in;
    they are not boosts)."""
    if not actor.uri:
        return False
    if await Relay.filter(actor_uri=actor.uri).exclude(state=RelayState.REJECTED).exists():
        return True
    inboxes = [u for u in (actor.inbox_uri, actor.shared_inbox_uri) if u]
    return bool(inboxes) and await Relay.filter(inbox_url__in=inboxes).exists()


async def answered(actor: Account, follow_uri: str | None, accepted: bool) -> bool:
    """The relay *actor* answered our Follow *follow_uri*: True when it was one of ours (and
    recorded), False when that Follow is no relay's."""
    if not follow_uri:
        return False
    row = await Relay.get_or_none(follow_uri=follow_uri)
    if row is None:
        return False
    from fedisora.federation.actors import domain_of

    if row.actor_uri is not None and row.actor_uri != actor.uri:
        return False  # somebody else answering for the relay
    if domain_of(actor.uri) != domain_of(row.inbox_url):
        return False  # an inbox-only relay answers from its own host
    state = RelayState.ACCEPTED if accepted else RelayState.REJECTED
    await Relay.filter(pk=row.pk).update(state=state, actor_uri=actor.uri, answered_at=utcnow())
    return True
