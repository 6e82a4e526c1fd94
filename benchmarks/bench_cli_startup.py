"""Start-up time of the command line: ``scribbleseg --help`` (and a few other light invocations) against
``python -c "import torch"``, interleaved in one run, each in a fresh interpreter.

The target (issue 11): ``scribbleseg --help`` takes at most half the time of importing torch. Every
command is run ``--repeats`` times in rotation (so a load spike hits all of them alike); the table
shows the median wall time and its ratio to the torch import.

Run: ``python benchmarks/bench_cli_startup.py [--repeats 7]``. Prints the table and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

from rich.console import Console
from rich.table import Table

CASES = {
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
    "scribbleseg --help": [sys.executable, "-m", "scribbleseg", "--help"],
    "scribbleseg --version": [sys.executable, "-m", "scribbleseg", "--version"],
    "scribbleseg train --help": [sys.executable, "-m", "scribbleseg", "train", "--help"],
    "scribbleseg predict (argument error)": [sys.executable, "-m", "scribbleseg", "predict"],
    'python -c "pass"': [sys.executable, "-c", "pass"],
}


def wall_time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    for command in CASES.values():  # warm the file cache once
        wall_time(command)
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.repeats):
        for name, command in CASES.items():
            times[name].append(wall_time(command))
    reference = statistics.median(times['python -c "import torch"'])
    table = Table(title=f"CLI start-up, median of {args.repeats} runs each, interleaved")
    for column in ("command", "median s", "min s", "/ import torch"):
        table.add_column(column, justify="left" if column == "command" else "right")
    for name, values in times.items():
        table.add_row(name, f"{statistics.median(values):.3f}", f"{min(values):.3f}",
                      f"{statistics.median(values) / reference:.2f}")
    console = Console()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    console.print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                  f"Python {platform.python_version()}, load average {load:.1f}")
    console.print(table)


if __name__ == "__main__":
    main()
