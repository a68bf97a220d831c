"""Render models an admin pulls, lists and puts in use: the one service behind
``fedisora model list|pull|use`` and ``/admin/models``.

Where they live: ``FEDISORA_MODELS_DIR`` (default ``<data dir>/models``), one directory per
model named as in :data:`render.catalogue.CATALOGUE`, each a diffusers checkpoint
(``model_index.json`` and its components) with a ``.fedisora-model.json`` record of what was
installed (repo, commit, the checksum of every file).

Pulling (:func:`pull`) never leaves a half-installed model: the files are fetched into
``.partial/<name>`` (from the hub with ``huggingface_hub.snapshot_download``, which resumes
an interrupted download there; or copied from ``--from DIR``, a hub cache), every file's
checksum is checked against the hub's (the SHA-256 of an LFS file, the git blob id of a small
one), the directory is checked to be the model it claims (``model_index.json``'s
``_class_name``, every component present), and only then renamed into place. The free space
is checked first, against the sizes the hub lists.

In use (:func:`use`): the choice is an instance setting (``InstanceSetting`` ``render_model``),
so every worker and web process picks it up within :data:`CACHE_SECONDS` without a restart
(:func:`effective` gives the settings with it applied; a worker loads the new model for its
next render). With no choice saved, ``FEDISORA_RENDER_MODEL`` applies.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedisora.config import Settings
from fedisora.errors import Invalid
from render.catalogue import CATALOGUE, TINY_MODELS, CatalogueEntry, is_tiny

if TYPE_CHECKING:
    from fedisora.services import audit

__all__ = [
    "CACHE_SECONDS",
    "MARKER",
    "SETTING_KEY",
    "DownloadFailed",
    "FileCheck",
    "Installed",
    "ModelError",
    "NotEnoughSpace",
    "PullProgress",
    "cached",
    "check_directory",
    "effective",
    "in_use",
    "installed",
    "models_dir",
    "pull",
    "reset",
    "use",
]

log = logging.getLogger("fedisora.render.models")

SETTING_KEY = "render_model"
"""The ``InstanceSetting`` row holding the model in use (a tiny name, an installed name or an
absolute directory)."""
MARKER = ".fedisora-model.json"
CACHE_SECONDS = 3.0
SPACE_MARGIN = 256 * 1024 * 1024
"""Free space kept beyond a pull's files (the hub's metadata, the filesystem's own needs)."""
_CHUNK = 8 * 1024 * 1024
_SKIPPED = re.compile(r"\.(fp16|bf16|fp32|non_ema)\.[^/]+$")
"""Weight variants diffusers loads only when asked (``variant=``): not fetched."""


class ModelError(Invalid):
    """A model cannot be pulled or used; the message names the problem (and the fix)."""


class DownloadFailed(ModelError):
    """Fetching from the hub failed on the way (the network, the hub): what was fetched is
    kept, and the next pull resumes it."""


class NotEnoughSpace(ModelError):
    """The models directory's disk has not enough free space for a pull."""

    status = 507


@dataclass(frozen=True)
class FileCheck:
    """One file of a checkpoint and the checksum the hub gives for it."""

    path: str
    """Relative to the repo root, ``/``-separated."""
    size: int
    digest: str
    """Hex: SHA-256 for an LFS file (64 digits), the git blob id (SHA-1 of ``blob N\\0`` and
    the content, 40 digits) for a small one."""

    @property
    def algorithm(self) -> str:
        return "sha256" if len(self.digest) == 64 else "git-sha1"


@dataclass(frozen=True)
class Installed:
    """A model directory under the models directory."""

    name: str
    path: Path
    pipeline_class: str
    family: str
    repo_id: str = ""
    revision: str = ""
    size: int = 0
    installed_at: str = ""

    @property
    def entry(self) -> CatalogueEntry | None:
        return CATALOGUE.get(self.name)


@dataclass
class PullProgress:
    """What a pull reports as it goes (the CLI prints it, the admin page's row keeps it)."""

    phase: str = "starting"  # checking, downloading, verifying, installing, done
    done: int = 0
    total: int = 0


