"""User errors anywhere below the root app become one message and exit code 2 (no traceback)."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from scribbleseg.cli.app import USER_ERROR_EXIT_CODE, UserErrorGroup, app
from scribbleseg.errors import ConfigError, DataError


def _probe_app() -> typer.Typer:
    probe = typer.Typer(cls=UserErrorGroup)
    sub = typer.Typer()

    @probe.command()
    def fails(path: str) -> None:
        raise DataError(f"image file [missing] not found: {path}")

    @probe.command()
    def works() -> None:
        typer.echo("fine")

    @sub.command()
    def nested() -> None:
        raise ConfigError("unknown key 'optim.lrr' (did you mean 'optim.lr'?)")

    probe.add_typer(sub, name="group")
    return probe


def test_user_error_is_one_line_and_exit_code_2() -> None:
    result = CliRunner().invoke(_probe_app(), ["fails", "a/b.png"])
    assert result.exit_code == USER_ERROR_EXIT_CODE == 2
    assert "error:" in result.output and "image file [missing] not found: a/b.png" in result.output
    assert "Traceback" not in result.output


def test_user_error_in_a_sub_group_is_mapped_too() -> None:
    result = CliRunner().invoke(_probe_app(), ["group", "nested"])
    assert result.exit_code == 2
    assert "did you mean 'optim.lr'" in result.output


def test_success_exits_zero() -> None:
    result = CliRunner().invoke(_probe_app(), ["works"])
    assert result.exit_code == 0 and "fine" in result.output


def test_bugs_are_not_swallowed() -> None:
    probe = typer.Typer(cls=UserErrorGroup)

    @probe.command()
    def bug() -> None:
        raise ZeroDivisionError("a real defect")

    @probe.command()
    def other() -> None:
        pass

    result = CliRunner().invoke(probe, ["bug"])
    assert isinstance(result.exception, ZeroDivisionError)


def test_root_app_uses_the_error_group() -> None:
    assert typer.main.get_command(app).__class__ is UserErrorGroup
