"""Importing the package must not make albumentations ask PyPI for a newer version (offline machines
got a warning, online ones a network request on every start). Checked in a fresh interpreter whose
environment does not set NO_ALBUMENTATIONS_UPDATE; an audit hook records (and blocks) any URL request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json, os, sys, warnings
requests = []
def block_network(event, args):
    if event in ("urllib.Request", "socket.connect", "socket.getaddrinfo"):
        requests.append(f"{event} {args[0]}")
        raise OSError("network blocked by the test")
sys.addaudithook(block_network)
warnings.simplefilter("always")
import scribbleseg.data
import albumentations
print(json.dumps({"variable": os.environ.get("NO_ALBUMENTATIONS_UPDATE"), "requests": requests}))
"""


def _import_in_clean_interpreter(variable: str | None) -> tuple[dict, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_ALBUMENTATIONS_UPDATE", "PYTHONWARNINGS")}
    env["PYTHONPATH"] = str(ROOT)
    if variable is not None:
        env["NO_ALBUMENTATIONS_UPDATE"] = variable
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_import_sets_the_variable_and_albumentations_checks_nothing():
    report, stderr = _import_in_clean_interpreter(None)
    assert report["variable"] == "1"
    assert report["requests"] == []  # check_for_updates -> fetch_version_info -> urllib.Request never ran
    assert "NO_ALBUMENTATIONS_UPDATE" not in stderr and "version" not in stderr.lower(), stderr


@pytest.mark.parametrize("choice", ["0", "true"])
def test_an_explicit_user_choice_is_kept(choice):
    report, _ = _import_in_clean_interpreter(choice)
    assert report["variable"] == choice
