"""What does a training iteration of the engine cost, per PFA phase, and what does the trainer add?

Builds the demo's tiny model (or any config) on its synthetic set and times, on the same batch:

* the bare step: ``segmentor.training_step`` + backward + AdamW (what the method costs), per phase
  (pCE baseline, PFA warm-up, PFA local, PFA global);
* the engine's step: the same through ``Trainer._train_step`` (schedule, bank snapshot for the
  non-finite guard, finiteness check, GradScaler), to show the trainer's own overhead.

Prints one row per case: ms per iteration (median of ``--repeats`` runs of ``--iters`` iterations).

    python benchmarks/bench_engine_train_step.py [--config configs/synthetic_pfa.yaml] [--iters 20]
                                                 [--repeats 3] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from scribbleseg.engine.config.loading import load_config
from scribbleseg.engine.training.trainer import Trainer
from scribbleseg.methods import TrainBatch

REPO = Path(__file__).resolve().parents[1]


def time_steps(step_fn, iters: int, repeats: int) -> float:
    """Median milliseconds per call of ``step_fn`` over ``repeats`` rounds of ``iters`` calls (1 warm-up)."""
    step_fn()
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iters):
            step_fn()
        rounds.append((time.perf_counter() - start) * 1000 / iters)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "synthetic_pfa.yaml")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        cases = {"pCE baseline": ["method=pce"],
                 "PFA warm-up": ["pfa.warmup_iters=1000000"],
                 "PFA local": ["pfa.warmup_iters=0", "pfa.use_global=false"],
                 "PFA global": ["pfa.warmup_iters=0", "pfa.slots=1"]}
        print(f"config {args.config.name}, device {args.device}, {args.threads} threads, "
              f"ms per iteration (median of {args.repeats} x {args.iters})")
        print(f"{'case':<14} {'bare step':>10} {'engine step':>12} {'phase':>8}")
        for name, overrides in cases.items():
            cfg = load_config(args.config, overrides + [f"data.root={root / 'data'}", "data.synthetic.generate=true",
                                                         f"train.device={args.device}", "train.progress=false"])
            trainer = Trainer(cfg, root / name.replace(" ", "_"), overwrite=True)
            tensors = next(iter(
                torch.utils.data.DataLoader(trainer.train_set, batch_size=cfg.data.batch_size,
                                            collate_fn=None, sampler=[(i, i) for i in range(cfg.data.batch_size)])))
            batch = TrainBatch.from_loader(tensors).to(trainer.device)
            model, optimizer = trainer.model, trainer.optimizer
            for _ in range(3):  # fill the bank for the global case
                trainer._train_step(batch)
            trainer.step = 10

            def bare() -> None:
                optimizer.zero_grad(set_to_none=True)
                result = model.training_step(batch, trainer.step)
                result.loss.backward()
                optimizer.step()

            def engine() -> None:
                trainer.schedule.apply(optimizer, trainer.step)
                trainer._train_step(batch)

            phase = model.training_step(batch, trainer.step).phase or "-"
            bare_ms = time_steps(bare, args.iters, args.repeats)
            engine_ms = time_steps(engine, args.iters, args.repeats)
            print(f"{name:<14} {bare_ms:>10.1f} {engine_ms:>12.1f} {phase:>8}")


if __name__ == "__main__":
    main()
