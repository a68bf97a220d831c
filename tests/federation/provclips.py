"""Real clips for provenance tests, and a real HTTP peer on loopback that serves them.

Clips are rendered once per session with the tiny random-weight pipeline, encoded to H.264
and signed with C2PA exactly as the render queue does (``render.provenance.sign_mp4``), under
whatever instance credentials a test makes. :class:`LoopbackPeer` is a plain HTTP server on
127.0.0.1 (a thread) serving files and PEM text, recording what was asked of it.
"""

from __future__ import annotations

import shutil
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from loopback import OnLoopback

from render.provenance import (
    InstanceCredentials,
    ProvenanceClaim,
    SignedVideo,
    prompt_sha256,
    sign_mp4,
)

_encoded: dict[str, Path] = {}


def encoded_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unsigned H.264 MP4 of one second rendered by the tiny pipeline (made once)."""
    if "clip" not in _encoded:
        from render.encode import encode_mp4
        from render.pipeline import load_pipeline
        from render.spec import RenderSpec, plan

        tiny = load_pipeline("tiny", device="cpu")
        spec = RenderSpec(prompt="a lighthouse in a storm", seed=7, seconds=1.0)
        p = plan(spec, tiny.family, instance_max_seconds=10)
        frames = tiny.generate(p, spec, None)
        path = tmp_path_factory.mktemp("provclips") / "encoded.mp4"
        encode_mp4(frames, path, fps=p.fps)
        _encoded["clip"] = path
    return _encoded["clip"]


def sign_clip(
    encoded: Path,
    dest: Path,
    credentials: InstanceCredentials,
    *,
    instance: str,
    creator: str | None,
    input_image: bool = False,
) -> SignedVideo:
    """*encoded*, signed as *instance*'s render queue signs a clip rendered for *creator*."""
    claim = ProvenanceClaim(
        instance=instance,
        job_id="42",
        model="tiny",
        seed=7,
        prompt_sha256=prompt_sha256("a lighthouse in a storm"),
        creator=creator,
        input_image=input_image,
    )
    return sign_mp4(
        encoded, dest, chain_pem=credentials.chain_pem, key_pem=credentials.key_pem, claim=claim
    )


def unsigned_copy(encoded: Path, dest: Path) -> Path:
    shutil.copyfile(encoded, dest)
    return dest


_XMP_UUID = bytes.fromhex("be7acfcb97a942e89c71999491e3afac")


def with_remote_manifest(encoded: Path, dest: Path, manifest_url: str) -> Path:
    """*encoded* with an XMP packet whose ``dcterms:provenance`` names a remote C2PA manifest
    at *manifest_url* (how C2PA points at a manifest kept outside the file)."""
    data = encoded.read_bytes()
    (ftyp_size,) = struct.unpack_from(">I", data)
    xmp = (
        '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
        f'xmlns:dcterms="http://purl.org/dc/terms/" dcterms:provenance="{manifest_url}"/>'
        '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()
    box = struct.pack(">I4s", 8 + 16 + len(xmp), b"uuid") + _XMP_UUID + xmp
    dest.write_bytes(data[:ftyp_size] + box + data[ftyp_size:])
    return dest


@dataclass
class Served:
    body: bytes | Path
    content_type: str = "video/mp4"
    status: int = 200


@dataclass
class LoopbackPeer(OnLoopback):
    """An HTTP server on 127.0.0.1 answering GETs from ``files`` (path -> :class:`Served`;
    a path with a query is looked up as given, then without the query)."""

    port: int = 0
    files: dict[str, Served] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def start(self) -> LoopbackPeer:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                peer.requests.append(self.path)
                # A static file server ignores the query: "/x.pem?all=1" is "/x.pem".
                served = peer.files.get(self.path) or peer.files.get(self.path.split("?")[0])
                if served is None:
                    self.send_error(404)
                    return
                body = served.body
                size = body.stat().st_size if isinstance(body, Path) else len(body)
                self.send_response(served.status)
                self.send_header("Content-Type", served.content_type)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                if isinstance(body, Path):
                    with body.open("rb") as file:
                        shutil.copyfileobj(file, self.wfile, 16 * 1024)
                else:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
