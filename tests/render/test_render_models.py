"""Real models an admin pulls and puts in use (render.models, ``fedisora model``).

Nothing is downloaded: the pull path runs against tiny checkpoints laid out as the hub lays
out its cache (``--from``), read through ``huggingface_hub``'s own offline snapshot lookup.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fake_hub import FakeHub, serving
from hub_layout import COMMIT, blob_of, lay_out
from instance import cli_fails, cli_ok, fedisora, free_port, instance_env

from fedisora.config import load_settings
from render import models
from render.catalogue import CATALOGUE, TINY_MODELS

WAN = CATALOGUE["wan2.1-t2v-1.3b"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny Wan and LTX checkpoints saved with ``save_pretrained`` (once per module)."""
    from render.tiny import build_tiny_ltx, build_tiny_wan

    root = tmp_path_factory.mktemp("saved")
    build_tiny_wan().save_pretrained(root / "wan")
    build_tiny_ltx().save_pretrained(root / "ltx")
    return {"wan": root / "wan", "ltx": root / "ltx"}


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    models.reset()
    return load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": str(tmp_path / "data"),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_CONFIG": str(tmp_path / "none.env"),
        }
    )


def _leftovers(root: Path) -> list[str]:
    """What a failed pull left in the models directory besides its lock file."""
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if not p.name.endswith(".lock") and p.name != ".partial"
    )


def test_pull_from_a_hub_cache_checks_and_installs(
    saved: dict[str, Path], settings: Any, tmp_path: Path
) -> None:
    repo = lay_out(saved["wan"], tmp_path / "hub", WAN.repo_id)
    phases: list[str] = []
    done = models.pull(
        settings,
        WAN.name,
        source=tmp_path / "hub",
        progress=lambda p: phases.append(p.phase),
    )
    target = settings.models_dir / WAN.name
    assert done.path == target and done.pipeline_class == "WanPipeline" and done.family == "wan"
    assert done.repo_id == WAN.repo_id and done.revision
    assert (target / "model_index.json").is_file()
    assert (target / "transformer" / "diffusion_pytorch_model.safetensors").is_file()
    assert not (target / "single-file.safetensors").exists()  # not a component: left out
    assert not any(p.is_symlink() for p in target.rglob("*"))  # real copies, not links
    assert phases[0] == "checking" and phases[-1] == "done" and "verifying" in phases
    assert _leftovers(settings.models_dir) == [WAN.name]
    assert (repo / "blobs").is_dir()  # the source is left as it was
    assert models.installed(settings)[WAN.name].size == done.size > 0

    # The repo folder itself is a valid --from as well; pulling again replaces the copy.
    again = models.pull(settings, WAN.name, source=repo)
    assert again.path == target and _leftovers(settings.models_dir) == [WAN.name]


def test_a_corrupted_file_installs_nothing(
    saved: dict[str, Path], settings: Any, tmp_path: Path
) -> None:
    repo = lay_out(saved["wan"], tmp_path / "hub", WAN.repo_id)
    blob = blob_of(repo, "transformer/diffusion_pytorch_model.safetensors")
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(models.ModelError) as caught:
        models.pull(settings, WAN.name, source=tmp_path / "hub")
    message = str(caught.value)
    assert "transformer/diffusion_pytorch_model.safetensors is corrupted" in message
    assert "sha256" in message and "nothing was installed" in message
    assert _leftovers(settings.models_dir) == []
    assert WAN.name not in models.installed(settings)


def test_a_directory_of_the_wrong_family_is_refused(
    saved: dict[str, Path], settings: Any, tmp_path: Path
) -> None:
    lay_out(saved["ltx"], tmp_path / "hub", WAN.repo_id)  # LTX weights under Wan's name
    with pytest.raises(models.ModelError, match=r"holds a LTXPipeline, not Wan 2\.1 text-to-video"):
        models.pull(settings, WAN.name, source=tmp_path / "hub")
    assert _leftovers(settings.models_dir) == []


def test_not_enough_disk_space_is_said_before_anything_is_copied(
    saved: dict[str, Path], settings: Any, tmp_path: Path
) -> None:
    lay_out(saved["wan"], tmp_path / "hub", WAN.repo_id)
    asked: list[Path] = []

    def free(path: Path) -> int:
        asked.append(path)
        return 10_000_000  # 10 MB: less than the margin a pull keeps

    with pytest.raises(models.NotEnoughSpace, match="not enough disk space to pull"):
        models.pull(settings, WAN.name, source=tmp_path / "hub", free_bytes=free)
    assert asked == [settings.models_dir]
    assert _leftovers(settings.models_dir) == []


