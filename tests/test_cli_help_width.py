"""Every ``--help`` fits 80 columns without cut-off words (rendered as a user at an 80-column terminal
sees it: typer's CliRunner with ``COLUMNS=80``)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from scribbleseg.cli.app import COMMANDS, app, load_command

WIDTH = 80
BOX = "│╭╮╰╯─┃━"


def command_paths() -> list[tuple[tuple[str, ...], click.Command]]:
    def walk(commands, prefix):  # type: ignore[no-untyped-def]
        for name, command in commands.items():
            yield prefix + (name,), command
            if hasattr(command, "commands"):  # a group (typer vendors its own click)
                yield from walk(command.commands, prefix + (name,))
    return list(walk({name: load_command(name) for name in COMMANDS}, ()))


def help_words(command: click.Command) -> set[str]:
    """The words of a command's own help texts (its description and every parameter's help)."""
    texts = [command.help or ""] + [getattr(param, "help", None) or "" for param in command.params]
    return {word for text in texts for word in text.split()}


@pytest.mark.parametrize("path", [(), *(path for path, _ in command_paths())], ids=lambda p: " ".join(p) or "root")
def test_help_fits_80_columns_without_cut_words(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(WIDTH)})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    too_long = [line for line in lines if len(line) > WIDTH]
    assert not too_long, too_long
    assert "…" not in result.output, [line for line in lines if "…" in line]
    assert not [line for line in lines if re.search(r"\w\.\.\.$", line)], "a help line cut with '...'"
    shown = set("".join(" " if c in BOX else c for c in result.output).split())
    command = dict(command_paths()).get(path)
    if command is not None:
        cut = sorted(word for word in help_words(command) if word not in shown)
        assert not cut, (cut, result.output)
