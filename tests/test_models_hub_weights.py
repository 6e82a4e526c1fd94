"""Hugging Face Hub ids as weight specs: offline cache reads, clear errors, local paths first, ``weights fetch``.

No test reaches the network. The Hub cache is written by hand in ``tmp_path`` in huggingface_hub's own
layout (``models--owner--name/{refs/main, blobs/<hash>, snapshots/<commit>/<file> -> ../../blobs/<hash>}``)
from a random tiny ``transformers.SegformerModel``; ``HF_HUB_OFFLINE=1`` is set both in the environment
(what scribbleseg reads) and in ``huggingface_hub.constants`` (which the library froze at import), so any
request would be refused. The one test of the "no network" path points the Hub endpoint at a closed local
port.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.errors import WeightsError
from scribbleseg.models import MixTransformer, load_encoder_weights
from scribbleseg.models.weights.hub import is_hub_id, resolve_weights_path
from segformer_reference import random_segformer

transformers = pytest.importorskip("transformers")
hub_constants = pytest.importorskip("huggingface_hub.constants")

TINY = dict(embed_dims=(8, 16, 24, 32), num_heads=(1, 2, 3, 4), depths=(1, 2, 1, 1), sr_ratios=(4, 2, 2, 1))
COMMIT = "0123456789abcdef0123456789abcdef01234567"
TOLERANCE = 1e-5


def tiny_hf_model(seed: int):
    """Random tiny ``SegformerModel`` with the shape of :data:`TINY` (eval mode)."""
    return random_segformer(seed, hidden_sizes=list(TINY["embed_dims"]), num_attention_heads=list(TINY["num_heads"]),
                            depths=list(TINY["depths"]), sr_ratios=list(TINY["sr_ratios"]))


def tiny_mit() -> MixTransformer:
    return MixTransformer(**TINY, layer_norm_eps=1e-5).eval()


def stage_maps(model, x: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        if isinstance(model, MixTransformer):
            return list(model(x))
        return list(model(pixel_values=x, output_hidden_states=True).hidden_states)


def assert_same_maps(expected: list[torch.Tensor], got: list[torch.Tensor]) -> None:
    assert len(expected) == len(got) == 4
    for i, (e, g) in enumerate(zip(expected, got)):
        assert e.shape == g.shape and (e - g).abs().max().item() <= TOLERANCE, f"stage {i + 1}"


def write_cached_repo(cache: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    """Lay ``files`` out as huggingface_hub caches revision ``main`` of ``repo_id``; returns the snapshot."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for name, data in files.items():
        lfs = not name.endswith(".json")  # weights are LFS files (sha256 names), configs git blobs (sha1)
        blob = hashlib.sha256(data).hexdigest() if lfs else hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        (repo / "blobs" / blob).write_bytes(data)
        (snapshot / name).symlink_to(Path("..", "..", "blobs", blob))
    return snapshot


def saved_files(model, folder: Path) -> dict[str, bytes]:
    """The files ``save_pretrained`` writes (``config.json``, ``model.safetensors``), by name."""
    model.save_pretrained(folder)
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def pickle_files(model, folder: Path) -> dict[str, bytes]:
    """An older Hub repository's files: ``config.json`` and the same tensors pickled as ``pytorch_model.bin``."""
    from safetensors.torch import load

    files = saved_files(model, folder)
    buffer = io.BytesIO()
    torch.save(load(files.pop("model.safetensors")), buffer)
    return {**files, "pytorch_model.bin": buffer.getvalue()}


@pytest.fixture()
def offline_cache(tmp_path, monkeypatch):
    """An offline Hub cache in ``tmp_path/hf/hub`` holding ``nvidia/mit-b0`` (a tiny random model).

    Yields ``(cache, snapshot, x, expected_maps)``; the working directory is an empty folder.
    """
    home = tmp_path / "hf"
    cache = home / "hub"
    model = tiny_hf_model(seed=0)
    snapshot = write_cached_repo(cache, "nvidia/mit-b0", saved_files(model, tmp_path / "saved"))
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(5))
    yield cache, snapshot, x, stage_maps(model, x)