ProgressHook = Callable[[PullProgress], None]
FreeBytes = Callable[[Path], int]


def _free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def models_dir(settings: Settings) -> Path:
    """Where pulled models live (``FEDISORA_MODELS_DIR``)."""
    return settings.models_dir


def _gb(size: int) -> str:
    return f"{size / 1e9:.1f} GB"


# --------------------------------------------------------------------------- checking


def _model_index(path: Path) -> dict[str, Any]:
    index = path / "model_index.json"
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path} has no model_index.json: not a diffusers model") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{index} cannot be read: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("_class_name"), str):
        raise ModelError(f"{index} names no pipeline class (_class_name)")
    return data


def _components(index: dict[str, Any]) -> list[str]:
    """The component folders ``model_index.json`` names (``[library, class]`` entries that are
    not ``[null, null]``)."""
    return sorted(
        key
        for key, value in index.items()
        if not key.startswith("_")
        and isinstance(value, list)
        and len(value) == 2
        and value[0] is not None
    )


def check_directory(path: Path, entry: CatalogueEntry | None = None) -> tuple[str, str]:
    """(pipeline class, family) of the diffusers model in *path*, read without loading it.

    Refuses (:class:`ModelError`) a directory that is no diffusers model, one missing a
    component its ``model_index.json`` names, one whose class is not *entry*'s (a directory
    of the wrong family), and one whose class fedisora cannot render."""
    from render.pipeline import SUPPORTED_PIPELINES

    if not path.is_dir():
        raise ModelError(f"{path} is not a directory")
    index = _model_index(path)
    class_name = str(index["_class_name"])
    if entry is not None:
        _check_class(index, entry, str(path))
    missing = [c for c in _components(index) if not (path / c).is_dir()]
    if missing:
        raise ModelError(f"{path} is incomplete: no {', '.join(missing)} folder")
    if class_name in SUPPORTED_PIPELINES:
        return class_name, SUPPORTED_PIPELINES[class_name][0]
    if entry is not None:
        return class_name, entry.family
    raise ModelError(
        f"{path} holds a {class_name}, which fedisora does not render (supported: "
        f"{', '.join(sorted(SUPPORTED_PIPELINES))})"
    )


def _check_class(index: dict[str, Any], entry: CatalogueEntry, where: str) -> None:
    """Refuse a checkpoint whose ``model_index.json`` names another pipeline than *entry*'s,
    before any weight is fetched or copied."""
    class_name = index["_class_name"]
    if class_name not in entry.pipeline_classes:
        raise ModelError(
            f"{where} holds a {class_name}, not {entry.title} "
            f"({' or '.join(entry.pipeline_classes)}): wrong model family"
        )


def _usable(class_name: str, family: str, where: str) -> None:
    """Refuse a model this version cannot render (a family it does not know yet)."""
    from render.pipeline import SUPPORTED_PIPELINES
    from render.spec import FAMILIES

    if class_name not in SUPPORTED_PIPELINES or family not in FAMILIES:
        raise ModelError(
            f"{where} is a {class_name} ({family} family), which this version of fedisora "
            "cannot render yet"
        )


def _read_marker(path: Path) -> dict[str, Any]:
    try:
        data = json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def installed(settings: Settings) -> dict[str, Installed]:
    """The models in the models directory, by name (directories that are no diffusers model
    are left out, and logged)."""
    root = models_dir(settings)
    found: dict[str, Installed] = {}
    if not root.is_dir():
        return found
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or not path.is_dir():
            continue
        try:
            class_name, family = check_directory(path, CATALOGUE.get(path.name))
        except ModelError as exc:
            log.warning("models directory: %s", exc)
            continue
        marker = _read_marker(path)
        found[path.name] = Installed(
            name=path.name,
            path=path,
            pipeline_class=class_name,
            family=family,
            repo_id=str(marker.get("repo_id", "")),
            revision=str(marker.get("revision", "")),
            size=int(marker.get("size", 0) or 0),
            installed_at=str(marker.get("installed_at", "")),
        )
    return found


