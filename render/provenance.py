"""C2PA provenance: an instance's signing certificates, signing MP4s, verifying them.

Every clip an instance renders carries a C2PA manifest saying it was made by a trained
model (``c2pa.actions`` / ``c2pa.created`` with an IPTC digitalSourceType) plus our
own ``org.fedisora.render`` assertion (instance, job, model, seed, prompt digest,
remix source, consent references).

A clip with sound (LTX-2 renders picture and sound together) says so twice: its
``c2pa.created`` action lists both tracks as the regions it made (C2PA regions of interest of
type ``identified``, naming each MP4 ``track_id``), and our assertion's ``tracks`` gives each
track's IPTC source type (the sound is ``trainedAlgorithmicMedia``; the picture is composite
where an input image or a likeness went in). The manifest's ``c2pa.hash.bmff`` covers the whole
file but the manifest box itself, so altering a single audio sample breaks it as surely as
altering a pixel.

Certificates: c2pa refuses a self-signed signing certificate and one without an
extended key usage, so each instance makes a small local root CA and a leaf with EKU
emailProtection, critical KeyUsage digitalSignature, BasicConstraints CA:false and
AKI/SKI. The root's private key is never returned: it signs the leaf once and is
dropped, so it cannot leak. A new leaf therefore means a new root; verifiers keep the
old roots in their trust list. An admin may install a commercially issued chain
instead.

``cryptography`` and ``c2pa`` are imported lazily.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from render.errors import ProvenanceError

__all__ = [
    "COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA",
    "RENDER_ASSERTION_LABEL",
    "TRAINED_ALGORITHMIC_MEDIA",
    "InstanceCredentials",
    "ProvenanceClaim",
    "SignedVideo",
    "ValidationState",
    "VerificationResult",
    "generate_instance_ca",
    "manifest_digest_of",
    "prompt_sha256",
    "sign_mp4",
    "verify_mp4",
]

_IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED_ALGORITHMIC_MEDIA = _IPTC + "trainedAlgorithmicMedia"
COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA = _IPTC + "compositeWithTrainedAlgorithmicMedia"
RENDER_ASSERTION_LABEL = "org.fedisora.render"
_C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")
"""The ISO BMFF ``uuid`` box type under which C2PA embeds its manifest store."""

Algorithm = Literal["es256", "ed25519"]
_DOMAIN = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\d{1,5})?$")


class InstanceCredentials(NamedTuple):
    """An instance's C2PA signing material, all PEM text."""

    root_pem: str
    """The local root CA: publish it; verifiers add it to their trust anchors."""
    chain_pem: str
    """Leaf first, then the root: what the signer embeds in each manifest."""
    key_pem: str
    """The leaf's private key (PKCS#8, unencrypted): keep it secret."""


