"""JSON-LD shapes of actors, clips, comments and activities, and their parsing. Pure: no I/O.

Outgoing documents are built from plain dataclasses (no database rows), so that the wire
format is tested with fixed values. A clip is a ``Note`` with one ``Document`` video/mp4
attachment (what Mastodon and Loops render as a video post), carrying:

* ``sensitive`` with the ``as:sensitive`` context term (Loops drops the flag without it);
* FEP-1311 media fields on the attachment (``digestMultibase``, ``size``, ``duration``);
* ``quote`` (FEP-044f) for remixes, plus an FEP-e232 ``Link`` tag as fallback;
* an AI marker, ``aiGenerated`` (``fedisora:aiGenerated``), on the note and the attachment,
  and ``provenance`` with the C2PA manifest digest;
* ``fingerprint`` (``fedisora:fingerprint``) on the attachment of a public or unlisted clip: a
  ``VideoFingerprint`` with the PDQ hashes of its frames (``pdqHashes``, hex, in time order,
  ``variants`` hashes per sampled frame, ``frameRate`` samples per second), so that an
  instance can name the origin of a copy of a clip made elsewhere
  (:mod:`fedisora.services.fingerprints`).

Incoming objects are read with :func:`parse_note`, which accepts the shapes Mastodon,
Loops and PeerTube send (``Note`` or ``Video``, ``url`` as a string, a Link or a list).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from activitypub._base58 import b58encode
from activitypub.errors import ActivityPubError

__all__ = [
    "ACTOR_CONTEXT",
    "ACTOR_TERMS",
    "AS_CONTEXT",
    "CONSENT_TERMS",
    "FEDISORA_NS",
    "MAX_CAMEOS",
    "MAX_FINGERPRINT_HEX",
    "OBJECT_CONTEXT",
    "PUBLIC",
    "SECURITY_CONTEXT",
    "UNSTORABLE_CHARS",
    "VIDEO_TITLE_LIMIT",
    "ActorInfo",
    "CameoInfo",
    "FingerprintInfo",
    "InvalidObject",
    "NoteInfo",
    "ParsedActor",
    "ParsedCameo",
    "ParsedNote",
    "ParsedVideo",
    "ProvenanceInfo",
    "VideoInfo",
    "activity",
    "actor_document",
    "addressing",
    "as_list",
    "cameo_document",
    "collection",
    "digest_multibase",
    "fingerprint_document",
    "has_unstorable",
    "html_to_text",
    "id_of",
    "iso_duration",
    "note_document",
    "parse_actor",
    "parse_cameos",
    "parse_fingerprint",
    "parse_iso_duration",
    "parse_note",
    "quote_authorization",
    "same_origin",
    "stamp_mismatch",
    "stamp_of",
    "tombstone",
    "video_document",
    "visibility_of",
    "web_url",
    "with_context",
]

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
_PUBLIC_ALIASES = {PUBLIC, "as:Public", "Public"}
AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"
FEDISORA_NS = "https://fedisora.org/ns#"

#: Extension terms of every object document (notes, activities).
OBJECT_TERMS: dict[str, Any] = {
    "sensitive": "as:sensitive",
    "Hashtag": "as:Hashtag",
    "toot": "http://joinmastodon.org/ns#",
    "blurhash": "toot:blurhash",
    "focalPoint": {"@container": "@list", "@id": "toot:focalPoint"},
    "discoverable": "toot:discoverable",
    "indexable": "toot:indexable",
    "suspended": "toot:suspended",
    "featured": {"@id": "toot:featured", "@type": "@id"},
    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
    # Defined exactly as the Data Integrity contexts define it (protected there): a document
    # that also names one of those (to carry a proof) must not redefine it.
    "digestMultibase": {
        "@id": "https://w3id.org/security#digestMultibase",
        "@type": "https://w3id.org/security#multibase",
    },
    # A file's size in bytes: PeerTube's term, as FEP-1311 names it.
    "size": "https://joinpeertube.org/ns#size",
    "quote": {"@id": "https://w3id.org/fep/044f#quote", "@type": "@id"},
    "quoteUri": "http://fedibird.com/ns#quoteUri",
    "QuoteRequest": "https://w3id.org/fep/044f#QuoteRequest",
    "QuoteAuthorization": "https://w3id.org/fep/044f#QuoteAuthorization",
    "quoteAuthorization": {"@id": "https://w3id.org/fep/044f#quoteAuthorization", "@type": "@id"},
    "gts": "https://gotosocial.org/ns#",
    "interactionPolicy": {"@id": "gts:interactionPolicy", "@type": "@id"},
    "canQuote": {"@id": "gts:canQuote", "@type": "@id"},  # as FEP-044f and Mastodon define it
    "automaticApproval": {"@id": "gts:automaticApproval", "@type": "@id"},
    "manualApproval": {"@id": "gts:manualApproval", "@type": "@id"},
    "interactingObject": {"@id": "gts:interactingObject", "@type": "@id"},
    "interactionTarget": {"@id": "gts:interactionTarget", "@type": "@id"},
    "_misskey_quote": "https://misskey-hub.net/ns#_misskey_quote",
    "fedisora": FEDISORA_NS,
    "aiGenerated": "fedisora:aiGenerated",
    "provenance": {"@id": "fedisora:provenance", "@type": "@id"},
    "C2PAManifest": "fedisora:C2PAManifest",
    "manifestDigest": "fedisora:manifestDigest",
    "provenanceState": "fedisora:provenanceState",
    "VideoFingerprint": "fedisora:VideoFingerprint",
    "fingerprint": "fedisora:fingerprint",
    "frameRate": "fedisora:frameRate",
    "variants": "fedisora:variants",
    "pdqHashes": "fedisora:pdqHashes",
}
#: The terms of likeness consent objects (``activitypub.consent``,
#: docs/fep-likeness-consent.md): their own compact context, so that a signed grant does
#: not change whenever another term is added here; also part of :data:`OBJECT_TERMS`, so
#: that activities carrying a grant (``Accept{result}``) read the same way.
CONSENT_TERMS: dict[str, Any] = {
    "fedisora": FEDISORA_NS,
    "gts": "https://gotosocial.org/ns#",
    "interactingObject": {"@id": "gts:interactingObject", "@type": "@id"},
    "LikenessAuthorization": "fedisora:LikenessAuthorization",
    "LikenessRevocation": "fedisora:LikenessRevocation",
    "scope": "fedisora:scope",
    "restrictionsDigest": "fedisora:restrictionsDigest",
    "expires": {"@id": "fedisora:expires", "@type": "http://www.w3.org/2001/XMLSchema#dateTime"},
    "takeDown": "fedisora:takeDown",
    "maxUses": "fedisora:maxUses",
}
OBJECT_TERMS.update(CONSENT_TERMS)
OBJECT_TERMS.update(
    {
        # The activities around consent (docs/fep-likeness-consent.md, "Flows").
        "CameoRequest": "fedisora:CameoRequest",
        "LikenessUse": "fedisora:LikenessUse",
        "canCameo": {"@id": "fedisora:canCameo", "@type": "@id"},
        "acceptRestrictions": "fedisora:acceptRestrictions",
        # A clip's cameos: who is in it and the signed grant that lets the author publish it.
        "Cameo": "fedisora:Cameo",
        "cameos": {"@id": "fedisora:cameos", "@container": "@set"},
        "consent": {"@id": "fedisora:consent", "@type": "@id"},
    }
)
#: Terms of actor documents beyond those of the security and Multikey contexts: neither
#: defines ``assertionMethod`` (FEP-521a), and without it a JSON-LD reader sees no Ed25519
#: key at all. Defined as the DID and controlled-identifier contexts define it.
ACTOR_TERMS: dict[str, Any] = {
    "assertionMethod": {
        "@id": "https://w3id.org/security#assertionMethod",
        "@type": "@id",
        "@container": "@set",
    },
}
OBJECT_CONTEXT: list[Any] = [AS_CONTEXT, OBJECT_TERMS]
ACTOR_CONTEXT: list[Any] = [
    AS_CONTEXT,
    SECURITY_CONTEXT,
    MULTIKEY_CONTEXT,
    {**OBJECT_TERMS, **ACTOR_TERMS},
]

_MAX_TEXT = 100_000


class InvalidObject(ActivityPubError, ValueError):
    """A received object lacks what we need or has the wrong shape (answer 400 or ignore)."""


# --- small helpers ---------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    """``None`` -> ``[]``, a list stays, anything else becomes a one-item list."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


