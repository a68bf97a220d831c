"""Judging a remote clip's video: pure checks of what was downloaded against what was federated.

A remote clip is labelled ``verified`` only when its file carries a C2PA manifest that chains
to a root its origin instance publishes (its current root or one it retired; see
:mod:`fedisora.federation.provenance_root`) or to a root this instance trusts, names that
instance as its maker, says the video is AI-generated, was made for the clip's author, and is
the manifest (and the file) the note announced. A file without a manifest (any Mastodon,
PeerTube or Loops video) is ``unverified``; a manifest that fails any of these checks, or a
file that is not the one announced, is ``invalid``.

No I/O here: the caller downloads the file, runs :func:`render.provenance.verify_mp4` and
passes its result in. Tested with fixed vectors and real signed files.
"""

from __future__ import annotations

import base64
import enum
import struct
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from activitypub._base58 import b58decode
from render.provenance import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
    ValidationState,
    VerificationResult,
)

__all__ = [
    "AI_SOURCE_TYPES",
    "CHECK_GAVE_UP",
    "FETCH_FAILED",
    "NO_C2PA_DATA",
    "Expected",
    "Label",
    "Verdict",
    "has_c2pa_box",
    "judge_file",
    "judge_manifest",
    "origin_of",
    "public_reason",
    "sha256_of_multibase",
]

AI_SOURCE_TYPES = frozenset({TRAINED_ALGORITHMIC_MEDIA, COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA})
_C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")
_DEFAULT_PORTS = {"http": 80, "https": 443}


FETCH_FAILED = "the video could not be fetched from its server"
CHECK_GAVE_UP = "the video could not be fetched from its server (tried for a day)"
NO_C2PA_DATA = "no readable C2PA data in the file"
"""The reasons of a check that could not read the file. A label's reason is public (clip
pages, the API's ``provenance_reason``): why a fetch failed (a DNS answer, a refused address,
a peer's error, a temporary file's path) is only logged, or it would make every clip an
oracle of this server's lookups."""

_INTERNAL_PREFIXES = (
    ("the video could not be fetched", FETCH_FAILED),
    ("the video could not be checked", CHECK_GAVE_UP),
    (NO_C2PA_DATA, NO_C2PA_DATA),
)


def public_reason(reason: str) -> str:
    """*reason* as anyone may read it: a reason stored before reasons were made public-safe
    (it carried the fetch's error after these words) is shown as its fixed text."""
    for prefix, public in _INTERNAL_PREFIXES:
        if reason.startswith(prefix):
            return public
    return reason


class Label(enum.StrEnum):
    """The provenance label a remote clip's video gets (``MediaFile.provenance["state"]``)."""

    VERIFIED = "verified"
    UNVERIFIED = "unverified"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Expected:
    """What the clip's note announced about its video, and where the clip comes from."""

    origin: str
    """The clip's origin instance: ``host`` or ``host:port`` of its author's actor URI."""
    author_uri: str
    manifest_digest: str | None = None
    """The ``manifestDigest`` the note federated (hex sha256 of the manifest store)."""
    sha256_hex: str | None = None
    """The file's sha256 from the note's ``digestMultibase``, when it gave one."""
    size: int | None = None
    """The file's size in bytes from the note, when it gave one."""


@dataclass(frozen=True, slots=True)
class Verdict:
    label: Label
    reason: str


def origin_of(uri: str) -> str:
    """``host`` or ``host:port`` of *uri*, lowercased, without the scheme's default port."""
    parts = urlsplit(uri)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        return host
    if port is None or port == _DEFAULT_PORTS.get(parts.scheme.lower()):
        return host
    return f"{host}:{port}"


def _same_instance(claimed: str, origin: str) -> bool:
    """Whether a claim's ``instance`` (an instance's configured domain) names *origin*."""
    claimed = claimed.strip().lower()
    if claimed == origin:
        return True
    for port in _DEFAULT_PORTS.values():  # "example.org:443" names example.org
        if claimed == f"{origin}:{port}":
            return True
    return False


