"""The GPU benchmark scripts run end to end on the CPU at a tiny size (what CI can exercise)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture()
def bench_path(monkeypatch: pytest.MonkeyPatch):
    """The benchmarks folder on sys.path (as when a script is run) and one torch thread, both restored."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_train_benchmark_table_at_tiny_size(bench_path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import bench_gpu_train

    out = tmp_path / "train.json"
    report = bench_gpu_train.main(["--device", "cpu", "--model", "mit_b0", "--batch", "1", "--size", "32",
                                   "--iters", "1", "--warmup", "1", "--threads", "1", "--json", str(out)])
    rows = report["rows"]
    assert list(rows) == ["hf_segformer_ce", "ours_pce", "ours_pfa_global"]
    assert all("error" not in row and row["img_per_s"] > 0 for row in rows.values()), rows
    assert rows["ours_pfa_global"]["time_vs_pce"] > 0 and rows["ours_pce"]["speed_vs_hf"] > 0
    assert report["forward_gflops"] > 0 and report["amp"] == "none"
    assert json.loads(out.read_text())["rows"].keys() == rows.keys()
    table = capsys.readouterr().out
    assert "ours_pfa_global" in table and "img/s" in table and "machine:" in table


def test_eval_benchmark_table_at_tiny_size(bench_path, tmp_path: Path) -> None:
    import bench_gpu_eval

    report = bench_gpu_eval.main(["--device", "cpu", "--model", "mit_b0", "--batch", "1", "--size", "32",
                                  "--iters", "1", "--warmup", "1", "--threads", "1", "--skip-ms",
                                  "--json", str(tmp_path / "eval.json")])
    rows = report["rows"]
    timed = [name for name, row in rows.items() if "img_per_s" in row]
    assert timed == ["ours basic", "ours basic+local+global", "ours basic, sliding window (tile 32, stride 24)",
                     "HF SegFormer (forward+upsample+softmax)"], rows
    assert all(rows[name]["img_per_s"] > 0 for name in timed)
