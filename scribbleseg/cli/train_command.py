"""``scribbleseg train CONFIG [--work-dir DIR] [--set key=value ...] [--resume]``.

Reads and validates the YAML config (unknown keys and bad values are reported with the key at fault),
trains, and prints where the checkpoints are. Multi-GPU: ``torchrun --nproc_per_node=G -m scribbleseg
train CONFIG ...``. Errors are :class:`~scribbleseg.errors.ScribblesegError`, which the app prints as one
line with exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

DEFAULT_RUNS_DIR = Path("runs")
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to ``app``."""

    @app.command("train")
    def train_command(
        config: Path = typer.Argument(..., help="Experiment YAML, e.g. configs/voc_pfa_mit_b1.yaml.",
                                      show_default=False),
        work_dir: Optional[Path] = typer.Option(None, "--work-dir", "-w",
                                                help="Run folder (default: runs/<config name>)."),
        overrides: list[str] = typer.Option([], "--set", "-s", metavar="KEY=VALUE",
                                            help="Override a config value, e.g. --set optim.lr=3e-5 "
                                                 "(repeatable; values are YAML scalars)."),
        resume: bool = typer.Option(False, "--resume", help="Continue the run in --work-dir from its last "
                                                            "checkpoint (exactly: same data order and RNG)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Start afresh in a folder that already "
                                                                  "holds a run."),
        skip_bad: bool = typer.Option(False, "--skip-bad", help="Train without the samples whose files fail the "
                                                                "data check (listed in run.json) instead of "
                                                                "stopping before step 0."),
    ) -> None:
        """Train a model (pCE baseline, PFA, ...) from a YAML config."""
        from scribbleseg.engine.config.loading import load_config
        from scribbleseg.engine.runtime.interrupts import TrainingInterrupted
        from scribbleseg.engine.training.trainer import train

        cfg = load_config(config, overrides)
        run_dir = work_dir if work_dir is not None else DEFAULT_RUNS_DIR / cfg.name
        console = Console(highlight=False, soft_wrap=True)
        try:
            result = train(cfg, run_dir, resume=resume, overwrite=overwrite, skip_bad=skip_bad)
        except TrainingInterrupted as stop:
            if stop.announce:
                console.print(escape(str(stop)))
            raise typer.Exit(stop.exit_code) from None
        except KeyboardInterrupt:  # before the first step: the trainer removed what it had made
            console.print("interrupted before training started: nothing was saved")
            raise typer.Exit(INTERRUPTED_EXIT_CODE) from None
        if not result.is_main:
            return
        console.print(f"[bold]done[/]: {result.steps} steps, run folder {result.run_dir}")
        console.print(f"  last checkpoint: {result.last_checkpoint}")
        if result.best_checkpoint is not None:
            console.print(f"  best checkpoint: {result.best_checkpoint} "
                          f"({cfg.train.best_metric} = {result.best_value:.4f})")
        for key, value in result.final_metrics.items():
            console.print(f"  {key}: {value:.4f}")
        if result.skipped_nonfinite:
            console.print(f"  [yellow]skipped {result.skipped_nonfinite} steps with a non-finite loss[/]")
