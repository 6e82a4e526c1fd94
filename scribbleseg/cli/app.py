"""The ``scribbleseg`` command: one typer app, each command group registered from its own module.

Every :class:`~scribbleseg.errors.ScribblesegError` raised by any command (sub-groups included) is
printed as one red ``error:`` line and the process exits with code 2; no traceback reaches the user for
bad input. The mapping lives in the click group class, so ``typer.testing.CliRunner().invoke(app, ...)``
sees exactly what a user sees (``result.exit_code == 2``, message in the output); commands need no
decorator, they simply raise ``ScribblesegError`` subclasses.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from scribbleseg import __version__
from scribbleseg.errors import ScribblesegError
from scribbleseg.cli.plain_usage import use_plain_usage
from scribbleseg.cli import (
    config_command,
    data_commands,
    demo_command,
    eval_command,
    export_command,
    info_command,
    plot_command,
    predict_command,
    train_command,
    weights_command,
)

USER_ERROR_EXIT_CODE = 2


class UserErrorGroup(TyperGroup):
    """Click group that turns :class:`ScribblesegError` into a one-line message and exit code 2."""

    def invoke(self, ctx):  # noqa: D102 - click API
        try:
            return super().invoke(ctx)
        except ScribblesegError as err:
            Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(str(err))}",
                                                      highlight=False)
            raise typer.Exit(USER_ERROR_EXIT_CODE) from None


app = typer.Typer(
    cls=UserErrorGroup,
    name="scribbleseg",
    help="Scribble-supervised semantic segmentation with prototype-based feature augmentation (PFA).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in (info_command, data_commands, train_command, eval_command, predict_command,
                plot_command, demo_command, weights_command, config_command, export_command):
    _module.register(app)
use_plain_usage(app)  # "train [OPTIONS] CONFIG", not typer's "{config}"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"scribbleseg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                       help="Print the scribbleseg version and exit.")) -> None:
    """Scribble-supervised semantic segmentation with prototype-based feature augmentation (PFA)."""


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script (``scribbleseg``) and of ``python -m scribbleseg``."""
    app(args=argv)