# --------------------------------------------------------------------------- checksums


def _hasher(check: FileCheck) -> Any:
    if check.algorithm == "sha256":
        return hashlib.sha256()
    h = hashlib.sha1(usedforsecurity=False)  # git's blob id, as the hub gives it
    h.update(b"blob %d\0" % check.size)
    return h


def _copy_checked(
    source: Path, target: Path | None, check: FileCheck, tick: Callable[[int], None]
) -> None:
    """Read *source* (copying it to *target* when given) and compare its size and checksum
    with *check*'s; :class:`ModelError` naming the file when they differ."""
    h = _hasher(check)
    size = 0
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(source.open("rb"))
        writer = None
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            writer = stack.enter_context(target.open("wb"))
        while chunk := reader.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
            if writer is not None:
                writer.write(chunk)
            tick(len(chunk))
    if size != check.size or h.hexdigest() != check.digest:
        raise ModelError(
            f"{check.path} is corrupted: its {check.algorithm} does not match the hub's "
            f"({size} bytes, expected {check.size}); nothing was installed, pull it again"
        )


# --------------------------------------------------------------------------- sources


def _wanted(path: str, components: list[str]) -> bool:
    """Whether a repo file belongs to the diffusers checkpoint: model_index.json and the
    component folders it names (not the single-file checkpoints some repos keep beside them,
    nor weight variants)."""
    if path == "model_index.json":
        return True
    top, sep, _ = path.partition("/")
    return bool(sep) and top in components and not _SKIPPED.search(path)


def _without_duplicates(files: list[FileCheck]) -> list[FileCheck]:
    """Drop ``.bin`` weights of a folder that has ``.safetensors`` ones (diffusers loads
    the latter)."""
    with_safetensors = {f.path.rpartition("/")[0] for f in files if f.path.endswith(".safetensors")}
    return [
        f
        for f in files
        if not (f.path.endswith(".bin") and f.path.rpartition("/")[0] in with_safetensors)
    ]


def _require_hub() -> None:
    """``huggingface_hub`` comes with the render extra: a web-only host says so."""
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        raise ModelError(
            "pulling a model needs the render extra (pip install 'fedisora[render]'): pull on "
            "a render worker's host"
        ) from None


def _hub_files(
    entry: CatalogueEntry, staging: Path, endpoint: str | None
) -> tuple[str, list[FileCheck]]:
    """(commit, files to fetch) of *entry* on the hub, from its listing with file metadata;
    ``model_index.json`` is fetched first to know the components."""
    from huggingface_hub import HfApi, hf_hub_download

    try:
        api = HfApi(endpoint=endpoint)
        info = api.model_info(entry.repo_id, revision=entry.revision, files_metadata=True)
        commit = str(info.sha)
        hf_hub_download(
            entry.repo_id,
            "model_index.json",
            revision=commit,
            local_dir=staging,
            endpoint=endpoint,
        )
    except Exception as exc:  # offline, the hub down, a gated repo: said plainly
        raise DownloadFailed(
            f"the hub did not list {entry.repo_id} ({type(exc).__name__}: {exc})"
        ) from exc
    index = _model_index(staging)
    _check_class(index, entry, entry.repo_id)
    components = _components(index)
    files = []
    for sibling in info.siblings or ():
        if not _wanted(sibling.rfilename, components):
            continue
        lfs = sibling.lfs
        digest = lfs.sha256 if lfs is not None else sibling.blob_id
        size = lfs.size if lfs is not None else sibling.size
        if not digest or size is None:
            raise ModelError(f"the hub lists no checksum for {entry.repo_id}/{sibling.rfilename}")
        files.append(FileCheck(sibling.rfilename, int(size), str(digest)))
    return commit, _without_duplicates(files)