#: The longest id (URI) read: what an id column holds. A longer one names nothing we could
#: have stored, and is read as no id at all (so no lookup is ever made with it).
MAX_ID_LENGTH = 2048

#: The characters no text column takes, as a regular-expression class: NUL (PostgreSQL
#: refuses it) and unpaired UTF-16 surrogates (JSON can escape one, ``"\ud800"``, and
#: Python's JSON reader passes it on, but UTF-8 cannot encode it). Client input is refused
#: for more (see ``fedisora.boundary.text``); this is what any input is refused for.
UNSTORABLE_CHARS = "\x00\ud800-\udfff"
_UNSTORABLE = re.compile(f"[{UNSTORABLE_CHARS}]")


def id_of(value: Any) -> str | None:
    """The id of a reference: a string, or an object's ``id`` (``href`` for a Link); None
    when there is none, or it is over :data:`MAX_ID_LENGTH` characters or holds a character
    no database column takes (:data:`UNSTORABLE_CHARS`)."""
    if isinstance(value, Mapping):
        value = value.get("id") or value.get("href")
    if isinstance(value, str) and len(value) <= MAX_ID_LENGTH and not _UNSTORABLE.search(value):
        return value
    return None


def _reference(value: Any) -> str | None:
    """:func:`id_of` without its limits, for the parsers here: an over-long reference makes
    the object invalid (``_str`` says why) rather than read as absent (a reply read as a
    post, a remix as an original)."""
    if isinstance(value, Mapping):
        value = value.get("id") or value.get("href")
    return value if isinstance(value, str) else None


def has_unstorable(document: Any) -> bool:
    """Whether any string (key or value) of *document* holds a character no database column
    takes (:data:`UNSTORABLE_CHARS`): JSON can carry both a NUL (``\\u0000``) and a lone
    surrogate (``\\ud800``)."""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def same_origin(a: str, b: str) -> bool:
    """Whether two URLs have the same scheme, host and port (the ActivityPub origin rule)."""
    prefix = _origin_prefix(b)
    if prefix is not None and a.startswith(prefix):
        # Both begin with the same scheme, "://", authority and "/": the URL parser reads
        # the same origin from both, so only *b*'s (remembered) reading is needed.
        return _origin(b)[1] is not None
    first = _origin(a)
    return first[1] is not None and first == _origin(b)


@functools.lru_cache(maxsize=4096)
def _origin_prefix(url: str) -> str | None:
    """*url* up to and including the first "/" after its "://", if it has one."""
    start = url.find("://")
    if start < 0:
        return None
    end = url.find("/", start + 3)
    return None if end < 0 else url[: end + 1]


@functools.lru_cache(maxsize=4096)
def _origin(url: str) -> tuple[str, str | None, int | None]:
    """(Remembered: every inbox POST compares its ids with its actor's, and actors repeat.)"""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ("", None, None)
    scheme = parts.scheme.lower()
    return scheme, parts.hostname, port or {"https": 443, "http": 80}.get(scheme)


