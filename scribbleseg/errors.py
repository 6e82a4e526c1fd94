"""Exception types shared by every layer.

This module imports nothing from the package, so ``models``, ``data``, ``pfa``, ``engine`` and ``cli``
can all raise these. The CLI turns any :class:`ScribblesegError` into one clear message and a non-zero
exit code instead of a traceback.
"""

from __future__ import annotations


class ScribblesegError(Exception):
    """Base class of every error that is the user's input, not a bug: its message is shown as is."""


class WeightsError(ScribblesegError):
    """A weight file is missing, unreadable, truncated or does not fit the model."""


class DataError(ScribblesegError):
    """A data set file is missing, corrupt or inconsistent (the message names the file)."""


class ConfigError(ScribblesegError):
    """A configuration file or override is invalid (the message names the key)."""


class CheckpointError(ScribblesegError):
    """A checkpoint is missing, corrupt or incompatible with the requested model."""


class OutputWriteError(ScribblesegError, OSError):
    """An output file cannot be written (disk full, I/O error, no permission; the message names the file
    and the reason). Raised by :mod:`scribbleseg.atomic_files` from the original ``OSError`` (its
    ``__cause__``); it is an ``OSError`` too, so ``except OSError`` around a write keeps working."""


class OutputDirError(OutputWriteError):
    """The output folder cannot be created or written to (the message names the folder)."""
