"""What a data set is: its classes (:class:`DatasetInfo`) and the files of each sample (:class:`SampleFiles`).

Label convention used everywhere in :mod:`scribbleseg.data`: a label map is ``[H, W]`` of class ids
``0 .. K-1``; ``ignore_index`` (default 255) marks unlabeled pixels (scribbles) or pixels to ignore
(dense ground truth, e.g. VOC's object boundaries).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DatasetInfo:
    """Class vocabulary and origin of a data set.

    Attributes:
        class_names: ``K`` names; index = class id (background is a class, usually id 0).
        palette: ``K`` RGB triples used to draw label maps (and to convert RGB-coloured labels).
        ignore_index: label value of unlabeled / ignored pixels (255 by default).
        root: data set root folder.
        layout: ``"folder"``, ``"voc"`` or ``"images"`` (plain image list for prediction).
        split: the split these samples belong to (``"train"``, ``"val"``, ...).
    """

    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int = 255
    root: Path | None = None
    layout: str = "folder"
    split: str = "train"

    @property
    def num_classes(self) -> int:
        """``K``, the number of classes (background included)."""
        return len(self.class_names)


@dataclass(frozen=True)
class SampleFiles:
    """The files of one sample; paths are where the file is expected (it may be missing).

    ``scribble`` / ``mask`` are ``None`` when the data set has no scribble / dense ground-truth folder
    at all, and a path (existing or not) when it has one. :func:`scribbleseg.data.validate_dataset`
    reports listed-but-missing files.
    """

    name: str
    image: Path
    scribble: Path | None = None
    mask: Path | None = None
