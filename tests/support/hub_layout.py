"""A diffusers checkpoint laid out as ``huggingface_hub`` lays out its cache, for the model
pull tests (no test downloads anything).

The layout is the hub's: ``models--Org--Name/blobs/<etag>`` holds each file's content, named
by its ETag (the SHA-256 of an LFS file, the git blob id of a small one),
``snapshots/<commit>/<path>`` links to the blob, and ``refs/main`` names the commit.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

LFS_SUFFIXES = (".safetensors", ".bin", ".model")
COMMIT = "5e6e71018ee1756ed329b697a7b4aedc934dfce9"


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def etag(path: str, data: bytes) -> str:
    """The hub's ETag of a file: LFS files by SHA-256, others by git blob id."""
    if path.endswith(LFS_SUFFIXES):
        return hashlib.sha256(data).hexdigest()
    return git_blob_id(data)


def lay_out(saved: Path, cache: Path, repo_id: str, commit: str = COMMIT) -> Path:
    """Put the checkpoint in *saved* (a ``save_pretrained`` directory) into the hub cache
    *cache* as *repo_id* at *commit*; return the repo folder."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    for path in sorted(saved.rglob("*")):
        if path.is_dir():
            continue
        relative = path.relative_to(saved).as_posix()
        data = path.read_bytes()
        blob = repo / "blobs" / etag(relative, data)
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    # A single-file checkpoint beside the diffusers folders, as Lightricks/LTX-Video keeps
    # them: a pull leaves it out.
    extra = b"not part of the diffusers checkpoint"
    blob = repo / "blobs" / etag("single-file.safetensors", extra)
    blob.write_bytes(extra)
    (repo / "snapshots" / commit / "single-file.safetensors").symlink_to(
        os.path.relpath(blob, repo / "snapshots" / commit)
    )
    return repo


def blob_of(repo: Path, relative: str, commit: str = COMMIT) -> Path:
    """The blob a snapshot file of *repo* links to."""
    return Path(os.path.realpath(repo / "snapshots" / commit / relative))


def saved_pipeline(pipe: Any, where: Path) -> Path:
    pipe.save_pretrained(where)
    return where
