"""Prediction on plain images: palette label PNGs, optional colour overlays and probability maps.

For each input image ``<name>.<ext>`` (``name`` = file stem) under ``out_dir``:

* ``<name>.png``: mode ``"P"`` PNG, pixel value = predicted class id, data set palette attached;
* ``overlays/<name>.png`` (``overlay=True``): RGB, the class colours alpha-blended over the image (with
  ``class_names``: a legend strip below it naming the classes shown, :mod:`.legend`);
* ``probabilities/<name>.npy`` (``probabilities=True``): float16 ``[K, H, W]`` softmax probabilities.

An image is predicted whole (padded to a multiple of 32, see :mod:`scribbleseg.engine.inference.probabilities`) or,
when larger than the pixel budget of ``slide`` (or always with ``mode="slide"``), tile by tile with
bounded memory (:mod:`scribbleseg.engine.inference.slide`); its probability map is then streamed to the
``.npy`` file (:mod:`scribbleseg.engine.prediction.probability_file`). Every file is written atomically; other files
already in ``out_dir`` are left alone (same-named outputs are replaced), an output that would replace an
input image is refused before anything is written (:mod:`scribbleseg.engine.prediction.outputs`), and a
run that wrote nothing removes the folders it created.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from scribbleseg.data import InferenceImages, read_rgb_image
from scribbleseg.engine.inference.band_sinks import LabelSink
from scribbleseg.engine.runtime.distributed import unwrap_model
from scribbleseg.engine.inference.views import DEFAULT_MS_SCALES
from scribbleseg.engine.inference.probabilities import head_notes, infer_probabilities, resolve_heads
from scribbleseg.engine.prediction.legend import legend_strip, present_classes
from scribbleseg.engine.prediction.palette_io import blend_overlay, save_label_png, save_probabilities, save_rgb_png
from scribbleseg.engine.prediction.outputs import OVERLAY_DIR, PROBABILITY_DIR, PredictionLayout
from scribbleseg.engine.prediction.probability_file import open_probability_file
from scribbleseg.engine.inference.slide import slide_infer
from scribbleseg.engine.inference.windows import SlideSettings, uses_slide
from scribbleseg.engine.inference.tile_sources import RGBTiles
from scribbleseg.engine.runtime.progress import progress_bar
from scribbleseg.errors import ConfigError, DataError
from scribbleseg.methods import BASIC_HEAD, ClassSource, SegmentationMethod, parse_class_source

__all__ = ["PredictedFiles", "PredictionReport", "predict_paths", "prediction_notes", "OVERLAY_DIR",
           "PROBABILITY_DIR"]

OVERLAY_ROWS = 512  # overlay rows blended at once (bounds its float32 temporaries)


@dataclass(frozen=True)
class PredictedFiles:
    """Files written for one image (``None`` for outputs not asked for); ``mode``: ``whole`` or ``slide``."""

    name: str
    source: Path
    label: Path
    overlay: Path | None = None
    probabilities: Path | None = None
    mode: str = "whole"


class PredictionReport(list):
    """The :class:`PredictedFiles` of every predicted image, in input order, and ``skipped``: the
    images that could not be read (path -> reason; only with ``skip_bad=True``)."""

    def __init__(self, *args) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args)
        self.skipped: dict[str, str] = {}


@dataclass
class _Image:
    """One decoded input image: ``rgb [H, W, 3]`` uint8, normalised on demand (whole or per tile)."""

    path: Path
    rgb: np.ndarray
    tiles: RGBTiles = field(init=False)

    def __post_init__(self) -> None:
        self.tiles = RGBTiles(self.rgb)

    @property
    def name(self) -> str:
        return self.path.stem


def _check_unique_names(paths: Sequence[Path]) -> None:
    counts = Counter(path.stem for path in paths)
    clashes = sorted(name for name, count in counts.items() if count > 1)
    if clashes:
        examples = [str(p) for p in paths if p.stem == clashes[0]]
        raise DataError(f"several input images share the name {clashes[0]!r} ({', '.join(examples)}); "
                        "their outputs would overwrite each other")


@torch.no_grad()
def predict_paths(
    method,
    paths: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    *,
    palette,
    overlay: bool = False,
    probabilities: bool = False,
    head: str = BASIC_HEAD,
    class_source: str | ClassSource = "none",
    class_names: Sequence[str] | None = None,
    device: str | torch.device | None = "cpu",
    batch_size: int = 1,
    ms_flip: bool = False,
    scales: Sequence[float] = (1.0,),
    amp: bool = False,
    alpha: float = 0.5,
    progress: bool = False,
    slide: SlideSettings | None = None,
    skip_bad: bool = False,
) -> PredictionReport:
    """Predict every image of ``paths`` (a file, a folder, or a list of files) into ``out_dir``.

    Args:
        method: a :class:`~scribbleseg.methods.SegmentationMethod`; put in eval mode (its mode is restored).
        paths: image file, folder of images (jpg/png/bmp/tif) or list of image files.
        out_dir: output folder (created; must be writable; must not be where the input images are).
        palette: ``K`` RGB triples (the data set palette).
        overlay: also write colour overlays.
        probabilities: also write ``[K, H, W]`` float16 ``.npy`` probability maps.
        head: one of the method's heads (``"basic"`` by default).
        class_source: ``"threshold:N"``, ``"file:PATH"`` or ``"none"`` (``oracle`` needs ground truth, so
            it is refused here).
        class_names: names for the file class source (to accept class names in the JSON) and for the
            overlays' legend.
        device: where to run (``None`` keeps the model's device).
        batch_size: images per forward pass (padded to the largest of the batch); tiles per forward
            pass for images predicted tile by tile.
        ms_flip / scales / amp: as in :func:`scribbleseg.engine.inference.probabilities.infer_probabilities`.
        alpha: overlay opacity.
        progress: show a tqdm bar.
        slide: whole-image or sliding-window inference (default :class:`SlideSettings`: ``auto``).
        skip_bad: an image that cannot be read is listed in ``report.skipped`` and the others are
            predicted; without it the first one raises DataError.

    Returns:
        :class:`PredictionReport`: one :class:`PredictedFiles` per predicted image, in input order.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    model = unwrap_model(method)
    source = class_source if isinstance(class_source, ClassSource) else parse_class_source(class_source, class_names)
    if source.needs_ground_truth:
        raise ConfigError("class source 'oracle' needs ground-truth labels, which plain images do not have; "
                          "use threshold:N, file:PATH or none")
    resolve_heads(model, [head])  # ConfigError when this model cannot run the head
    settings = slide if slide is not None else SlideSettings()
    images = InferenceImages(paths)
    _check_unique_names(images.paths)
    layout = PredictionLayout(out_dir, overlay, probabilities)
    layout.check_inputs(images.paths)
    if device is not None:
        model.to(torch.device(device))
    view_scales = tuple(float(s) for s in scales)
    if ms_flip and view_scales == (1.0,):
        view_scales = DEFAULT_MS_SCALES
    writer = _Writer(model, layout, palette, alpha, head, source, view_scales, ms_flip, amp, settings, batch_size,
                     class_names)
    report = PredictionReport()
    paths_iter: Sequence[Path] = images.paths
    if progress:
        paths_iter = progress_bar(images.paths, desc="predicting", unit="image")
    was_training = model.training
    model.eval()
    try:
        layout.create()
        for batch in _batches(paths_iter, settings, batch_size, skip_bad, report.skipped):
            report.extend(writer.write(batch))
    finally:
        model.train(was_training)
        if not report:  # nothing written (an error, or every image unreadable): leave no new empty folders
            layout.remove_created()
    return report


def _batches(paths: Sequence[Path], settings: SlideSettings, batch_size: int, skip_bad: bool,
             skipped: dict[str, str]) -> Iterator[list[_Image]]:
    """Readable images in input order: whole-mode ones grouped up to ``batch_size``, slide ones alone."""
    pending: list[_Image] = []
    for path in paths:
        try:
            image = _Image(Path(path), read_rgb_image(path))
        except DataError as err:
            if not skip_bad:
                raise
            skipped[str(path)] = str(err)
            continue
        if uses_slide(settings, image.tiles.height, image.tiles.width):
            if pending:
                yield pending
                pending = []
            yield [image]
            continue
        pending.append(image)
        if len(pending) == batch_size:
            yield pending
            pending = []
    if pending:
        yield pending


@dataclass
class _Writer:
    """Predicts one batch of images and writes its files."""

    model: SegmentationMethod
    layout: PredictionLayout
    palette: Sequence[Sequence[int]]
    alpha: float
    head: str
    source: ClassSource
    scales: tuple[float, ...]
    flip: bool
    amp: bool
    settings: SlideSettings
    tile_batch: int
    class_names: Sequence[str] | None = None  # overlays get a legend strip naming the classes they show

    def write(self, batch: list[_Image]) -> list[PredictedFiles]:
        first = batch[0]
        if len(batch) == 1 and uses_slide(self.settings, first.tiles.height, first.tiles.width):
            return [self._write_slide(first)]
        output = infer_probabilities(self.model, [image.tiles.whole() for image in batch], heads=(self.head,),
                                     class_source=self.source, names=[image.name for image in batch],
                                     scales=self.scales, flip=self.flip, amp=self.amp)
        written = []
        for image, probs in zip(batch, output.probabilities[self.head]):
            probability_path = None
            if self.layout.probabilities:
                probability_path = save_probabilities(probs, self.layout.probability_path(image.name))
            written.append(self._write_maps(image, probs.argmax(dim=0).to("cpu"), probability_path, "whole"))
        return written

    def _write_slide(self, image: _Image) -> PredictedFiles:
        tiles = image.tiles
        labels = LabelSink(tiles.height, tiles.width, self.model.num_classes)
        probability_path = self.layout.probability_path(image.name) if self.layout.probabilities else None
        opened = (open_probability_file(probability_path, self.model.num_classes, tiles.height, tiles.width)
                  if probability_path is not None else contextlib.nullcontext())
        with opened as probability_sink:  # the .npy is complete (or untouched) when this block ends
            sinks = [labels] + ([probability_sink] if probability_sink is not None else [])
            slide_infer(self.model, tiles, {self.head: sinks}, settings=self.settings, class_source=self.source,
                        name=image.name, scales=self.scales, flip=self.flip, amp=self.amp,
                        tile_batch=self.tile_batch)
        return self._write_maps(image, labels.labels, probability_path, "slide")

    def _write_maps(self, image: _Image, labels: torch.Tensor, probability_path: Path | None,
                    mode: str) -> PredictedFiles:
        """The label PNG and the overlay (blended in bands of rows) of one image."""
        label_path = save_label_png(labels, self.palette, self.layout.label_path(image.name))
        overlay_path = None
        if self.layout.overlay:
            label_array = labels.numpy()
            height, width = image.rgb.shape[:2]
            legend = legend_strip(width, present_classes(label_array, len(self.palette)), self.class_names,
                                  self.palette) if self.class_names is not None else None
            blended = np.empty((height + (0 if legend is None else legend.shape[0]), width, 3), dtype=np.uint8)
            if legend is not None:
                blended[height:] = legend  # the classes shown, named, below the image
            for top in range(0, height, OVERLAY_ROWS):
                rows = slice(top, min(top + OVERLAY_ROWS, height))
                blended[rows] = blend_overlay(image.rgb[rows], label_array[rows], self.palette, alpha=self.alpha)
            overlay_path = save_rgb_png(blended, self.layout.overlay_path(image.name))
        return PredictedFiles(name=image.name, source=image.path, label=label_path, overlay=overlay_path,
                              probabilities=probability_path, mode=mode)


def prediction_notes(method: SegmentationMethod, head: str, class_source: ClassSource) -> list[str]:
    """Remarks to show the user about ``head`` with ``class_source`` (e.g. none -> equals basic)."""
    return head_notes(method, [head], class_source)