def test_a_source_without_the_repo_or_a_name_outside_the_catalogue(
    settings: Any, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(models.ModelError, match=r"holds no hub copy of Wan-AI/Wan2\.1-T2V"):
        models.pull(settings, WAN.name, source=tmp_path / "empty")
    with pytest.raises(models.ModelError, match="is not in the catalogue"):
        models.pull(settings, "sora-2", source=tmp_path / "empty")


async def test_use_switches_the_model_every_process_reads(
    db: str, saved: dict[str, Path], settings: Any, tmp_path: Path
) -> None:
    from fedisora.models import AuditEntry
    from fedisora.services import audit
    from render.pipeline import load_pipeline
    from render.service import model_family, render_limits

    assert (await models.effective(settings)).render_model == "tiny"
    with pytest.raises(models.ModelError, match="is not installed: run `fedisora model pull"):
        await models.use(settings, WAN.name, audit.CLI)
    lay_out(saved["wan"], tmp_path / "hub", WAN.repo_id)
    models.pull(settings, WAN.name, source=tmp_path / "hub")
    assert await models.use(settings, WAN.name, audit.CLI) == WAN.name

    models.reset()  # another process: reads the saved choice
    chosen = await models.effective(settings)
    assert chosen.render_model == str(settings.models_dir / WAN.name)
    assert models.in_use(settings) == WAN.name
    assert model_family(settings) == "wan"  # synchronous readers see it too
    assert "9:16" in render_limits(settings).aspects
    loaded = load_pipeline(chosen.render_model, device="cpu")  # the pulled weights load
    assert loaded.family.name == "wan" and loaded.text_pipe is not None
    entry = await AuditEntry.filter(action="render.model").order_by("-id").first()
    assert entry is not None and "wan2.1-t2v-1.3b (WanPipeline, wan)" in entry.detail

    # A directory of a model no family here renders, and a name nobody knows: refused.
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "model_index.json").write_text('{"_class_name": "FluxPipeline"}')
    with pytest.raises(models.ModelError, match="which fedisora does not render"):
        await models.use(settings, str(tmp_path / "odd"), audit.CLI)
    with pytest.raises(models.ModelError, match="no model 'nothing'"):
        await models.use(settings, "nothing", audit.CLI)
    with pytest.raises(models.ModelError, match="an absolute path"):
        await models.use(settings, f"../{WAN.name}", audit.CLI)

    # The tiny models by name; the environment's own model again removes the saved choice.
    await models.use(settings, "tiny-ltx", audit.CLI)
    assert model_family(settings) == "tiny-ltx"
    await models.use(settings, "tiny", audit.CLI)
    from fedisora.models import InstanceSetting

    assert await InstanceSetting.get_or_none(key=models.SETTING_KEY) is None


async def test_a_chosen_model_leaves_the_environments_family_override(
    db: str, settings: Any
) -> None:
    from fedisora.services import audit
    from render.service import model_family

    sized = replace(settings, render_family="tiny256")
    assert model_family(sized) == "tiny256"
    await models.use(sized, "tiny-cogvideox", audit.CLI)
    assert model_family(sized) == "tiny-cogvideox"  # FEDISORA_RENDER_FAMILY was for tiny


def test_tiny_models_are_listed_and_each_loads_by_name() -> None:
    from render.pipeline import load_pipeline
    from render.spec import FAMILIES

    assert set(TINY_MODELS) == {"tiny", "tiny-wan", "tiny-ltx", "tiny-ltx2", "tiny-cogvideox"}
    for name, tiny in TINY_MODELS.items():
        assert tiny.family in FAMILIES
        if name in ("tiny", "tiny-wan"):
            continue  # the session's tiny fixture covers the Wan one
        loaded = load_pipeline(name, device="cpu")
        assert loaded.family.name == tiny.family and loaded.image_pipe is not None


def test_the_catalogue_names_families_classes_and_both_gpus() -> None:
    from render.pipeline import SUPPORTED_PIPELINES
    from render.spec import FAMILIES

    families = {e.family for e in CATALOGUE.values()}
    assert {"wan", "ltx", "cogvideox", "ltx2"} <= families
    assert any(e.cameos for e in CATALOGUE.values())  # a VACE model for cameos
    for entry in CATALOGUE.values():
        assert "/" in entry.repo_id and entry.licence and entry.licence_url.startswith("https://")
        assert entry.gpu80.vram_gb == 80
        assert entry.gpu24 is None or entry.gpu24.vram_gb == 24
        if entry.family in FAMILIES:  # its settings are sizes and lengths the family renders
            fam = FAMILIES[entry.family]
            assert set(entry.pipeline_classes) <= set(SUPPORTED_PIPELINES)
            for gpu in (entry.gpu24, entry.gpu80):
                if gpu is not None:
                    assert (gpu.width, gpu.height) in fam.sizes.values()
                    assert fam.is_valid_frame_count(gpu.max_frames)


