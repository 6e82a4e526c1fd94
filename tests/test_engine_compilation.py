"""train.compile (torch.compile of the method's parts, eager fallback) and optim.fused, on the CPU.

The tests compile with the ``eager`` backend (dynamo traces the real code, no C++ build: seconds);
inductor on this CPU takes minutes for the tiny model, see docs/performance.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from scribbleseg.data import make_synthetic_dataset
from scribbleseg.engine.runtime.compilation import compile_method_parts
from scribbleseg.engine.config.loading import config_from_mapping
from scribbleseg.engine.build.method_factory import build_method
from scribbleseg.engine.training.optim import build_optimizer
from scribbleseg.engine.training.trainer import train
from scribbleseg.errors import ConfigError
from scribbleseg.pfa import PrototypeMemoryBank
from tiny_models import tiny_model_mapping

FAILING_BACKEND = "scribbleseg_test_failing_backend"


@torch._dynamo.register_backend(name=FAILING_BACKEND)
def _failing_backend(graph_module, example_inputs):  # type: ignore[no-untyped-def]
    raise RuntimeError("this compiler is not installed")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_dataset(tmp_path_factory.mktemp("syn"), seed=1, num_train=8, num_val=2, size=32)


def tiny_mapping(root: Path, **train_fields: object) -> dict:
    return {
        "name": "tiny", "method": "pfa",
        "data": {"root": str(root), "crop_size": 32, "scale_range": [0.75, 1.25], "batch_size": 4,
                 "num_workers": 0},
        "model": tiny_model_mapping(),
        "pfa": {"warmup_iters": 1, "slots": 1},
        "optim": {"lr": 1e-3},
        "train": {"max_iters": 4, "val_interval": 0, "log_interval": 1, "checkpoint_interval": 0,
                  "progress": False, "device": "cpu", **train_fields},
        "eval": {"heads": ["basic"]},
    }


def losses(run_dir: Path) -> list[tuple[str, float]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(row["phase"], row["loss"]) for row in rows if "loss" in row]


def test_compiled_training_gives_the_eager_losses(data_root: Path, tmp_path: Path) -> None:
    eager = train(config_from_mapping(tiny_mapping(data_root)), tmp_path / "eager")
    compiled = train(config_from_mapping(tiny_mapping(data_root, compile=True, compile_backend="eager")),
                     tmp_path / "compiled")
    assert losses(tmp_path / "compiled") == losses(tmp_path / "eager")
    assert [phase for phase, _ in losses(tmp_path / "eager")] == ["warmup", "local", "local", "global"]
    assert compiled.steps == eager.steps == 4


def test_compiles_encoder_fuse_and_declared_parts(data_root: Path) -> None:
    cfg = config_from_mapping(tiny_mapping(data_root))
    method = build_method(cfg, 6, load_pretrained=False)
    report = compile_method_parts(method, torch.device("cpu"), backend="eager")
    assert report.fallback is None
    # the bank's update reads values on the CPU, so it is not declared there
    assert report.compiled == ["encoder", "head.fuse", "augmenters.local.embed", "augmenters.local.augment"]
    assert set(method.state_dict()) == set(build_method(cfg, 6, load_pretrained=False).state_dict())


def test_unavailable_backend_falls_back_to_eager_with_a_warning(data_root: Path) -> None:
    method = build_method(config_from_mapping(tiny_mapping(data_root)), 6, load_pretrained=False)
    with pytest.warns(RuntimeWarning, match="not installed"):
        report = compile_method_parts(method, torch.device("cpu"), backend=FAILING_BACKEND)
    assert report.compiled == [] and "not installed" in str(report.fallback)
    assert method.training_step  # nothing was replaced: the eager code runs
    assert "fuse" not in vars(method.head)


def test_unknown_backend_is_a_config_error(data_root: Path) -> None:
    method = build_method(config_from_mapping(tiny_mapping(data_root)), 6, load_pretrained=False)
    with pytest.raises(ConfigError, match="train.compile_backend"):
        compile_method_parts(method, torch.device("cpu"), backend="no_such_backend")


def test_sync_free_bank_update_is_one_graph() -> None:
    """The accelerator's bank update traces without a graph break (fullgraph) and gives the same bank."""
    generator = torch.Generator().manual_seed(0)
    eager, compiled = (PrototypeMemoryBank(3, 2, 4, momentum=0.6, sync_free=True) for _ in range(2))
    assert compiled.compile_methods == ("update",)
    update = torch.compile(compiled.update, backend="eager", fullgraph=True)
    for _ in range(3):
        protos = F.normalize(torch.randn(5, 3, 4, generator=generator), dim=2)
        present = torch.rand(5, 3, generator=generator) < 0.7
        eager.update(protos, present)
        update(protos, present)
        assert torch.equal(compiled.prototypes, eager.prototypes) and torch.equal(compiled.filled, eager.filled)


def test_fused_adamw_is_selected_and_steps_like_the_default(data_root: Path) -> None:
    mapping = tiny_mapping(data_root)
    params = {}
    for fused in (False, True):
        mapping["optim"] = {"lr": 1e-2, "fused": fused}
        cfg = config_from_mapping(mapping)
        torch.manual_seed(0)
        method = build_method(cfg, 6, load_pretrained=False)
        optimizer = build_optimizer(method, cfg.optim, cfg.model)
        assert bool(optimizer.defaults["fused"]) is fused
        for _ in range(3):
            optimizer.zero_grad()
            method.head.classifier.weight.square().sum().backward()
            optimizer.step()
        params[fused] = method.head.classifier.weight.detach().clone()
    torch.testing.assert_close(params[True], params[False], atol=1e-6, rtol=1e-5)
    assert not torch.equal(params[True], torch.zeros_like(params[True]))