def with_context(document: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """*document* with ``@context`` first (the object context unless one is given)."""
    out: dict[str, Any] = {"@context": OBJECT_CONTEXT if context is None else context}
    out.update(document)
    return out


def digest_multibase(sha256_hex: str) -> str:
    """FEP-1311 ``digestMultibase``: base58btc multibase of the sha2-256 multihash."""
    raw = bytes.fromhex(sha256_hex)
    if len(raw) != 32:
        raise ValueError("a SHA-256 digest has 32 bytes")
    return "z" + b58encode(b"\x12\x20" + raw)


def iso_duration(seconds: float) -> str:
    """ISO 8601 duration as PeerTube and FEP-1311 write it: ``PT3.5S``."""
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"PT{text}S"


_DURATION_RE = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def parse_iso_duration(value: Any) -> float | None:
    """Seconds of an ISO 8601 duration such as ``PT1M3S``; None if absent or unreadable."""
    if not isinstance(value, str):
        return None
    match = _DURATION_RE.match(value.strip())
    if match is None or value.strip() in ("P", "PT"):
        return None
    days, hours, minutes, seconds = match.groups()
    return (int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60) + float(
        seconds or 0
    )


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0  # inside <script> or <style>: not text

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skipping += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "p" and self.parts:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self.skipping:
            self.skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(value: str) -> str:
    """Plain text of remote HTML (we never store a peer's markup; we re-render the text)."""
    parser = _TextExtractor()
    parser.feed(value[:_MAX_TEXT])
    parser.close()
    return "".join(parser.parts).strip()


# --- addressing ------------------------------------------------------------------------------


def addressing(
    visibility: str, followers: str, mentions: Sequence[str] = ()
) -> tuple[list[str], list[str]]:
    """``(to, cc)`` for a visibility (Mastodon's API names: public, unlisted, private, direct)."""
    mentioned = list(dict.fromkeys(mentions))
    if visibility == "public":
        return [PUBLIC], [followers, *mentioned]
    if visibility == "unlisted":
        return [followers], [PUBLIC, *mentioned]
    if visibility == "private":
        return [followers], mentioned
    if visibility == "direct":
        return mentioned, []
    raise ValueError(f"unknown visibility {visibility!r}")


def visibility_of(to: Iterable[Any], cc: Iterable[Any], followers: str | None) -> str:
    """The visibility a received object's addressing amounts to."""
    to_ids = {id_of(v) for v in to}
    cc_ids = {id_of(v) for v in cc}
    if to_ids & _PUBLIC_ALIASES:
        return "public"
    if cc_ids & _PUBLIC_ALIASES:
        return "unlisted"
    if followers is not None and followers in (to_ids | cc_ids):
        return "private"
    return "direct"


# --- actors ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActorInfo:
    id: str
    type: str
    username: str
    name: str
    summary: str
    url: str
    inbox: str
    outbox: str
    followers: str
    following: str
    featured: str
    shared_inbox: str
    public_key_id: str
    public_key_pem: str
    published: str
    ed25519_key_id: str | None = None
    ed25519_multibase: str | None = None
    icon_url: str | None = None
    image_url: str | None = None
    manually_approves_followers: bool = False
    discoverable: bool = True
    indexable: bool = True
    also_known_as: tuple[str, ...] = ()
    suspended: bool = False
    """Mastodon's ``toot:suspended``: the account is suspended by its server. Give the
    minimal profile with it (see :func:`actor_document`)."""


def _image(url: str | None) -> dict[str, str] | None:
    if not url:
        return None
    media_type = "image/png" if url.endswith(".png") else "image/jpeg"
    return {"type": "Image", "mediaType": media_type, "url": url}


def actor_document(actor: ActorInfo) -> dict[str, Any]:
    """An actor as Mastodon reads it, with the Ed25519 key as a FEP-521a Multikey.

    A suspended actor carries ``suspended: true``; the caller blanks its profile as Mastodon
    does (name = username, no summary, icon, image or aliases, not discoverable), keeping the
    ids, inboxes and keys so that peers can still verify its ``Update``s and refresh it."""
    doc: dict[str, Any] = {
        "@context": ACTOR_CONTEXT,
        "id": actor.id,
        "type": actor.type,
        "preferredUsername": actor.username,
        "name": actor.name,
        "summary": actor.summary,
        "url": actor.url,
        "inbox": actor.inbox,
        "outbox": actor.outbox,
        "followers": actor.followers,
        "following": actor.following,
        "featured": actor.featured,
        "endpoints": {"sharedInbox": actor.shared_inbox},
        "manuallyApprovesFollowers": actor.manually_approves_followers,
        "discoverable": actor.discoverable,
        "indexable": actor.indexable,
        "published": actor.published,
        "publicKey": {
            "id": actor.public_key_id,
            "owner": actor.id,
            "publicKeyPem": actor.public_key_pem,
        },
    }
    if actor.ed25519_key_id and actor.ed25519_multibase:
        doc["assertionMethod"] = [
            {
                "id": actor.ed25519_key_id,
                "type": "Multikey",
                "controller": actor.id,
                "publicKeyMultibase": actor.ed25519_multibase,
            }
        ]
    icon, image = _image(actor.icon_url), _image(actor.image_url)
    if icon:
        doc["icon"] = icon
    if image:
        doc["image"] = image
    if actor.also_known_as:
        doc["alsoKnownAs"] = list(actor.also_known_as)
    if actor.suspended:
        doc["suspended"] = True
    return doc


@dataclass(frozen=True)
class ParsedActor:
    id: str
    type: str
    username: str
    name: str
    summary_html: str
    url: str | None
    inbox: str
    shared_inbox: str | None
    outbox: str | None
    followers: str | None
    following: str | None
    featured: str | None
    public_key_id: str | None
    public_key_pem: str | None
    ed25519_multibase: str | None
    icon_url: str | None
    image_url: str | None
    manually_approves_followers: bool
    discoverable: bool
    indexable: bool
    suspended: bool = False
    """``toot:suspended``: its server suspended it (the profile fields are then blanked)."""
    also_known_as: tuple[str, ...] = ()
    """The accounts it says it also is (``alsoKnownAs``, at most :data:`MAX_ALIASES`)."""
    moved_to: str | None = None
    """The account it moved to (``movedTo``), as its server says."""


#: How many ``alsoKnownAs`` entries of an actor are read (Mastodon lets a user set a few).
MAX_ALIASES = 20


def _str(value: Any, name: str, *, required: bool = False, limit: int = 2048) -> str | None:
    if value is None or value == "":
        if required:
            raise InvalidObject(f"{name} is missing")
        return None
    if not isinstance(value, str):
        raise InvalidObject(f"{name} must be a string")
    if len(value) > limit:
        raise InvalidObject(f"{name} is too long")
    return value


def _bounded(value: Any, limit: int = 2048) -> str | None:
    """A string that fits its column, or None (an over-long optional value is dropped)."""
    return value if isinstance(value, str) and len(value) <= limit else None


def web_url(value: str | None) -> str | None:
    """*value* if it is an absolute ``http``/``https`` URL that fits its column, else None.

    A peer may put any string where a URL goes (``javascript:``, ``data:``); these end up in
    clients' links, images and players, so nothing else is kept.
    """
    if value is None or len(value) > 2048 or not value.isprintable() or " " in value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return value


def _url_of(value: Any) -> str | None:
    """``url`` may be a string, a Link, an Image or a list of them."""
    for item in as_list(value):
        if isinstance(item, str):
            return item
        if isinstance(item, Mapping):
            found = item.get("href") or item.get("url")
            if isinstance(found, str):
                return found
            nested = _url_of(found)
            if nested:
                return nested
    return None


def parse_actor(doc: Mapping[str, Any]) -> ParsedActor:
    """Read a remote actor; raises :class:`InvalidObject` if it cannot be one."""
    actor_id = _str(doc.get("id"), "id", required=True)
    assert actor_id is not None
    kind = doc.get("type")
    if kind not in ("Person", "Service", "Group", "Application", "Organization"):
        raise InvalidObject(f"{kind!r} is not an actor type")
    inbox = _str(doc.get("inbox"), "inbox", required=True)
    assert inbox is not None
    username = _str(doc.get("preferredUsername"), "preferredUsername", limit=255)
    if not username:
        username = urlsplit(actor_id).path.rstrip("/").rsplit("/", 1)[-1] or "unknown"
    key = doc.get("publicKey")
    key = next((k for k in as_list(key) if isinstance(k, Mapping)), None)
    key_id = _str(key.get("id"), "publicKey.id") if key else None
    pem = _str(key.get("publicKeyPem"), "publicKeyPem", limit=20000) if key else None
    if key and key.get("owner") not in (None, actor_id):
        raise InvalidObject("publicKey.owner is not the actor")
    multibase = None
    for method in as_list(doc.get("assertionMethod")):
        if isinstance(method, Mapping) and method.get("type") == "Multikey":
            value = method.get("publicKeyMultibase")
            if isinstance(value, str) and value.startswith("z6Mk"):  # ed25519-pub
                multibase = value
                break
    endpoints = doc.get("endpoints")
    shared = endpoints.get("sharedInbox") if isinstance(endpoints, Mapping) else None
    name = doc.get("name")
    summary = doc.get("summary")
    return ParsedActor(
        id=actor_id,
        type=str(kind),
        username=username[:64],
        name=(name if isinstance(name, str) else "")[:100],
        summary_html=summary if isinstance(summary, str) else "",
        url=web_url(_url_of(doc.get("url"))),
        inbox=inbox,
        shared_inbox=shared if isinstance(shared, str) else None,
        outbox=_str(_reference(doc.get("outbox")), "outbox"),
        followers=_str(_reference(doc.get("followers")), "followers"),
        following=_str(_reference(doc.get("following")), "following"),
        featured=_str(_reference(doc.get("featured")), "featured"),
        public_key_id=key_id,
        public_key_pem=pem,
        ed25519_multibase=multibase,
        icon_url=web_url(_url_of(doc.get("icon"))),
        image_url=web_url(_url_of(doc.get("image"))),
        manually_approves_followers=doc.get("manuallyApprovesFollowers") is True,
        discoverable=doc.get("discoverable") is not False,
        indexable=doc.get("indexable") is True,
        suspended=doc.get("suspended") is True,
        also_known_as=tuple(_aliases(doc.get("alsoKnownAs"))),
        moved_to=_str(id_of(doc.get("movedTo")), "movedTo"),
    )


def _aliases(value: Any) -> list[str]:
    """The distinct http(s) URIs among ``alsoKnownAs`` (a string, an object or a list)."""
    aliases: list[str] = []
    for item in as_list(value):
        uri = id_of(item)  # within MAX_ID_LENGTH
        if uri is not None and uri.startswith(("https://", "http://")) and uri not in aliases:
            aliases.append(uri)
            if len(aliases) == MAX_ALIASES:
                break
    return aliases


# --- clips and comments ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProvenanceInfo:
    """What the instance checked about a video's C2PA manifest."""

    manifest_digest: str | None
    state: str  # trusted | valid | unverified | invalid


@dataclass(frozen=True)
class VideoInfo:
    url: str
    media_type: str = "video/mp4"
    name: str = ""
    width: int | None = None
    height: int | None = None
    blurhash: str | None = None
    poster_url: str | None = None
    size: int | None = None
    duration: float | None = None
    sha256_hex: str | None = None
    ai_generated: bool = True
    provenance: ProvenanceInfo | None = None
    fps: float | None = None
    poster_width: int | None = None
    poster_height: int | None = None
    fingerprint: FingerprintInfo | None = None


@dataclass(frozen=True)
class FingerprintInfo:
    """A video's perceptual fingerprint as it federates (the ``fingerprint`` property)."""

    pdq_hashes: str
    """Hex of the packed 32-byte PDQ hashes, *variants* per sample, in time order."""
    frame_rate: float
    variants: int


#: The longest ``pdqHashes`` read (a minute at 8 samples per second, 3 hashes each).
MAX_FINGERPRINT_HEX = 60 * 8 * 3 * 64


@dataclass(frozen=True)
class CameoInfo:
    """A person in a clip: their actor, how to name them (``@user@domain``, the Mention's
    ``name``), their profile page, and the signed grant that lets the author publish it."""

    actor: str
    name: str
    consent: Mapping[str, Any]
    url: str | None = None


@dataclass(frozen=True)
class NoteInfo:
    id: str
    attributed_to: str
    content: str
    published: str
    to: Sequence[str]
    cc: Sequence[str]
    url: str | None = None
    summary: str = ""
    sensitive: bool = False
    language: str | None = None
    updated: str | None = None
    video: VideoInfo | None = None
    hashtags: Sequence[tuple[str, str]] = ()  # (name without '#', href)
    mentions: Sequence[tuple[str, str]] = ()  # (actor id, "@user@domain")
    in_reply_to: str | None = None
    quote: str | None = None
    replies: str | None = None
    likes: str | None = None
    shares: str | None = None
    ai_generated: bool | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    cameos: Sequence[CameoInfo] = ()


def _provenance(prov: ProvenanceInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "C2PAManifest", "provenanceState": prov.state}
    if prov.manifest_digest:
        out["manifestDigest"] = prov.manifest_digest
    return out


def _attachment(video: VideoInfo) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": "Document",
        "mediaType": video.media_type,
        "url": video.url,
        "name": video.name or None,
        "aiGenerated": video.ai_generated,
    }
    for key, value in (
        ("width", video.width),
        ("height", video.height),
        ("blurhash", video.blurhash),
        ("size", video.size),
    ):
        if value is not None:
            doc[key] = value
    if video.duration is not None:
        doc["duration"] = iso_duration(video.duration)
    if video.sha256_hex:
        doc["digestMultibase"] = digest_multibase(video.sha256_hex)
    if video.poster_url:
        doc["icon"] = {"type": "Image", "mediaType": "image/jpeg", "url": video.poster_url}
    if video.provenance is not None:
        doc["provenance"] = _provenance(video.provenance)
    if video.fingerprint is not None:
        doc["fingerprint"] = fingerprint_document(video.fingerprint)
    return doc


