"""This instance's provenance material: signing credentials, trusted roots, watermark key.

``fedisora init`` writes ``<data_dir>/provenance/{root.pem,chain.pem,key.pem}``; roots of
other instances an admin chooses to trust go in ``<data_dir>/provenance/trusted/*.pem``.

Root history: ``<data_dir>/provenance/roots/<sha256>.pem`` keeps the certificate (never a key)
of every root this instance has signed under, named by the sha256 of its DER encoding.
``fedisora init`` records the root it finds and the root it makes, and the render queue
records the current root before it signs, so a root replaced by hand is kept too. A root
there that is not the current ``root.pem`` is *retired*: the instance no longer signs under
it, but it stays published (:mod:`fedisora.federation.provenance_root`) and trusted for
this instance's own clips, which it signed. Deleting a retired root's file (say its key
leaked) withdraws it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from fedisora.config import Settings
from render.errors import ProvenanceError

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "CredentialsWritten",
    "RootInfo",
    "ca_certificates",
    "current_roots",
    "load_credentials",
    "own_roots",
    "provenance_dir",
    "record_roots",
    "retired_roots",
    "root_fingerprint",
    "root_info",
    "roots_dir",
    "trusted_roots",
    "watermark_id",
    "watermark_key",
    "write_credentials",
]

log = logging.getLogger("fedisora.render")


def provenance_dir(settings: Settings) -> Path:
    return settings.data_dir / "provenance"


def roots_dir(settings: Settings) -> Path:
    """Where the root history is kept (see the module's docstring)."""
    return provenance_dir(settings) / "roots"


@contextlib.contextmanager
def _credentials_lock(settings: Settings, *, exclusive: bool) -> Iterator[None]:
    """Hold ``provenance/.lock``: :func:`write_credentials` exclusively while it writes the
    three files, :func:`load_credentials` shared while it reads them, so a render never signs
    with a new key under an old chain (or verifies against the old root). Across processes
    on this host (flock); a directory the process cannot write to goes unlocked."""
    directory = provenance_dir(settings)
    try:
        if exclusive:
            directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        if exclusive:
            raise
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


def load_credentials(settings: Settings) -> tuple[str, str, str]:
    """(root PEM, chain PEM, key PEM); ``ProvenanceError`` says how to fix a missing file.

    Read afresh on every call (the render queue calls it for each clip it signs), so a root
    replaced by :func:`write_credentials` signs the next clip, without a restart."""
    directory = provenance_dir(settings)
    try:
        with _credentials_lock(settings, exclusive=False):
            return tuple(  # type: ignore[return-value]
                (directory / name).read_text(encoding="ascii")
                for name in ("root.pem", "chain.pem", "key.pem")
            )
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvenanceError(
            f"the instance's provenance credentials in {directory} are missing or unreadable "
            f"({exc}); run `fedisora init` to create them"
        ) from exc


@dataclass(frozen=True)
class CredentialsWritten:
    """What :func:`write_credentials` did."""

    outcome: Literal["kept", "created", "replaced"]
    root: str
    """The sha256 fingerprint of the root signed under from now on ("" when none is
    readable, as with credentials put in by hand that hold no CA)."""
    previous: str | None
    """The fingerprint of the root that was replaced (``replaced`` only)."""
    retired: int
    """How many retired roots the root history holds now."""
    history: Path

    def describe(self) -> str:
        """The outcome as ``fedisora init`` prints it."""
        if self.outcome != "replaced":
            return self.outcome
        return (
            f"replaced; {self.retired} retired root(s) in {self.history} "
            "stay published and trusted for the clips signed under them"
        )


def _write_atomically(path: Path, text: str, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:  # mkstemp: readable by us only
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_credentials(settings: Settings, *, replace: bool = False) -> CredentialsWritten:
    """Make the instance's own C2PA signing CA and leaf (admins may put in their own instead).

    Kept when they exist, unless *replace*. Every root is kept in the root history
    (:func:`record_roots`) before it is replaced, so the clips signed under it keep verifying
    here and on other instances. The three files are replaced each atomically, under the
    lock :func:`load_credentials` takes, so the next render signs under the new root and no
    render sees half of each. Called by :func:`fedisora.services.provenance.provision` (the
    CLI's ``init`` and the admin page)."""
    directory = provenance_dir(settings)
    with _credentials_lock(settings, exclusive=True):
        current = _read_roots(directory / "root.pem")
        previous = _fingerprint(current[0]) if current else None
        if (directory / "chain.pem").is_file() and not replace:
            record_roots(settings)  # a data dir from before root history: keep its root now
            return CredentialsWritten(
                "kept", previous or "", None, len(retired_roots(settings)), roots_dir(settings)
            )
        from render.provenance import generate_instance_ca

        record_roots(settings)  # the root being replaced, if there is one, stays in the history
        host = settings.domain.split(":", 1)[0]
        if not any(c.isalpha() for c in host):
            host = f"{host.replace('.', '-')}.localhost"  # a CA name needs a DNS-style label
        creds = generate_instance_ca(host)
        replaced = (directory / "root.pem").is_file()
        _write_atomically(directory / "key.pem", creds.key_pem, 0o600)
        _write_atomically(directory / "chain.pem", creds.chain_pem, 0o644)
        _write_atomically(directory / "root.pem", creds.root_pem, 0o644)
        record_roots(settings, creds.root_pem)
    return CredentialsWritten(
        "replaced" if replaced else "created",
        root_fingerprint(creds.root_pem),
        previous if replaced else None,
        len(retired_roots(settings)),
        roots_dir(settings),
    )


# --- root certificates -----------------------------------------------------------------------


def ca_certificates(data: bytes | str, *, limit: int | None = None) -> list[x509.Certificate]:
    """The certificates in the PEM text *data*, all CAs; ``ValueError`` when there is none,
    one is not a CA, or there are more than *limit*. Anything that is not a certificate (a
    private key put there by mistake, comments) is skipped."""
    from cryptography import x509

    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    certificates = x509.load_pem_x509_certificates(raw)  # ValueError when there is none
    if limit is not None and len(certificates) > limit:
        raise ValueError(f"more than {limit} certificates")
    for certificate in certificates:
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        except x509.ExtensionNotFound:
            raise ValueError("a certificate without BasicConstraints is not a root") from None
        if not constraints.value.ca:
            raise ValueError("a certificate that is not a CA is not a root")
    return certificates


def _pem(certificate: x509.Certificate) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return certificate.public_bytes(Encoding.PEM).decode("ascii")


def _fingerprint(certificate: x509.Certificate) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


def root_fingerprint(pem: str) -> str:
    """The sha256 (hex) of the DER encoding of the first certificate in *pem*."""
    return _fingerprint(ca_certificates(pem)[0])


@dataclass(frozen=True)
class RootInfo:
    """A root certificate as an admin reads it."""

    subject: str
    fingerprint: str
    """sha256 of the DER encoding, hex (the root history's file name)."""
    not_before: dt.datetime
    not_after: dt.datetime
    pem: str

    def fingerprint_colons(self) -> str:
        """The fingerprint as certificate viewers show it: ``AB:CD:...``."""
        upper = self.fingerprint.upper()
        return ":".join(upper[i : i + 2] for i in range(0, len(upper), 2))


def root_info(pem: str) -> RootInfo:
    """The first certificate in *pem* (``ValueError`` when there is none)."""
    certificate = ca_certificates(pem)[0]
    return RootInfo(
        subject=certificate.subject.rfc4514_string(),
        fingerprint=_fingerprint(certificate),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        pem=_pem(certificate),
    )


def _read_roots(path: Path) -> list[x509.Certificate]:
    """The CA certificates in the file at *path*; none (logged) when it holds no usable one."""
    try:
        return ca_certificates(path.read_bytes())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.error("%s holds no usable root certificate (%s); it is ignored", path, exc)
        return []


def current_roots(settings: Settings) -> list[str]:
    """The root(s) in ``root.pem``, under which this instance signs now (PEM each)."""
    return [_pem(c) for c in _read_roots(provenance_dir(settings) / "root.pem")]


def retired_roots(settings: Settings) -> list[str]:
    """Roots this instance signed under before ``root.pem`` was replaced (PEM each), the most
    recently recorded first (then the most recently issued)."""
    current = {_fingerprint(c) for c in _read_roots(provenance_dir(settings) / "root.pem")}
    found: dict[str, tuple[float, dt.datetime, str]] = {}
    try:
        paths = sorted(roots_dir(settings).glob("*.pem"))
    except OSError:
        return []
    for path in paths:
        try:
            recorded = path.stat().st_mtime
        except OSError:
            continue
        for certificate in _read_roots(path):
            fingerprint = _fingerprint(certificate)
            if fingerprint in current or fingerprint in found:
                continue
            found[fingerprint] = (recorded, certificate.not_valid_before_utc, _pem(certificate))
    ordered = sorted(found.values(), key=lambda entry: (entry[0], entry[1]), reverse=True)
    return [pem for _, _, pem in ordered]


def own_roots(settings: Settings) -> list[str]:
    """Every root this instance has signed under: the current one(s) first, then the retired
    ones, newest first (PEM each, certificates only)."""
    return current_roots(settings) + retired_roots(settings)


def record_roots(settings: Settings, pem: str | None = None) -> list[str]:
    """Keep the root certificate(s) in *pem* (default: the current ``root.pem``) in the root
    history; the fingerprints newly written. Only certificates are written, never a key."""
    if pem is None:
        certificates = _read_roots(provenance_dir(settings) / "root.pem")
    else:
        certificates = ca_certificates(pem)
    directory = roots_dir(settings)
    written: list[str] = []
    for certificate in certificates:
        fingerprint = _fingerprint(certificate)
        path = directory / f"{fingerprint}.pem"
        if path.is_file():
            continue
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".root-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as file:
                file.write(_pem(certificate))
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(fingerprint)
    return written


def trusted_roots(settings: Settings, *, retired: bool = True) -> list[str]:
    """This instance's root, its retired roots (unless *retired* is false) and every root an
    admin put in ``provenance/trusted/``.

    Checks of *other* instances' clips pass ``retired=False``: a retired root vouches only for
    clips this instance signed, and its key may be why it was retired."""
    directory = provenance_dir(settings)
    roots = own_roots(settings) if retired else current_roots(settings)
    extra = directory / "trusted"
    if extra.is_dir():
        roots.extend(p.read_text(encoding="ascii") for p in sorted(extra.glob("*.pem")))
    return roots


def watermark_key(settings: Settings) -> bytes:
    """The invisible watermark's key, derived from the instance secret (never published)."""
    return hashlib.sha256(b"fedisora-watermark\0" + settings.secret_key.encode()).digest()


def watermark_id(job_id: int) -> int:
    """The 32-bit id a clip carries: the job's id (modulo 2**32, as ids stay far below)."""
    return job_id % (1 << 32)