def prompt_sha256(prompt: str) -> str:
    """The digest that stands in for the prompt in public manifests."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ProvenanceClaim:
    """What fedisora asserts about one rendered clip (the custom assertion's fields)."""

    instance: str
    job_id: str
    model: str
    seed: int
    prompt_sha256: str
    creator: str | None = None
    """The creator's actor URI."""
    remix_source: str | None = None
    consent_refs: tuple[str, ...] = ()
    """Consent records of people whose likeness (cameo) went in."""
    input_image: bool = False
    """Whether a real input image conditioned the render."""
    remix_frames: bool = False
    """Whether frames of the remix source (``remix_source``) conditioned the render."""
    audio: bool = False
    """Whether the clip has a sound track, rendered by the model with the picture."""

    @property
    def digital_source_type(self) -> str:
        """IPTC source type: composite when other media (an input image, the remixed clip's
        frames) or a real person's likeness went in."""
        if self.input_image or self.consent_refs or self.remix_frames:
            return COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
        return TRAINED_ALGORITHMIC_MEDIA

    @property
    def tracks(self) -> dict[str, str]:
        """IPTC source type of each track the clip has: the picture's is
        ``digital_source_type``; sound is only ever the model's (nothing recorded went in)."""
        tracks = {"video": self.digital_source_type}
        if self.audio:
            tracks["audio"] = TRAINED_ALGORITHMIC_MEDIA
        return tracks

    def to_assertion(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "job_id": self.job_id,
            "model": self.model,
            "seed": self.seed,
            "prompt_sha256": self.prompt_sha256,
            "creator": self.creator,
            "remix_source": self.remix_source,
            "consent_refs": list(self.consent_refs),
            "input_image": self.input_image,
            "remix_frames": self.remix_frames,
            "audio": self.audio,
            "tracks": self.tracks,
        }

    @classmethod
    def from_assertion(cls, data: Mapping[str, Any]) -> ProvenanceClaim:
        """Parse the assertion back; ``ValueError`` when a field is missing or mistyped."""
        try:
            claim = cls(
                instance=str(data["instance"]),
                job_id=str(data["job_id"]),
                model=str(data["model"]),
                seed=int(data["seed"]),
                prompt_sha256=str(data["prompt_sha256"]),
                creator=_opt_str(data.get("creator")),
                remix_source=_opt_str(data.get("remix_source")),
                consent_refs=tuple(str(r) for r in data.get("consent_refs") or ()),
                input_image=bool(data.get("input_image", False)),
                remix_frames=bool(data.get("remix_frames", False)),
                audio=bool(data.get("audio", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed {RENDER_ASSERTION_LABEL} assertion: {exc}") from exc
        return claim


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


# --------------------------------------------------------------------------- certificates


def generate_instance_ca(
    domain: str,
    *,
    algorithm: Algorithm = "es256",
    now: dt.datetime | None = None,
    root_days: int = 20 * 365,
    leaf_days: int = 5 * 365,
) -> InstanceCredentials:
    """Make a local root CA and a C2PA signing leaf for ``domain``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not _DOMAIN.match(domain):
        raise ValueError(f"not a domain name: {domain!r}")
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")

    def new_key() -> ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey:
        if algorithm == "es256":
            return ec.generate_private_key(ec.SECP256R1())
        if algorithm == "ed25519":
            return ed25519.Ed25519PrivateKey.generate()
        raise ValueError(f"unknown algorithm {algorithm!r}; use es256 or ed25519")

    digest = hashes.SHA256() if algorithm == "es256" else None  # Ed25519 hashes internally

    def name(common: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, domain),
            ]
        )

    def usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=sign,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        )

    start = now - dt.timedelta(minutes=5)  # tolerate a verifier's clock running behind
    root_key, leaf_key = new_key(), new_key()
    root_name = name(f"fedisora provenance root for {domain}")
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + dt.timedelta(days=root_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(sign=False, ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .sign(root_key, digest)
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name(f"fedisora signer for {domain}"))
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + dt.timedelta(days=min(leaf_days, root_days)))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(sign=True, ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .sign(root_key, digest)
    )
    pem = serialization.Encoding.PEM
    root_pem = root.public_bytes(pem).decode("ascii")
    key_pem = leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return InstanceCredentials(
        root_pem=root_pem,
        chain_pem=leaf.public_bytes(pem).decode("ascii") + root_pem,
        key_pem=key_pem,
    )


def _signing_alg(key_pem: str) -> Any:
    import c2pa
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    try:
        key = serialization.load_pem_private_key(key_pem.encode("ascii"), password=None)
    except (ValueError, TypeError) as exc:
        raise ProvenanceError(f"signing key is not an unencrypted PEM private key: {exc}") from exc
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return c2pa.C2paSigningAlg.ED25519
    if isinstance(key, ec.EllipticCurvePrivateKey):
        by_curve = {
            "secp256r1": c2pa.C2paSigningAlg.ES256,
            "secp384r1": c2pa.C2paSigningAlg.ES384,
            "secp521r1": c2pa.C2paSigningAlg.ES512,
        }
        if key.curve.name in by_curve:
            return by_curve[key.curve.name]
    raise ProvenanceError(f"unsupported signing key type {type(key).__name__}")


# --------------------------------------------------------------------------- signing


@dataclass(frozen=True, slots=True)
class SignedVideo:
    path: Path
    manifest_digest: str
    """sha256 (hex) of the embedded C2PA manifest store; ``verify_mp4`` reports the same."""
    size: int


def _software_agent() -> dict[str, str]:
    from importlib import metadata

    agent = {"name": "fedisora"}
    try:
        agent["version"] = metadata.version("fedisora")
    except metadata.PackageNotFoundError:
        pass
    return agent


def _track_ids(path: Path) -> dict[str, int]:
    """The MP4 ``track_id`` of the first video and the first audio track of *path*."""
    import av

    try:
        with av.open(str(path), "r") as container:
            found: dict[str, int] = {}
            for stream in container.streams:
                if stream.type in ("video", "audio") and stream.type not in found:
                    found[stream.type] = int(stream.id)
            return found
    except (av.FFmpegError, OSError) as exc:
        raise ProvenanceError(f"cannot read the tracks of {path}: {exc}") from exc


def _track_region(kind: str, track_id: int) -> dict[str, Any]:
    """A C2PA region of interest naming one MP4 track (an ``identified`` range)."""
    return {
        "name": kind,
        "region": [
            {"type": "identified", "item": {"identifier": "track_id", "value": str(track_id)}}
        ],
        "description": f"the {kind} track",
    }


def sign_mp4(
    src: Path | str,
    dst: Path | str,
    *,
    chain_pem: str,
    key_pem: str,
    claim: ProvenanceClaim,
    title: str | None = None,
) -> SignedVideo:
    """Embed a signed C2PA manifest for ``claim`` in the MP4 ``src``, writing ``dst``.

    ``dst`` may equal ``src``. The signed file is written under a temporary name and
    renamed, so a failed sign leaves neither a 0-byte nor a partial ``dst``.
    """
    import c2pa

    # Here, not at the top: render.encode imports numpy and PIL (~0.15 s), which the web
    # process and the CLI load this module without needing (they read and check manifests).
    from render.encode import atomic_path

    src, dst = Path(src), Path(dst)
    agent = _software_agent()
    created: dict[str, Any] = {
        "action": "c2pa.created",
        "digitalSourceType": claim.digital_source_type,
        "softwareAgent": agent,
    }
    if claim.audio:
        tracks = _track_ids(src)
        if "audio" not in tracks:
            raise ProvenanceError(f"{src} has no sound track, and the claim says it has one")
        created["description"] = "picture and sound generated together by a trained model"
        created["changes"] = [_track_region(kind, tracks[kind]) for kind in claim.tracks]
    manifest = {
        "claim_generator_info": [agent],
        "title": title or dst.name,
        "format": "video/mp4",
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [created]}},
            {"label": RENDER_ASSERTION_LABEL, "data": claim.to_assertion()},
        ],
    }
    alg = _signing_alg(key_pem)
    try:
        info = c2pa.C2paSignerInfo(alg, chain_pem.encode("ascii"), key_pem.encode("ascii"), None)
        with (
            c2pa.Signer.from_info(info) as signer,
            c2pa.Builder(manifest) as builder,
            atomic_path(dst) as tmp,
        ):
            with open(src, "rb") as source, open(tmp, "w+b") as target:
                manifest_bytes = builder.sign(signer, "video/mp4", source, target)
    except c2pa.C2paError as exc:
        raise ProvenanceError(f"could not sign {src}: {exc}") from exc
    except OSError as exc:
        raise ProvenanceError(f"could not sign {src}: {exc}") from exc
    return SignedVideo(
        path=dst,
        manifest_digest=hashlib.sha256(manifest_bytes).hexdigest(),
        size=dst.stat().st_size,
    )


# --------------------------------------------------------------------------- verifying


class ValidationState(enum.StrEnum):
    TRUSTED = "Trusted"
    """Signature and hashes check out, and the chain ends at a trusted root."""
    VALID = "Valid"
    """Signature and hashes check out; the signer is not in the trust list."""
    INVALID = "Invalid"
    """The file or the manifest was altered, or the signature is bad."""
    MISSING = "missing"
    """No C2PA manifest in the file."""


@dataclass(frozen=True, slots=True)
class VerificationResult:
    state: ValidationState
    claim: ProvenanceClaim | None = None
    digital_source_type: str | None = None
    manifest_digest: str | None = None
    signer: str | None = None
    """Common name of the signing certificate."""
    failures: tuple[str, ...] = field(default=())
    """C2PA validation failure codes, e.g. ``assertion.bmffHash.mismatch``."""
    created_tracks: tuple[str, ...] = field(default=())
    """The tracks (``video``, ``audio``) the ``c2pa.created`` action names as the regions it
    made; empty when it names none (a clip signed before sound, made whole)."""

    @property
    def trusted(self) -> bool:
        return self.state is ValidationState.TRUSTED


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, box end) of the ISO BMFF boxes in ``data[start:end]``."""
    out = []
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                break
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            break
        out.append((kind, pos + header, pos + size))
        pos += size
    return out


def manifest_digest_of(path: Path | str) -> str | None:
    """sha256 (hex) of the C2PA manifest store embedded in an MP4, or None if it has none.

    The store sits in a top-level ``uuid`` box: 16-byte C2PA uuid, 4 bytes of
    version/flags, the purpose string ``manifest\\0``, an 8-byte offset, then the
    JUMBF superbox, which carries its own length.
    """
    data = Path(path).read_bytes()
    for kind, body, end in _boxes(data, 0, len(data)):
        if kind != b"uuid" or data[body : body + 16] != _C2PA_UUID:
            continue
        pos = body + 16 + 4
        nul = data.find(b"\0", pos, end)
        if nul < 0 or data[pos:nul] != b"manifest":
            continue
        jumbf = nul + 1 + 8
        inner = _boxes(data, jumbf, end)
        if inner and inner[0][0] == b"jumb":
            return hashlib.sha256(data[jumbf : inner[0][2]]).hexdigest()
    return None


def _find_assertion(manifest: Mapping[str, Any], label: str) -> Any:
    for assertion in manifest.get("assertions") or ():
        name = assertion.get("label", "")
        # c2pa may store a versioned label (c2pa.actions.v2) for what we wrote unversioned.
        if name == label or re.fullmatch(re.escape(label) + r"\.v\d+", name):
            return assertion.get("data")
    return None


def verify_mp4(path: Path | str, trusted_roots_pem: Sequence[str] = ()) -> VerificationResult:
    """Read and validate the C2PA manifest of the MP4 at ``path``.

    ``trusted_roots_pem`` are the root certificates to trust (our own instance's, and
    those of instances we federate with); without any, a sound manifest is ``Valid``.
    Raises ``ProvenanceError`` if the file cannot be parsed at all.
    """
    import c2pa

    path = Path(path)
    roots = [r.strip() for r in trusted_roots_pem if r.strip()]
    # Files come from peers and uploaders: c2pa must not fetch a URL a file names (a remote
    # manifest in its XMP, OCSP), which would bypass the federation client's SSRF guard.
    settings: dict[str, Any] = {
        "verify": {"verify_trust": True, "remote_manifest_fetch": False, "ocsp_fetch": False}
    }
    if roots:
        settings["trust"] = {"trust_anchors": "\n".join(roots) + "\n"}
    try:
        with c2pa.Context.from_dict(settings) as context:
            reader = c2pa.Reader.try_create(str(path), context=context)
            if reader is None:
                return VerificationResult(state=ValidationState.MISSING)
            with reader:
                store = json.loads(reader.json())
    except c2pa.C2paError as exc:
        raise ProvenanceError(f"cannot read C2PA data from {path}: {exc}") from exc

    manifest = store.get("manifests", {}).get(store.get("active_manifest"), {})
    raw_state = store.get("validation_state")
    try:
        state = ValidationState(raw_state)
    except ValueError:
        state = ValidationState.INVALID
    results = store.get("validation_results", {}).get("activeManifest", {})
    failures = tuple(str(f.get("code")) for f in results.get("failure") or ())

    claim = None
    data = _find_assertion(manifest, RENDER_ASSERTION_LABEL)
    if isinstance(data, Mapping):
        try:
            claim = ProvenanceClaim.from_assertion(data)
        except ValueError:
            claim = None
    source_type = None
    created_tracks: list[str] = []
    actions = _find_assertion(manifest, "c2pa.actions")
    if isinstance(actions, Mapping):
        for action in actions.get("actions") or ():
            if action.get("action") == "c2pa.created":
                source_type = action.get("digitalSourceType")
                for change in action.get("changes") or ():
                    if isinstance(change, Mapping) and isinstance(change.get("name"), str):
                        created_tracks.append(change["name"])
                break
    signer = (manifest.get("signature_info") or {}).get("common_name")
    return VerificationResult(
        state=state,
        claim=claim,
        digital_source_type=source_type,
        manifest_digest=manifest_digest_of(path),
        signer=signer,
        failures=failures,
        created_tracks=tuple(created_tracks),
    )