def fingerprint_document(fingerprint: FingerprintInfo) -> dict[str, Any]:
    return {
        "type": "VideoFingerprint",
        "frameRate": fingerprint.frame_rate,
        "variants": fingerprint.variants,
        "pdqHashes": fingerprint.pdq_hashes,
    }


def parse_fingerprint(value: Any) -> FingerprintInfo | None:
    """A received ``fingerprint``; None when it is absent or malformed (a clip is stored
    without it rather than refused: it is an extension)."""
    if not isinstance(value, Mapping) or value.get("type") != "VideoFingerprint":
        return None
    hashes, rate, variants = value.get("pdqHashes"), value.get("frameRate"), value.get("variants")
    if not isinstance(hashes, str) or not 0 < len(hashes) <= MAX_FINGERPRINT_HEX:
        return None
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 120:
        return None
    if isinstance(variants, bool) or not isinstance(variants, int) or not 1 <= variants <= 8:
        return None
    if len(hashes) % (64 * variants) or not _HEX.fullmatch(hashes):
        return None
    return FingerprintInfo(pdq_hashes=hashes.lower(), frame_rate=float(rate), variants=variants)


_HEX = re.compile(r"[0-9a-fA-F]+")


def note_document(note: NoteInfo, *, context: bool = True) -> dict[str, Any]:
    """A clip (with ``video``) or a comment (with ``in_reply_to``) as a ``Note``."""
    doc: dict[str, Any] = {
        "id": note.id,
        "type": "Note",
        "attributedTo": note.attributed_to,
        "published": note.published,
        "to": list(note.to),
        "cc": list(note.cc),
        "content": note.content,
        "summary": note.summary or None,
        "sensitive": note.sensitive,
        "inReplyTo": note.in_reply_to,
        "url": note.url or note.id,
    }
    if note.updated:
        doc["updated"] = note.updated
    tags: list[dict[str, Any]] = [
        {"type": "Hashtag", "href": href, "name": f"#{name}"} for name, href in note.hashtags
    ]
    tags += [{"type": "Mention", "href": href, "name": name} for href, name in note.mentions]
    content = note.content
    if note.cameos:
        named = {href for href, _ in note.mentions}
        tags += [
            {"type": "Mention", "href": c.actor, "name": c.name}
            for c in note.cameos
            if c.actor not in named
        ]
        doc["cameos"] = [cameo_document(c) for c in note.cameos]
        content = _with_cameo_names(content, note.cameos)
        doc["content"] = content
    if note.quote:
        doc["quote"] = note.quote
        # FEP-e232 fallback for servers that do not know FEP-044f.
        tags.append(
            {
                "type": "Link",
                "mediaType": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
                "href": note.quote,
                "name": f"RE: {note.quote}",
                "rel": "https://misskey-hub.net/ns#_misskey_quote",
            }
        )
    doc["tag"] = tags
    if note.language:
        doc["contentMap"] = {note.language: content}
    if note.video is not None:
        doc["attachment"] = [_attachment(note.video)]
        doc["aiGenerated"] = note.video.ai_generated
        if note.video.provenance is not None:
            doc["provenance"] = _provenance(note.video.provenance)
    else:
        doc["attachment"] = []
    if note.ai_generated is not None:
        doc["aiGenerated"] = note.ai_generated
    for key, value in (("replies", note.replies), ("likes", note.likes), ("shares", note.shares)):
        if value:
            doc[key] = value
    doc.update(note.extra)
    return with_context(doc) if context else doc