def test_the_cli_pulls_from_a_cache_lists_and_uses(saved: dict[str, Path], tmp_path: Path) -> None:
    env = instance_env(tmp_path / "data", free_port())
    cli_ok(fedisora(["init"], env))
    lay_out(saved["wan"], tmp_path / "hub", WAN.repo_id)
    out = cli_ok(fedisora(["model", "pull", WAN.name, "--from", str(tmp_path / "hub")], env))
    assert f"installed {WAN.name}: WanPipeline (wan)" in out
    assert f"fedisora model use {WAN.name}" in out
    assert "in use: " in cli_ok(fedisora(["model", "use", WAN.name], env))
    listed = cli_ok(fedisora(["model", "list"], env))
    assert f"in use: {WAN.name}" in listed
    assert f"{WAN.name:<18} wan             installed, IN USE" in listed
    assert "tiny-ltx" in listed and "Apache-2.0" in listed and "24 GB: " in listed
    cli_fails(
        fedisora(["model", "pull", "cogvideox-2b", "--from", str(tmp_path / "hub")], env),
        "holds no hub copy of THUDM/CogVideoX-2b",
    )
    cli_fails(fedisora(["model", "use", "cogvideox-2b"], env), "is not installed")
    assert _leftovers(tmp_path / "data" / "models") == [WAN.name]


# --------------------------------------------------------------------------- from the hub


def test_pull_from_the_hub_downloads_checks_and_resumes(
    saved: dict[str, Path], settings: Any
) -> None:
    """The online path against a hub on 127.0.0.1 (tests/support/fake_hub.py): listing with
    checksums, snapshot_download into .partial, checked, moved in; a file that arrives
    corrupted is refused and fetched again by the next pull, which resumes the rest."""
    hub = FakeHub.of(WAN.repo_id, saved["wan"])
    weights = "transformer/diffusion_pytorch_model.safetensors"
    hub.corrupt.add(weights)
    phases: list[str] = []
    with serving(hub) as endpoint:
        with pytest.raises(models.ModelError, match=f"{weights} is corrupted"):
            models.pull(settings, WAN.name, endpoint=endpoint)
        assert _leftovers(settings.models_dir) == []
        partial = settings.models_dir / ".partial" / WAN.name
        assert (partial / "vae" / "diffusion_pytorch_model.safetensors").is_file()  # kept
        assert not (partial / weights).exists()  # the bad one is not resumed from
        first = list(hub.served)
        assert "single-file.safetensors" not in first  # not a component of the checkpoint

        hub.corrupt.clear()
        done = models.pull(
            settings, WAN.name, endpoint=endpoint, progress=lambda p: phases.append(p.phase)
        )
    assert hub.served[len(first) :] == [weights]  # only the refused file came again
    assert done.pipeline_class == "WanPipeline" and done.revision == COMMIT
    assert phases[:2] == ["checking", "downloading"] and phases[-1] == "done"
    assert _leftovers(settings.models_dir) == [WAN.name]
    assert not (settings.models_dir / ".partial" / WAN.name).exists()
    assert not (done.path / ".cache").exists()  # the hub's download records stay behind


def test_the_space_check_comes_before_any_weight_is_downloaded(
    saved: dict[str, Path], settings: Any
) -> None:
    hub = FakeHub.of(WAN.repo_id, saved["wan"])
    with (
        serving(hub) as endpoint,
        pytest.raises(models.NotEnoughSpace, match="nothing was downloaded"),
    ):
        models.pull(settings, WAN.name, endpoint=endpoint, free_bytes=lambda _path: 1 << 20)
    assert hub.served == ["model_index.json"]  # read to know the components; nothing else


def test_a_hub_that_cannot_be_reached_is_said_plainly(settings: Any) -> None:
    with pytest.raises(models.DownloadFailed, match="the hub did not list Wan-AI/"):
        models.pull(settings, WAN.name, endpoint=f"http://127.0.0.1:{free_port()}")
    assert _leftovers(settings.models_dir) == []


def test_a_hub_repo_of_the_wrong_family_is_refused_before_its_weights_come(
    saved: dict[str, Path], settings: Any
) -> None:
    hub = FakeHub.of(WAN.repo_id, saved["ltx"])  # LTX weights under Wan's name
    with (
        serving(hub) as endpoint,
        pytest.raises(models.ModelError, match=r"holds a LTXPipeline, not Wan 2\.1"),
    ):
        models.pull(settings, WAN.name, endpoint=endpoint)
    assert hub.served == ["model_index.json"]
    assert _leftovers(settings.models_dir) == []


async def test_a_worker_loads_the_model_put_in_use_for_its_next_render(
    db: str, settings: Any
) -> None:
    from fedisora.services import audit
    from render.queue import _PIPELINES, pipeline_for

    first = await pipeline_for(settings)
    assert first.model == "tiny" and first.family.name == "tiny"
    await models.use(settings, "tiny-cogvideox", audit.CLI)
    models.reset()  # the worker is another process: it reads the saved choice
    second = await pipeline_for(settings)
    assert second.model == "tiny-cogvideox" and second.family.name == "tiny-cogvideox"
    assert list(_PIPELINES.values()) == [second]  # the old model was let go