def sha256_of_multibase(value: str | None) -> str | None:
    """The hex sha256 in a FEP-1311 ``digestMultibase`` (a sha2-256 multihash, multibase
    ``z`` base58btc or ``u`` base64url), or None when there is none we can read."""
    if not value or len(value) > 200:
        return None
    try:
        if value[0] == "z":
            raw = b58decode(value[1:])
        elif value[0] == "u":
            raw = base64.urlsafe_b64decode(value[1:] + "=" * (-len(value[1:]) % 4))
        else:
            return None
    except ValueError:
        return None
    if len(raw) != 34 or raw[:2] != b"\x12\x20":
        return None
    return raw[2:].hex()


def has_c2pa_box(path: Path | str) -> bool:
    """Whether the MP4 at *path* has a top-level C2PA ``uuid`` box (reads box headers only)."""
    with open(path, "rb") as file:
        file.seek(0, 2)
        end = file.tell()
        pos = 0
        while pos + 8 <= end:
            file.seek(pos)
            header = file.read(24)
            if len(header) < 8:
                return False
            size, kind = struct.unpack_from(">I4s", header)
            body = 8
            if size == 1:
                if len(header) < 16:
                    return False
                (size,) = struct.unpack_from(">Q", header, 8)
                body = 16
            elif size == 0:
                size = end - pos
            if size < body:
                return False
            if kind == b"uuid" and header[body : body + 16] == _C2PA_UUID:
                return True
            pos += size
    return False


def _bare_digest(digest: str) -> str:
    digest = digest.strip().lower()
    return digest.removeprefix("sha256:").removeprefix("sha256-")


def judge_file(size: int, sha256_hex: str, expected: Expected) -> Verdict | None:
    """An ``invalid`` verdict when the downloaded file is not the one the note announced."""
    if expected.size is not None and expected.size != size:
        return Verdict(
            Label.INVALID, f"the file has {size} bytes; the note announced {expected.size}"
        )
    if expected.sha256_hex is not None and expected.sha256_hex.lower() != sha256_hex.lower():
        return Verdict(Label.INVALID, "the file does not match the note's digestMultibase")
    return None


def judge_manifest(result: VerificationResult, expected: Expected) -> Verdict:
    """The label for a file whose C2PA validation gave *result*.

    *result* must come from validating against this instance's trusted roots plus the roots
    the clip's origin publishes, so ``Trusted`` means "signed under one of those"; the claim
    must then name the origin, so a root counts only for the instance publishing it.
    """
    if result.state is ValidationState.MISSING:
        if expected.manifest_digest:
            return Verdict(
                Label.INVALID, "the note announced a C2PA manifest but the file carries none"
            )
        return Verdict(Label.UNVERIFIED, "the file carries no C2PA provenance manifest")
    if result.state is ValidationState.INVALID:
        failures = ", ".join(result.failures) or "the signature or hashes do not match"
        return Verdict(Label.INVALID, f"the C2PA manifest does not validate ({failures})")
    if result.state is not ValidationState.TRUSTED:
        return Verdict(
            Label.INVALID,
            f"the manifest is signed by {result.signer or 'an unknown signer'}, not under the "
            f"root {expected.origin} publishes or a root this server trusts",
        )
    claim = result.claim
    if claim is None:
        return Verdict(Label.INVALID, "the manifest has no fedisora render assertion")
    if not _same_instance(claim.instance, expected.origin):
        return Verdict(
            Label.INVALID,
            f"the manifest says {claim.instance!r} rendered it; the clip is from "
            f"{expected.origin!r}",
        )
    if result.digital_source_type not in AI_SOURCE_TYPES:
        return Verdict(
            Label.INVALID,
            f"the manifest's digitalSourceType is {result.digital_source_type!r}, "
            "not trained algorithmic media",
        )
    if claim.creator is not None and claim.creator != expected.author_uri:
        return Verdict(
            Label.INVALID,
            f"the manifest says it was rendered for {claim.creator}, not the clip's author",
        )
    if expected.manifest_digest and (
        result.manifest_digest is None
        or _bare_digest(expected.manifest_digest) != result.manifest_digest.lower()
    ):
        return Verdict(Label.INVALID, "the manifest is not the one the note announced")
    return Verdict(Label.VERIFIED, f"rendered and signed by {claim.instance}")