#: The most cameos a clip may carry (a clip naming more is refused, not trimmed).
MAX_CAMEOS = 8


def cameo_document(cameo: CameoInfo) -> dict[str, Any]:
    """One entry of a clip's ``cameos``: the person (``actor``) and, embedded, the signed
    ``LikenessAuthorization`` (``consent``, whose ``id`` is the grant's) it was made under."""
    return {"type": "Cameo", "actor": cameo.actor, "consent": dict(cameo.consent)}


def _with_cameo_names(content: str, cameos: Sequence[CameoInfo]) -> str:
    """*content* naming the people in the clip (Mastodon's mention markup), for servers that
    know nothing of cameos: a last paragraph "With @a@x, @b@y" for those the caption does
    not link to already."""
    missing = [c for c in cameos if c.actor not in content and (c.url or c.actor) not in content]
    if not missing:
        return content
    links = ", ".join(
        '<span class="h-card" translate="no"><a href="{href}" class="u-url mention">@<span>'
        "{user}</span></a></span>".format(
            href=_escape_attr(c.url or c.actor), user=_escape_text(c.name.lstrip("@").split("@")[0])
        )
        for c in missing
    )
    return f"{content}<p>With {links}</p>"


def _escape_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attr(value: str) -> str:
    return _escape_text(value).replace('"', "&quot;")


