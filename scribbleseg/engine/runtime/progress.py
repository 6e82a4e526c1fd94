"""Progress bars that suit where they are written: live on a terminal, a line now and then elsewhere.

On a terminal a tqdm bar redraws in place (at most 10 times a second). Written to a log file or a CI log
(stderr is not a terminal) every redraw would be one more carriage-return update in the same log line, so
the bar is drawn when it starts, at most once every :data:`LOG_INTERVAL_S` seconds, and when it ends.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

LOG_INTERVAL_S = 30.0  # seconds between two updates of a bar that is not on a terminal
TERMINAL_INTERVAL_S = 0.1  # tqdm's own default


def stderr_is_terminal() -> bool:
    """Whether stderr (where the bars go) is an interactive terminal."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def progress_bar(iterable: Iterable[Any] | None = None, *, enabled: bool = True, **options: Any) -> tqdm:
    """A tqdm bar on stderr (``options`` are tqdm's: ``total``, ``desc``, ``unit``, ``initial``, ...);
    ``enabled=False`` gives a silent one that still iterates."""
    terminal = stderr_is_terminal()
    interval = TERMINAL_INTERVAL_S if terminal else LOG_INTERVAL_S
    options.setdefault("dynamic_ncols", terminal)
    return tqdm(iterable, disable=not enabled, mininterval=interval, maxinterval=max(interval, 10.0), **options)