def test_hub_ids_are_owner_slash_name_and_never_file_names() -> None:
    for spec in ("nvidia/mit-b1", "microsoft/resnet-101", "nvidia/mit-b1.5", "a_b/c.d-e"):
        assert is_hub_id(spec), spec
    for spec in ("mit_b1", "pretrained/mit_b1.pth", "weights/enc.safetensors", "./nvidia/mit-b1", "/abs/mit-b1",
                 "~/nvidia/mit-b1", "a/b/c", "a--b/c", "a/b..c", "nvidia/mit-b1/", "x/" + "y" * 95):
        assert not is_hub_id(spec), spec


def test_hub_id_loads_from_the_offline_cache_like_transformers(offline_cache) -> None:
    cache, snapshot, x, expected = offline_cache
    assert Path(hub_constants.HF_HUB_CACHE) != cache  # the env-derived cache is used, not the frozen constant
    model = tiny_mit()
    report = load_encoder_weights(model, "nvidia/mit-b0")
    assert report.path == snapshot / "model.safetensors" and report.source_format == "huggingface"
    assert report.loaded == len(model.state_dict())
    assert_same_maps(expected, stage_maps(model, x))


def test_a_pickle_only_repository_loads_its_pytorch_model_bin(offline_cache, tmp_path) -> None:
    cache, _, x, _ = offline_cache
    model = tiny_hf_model(seed=3)
    snapshot = write_cached_repo(cache, "someone/mit-bin-only", pickle_files(model, tmp_path / "saved_bin"))
    ours = tiny_mit()
    assert load_encoder_weights(ours, "someone/mit-bin-only").path == snapshot / "pytorch_model.bin"
    assert_same_maps(stage_maps(model, x), stage_maps(ours, x))


def test_online_only_weight_and_config_files_are_requested_and_the_bin_only_without_safetensors(
        tmp_path, monkeypatch) -> None:
    """The download plan, with ``snapshot_download`` replaced by a fake Hub that records each request."""
    import fnmatch

    import huggingface_hub

    repos = {"a/new": ["config.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5", "onnx/model.onnx",
                       "onnx/config.json", "README.md"],
             "a/old": ["config.json", "pytorch_model.bin", "flax_model.msgpack"],
             "a/tf-only": ["config.json", "tf_model.h5"]}
    requests = []

    def fake_snapshot_download(repo_id, *, cache_dir, allow_patterns, ignore_patterns, local_files_only):
        requests.append((repo_id, tuple(allow_patterns), local_files_only))
        folder = Path(cache_dir) / repo_id
        folder.mkdir(parents=True, exist_ok=True)
        for name in repos[repo_id]:
            if (any(fnmatch.fnmatch(name, p) for p in allow_patterns)
                    and not any(fnmatch.fnmatch(name, p) for p in ignore_patterns)):
                (folder / name).write_bytes(b"")
        return str(folder)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)

    new = resolve_weights_path("a/new")
    assert new == tmp_path / "cache" / "a" / "new"
    assert sorted(p.name for p in new.iterdir()) == ["config.json", "model.safetensors"]
    old = resolve_weights_path("a/old")
    assert sorted(p.name for p in old.iterdir()) == ["config.json", "pytorch_model.bin"]
    assert requests == [("a/new", ("*.json", "*.safetensors"), False), ("a/old", ("*.json", "*.safetensors"), False),
                        ("a/old", ("pytorch_model.bin",), False)]
    with pytest.raises(WeightsError, match=r"repository a/tf-only .* holds no \*\.safetensors or pytorch_model\.bin"):
        resolve_weights_path("a/tf-only")


def test_an_id_missing_from_the_offline_cache_says_how_to_fetch_it(offline_cache) -> None:
    cache = offline_cache[0]
    model = tiny_mit()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsError) as info:
        load_encoder_weights(model, "nvidia/mit-b1")
    message = str(info.value)
    assert "scribbleseg weights fetch nvidia/mit-b1 --to DIR" in message
    assert "HF_HUB_OFFLINE=1" in message and str(cache) in message and "model.pretrained=DIR" in message
    assert len(message.splitlines()) == 1
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_an_existing_local_folder_shadows_the_hub_id(offline_cache, tmp_path) -> None:
    _, snapshot, x, cached_maps = offline_cache
    local_model = tiny_hf_model(seed=7)
    local_model.save_pretrained(Path("nvidia") / "mit-b0")  # relative to the working directory
    ours = tiny_mit()
    report = load_encoder_weights(ours, "nvidia/mit-b0")
    assert report.path.resolve() == (Path.cwd() / "nvidia" / "mit-b0" / "model.safetensors").resolve()
    assert_same_maps(stage_maps(local_model, x), stage_maps(ours, x))
    assert (cached_maps[0] - stage_maps(ours, x)[0]).abs().max() > 1e-3  # really the other weights


