"""The CLI starts without the heavy libraries: the root ``--help`` / ``--version`` / an unknown command
import no command module, and a command's ``--help`` or argument error imports neither torch,
albumentations nor matplotlib (each case in a fresh interpreter, so nothing is imported already)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from scribbleseg.cli.app import COMMANDS, app, load_command

HEAVY = ("torch", "albumentations", "matplotlib", "cv2", "safetensors", "onnx", "onnxruntime", "transformers")

PROBE = """
import json, sys
from scribbleseg.cli.app import main
try:
    main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
else:
    code = 0
heavy = [name for name in {heavy!r} if name in sys.modules]
commands = sorted(name for name in sys.modules if name.startswith("scribbleseg.cli.") and name.endswith(("_command", "_commands")))
print("PROBE" + json.dumps({{"code": code, "heavy": heavy, "commands": commands}}))
"""


def probe(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], capture_output=True, text=True,
                          timeout=120)
    line = next(line for line in done.stdout.splitlines() if line.startswith("PROBE"))
    return json.loads(line[len("PROBE"):])


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["trian"]])
def test_root_help_version_and_unknown_commands_load_no_command_module(args) -> None:
    result = probe(*args)
    assert result["heavy"] == [] and result["commands"] == [], result
    assert result["code"] == (2 if args == ["trian"] else 0)


@pytest.mark.parametrize("args", [["train"], ["train", "--help"], ["eval", "--help"], ["predict"],
                                  ["predict", "--help"], ["info", "--help"], ["data", "stats", "--help"],
                                  ["plot", "--help"], ["export", "--help"], ["weights", "fetch"], ["config", "show"],
                                  ["demo", "--help"], ["eval", "cfg.yaml", "--tile", "x"]])
def test_command_help_and_argument_errors_import_no_heavy_library(args) -> None:
    result = probe(*args)
    assert result["heavy"] == [], result
    assert result["code"] == (0 if "--help" in args else 2), result


def test_listed_help_is_each_commands_own_first_line() -> None:
    for name, (_, listed) in COMMANDS.items():
        command = load_command(name)
        own = (command.short_help or command.help or "").strip().split("\n\n")[0].replace("\n", " ")
        assert " ".join(own.split()) == listed, name


def test_every_command_runs_through_the_lazy_group() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output
    info = CliRunner().invoke(app, ["info", "--help"])
    assert info.exit_code == 0 and "--backbone" in info.output


def test_slide_option_defaults_shown_in_help_are_the_engines() -> None:
    from scribbleseg.cli.parsing import slide_options
    from scribbleseg.engine.inference import windows as sliding_window

    assert slide_options.DEFAULT_TILE == sliding_window.DEFAULT_TILE
    assert slide_options.DEFAULT_PIXEL_BUDGET == sliding_window.DEFAULT_PIXEL_BUDGET
