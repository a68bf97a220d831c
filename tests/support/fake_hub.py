"""A Hugging Face hub of one repo on 127.0.0.1, for the model pull tests: the endpoints
``huggingface_hub`` calls to list a repo and fetch its files, serving a tiny checkpoint.

It answers what the hub answers (a model's listing with file metadata, the recursive tree,
``resolve`` URLs with ``X-Repo-Commit``, ``ETag`` and, for LFS files, ``X-Linked-Etag`` and
``X-Linked-Size``, ranges for resumed downloads), so the pull's online path runs for real
against it (``endpoint=``): nothing leaves the machine. ``corrupt`` makes it serve a file
whose bytes differ from the checksum it lists, as a broken mirror or transfer would.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from hub_layout import COMMIT, LFS_SUFFIXES, etag
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class FakeHub:
    repo_id: str
    files: dict[str, bytes]
    corrupt: set[str] = field(default_factory=set)
    served: list[str] = field(default_factory=list)
    """The files whose content was sent (GET), in order."""

    @classmethod
    def of(cls, repo_id: str, saved: Path) -> FakeHub:
        files = {
            p.relative_to(saved).as_posix(): p.read_bytes()
            for p in sorted(saved.rglob("*"))
            if p.is_file()
        }
        files["single-file.safetensors"] = b"a single-file checkpoint beside the folders"
        return cls(repo_id, files)

    def _entry(self, path: str) -> dict[str, object]:
        data = self.files[path]
        from hub_layout import git_blob_id

        entry: dict[str, object] = {"size": len(data)}
        if path.endswith(LFS_SUFFIXES):
            entry["lfs"] = {"size": len(data), "sha256": etag(path, data), "pointerSize": 134}
        return entry | {"blob": git_blob_id(data)}

    def app(self) -> Starlette:
        async def info(request: Request) -> Response:
            siblings = []
            for path in self.files:
                entry = self._entry(path)
                sibling = {"rfilename": path, "size": entry["size"], "blobId": entry["blob"]}
                if "lfs" in entry:
                    sibling["lfs"] = entry["lfs"]
                siblings.append(sibling)
            return JSONResponse({"id": self.repo_id, "sha": COMMIT, "siblings": siblings})

        async def tree(request: Request) -> Response:
            items = []
            for path in self.files:
                entry = self._entry(path)
                item: dict[str, object] = {
                    "type": "file",
                    "path": path,
                    "size": entry["size"],
                    "oid": entry["blob"],
                }
                if "lfs" in entry:
                    lfs = dict(entry["lfs"])  # type: ignore[call-overload]
                    item["lfs"] = {
                        "oid": lfs["sha256"],
                        "size": lfs["size"],
                        "pointerSize": lfs["pointerSize"],
                    }
                items.append(item)
            return JSONResponse(items)

        async def resolve(request: Request) -> Response:
            path = request.path_params["path"]
            if path not in self.files:
                return JSONResponse({"error": "Entry not found"}, status_code=404)
            data = self.files[path]
            tag = etag(path, data)
            if path in self.corrupt:
                data = data[:-8] + bytes(8)
            headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{tag}"', "Accept-Ranges": "bytes"}
            if path.endswith(LFS_SUFFIXES):
                headers |= {"X-Linked-Etag": f'"{tag}"', "X-Linked-Size": str(len(data))}
            if request.method == "HEAD":
                headers["Content-Length"] = str(len(data))
                return Response(b"", headers=headers)
            self.served.append(path)
            start = 0
            ranged = request.headers.get("range", "")
            if ranged.startswith("bytes="):
                start = int(ranged[len("bytes=") :].split("-")[0] or 0)
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                return Response(data[start:], status_code=206, headers=headers)
            return Response(data, headers=headers)

        prefix = f"/{self.repo_id}"
        api = f"/api/models/{self.repo_id}"
        return Starlette(
            routes=[
                Route(f"{api}/revision/{{rev}}", info),
                Route(f"{api}/tree/{{rev}}", tree),
                Route(f"{prefix}/resolve/{{rev}}/{{path:path}}", resolve, methods=["GET", "HEAD"]),
            ]
        )


@contextlib.contextmanager
def serving(hub: FakeHub) -> Iterator[str]:
    """Serve *hub* on a free loopback port for the block; yields its endpoint URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(hub.app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the fake hub did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