def _cache_files(entry: CatalogueEntry, source: Path) -> tuple[str, Path, list[FileCheck]]:
    """(commit, snapshot folder, files) of *entry* in *source*, a hub cache (the folder that
    holds ``models--Org--Name``, or that folder itself), read the way ``huggingface_hub``
    reads its cache offline. Each file's checksum is its blob's name, as the hub names
    blobs (its ETag: the LFS SHA-256 or the git blob id)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    repo_folder = "models--" + entry.repo_id.replace("/", "--")
    cache = source.parent if source.name == repo_folder else source
    if not (cache / repo_folder).is_dir():
        raise ModelError(
            f"{source} holds no hub copy of {entry.repo_id} (expected a {repo_folder} folder "
            "with blobs/, refs/ and snapshots/, as huggingface_hub lays out its cache)"
        )
    try:
        snapshot = Path(
            snapshot_download(
                entry.repo_id, revision=entry.revision, cache_dir=cache, local_files_only=True
            )
        )
    except (LocalEntryNotFoundError, OSError, ValueError) as exc:
        raise ModelError(f"{source}: no complete snapshot of {entry.repo_id}: {exc}") from exc
    index = _model_index(snapshot)
    _check_class(index, entry, str(source))
    components = _components(index)
    files = []
    for path in sorted(snapshot.rglob("*")):
        if path.is_dir():
            continue
        relative = path.relative_to(snapshot).as_posix()
        if not _wanted(relative, components):
            continue
        blob = Path(os.path.realpath(path))
        if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", blob.name):
            raise ModelError(f"{relative} in {source} has no checksum (not a blob of a hub cache)")
        files.append(FileCheck(relative, blob.stat().st_size, blob.name))
    return snapshot.name, snapshot, _without_duplicates(files)


# --------------------------------------------------------------------------- pulling


@contextlib.contextmanager
def _pull_lock(root: Path, name: str) -> Iterator[None]:
    """One pull of *name* at a time on this host (a second one is refused, not queued)."""
    fd = os.open(root / f".pull-{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ModelError(f"{name} is being pulled already") from None
        yield
    finally:
        os.close(fd)


def _check_space(root: Path, need: int, free_bytes: FreeBytes, name: str) -> None:
    free = free_bytes(root)
    if free < need + SPACE_MARGIN:
        raise NotEnoughSpace(
            f"not enough disk space to pull {name}: it needs {_gb(need + SPACE_MARGIN)} "
            f"on {root} and {_gb(free)} is free; nothing was downloaded"
        )


def _progress_bar(total: int, label: str, show: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=label, disable=not show)


def pull(
    settings: Settings,
    name: str,
    *,
    source: Path | None = None,
    free_bytes: FreeBytes = _free_bytes,
    progress: ProgressHook | None = None,
    show_progress: bool = False,
    endpoint: str | None = None,
) -> Installed:
    """Fetch catalogue model *name* into the models directory, checked; see the module's
    docstring. *source* is a hub cache to copy from instead of the hub (``--from``);
    *free_bytes* measures a directory's free space (a hook for tests and odd filesystems);
    *progress* is told each phase and the bytes done; *show_progress* draws progress bars
    (the CLI); *endpoint* is the hub's URL (default: ``HF_ENDPOINT``, else huggingface.co).
    A pull of an installed model replaces it once the new copy is checked."""
    entry = CATALOGUE.get(name)
    if entry is None:
        raise ModelError(f"{name!r} is not in the catalogue (known: {', '.join(CATALOGUE)})")
    root = models_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    state = PullProgress()

    def report(phase: str, done: int = 0, total: int = 0) -> None:
        state.phase, state.done, state.total = phase, done, total
        if progress is not None:
            progress(state)

    _require_hub()
    with _pull_lock(root, name):
        partial = root / ".partial" / name
        staging = root / f".staging-{name}-{secrets.token_hex(4)}"
        try:
            report("checking")
            if source is None:
                partial.mkdir(parents=True, exist_ok=True)
                commit, files = _hub_files(entry, partial, endpoint)
                have = sum(
                    f.size
                    for f in files
                    if (partial / f.path).is_file() and (partial / f.path).stat().st_size == f.size
                )
                _check_space(root, sum(f.size for f in files) - have, free_bytes, name)
                need = sum(f.size for f in files)
                report("downloading", have, need)
                with _watching(partial, lambda size: report("downloading", min(size, need), need)):
                    _download(entry, commit, partial, files, show_progress, endpoint)
                origin = partial
            else:
                commit, origin, files = _cache_files(entry, Path(source))
                _check_space(root, sum(f.size for f in files), free_bytes, name)
            total = sum(f.size for f in files)
            report("verifying", 0, total)
            done = 0
            bar = _progress_bar(total, f"checking {name}", show_progress)

            def tick(count: int) -> None:
                nonlocal done
                done += count
                bar.update(count)
                if progress is not None and (done == total or count >= _CHUNK):
                    report("verifying", done, total)

            with bar:
                for check in files:
                    # From the hub's download: checked in place, then moved. From a cache:
                    # copied and checked in one read (the source is left as it was).
                    target = None if source is None else staging / check.path
                    try:
                        _copy_checked(origin / check.path, target, check, tick)
                    except ModelError:
                        if source is None:  # fetched again by the next pull, not resumed
                            _forget_download(partial, check.path)
                        raise
            report("installing", total, total)
            if source is None:
                for check in files:
                    (staging / check.path).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(partial / check.path, staging / check.path)
            class_name, family = check_directory(staging, entry)
            marker = {
                "name": name,
                "repo_id": entry.repo_id,
                "revision": commit,
                "pipeline_class": class_name,
                "family": family,
                "size": total,
                "installed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "files": {f.path: f.digest for f in files},
            }
            (staging / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
            _swap_in(staging, root / name)
            shutil.rmtree(partial, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    report("done", total, total)
    log.info("pulled model %s (%s at %s) into %s", name, entry.repo_id, commit, root / name)
    return installed(settings)[name]


@contextlib.contextmanager
def _watching(folder: Path, tell: Callable[[int], None], every: float = 1.0) -> Iterator[None]:
    """While the block runs, tell the bytes under *folder* every *every* seconds (the hub's
    download gives no byte count of its own to a caller; partly fetched files count)."""
    import threading

    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(every):
            size = 0
            for path in folder.rglob("*"):
                with contextlib.suppress(OSError):
                    if path.is_file():
                        size += path.stat().st_size
            with contextlib.suppress(Exception):  # a report that fails never stops a pull
                tell(size)

    thread = threading.Thread(target=watch, name="model pull progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _download(
    entry: CatalogueEntry,
    commit: str,
    partial: Path,
    files: list[FileCheck],
    show: bool,
    endpoint: str | None,
) -> None:
    """``snapshot_download`` of *files* into *partial* (resumed when partly there)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils.tqdm import disable_progress_bars, enable_progress_bars

    if not show:
        disable_progress_bars()
    try:
        snapshot_download(
            entry.repo_id,
            revision=commit,
            local_dir=partial,
            allow_patterns=[f.path for f in files],
            endpoint=endpoint,
        )
    except ModelError:
        raise
    except Exception as exc:  # network, gated repo, disk: said plainly, the partial kept
        raise DownloadFailed(
            f"downloading {entry.repo_id} failed ({type(exc).__name__}: {exc}); what was "
            f"fetched is kept in {partial} and the next pull resumes it"
        ) from exc
    finally:
        if not show:
            enable_progress_bars()


