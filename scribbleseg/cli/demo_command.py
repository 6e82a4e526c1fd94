"""``scribbleseg demo [--out DIR] [--seed S]``: the README's main command.

Builds the synthetic set, trains the pCE baseline and PFA, prints one comparison table and writes an
overlay grid (see :mod:`scribbleseg.demo.pipeline`). A few minutes on 2 CPU cores.
"""

from __future__ import annotations

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
    ) -> None:
        """Synthetic data -> pCE baseline vs PFA -> comparison table + overlay grid."""
        from scribbleseg.demo.pipeline import run_demo

        if device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"--device must be auto, cpu or cuda, got {device!r}")
        run_demo(out, seed=seed, device=device, max_iters=iters, progress=progress)