#: PeerTube's terms, for the ``Video`` representation of a clip.
VIDEO_TERMS: dict[str, Any] = {
    "pt": "https://joinpeertube.org/ns#",
    "sc": "http://schema.org/",
    "uuid": "sc:identifier",
    "commentsEnabled": "pt:commentsEnabled",
    "downloadEnabled": "pt:downloadEnabled",
    "waitTranscoding": "pt:waitTranscoding",
    "isLiveBroadcast": "sc:isLiveBroadcast",
    "size": "pt:size",
    "comments": {"@id": "as:comments", "@type": "@id"},
    "fps": "pt:fps",
    "aspectRatio": "pt:aspectRatio",
    "state": "pt:state",
    "language": "sc:inLanguage",
    "identifier": "sc:identifier",
}
VIDEO_TITLE_LIMIT = 120


def _title(note: NoteInfo) -> str:
    text = " ".join(html_to_text(note.content).split())
    if not text:
        return "clip"
    if len(text) <= VIDEO_TITLE_LIMIT:
        return text
    return text[: VIDEO_TITLE_LIMIT - 1].rstrip() + "\u2026"


def video_document(note: NoteInfo, *, context: bool = True) -> dict[str, Any]:
    """A clip as PeerTube describes its videos: a ``Video`` with an ISO 8601 ``duration``,
    ``url`` as a list of Links (the HTML page, then the file with mediaType, width, height,
    size and fps) and ``icon`` as a list of Images. The ``Note`` stays the default
    representation; this one is for PeerTube peers. Raises ``ValueError`` without a video."""
    video = note.video
    if video is None:
        raise ValueError("a Video representation needs the clip's video")
    file_link: dict[str, Any] = {"type": "Link", "mediaType": video.media_type, "href": video.url}
    for key, value in (
        ("width", video.width),
        ("height", video.height),
        ("size", video.size),
        ("fps", video.fps),
    ):
        if value is not None:
            file_link[key] = value
    if video.sha256_hex:
        file_link["digestMultibase"] = digest_multibase(video.sha256_hex)
    doc: dict[str, Any] = {
        "id": note.id,
        "type": "Video",
        "name": _title(note),
        "duration": iso_duration(video.duration or 0.0),
        "attributedTo": [{"type": "Person", "id": note.attributed_to}],
        "published": note.published,
        "updated": note.updated or note.published,
        "to": list(note.to),
        "cc": list(note.cc),
        "mediaType": "text/html",
        "content": note.content,
        "summary": note.summary or None,
        "sensitive": note.sensitive,
        "commentsEnabled": True,
        "downloadEnabled": True,
        "waitTranscoding": False,
        "isLiveBroadcast": False,
        "state": 1,
        "url": [
            {"type": "Link", "mediaType": "text/html", "href": note.url or note.id},
            file_link,
        ],
        "tag": [{"type": "Hashtag", "href": href, "name": name} for name, href in note.hashtags],
        "aiGenerated": video.ai_generated,
    }
    if video.width and video.height:
        doc["aspectRatio"] = round(video.width / video.height, 4)
    if note.language:
        doc["language"] = {"identifier": note.language, "name": note.language}
    if video.poster_url:
        icon: dict[str, Any] = {"type": "Image", "mediaType": "image/jpeg", "url": video.poster_url}
        if video.poster_width and video.poster_height:
            icon["width"], icon["height"] = video.poster_width, video.poster_height
        elif video.width and video.height:
            icon["width"], icon["height"] = video.width, video.height
        doc["icon"] = [icon]
    else:
        doc["icon"] = []
    if video.provenance is not None:
        doc["provenance"] = _provenance(video.provenance)
    for key, link in (("comments", note.replies), ("likes", note.likes), ("shares", note.shares)):
        if link:
            doc[key] = link
    return with_context(doc, [AS_CONTEXT, {**OBJECT_TERMS, **VIDEO_TERMS}]) if context else doc


def tombstone(
    object_id: str, former_type: str = "Note", deleted: str | None = None
) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": object_id, "type": "Tombstone", "formerType": former_type}
    if deleted:
        doc["deleted"] = deleted
    return doc


def quote_authorization(stamp_id: str, author: str, quoting: str, quoted: str) -> dict[str, Any]:
    """FEP-044f: *author* allows the post *quoting* to quote their post *quoted*."""
    return with_context(
        {
            "id": stamp_id,
            "type": "QuoteAuthorization",
            "attributedTo": author,
            "interactingObject": quoting,
            "interactionTarget": quoted,
        }
    )


def stamp_of(obj: Mapping[str, Any]) -> str | None:
    """The ``quoteAuthorization`` a received Note presents: an http(s) URL, or None."""
    return web_url(id_of(obj.get("quoteAuthorization")))


