"""The synthetic set is generated only on request (``data synth``, the demo, ``data.synthetic.generate``),
never as a fallback for a missing ``data.root``: a typo in the path is an error, and ``eval`` writes no data."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from scribbleseg.cli.app import app

REPO = Path(__file__).resolve().parents[1]
PRESET = REPO / "configs" / "synthetic_pfa.yaml"
SMALL = ["--set", "data.synthetic={seed: 0, num_train: 2, num_val: 1, size: 32}", "--set", "train.max_iters=1",
         "--set", "pfa.warmup_iters=0",  # a warm-up as long as the run is an error
         "--set", "data.crop_size=32", "--set", "data.batch_size=2", "--set", "train.progress=false",
         "--set", "train.device=cpu"]


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_a_misspelt_data_root_with_a_synthetic_preset_is_an_error(tmp_path: Path) -> None:
    typo = tmp_path / "my_dtaa"
    result = run("train", PRESET, "--work-dir", tmp_path / "run", "--set", f"data.root={typo}", *SMALL)
    assert result.exit_code == 2, result.output
    text = result.output.replace("\n", "")
    assert "my_dtaa" in text and "does not exist" in text and "data synth" in text, text
    assert not typo.exists() and not (tmp_path / "run").exists()


def test_eval_never_generates_data(tmp_path: Path) -> None:
    missing = tmp_path / "nothing_here"
    result = run("eval", PRESET, "--checkpoint", tmp_path / "x.safetensors", "--set", f"data.root={missing}")
    assert result.exit_code == 2, result.output
    assert "does not exist" in result.output.replace("\n", "") and not missing.exists()


def test_the_explicit_flag_generates_the_set(tmp_path: Path) -> None:
    root = tmp_path / "syn"
    result = run("train", PRESET, "--work-dir", tmp_path / "run", "--set", f"data.root={root}", *SMALL,
                 "--set", "data.synthetic.generate=true")
    assert result.exit_code == 0, result.output
    assert (root / "dataset.yaml").is_file() and len(list((root / "images" / "train").iterdir())) == 2
