"""The ``scribbleseg`` command: one typer app, each command (group) in its own module, loaded lazily.

Start-up: ``scribbleseg --help``, ``--version`` and an unknown command import no command module, so
neither torch, albumentations nor matplotlib: :data:`COMMANDS` names each command's module and its
one-line help (a test checks them against the modules), and :class:`UserErrorGroup` imports a module
only when its command runs or prints its own help. The command modules in turn import the engine inside
their functions, so a command's ``--help`` and its argument errors stay light too.

Every :class:`~scribbleseg.errors.ScribblesegError` raised by any command (sub-groups included) is
printed as one red ``error:`` line and the process exits with code 2; no traceback reaches the user for
bad input. The mapping lives in the click group class, so ``typer.testing.CliRunner().invoke(app, ...)``
sees exactly what a user sees (``result.exit_code == 2``, message in the output); commands need no
decorator, they simply raise ``ScribblesegError`` subclasses.
"""

from __future__ import annotations

import importlib

import click
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from scribbleseg import __version__
from scribbleseg.errors import ScribblesegError
from scribbleseg.cli.parsing.plain_usage import use_plain_usage

USER_ERROR_EXIT_CODE = 2

#: command name -> (module under scribbleseg.cli with a ``register(app)``, the one-line help of ``--help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("info_command", "Print parameters (M) and FLOPs of encoder + decoder and run one forward pass as a "
                             "check."),
    "train": ("train_command", "Train a model (pCE baseline, PFA, ...) from a YAML config."),
    "eval": ("eval_command", "Score a checkpoint on full validation images against dense ground truth (mIoU per "
                             "head)."),
    "predict": ("predict_command", "Predict label maps for an image or a folder of images with a trained "
                                   "checkpoint."),
    "plot": ("plot_command", "Draw the loss / mIoU / learning-rate curves of a run (and a prediction overlay "
                             "grid)."),
    "demo": ("demo_command", "Synthetic data -> pCE baseline vs PFA -> comparison table + overlay grid."),
    "export": ("export_command", "Export a trained checkpoint to ONNX for deployment with ONNX Runtime."),
    "data": ("data.data_commands", "Inspect, validate, convert and generate data sets."),
    "weights": ("weights_command", "Pretrained weights from the Hugging Face Hub."),
    "config": ("config_command", "Inspect experiment configs."),
}


def load_command(name: str) -> click.Command:
    """The real click command (or group) ``name`` of :data:`COMMANDS`, built from its module."""
    module = importlib.import_module(f"scribbleseg.cli.{COMMANDS[name][0]}")
    holder = typer.Typer()
    module.register(holder)
    use_plain_usage(holder)  # "train [OPTIONS] CONFIG", not typer's "{config}"
    return typer.main.get_group(holder).commands[name]


class UserErrorGroup(TyperGroup):
    """The root click group: commands loaded on first use, and :class:`ScribblesegError` turned into a
    one-line message with exit code 2.

    Listing the commands (root ``--help``) shows placeholders that carry only :data:`COMMANDS`' help;
    resolving one to run it (or to print its own help) imports its module once.
    """

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._loaded: dict[str, click.Command] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:  # noqa: D102 - click API
        return [*COMMANDS, *(name for name in super().list_commands(ctx) if name not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:  # noqa: D102
        if cmd_name in self._loaded:
            return self._loaded[cmd_name]
        if cmd_name in COMMANDS:
            text = COMMANDS[cmd_name][1]
            return click.Command(cmd_name, help=text, short_help=text)  # placeholder for the listing
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]):  # type: ignore[no-untyped-def]  # noqa: D102
        name = args[0] if args else None
        if name in COMMANDS and name not in self._loaded:
            self._loaded[name] = load_command(name)
        return super().resolve_command(ctx, args)

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
    rich_markup_mode=None,  # click's plain help layout, as every command's (cli/parsing/plain_usage.py)
)


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