def test_model_pretrained_takes_a_hub_id_through_the_engine_factory(offline_cache) -> None:
    from scribbleseg.engine.config.schema import ExperimentConfig
    from scribbleseg.engine.build.method_factory import build_method

    _, _, x, expected = offline_cache
    cfg = ExperimentConfig(model={"backbone": {"name": None, "dims": {k: list(v) for k, v in TINY.items()}},
                                  "pretrained": "nvidia/mit-b0"})
    encoder = build_method(cfg, num_classes=3).encoder.eval()
    # our default LayerNorm eps is 1e-6 vs Hugging Face's 1e-5, hence the looser tolerance
    got = stage_maps(encoder, x)
    assert all((e - g).abs().max().item() < 1e-3 for e, g in zip(expected, got))


def test_neither_a_path_nor_an_id_is_weight_file_not_found(offline_cache) -> None:
    for spec in ("missing/mit_b1.pth", "mit_b1", "./nvidia/mit-b0"):
        assert resolve_weights_path(spec) == Path(spec)
        with pytest.raises(WeightsError, match="weight file not found"):
            load_encoder_weights(tiny_mit(), spec)


def test_info_accepts_a_hub_id(offline_cache) -> None:
    result = CliRunner().invoke(app, ["info", "--backbone", "mit_b0", "--size", "64", "--weights", "nvidia/mit-b1"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "weights fetch nvidia/mit-b1" in result.output


def test_weights_fetch_to_a_folder_copies_plain_files_that_load(offline_cache, tmp_path) -> None:
    _, snapshot, x, expected = offline_cache
    (snapshot / "README.md").write_text("not a weight file")
    (snapshot / "pytorch_model.bin").write_bytes(b"stale duplicate, safetensors wins")
    target = tmp_path / "carry" / "mit-b0"
    result = CliRunner().invoke(app, ["weights", "fetch", "nvidia/mit-b0", "--to", str(target)])
    assert result.exit_code == 0, result.output
    assert f"model.pretrained={target}" in result.output
    copied = sorted(p.name for p in target.iterdir())
    assert copied == ["config.json", "model.safetensors"]
    for name in copied:
        assert not (target / name).is_symlink() and (target / name).read_bytes() == (snapshot / name).read_bytes()
    ours = tiny_mit()
    load_encoder_weights(ours, str(target))
    assert_same_maps(expected, stage_maps(ours, x))


def test_weights_fetch_without_a_folder_prints_the_snapshot(offline_cache) -> None:
    snapshot = offline_cache[1]
    result = CliRunner().invoke(app, ["weights", "fetch", "nvidia/mit-b0"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(snapshot)


def test_weights_fetch_of_a_missing_id_offline_is_one_error_line(offline_cache, tmp_path) -> None:
    result = CliRunner().invoke(app, ["weights", "fetch", "nvidia/mit-b5", "--to", str(tmp_path / "out")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "nvidia/mit-b5" in lines[0]
    assert not (tmp_path / "out").exists()

    not_an_id = CliRunner().invoke(app, ["weights", "fetch", "weights/mit_b1.pth"])
    assert not_an_id.exit_code == 2 and "is not a Hugging Face Hub id" in not_an_id.output


def test_an_unreachable_hub_fails_fast_with_the_fetch_hint(tmp_path, monkeypatch) -> None:
    """No HF_HUB_OFFLINE, but the Hub endpoint is a closed local port: the connection is refused at once."""
    from huggingface_hub import HfApi

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    assert HfApi().endpoint == "http://127.0.0.1:9"  # guard: the request below cannot leave this machine
    start = time.monotonic()
    with pytest.raises(WeightsError) as info:
        load_encoder_weights(tiny_mit(), "scribbleseg-tests/not-a-repo")
    assert time.monotonic() - start < 30
    message = str(info.value)
    assert "cannot be reached (no connection)" in message
    assert "weights fetch scribbleseg-tests/not-a-repo" in message and os.fspath(tmp_path) in message
