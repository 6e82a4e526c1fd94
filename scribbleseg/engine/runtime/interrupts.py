"""A graceful stop of training on SIGINT (Ctrl-C) and SIGTERM (``kill``, cluster schedulers, torchrun).

``with StopSignals(announce) as stop:`` installs handlers for both signals (only in the main thread of the
process that entered it; the previous handlers come back on exit). The first signal is recorded
(``stop.requested`` -> its number) and announced with one line; the trainer finishes the current step,
writes ``last`` and raises :class:`TrainingInterrupted`, whose message says where the checkpoint is and
gives the exact ``--resume`` command, with the shell's exit code for the signal (130 for SIGINT, 143 for
SIGTERM). A second signal raises ``KeyboardInterrupt`` at once: stop without saving.

DataLoader worker processes ignore both signals (:func:`ignore_stop_signals` is their
``worker_init_fn``; forked workers that inherited the handler ignore them too): a Ctrl-C reaches the whole
process group, and the main process, not the workers, decides when to stop. Under ``torchrun``
:func:`stop_signal_everywhere` all-reduces the signal at every step boundary, so all ranks stop after the
same step even when only one of them got the signal.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist

from scribbleseg.engine.runtime.distributed import DistContext

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(Exception):
    """Training stopped on a signal; ``exit_code`` is the shell's (128 + signal number); ``announce`` is
    false on ranks other than 0 (one rank prints the message)."""

    def __init__(self, signum: int, message: str, announce: bool = True) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + int(signum)
        self.announce = announce


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def ignore_stop_signals(_worker_id: int = 0) -> None:
    """``worker_init_fn`` of the training DataLoader: workers leave SIGINT / SIGTERM to the main process."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


class StopSignals:
    """Context manager recording the first SIGINT / SIGTERM (see the module docstring)."""

    def __init__(self, announce: bool = True) -> None:
        self.announce = announce
        self.requested: int | None = None
        self.aborted_by: int | None = None
        self._owner = os.getpid()
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if os.getpid() != self._owner:  # a forked child that inherited the handler
            return
        if self.requested is not None:
            self.aborted_by = signum
            raise KeyboardInterrupt
        self.requested = signum
        if self.announce:
            sys.stderr.write(f"\n{signal_name(signum)} received: finishing this step, then saving the last "
                             f"checkpoint (send it again to stop at once without saving)\n")
            sys.stderr.flush()

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


def stop_signal_everywhere(local: int | None, ctx: DistContext) -> int | None:
    """The stop signal of any rank (all-reduced MAX when distributed), or ``None``."""
    if not ctx.is_distributed:
        return local
    value = torch.tensor([local or 0], device=ctx.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return int(value.item()) or None


def resume_command(config: Path, run_dir: Path, world_size: int = 1) -> str:
    """The command that continues the run in ``run_dir`` from its saved ``config`` (shell-quoted)."""
    layout_args = ["train", str(config), "--work-dir", str(run_dir), "--resume"]
    launcher = (["torchrun", f"--nproc_per_node={world_size}", "-m", "scribbleseg"] if world_size > 1
                else ["scribbleseg"])
    return shlex.join([*launcher, *layout_args])
