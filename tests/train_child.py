"""Run ``scribbleseg`` in a child process with a crash or a signal injected at an exact moment.

Not a test module: tests (and ``benchmarks/kill_resume_test.py``) start it with ``subprocess``::

    python tests/train_child.py [--kill-after-rename NAME:N] [--signal-at-step SIG:STEP] -- train CONFIG ...

``--kill-after-rename last.safetensors:2``
    SIGKILL this process right after the 2nd ``os.replace`` onto a file called ``last.safetensors``
    (the moment between the two renames of a checkpoint save).
``--signal-at-step SIGINT:3``
    Send SIGINT to this process's whole process group (like Ctrl-C in a terminal, DataLoader workers
    included) once step 3 has been counted. Start the child with ``start_new_session=True``.

Only the timing is artificial: the kill / signal is real and reaches the real handlers.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def kill_after_rename(spec: str) -> None:
    """Patch ``os.replace`` so that the process dies right after the N-th rename onto NAME."""
    name, count = spec.rsplit(":", 1)
    remaining = [int(count)]
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
        real_replace(src, dst, *args, **kwargs)
        if Path(dst).name == name:
            remaining[0] -= 1
            if remaining[0] == 0:
                os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace  # type: ignore[assignment]


def signal_at_step(spec: str) -> None:
    """Send a signal to the process group once the trainer has counted STEP steps."""
    from scribbleseg.engine.runs.run_logging import RunLogger

    name, step = spec.split(":")
    signum, target = getattr(signal, name), int(step)
    real_advance = RunLogger.advance
    counted = [0]

    def advance(self, steps: int = 1) -> None:  # type: ignore[no-untyped-def]
        real_advance(self, steps)
        counted[0] += steps
        if counted[0] == target:
            os.killpg(os.getpgid(0), signum)

    RunLogger.advance = advance  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kill-after-rename")
    parser.add_argument("--signal-at-step")
    parser.add_argument("cli", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    cli_args = args.cli[1:] if args.cli[:1] == ["--"] else args.cli
    if args.kill_after_rename:
        kill_after_rename(args.kill_after_rename)
    if args.signal_at_step:
        signal_at_step(args.signal_at_step)
    from scribbleseg.cli.app import main as cli_main

    cli_main(cli_args)


if __name__ == "__main__":
    main()