def stamp_mismatch(doc: Any, *, stamp: str, author: str, quoting: str, quoted: str) -> str | None:
    """Why *doc* (fetched from *stamp*) does not authorize *quoting* to quote *quoted* by
    *author*, or None when it does (FEP-044f, "Verifying a QuoteAuthorization")."""
    if not isinstance(doc, Mapping):
        return "the stamp is not a JSON object"
    if doc.get("id") != stamp:
        return f"the document at {stamp} is not that stamp (its id is {doc.get('id')!r})"
    if "QuoteAuthorization" not in as_list(doc.get("type")):
        return f"{stamp} is not a QuoteAuthorization"
    checks = (
        ("attributedTo", author, "the quoted clip's author"),
        ("interactingObject", quoting, "this remix"),
        ("interactionTarget", quoted, "the quoted clip"),
    )
    for key, expected, what in checks:
        found = id_of(doc.get(key))
        if found != expected:
            return f"the stamp's {key} is {found!r}, not {what}"
    return None


def activity(
    kind: str,
    activity_id: str,
    actor: str,
    obj: Any,
    *,
    to: Sequence[str] = (),
    cc: Sequence[str] = (),
    context: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """An activity (Create, Update, Delete, Like, Announce, Follow, Accept, Reject, Undo,
    Block...). Nested activities (the object of Undo/Accept) should pass ``context=False``."""
    doc: dict[str, Any] = {"id": activity_id, "type": kind, "actor": actor, "object": obj}
    if to:
        doc["to"] = list(to)
    if cc:
        doc["cc"] = list(cc)
    doc.update(extra)
    return with_context(doc) if context else doc


def collection(
    collection_id: str,
    total: int,
    *,
    items: Sequence[Any] | None = None,
    first: str | None = None,
    ordered: bool = True,
    part_of: str | None = None,
    next_page: str | None = None,
) -> dict[str, Any]:
    """A (page of an) OrderedCollection; pages set *part_of*."""
    if part_of is not None:
        kind = "OrderedCollectionPage" if ordered else "CollectionPage"
    else:
        kind = "OrderedCollection" if ordered else "Collection"
    doc: dict[str, Any] = {"id": collection_id, "type": kind, "totalItems": total}
    if part_of is not None:
        doc["partOf"] = part_of
    if first is not None:
        doc["first"] = first
    if items is not None:
        doc["orderedItems" if ordered else "items"] = list(items)
    if next_page is not None:
        doc["next"] = next_page
    return with_context(doc, AS_CONTEXT)


# --- parsing received notes ------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedVideo:
    url: str
    media_type: str
    name: str
    width: int | None
    height: int | None
    blurhash: str | None
    poster_url: str | None
    size: int | None
    duration: float | None
    digest_multibase: str | None
    ai_generated: bool | None
    manifest_digest: str | None
    fingerprint: FingerprintInfo | None = None


@dataclass(frozen=True)
class ParsedCameo:
    """One entry of a received clip's ``cameos``. ``problem`` says why it cannot be a valid
    consent (a malformed entry is kept, so that the clip is refused rather than shown with
    the cameo silently dropped); the consent itself is checked by the receiver
    (:func:`activitypub.consent.verify_grant`)."""

    actor: str | None
    consent_id: str | None
    consent: Mapping[str, Any] | None
    problem: str = ""


@dataclass(frozen=True)
class ParsedNote:
    id: str
    type: str
    attributed_to: str
    content_html: str
    summary: str
    sensitive: bool
    published: str | None
    url: str | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    language: str | None
    in_reply_to: str | None
    quote: str | None
    hashtags: tuple[str, ...]
    mentions: tuple[str, ...]
    video: ParsedVideo | None
    ai_generated: bool | None
    manifest_digest: str | None
    cameos: tuple[ParsedCameo, ...] = ()


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if 0 <= value < 2**53 else None


def _video_link(links: Any) -> tuple[str, str, dict[str, Any]] | None:
    """The best video/mp4 URL in a PeerTube-style ``url`` list (the largest height)."""
    best: tuple[int, str, str, dict[str, Any]] | None = None
    for link in as_list(links):
        if isinstance(link, str):
            continue
        if not isinstance(link, Mapping):
            continue
        media_type = link.get("mediaType")
        href = link.get("href")
        if not isinstance(href, str) or not isinstance(media_type, str):
            continue
        if not media_type.startswith("video/"):
            continue
        height = _int(link.get("height")) or 0
        if best is None or (media_type == "video/mp4", height) > (best[2] == "video/mp4", best[0]):
            best = (height, href, media_type, dict(link))
    return None if best is None else (best[1], best[2], best[3])


def _provenance_digest(value: Any) -> str | None:
    if isinstance(value, Mapping):
        digest = value.get("manifestDigest")
        return digest if isinstance(digest, str) and len(digest) <= 200 else None
    return None


def _parse_video_attachment(obj: Mapping[str, Any]) -> ParsedVideo | None:
    for item in as_list(obj.get("attachment")):
        if not isinstance(item, Mapping) or item.get("type") not in ("Document", "Video"):
            continue
        media_type = item.get("mediaType")
        url = item.get("url")
        link_fields: dict[str, Any] = {}
        if not isinstance(url, str):
            found = _video_link(url)
            if found is None:
                continue
            url, media_type, link_fields = found
        if not isinstance(media_type, str) or not media_type.startswith("video/"):
            continue
        return _video(item, url, media_type, link_fields)
    if obj.get("type") == "Video":  # PeerTube: the object itself is the video
        found = _video_link(obj.get("url"))
        if found is not None:
            url, media_type, link_fields = found
            return _video(obj, url, media_type, link_fields)
    return None


def _video(
    item: Mapping[str, Any], url: str, media_type: str, link: Mapping[str, Any]
) -> ParsedVideo:
    if len(url) > 2048 or len(media_type) > 100:
        raise InvalidObject("video URL or media type is too long")
    if web_url(url) is None:
        raise InvalidObject("the video URL is not an http(s) URL")
    icons = [i for i in as_list(item.get("icon")) if isinstance(i, Mapping)]
    poster = _url_of(icons[0]) if icons else None
    name = item.get("name")
    ai = item.get("aiGenerated")
    return ParsedVideo(
        url=url,
        media_type=media_type,
        name=name[:1500] if isinstance(name, str) else "",
        width=_int(item.get("width")) or _int(link.get("width")),
        height=_int(item.get("height")) or _int(link.get("height")),
        blurhash=_bounded(item.get("blurhash"), 100),
        poster_url=web_url(poster),
        size=_int(item.get("size")) or _int(link.get("size")),
        duration=parse_iso_duration(item.get("duration")),
        digest_multibase=(
            item["digestMultibase"] if isinstance(item.get("digestMultibase"), str) else None
        ),
        ai_generated=ai if isinstance(ai, bool) else None,
        manifest_digest=_provenance_digest(item.get("provenance")),
        fingerprint=parse_fingerprint(item.get("fingerprint")),
    )


def _quote(obj: Mapping[str, Any]) -> str | None:
    for key in ("quote", "quoteUrl", "quoteUri", "_misskey_quote"):
        value = _reference(obj.get(key))
        if value:
            return value
    for tag in as_list(obj.get("tag")):
        if isinstance(tag, Mapping) and tag.get("type") == "Link":
            rel = as_list(tag.get("rel"))
            media_type = str(tag.get("mediaType", ""))
            if (
                "https://misskey-hub.net/ns#_misskey_quote" in rel
                or "activitystreams" in (media_type)
                or media_type == "application/activity+json"
            ):
                href = tag.get("href")
                if isinstance(href, str):
                    return href
    return None


def parse_note(obj: Mapping[str, Any]) -> ParsedNote:
    """Read a received ``Note`` (or PeerTube ``Video``); raises :class:`InvalidObject`."""
    kind = obj.get("type")
    if kind not in ("Note", "Video", "Article", "Page", "Question"):
        raise InvalidObject(f"unsupported object type {kind!r}")
    object_id = _str(obj.get("id"), "id", required=True)
    assert object_id is not None
    attributed = [_reference(a) for a in as_list(obj.get("attributedTo"))]
    if kind == "Video":  # PeerTube attributes to [Person, Group channel]; the Person posts
        people = [
            _reference(a)
            for a in as_list(obj.get("attributedTo"))
            if isinstance(a, Mapping) and a.get("type") == "Person"
        ]
        attributed = people or attributed
    author = _str(next((a for a in attributed if a), None), "attributedTo", required=True)
    assert author is not None
    content = obj.get("content")
    content_map = obj.get("contentMap")
    language = None
    if isinstance(content_map, Mapping) and content_map:
        language, mapped = next(iter(content_map.items()))
        if not isinstance(content, str) and isinstance(mapped, str):
            content = mapped
        language = language if isinstance(language, str) and len(language) <= 16 else None
    if kind == "Video" and not isinstance(content, str):
        content = obj.get("name") if isinstance(obj.get("name"), str) else ""
    if not isinstance(content, str):
        content = ""
    if len(content) > _MAX_TEXT:
        raise InvalidObject("content is too long")
    summary = obj.get("summary")
    hashtags: list[str] = []
    mentions: list[str] = []
    for tag in as_list(obj.get("tag")):
        if not isinstance(tag, Mapping):
            continue
        name = tag.get("name")
        if tag.get("type") == "Hashtag" and isinstance(name, str):
            cleaned = name.lstrip("#").lower()
            if cleaned and len(cleaned) <= 100:
                hashtags.append(cleaned)
        elif tag.get("type") == "Mention" and isinstance(tag.get("href"), str):
            mentions.append(tag["href"])
    ai = obj.get("aiGenerated")
    video = _parse_video_attachment(obj)
    return ParsedNote(
        id=object_id,
        type=str(kind),
        attributed_to=author,
        content_html=content,
        summary=summary[:500] if isinstance(summary, str) else "",
        sensitive=obj.get("sensitive") is True,
        published=obj["published"] if isinstance(obj.get("published"), str) else None,
        url=web_url(_url_of(obj.get("url"))) if kind != "Video" else web_url(object_id),
        to=tuple(i for i in (id_of(v) for v in as_list(obj.get("to"))) if i),
        cc=tuple(i for i in (id_of(v) for v in as_list(obj.get("cc"))) if i),
        language=language,
        in_reply_to=_str(_reference(obj.get("inReplyTo")), "inReplyTo"),
        quote=_bounded(_quote(obj)),
        hashtags=tuple(dict.fromkeys(hashtags)),
        mentions=tuple(dict.fromkeys(mentions)),
        video=video,
        ai_generated=ai if isinstance(ai, bool) else (video.ai_generated if video else None),
        manifest_digest=_provenance_digest(obj.get("provenance"))
        or (video.manifest_digest if video else None),
        cameos=parse_cameos(obj),
    )


def parse_cameos(obj: Mapping[str, Any]) -> tuple[ParsedCameo, ...]:
    """The ``cameos`` of a received clip, each with its embedded consent (or only the
    consent's id); a malformed entry (or too many) comes back with a ``problem``, never
    dropped. No consent is verified here."""
    if "cameos" not in obj or obj.get("cameos") is None:
        return ()
    raw = obj["cameos"]
    entries = raw if isinstance(raw, list) else [raw]
    if len(entries) > MAX_CAMEOS:
        return (ParsedCameo(None, None, None, f"more than {MAX_CAMEOS} cameos"),)
    out: list[ParsedCameo] = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            out.append(ParsedCameo(None, None, None, "a cameo that is not an object"))
            continue
        actor = _bounded(_reference(entry.get("actor")))
        consent = entry.get("consent")
        document = consent if isinstance(consent, Mapping) else None
        consent_id = _bounded(_reference(consent))
        problem = ""
        if not actor:
            problem = "a cameo without an actor"
        elif not consent_id:
            problem = f"the cameo of {actor} carries no consent"
        out.append(ParsedCameo(actor, consent_id, document, problem))
    return tuple(out)
