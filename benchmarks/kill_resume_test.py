"""Kill a tiny training at random moments (saves included) and show that ``--resume`` is bit-exact every time.

Not part of the test suite (it takes minutes). Every trial starts a fresh run folder, kills the training
process once with SIGKILL, resumes it with ``scribbleseg train RUN/config.yaml --work-dir RUN --resume``
(or starts afresh with ``--overwrite`` when the kill came before the first save), and compares the final
``last.safetensors`` and the logged losses with one uninterrupted run. Kill modes, in turn:

* ``random``: once the run has logged a random step, after a further random delay of 0-0.6 s (with a save
  every 2 steps this lands in saves often);
* ``after-weights-rename``: right after ``os.replace`` put the N-th ``last.safetensors`` in place (random N);
* ``after-state-rename``: right after the N-th ``last.state.pt`` rename (the moment between the two
  renames of a save: the pair is then mismatched and resume must repair it).

A trial passes when the resumed run ends with exactly the reference weights and losses, leaves no
``*.tmp`` file and has one metrics row per step. Prints one row per trial and a summary.

    python benchmarks/kill_resume_test.py [--trials 20] [--seed 0] [--steps 16]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
CHILD = REPO / "tests" / "train_child.py"
MODES = ("random", "after-weights-rename", "after-state-rename")
ENV = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def tiny_config(root: Path, steps: int) -> dict:
    """A MiT of 8-64 channels on 32x32 crops, a save every 2 steps, PFA through its three phases."""
    from tiny_models import tiny_run_model  # tests/ is on sys.path (main)

    return {
        "name": "kill",
        "data": {"root": str(root), "crop_size": 32, "scale_range": [0.75, 1.25], "batch_size": 2, "num_workers": 0},
        "model": tiny_run_model(),  # tests/tiny_models.py, as the kill tests use
        "pfa": {"warmup_iters": 3, "slots": 2},
        "optim": {"lr": 1e-3, "warmup_iters": 2},
        "train": {"max_iters": steps, "val_interval": 0, "log_interval": 1, "checkpoint_interval": 2,
                  "progress": False, "device": "cpu"},
    }


def train_args(config: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["train", str(config), "--work-dir", str(run_dir), *extra]


def losses(run_dir: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [(row["step"], row["loss"]) for row in rows if "loss" in row]


def logged_steps(run_dir: Path) -> int:
    try:
        return max((step for step, _ in losses(run_dir)), default=0)
    except (OSError, ValueError):
        return 0


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scribbleseg", *args], env=ENV, capture_output=True, text=True)


def kill_once(mode: str, config: Path, run_dir: Path, steps: int, rng: random.Random) -> str:
    """Start a training and SIGKILL it in ``mode``; returns where it was killed."""
    if mode == "random":
        target, delay = rng.randint(1, steps - 2), rng.uniform(0.0, 0.6)
        child = subprocess.Popen([sys.executable, "-m", "scribbleseg", *train_args(config, run_dir)], env=ENV,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while child.poll() is None and logged_steps(run_dir) < target:
            time.sleep(0.01)
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        return f"step>={target} +{delay:.2f}s (rc {child.returncode})"
    name = "last.safetensors" if mode == "after-weights-rename" else "last.state.pt"
    save = rng.randint(1, steps // 2 - 1)
    child = subprocess.run([sys.executable, str(CHILD), "--kill-after-rename", f"{name}:{save}", "--",
                            *train_args(config, run_dir)], env=ENV, capture_output=True, text=True)
    return f"after {name} of save {save} (rc {child.returncode})"


def resume(config_path: Path, run_dir: Path) -> tuple[str, str]:
    """Continue the killed run (or start afresh when nothing was saved); returns (how, note)."""
    if (run_dir / "checkpoints" / "last.state.pt").is_file():
        result = run_cli(train_args(run_dir / "config.yaml", run_dir, "--resume"))
        how = "resume"
    else:
        result = run_cli(train_args(config_path, run_dir, "--overwrite"))
        how = "afresh"
    if result.returncode != 0:
        raise RuntimeError(f"{how} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    note = "repaired" if "rewritten from" in result.stdout + result.stderr else ""
    return how, note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=16)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    sys.path[:0] = [str(REPO), str(REPO / "tests")]
    from scribbleseg.data import make_synthetic_dataset

    with tempfile.TemporaryDirectory(prefix="kill_resume_") as tmp:
        folder = Path(tmp)
        root = make_synthetic_dataset(folder / "data", seed=4, num_train=8, num_val=1, size=32)
        config = folder / "tiny.yaml"
        config.write_text(yaml.safe_dump(tiny_config(root, args.steps)))
        reference = run_cli(train_args(config, folder / "reference"))
        if reference.returncode != 0:
            raise SystemExit(reference.stderr)
        expected_weights = load_file(str(folder / "reference" / "checkpoints" / "last.safetensors"))
        expected_losses = losses(folder / "reference")
        print(f"{'trial':>5}  {'mode':<21} {'killed':<40} {'then':<7} {'note':<9} result")
        passed = 0
        start = time.perf_counter()
        for trial in range(args.trials):
            mode = MODES[trial % len(MODES)]
            run_dir = folder / f"trial{trial:02d}"
            killed = kill_once(mode, config, run_dir, args.steps, rng)
            how, note = resume(config, run_dir)
            weights = load_file(str(run_dir / "checkpoints" / "last.safetensors"))
            exact = weights.keys() == expected_weights.keys() and all(
                torch.equal(weights[k], expected_weights[k]) for k in weights)
            same_losses = losses(run_dir) == expected_losses
            clean = not list(run_dir.rglob("*.tmp")) and not (run_dir / "train.lock").exists()
            ok = exact and same_losses and clean
            passed += ok
            verdict = "bit-exact" if ok else f"FAIL (weights {exact}, losses {same_losses}, clean {clean})"
            print(f"{trial:>5}  {mode:<21} {killed:<40} {how:<7} {note:<9} {verdict}", flush=True)
        print(f"\n{passed}/{args.trials} trials bit-exact ({args.steps} steps each, a save every 2 steps; "
              f"{time.perf_counter() - start:.0f} s; {os.cpu_count()} CPUs, torch {torch.__version__})")
        if passed != args.trials:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
