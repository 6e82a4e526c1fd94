"""Where ``predict`` writes, checked before anything is written; undoing the folders of a failed run.

For an input ``<name>.<ext>`` the outputs are ``OUT/<name>.png``, ``OUT/overlays/<name>.png`` and
``OUT/probabilities/<name>.npy``. :meth:`PredictionLayout.check_inputs` refuses (ConfigError naming both
files) any output that would replace an input image: the same file after resolving ``..`` and symbolic
links of the folders (or an existing output that is an input's file). So ``predict photos/ --out photos/`` on PNG photos, ``--out`` a link to the input
folder, or ``--out`` a folder whose ``overlays/`` holds the inputs, stops before the first write instead
of replacing the photos with label maps.

:meth:`PredictionLayout.create` makes the folders and remembers which ones did not exist;
:meth:`PredictionLayout.remove_created` removes those again (only while empty) when a run wrote nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from scribbleseg.atomic_files import ensure_writable_dir
from scribbleseg.errors import ConfigError

__all__ = ["OVERLAY_DIR", "PROBABILITY_DIR", "PredictionLayout"]

OVERLAY_DIR = "overlays"
PROBABILITY_DIR = "probabilities"


def _identity(path: Path) -> tuple[int, int] | None:
    """``(device, inode)`` of an existing file, else ``None``."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_dev, status.st_ino


class PredictionLayout:
    """The output files of one ``predict`` run under ``out_dir``.

    Args:
        out_dir: the output folder.
        overlay / probabilities: whether overlays / probability maps are written.
    """

    def __init__(self, out_dir: str | os.PathLike[str], overlay: bool, probabilities: bool) -> None:
        self.out_dir = Path(out_dir)
        self.overlay = overlay
        self.probabilities = probabilities
        self._created: list[Path] = []

    def label_path(self, name: str) -> Path:
        return self.out_dir / f"{name}.png"

    def overlay_path(self, name: str) -> Path:
        return self.out_dir / OVERLAY_DIR / f"{name}.png"

    def probability_path(self, name: str) -> Path:
        return self.out_dir / PROBABILITY_DIR / f"{name}.npy"

    def outputs(self, name: str) -> list[Path]:
        """Every file written for the image ``name``."""
        paths = [self.label_path(name)]
        if self.overlay:
            paths.append(self.overlay_path(name))
        if self.probabilities:
            paths.append(self.probability_path(name))
        return paths

    def folders(self) -> list[Path]:
        """The output folder and the subfolders this run writes into (parents first)."""
        folders = [self.out_dir]
        if self.overlay:
            folders.append(self.out_dir / OVERLAY_DIR)
        if self.probabilities:
            folders.append(self.out_dir / PROBABILITY_DIR)
        return folders

    def check_inputs(self, inputs: Sequence[Path]) -> None:
        """ConfigError when an output file of this run would replace one of the ``inputs``.

        An atomic write replaces the directory entry ``<real output folder>/<file name>``; it is compared
        with the real path of every input (``..`` and symbolic links resolved) and, when it exists, with
        the inputs' file identities (a case-insensitive file system names ``a.PNG`` also ``a.png``).
        """
        real_inputs = {Path(os.path.realpath(path)): Path(path) for path in inputs}
        identities = {identity: Path(path) for path in inputs if (identity := _identity(Path(path)))}
        for path in inputs:
            for output in self.outputs(Path(path).stem):
                replaced = Path(os.path.realpath(output.parent)) / output.name
                source = real_inputs.get(replaced)
                identity = _identity(replaced) if source is None and not replaced.is_symlink() else None
                source = source or (identities.get(identity) if identity else None)
                if source is not None:
                    raise ConfigError(f"output {output} would overwrite the input image {source}; "
                                      "choose an --out folder that holds no input images")

    def create(self) -> None:
        """Create the folders (OutputDirError when impossible), remembering the ones that were missing."""
        for folder in self.folders():
            missing = [parent for parent in (folder, *folder.parents) if not parent.exists()]
            ensure_writable_dir(folder)
            self._created.extend(path for path in reversed(missing) if path not in self._created)

    def remove_created(self) -> None:
        """Remove the folders :meth:`create` made, deepest first, as long as they are empty."""
        for folder in sorted(self._created, key=lambda path: len(path.parts), reverse=True):
            try:
                folder.rmdir()
            except OSError:
                pass  # not empty (someone else's file) or already gone: leave it
        self._created.clear()