def _forget_download(partial: Path, path: str) -> None:
    """Remove a fetched file and the hub's record of it from *partial*."""
    (partial / path).unlink(missing_ok=True)
    (partial / ".cache" / "huggingface" / "download" / f"{path}.metadata").unlink(missing_ok=True)


def _swap_in(staging: Path, final: Path) -> None:
    """Rename *staging* to *final*; an installed copy there is replaced, then removed."""
    old = None
    if final.exists():
        old = final.with_name(f".old-{final.name}-{secrets.token_hex(4)}")
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- in use

# id(settings) -> (settings, loaded at (monotonic), the settings with the choice applied)
_cache: dict[int, tuple[Settings, float, Settings]] = {}


def reset() -> None:
    """Forget every process copy (after a change; tests with a fresh database)."""
    _cache.clear()


def _resolve(settings: Settings, value: str) -> str:
    """The ``render_model`` string a saved choice stands for."""
    if is_tiny(value) or Path(value).is_absolute():
        return value
    return str(models_dir(settings) / value)


def _applied(settings: Settings, saved: str | None) -> Settings:
    if not saved:
        return settings
    model = _resolve(settings, saved)
    if model == settings.render_model:
        return settings
    # FEDISORA_RENDER_FAMILY describes FEDISORA_RENDER_MODEL, not a model chosen since.
    return replace(settings, render_model=model, render_family="")


