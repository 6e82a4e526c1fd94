"""The ``scribbleseg`` command: one typer app, each command group registered from its own module.

Every :class:`~scribbleseg.errors.ScribblesegError` raised below is printed as one red line and the
process exits with code 2; no traceback reaches the user for bad input.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from scribbleseg.errors import ScribblesegError
from scribbleseg.cli import (
    data_commands,
    demo_command,
    eval_command,
    info_command,
    plot_command,
    predict_command,
    train_command,
)

app = typer.Typer(
    name="scribbleseg",
    help="Scribble-supervised semantic segmentation with prototype-based feature augmentation (PFA).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in (info_command, data_commands, train_command, eval_command, predict_command,
                plot_command, demo_command):
    _module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script; maps user errors to exit code 2."""
    try:
        app(args=argv, standalone_mode=True)
    except ScribblesegError as err:
        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False)
        sys.exit(2)
