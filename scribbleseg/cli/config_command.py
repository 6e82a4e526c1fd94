"""``scribbleseg config show CONFIG [--set key=value ...]``: print the resolved config as YAML.

Resolved = the file with its ``_base_`` chain merged, the ``--set`` overrides applied and every default
filled in: exactly what ``scribbleseg train CONFIG --set ...`` would run with (mmseg's ``print_config``).
Bad files, keys or values are reported like everywhere else (one ``error:`` line, exit code 2).
"""

from __future__ import annotations

from pathlib import Path

import typer

config_app = typer.Typer(help="Inspect experiment configs.", no_args_is_help=True)


@config_app.command("show")
def show(
    config: Path = typer.Argument(..., help="Experiment YAML, e.g. configs/voc_pfa_mit_b1.yaml.", show_default=False),
    overrides: list[str] = typer.Option([], "--set", "-s", metavar="KEY=VALUE",
                                        help="Override a config value, as in 'train' (repeatable)."),
) -> None:
    """Print the resolved config (after _base_ and --set, with all defaults) as YAML."""
    from scribbleseg.engine.config.loading import load_config

    typer.echo(load_config(config, overrides).to_yaml(), nl=False)


def register(app: typer.Typer) -> None:
    """Add the ``config`` command group to ``app``."""
    app.add_typer(config_app, name="config")
