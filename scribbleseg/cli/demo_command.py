"""``scribbleseg demo [--out DIR] [--seed S]``: the README's main command.

Builds the synthetic set, trains the pCE baseline and PFA, prints one comparison table and writes an
overlay grid (see :mod:`scribbleseg.demo.pipeline`). A few minutes on 2 CPU cores. Ctrl-C or SIGTERM
stops it with one line that gives the command continuing it (``--resume``: the stopped model continues
from its last checkpoint, a finished one is reused), exit code 130 / 143 as a shell reports.
"""

from __future__ import annotations

import shlex
import signal
from pathlib import Path
from typing import Optional

import typer

from scribbleseg.errors import ConfigError


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``."""

    @app.command("demo")
    def demo_command(
        out: Path = typer.Option(Path("demo_output"), "--out", "-o", help="Output folder."),
        seed: int = typer.Option(0, "--seed", help="Training seed (the synthetic data set is fixed)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        iters: Optional[int] = typer.Option(None, "--iters", min=10,
                                            help="Training iterations per model (default 1200)."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
        resume: bool = typer.Option(False, "--resume", help="Continue a demo that was stopped: the stopped "
                                                            "model from its last checkpoint, finished ones "
                                                            "reused."),
    ) -> None:
        """Synthetic data -> pCE baseline vs PFA -> comparison table + overlay grid."""
        from scribbleseg.demo.pipeline import run_demo
        from scribbleseg.engine.runtime.interrupts import TrainingInterrupted

        if device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"--device must be auto, cpu or cuda, got {device!r}")
        again = _resume_command(out, seed, device, iters, progress)
        received: list[int] = []

        def stop_now(signum: int, _frame: object) -> None:  # outside training (data, evaluation): stop at once
            received.append(signum)
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, stop_now)
        try:
            run_demo(out, seed=seed, device=device, max_iters=iters, progress=progress, resume=resume)
        except TrainingInterrupted as stop:  # training saved its last checkpoint (see engine.runtime.interrupts)
            if stop.announce:
                typer.echo(f"demo stopped by {signal.Signals(stop.signum).name}; continue it with: {again}", err=True)
            raise typer.Exit(stop.exit_code) from None
        except KeyboardInterrupt:
            signum = received[0] if received else signal.SIGINT
            typer.echo(f"demo stopped by {signal.Signals(signum).name}; continue it with: {again}", err=True)
            raise typer.Exit(128 + int(signum)) from None
        finally:
            signal.signal(signal.SIGTERM, previous)


def _resume_command(out: Path, seed: int, device: str, iters: int | None, progress: bool) -> str:
    """The ``scribbleseg demo ... --resume`` command that continues this demo."""
    parts = ["scribbleseg", "demo", "--out", str(out)]
    parts += ["--seed", str(seed)] if seed else []
    parts += ["--device", device] if device != "auto" else []
    parts += ["--iters", str(iters)] if iters is not None else []
    parts += [] if progress else ["--no-progress"]
    return shlex.join([*parts, "--resume"])