def cached(settings: Settings) -> Settings:
    """*settings* with the model in use as last read in this process (synchronous code);
    *settings* themselves before the first read."""
    entry = _cache.get(id(settings))
    if entry is not None and entry[0] is settings:
        return entry[2]
    return settings


async def effective(settings: Settings) -> Settings:
    """*settings* with the model in use applied (read again at most every
    :data:`CACHE_SECONDS`); the last copy stands when the database cannot be read."""
    from fedisora.models import InstanceSetting

    now = time.monotonic()
    entry = _cache.get(id(settings))
    if entry is not None and entry[0] is settings and now - entry[1] < CACHE_SECONDS:
        return entry[2]
    try:
        row = await InstanceSetting.get_or_none(key=SETTING_KEY)
    except Exception as exc:  # an outage: keep rendering with what we had
        log.warning("render model: could not read the saved choice (%s)", exc)
        value = cached(settings)
    else:
        value = _applied(settings, row.value if row is not None else None)
    if len(_cache) > 16:
        _cache.clear()
    _cache[id(settings)] = (settings, now, value)
    return value


def in_use(settings: Settings) -> str:
    """The name the model in use is listed by (a tiny or installed name, else its path)."""
    model = cached(settings).render_model
    path = Path(model)
    if not is_tiny(model) and path.parent == models_dir(settings):
        return path.name
    return model


async def use(settings: Settings, name: str, by: audit.Actor) -> str:
    """Put *name* in use: a tiny model's name, an installed model's name, or an absolute path
    to a diffusers directory. The directory is checked to be the model it says it is and one
    fedisora renders before anything is saved. Returns the name now in use."""
    from tortoise.transactions import in_transaction

    from fedisora.models import InstanceSetting, utcnow
    from fedisora.services import audit

    name = name.strip()
    if is_tiny(name):
        value, label = name, f"{name} (built in)"
    else:
        if not Path(name).is_absolute() and (not name or "/" in name or name.startswith(".")):
            raise ModelError(
                f"{name!r}: give a built-in model, an installed model's name or an absolute "
                "path to a diffusers directory"
            )
        path = Path(name) if Path(name).is_absolute() else models_dir(settings) / name
        if not path.is_dir():
            if name in CATALOGUE:
                raise ModelError(f"{name} is not installed: run `fedisora model pull {name}`")
            known = ", ".join([*TINY_MODELS, *installed(settings)])
            raise ModelError(f"no model {name!r} here (installed or built in: {known})")
        class_name, family = check_directory(path, CATALOGUE.get(path.name))
        _usable(class_name, family, name)
        value = name if path.parent == models_dir(settings) else str(path.resolve())
        label = f"{name} ({class_name}, {family})"
    now = utcnow()
    async with in_transaction():
        if _resolve(settings, value) == settings.render_model:
            await InstanceSetting.filter(key=SETTING_KEY).delete()  # the environment's again
        elif not await InstanceSetting.filter(key=SETTING_KEY).update(value=value, updated_at=now):
            await InstanceSetting.create(key=SETTING_KEY, value=value, updated_at=now)
        await audit.record(
            by, "render.model", audit.target("instance", settings.domain), f"in use: {label}"
        )
    reset()
    await effective(settings)
    return value
