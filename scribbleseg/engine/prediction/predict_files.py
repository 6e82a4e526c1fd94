"""Prediction on plain images: palette label PNGs, optional colour overlays and probability maps.

For each input image ``<name>.<ext>`` (``name`` = file stem) under ``out_dir``:

* ``<name>.png``: mode ``"P"`` PNG, pixel value = predicted class id, data set palette attached;
* ``overlays/<name>.png`` (``overlay=True``): RGB, the class colours alpha-blended over the image (with
  ``class_names``: a legend strip below it naming the classes shown, :mod:`.legend`);
* ``probabilities/<name>.npy`` (``probabilities=True``): float16 ``[K, H, W]`` softmax probabilities.

The model is anything behind :class:`~scribbleseg.engine.inference.model.InferenceModel` (a checkpoint,
an exported ``.onnx`` model); the test-time options come in one
:class:`~scribbleseg.engine.inference.settings.InferenceSettings`. Each batch goes through the inference
dispatcher (:func:`~scribbleseg.engine.inference.dispatch.infer_images`): an image is predicted whole
(padded to a multiple of 32) or, when larger than the pixel budget of ``settings.slide`` (or always with
``mode="slide"``), tile by tile with bounded memory; its probability map is then streamed to the ``.npy``
file (:mod:`scribbleseg.engine.prediction.probability_file`). Every file is written atomically; other files
already in ``out_dir`` are left alone (same-named outputs are replaced), an output that would replace an
input image is refused before anything is written (:mod:`scribbleseg.engine.prediction.outputs`), and a
run that wrote nothing removes the folders it created.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from scribbleseg.data import InferenceImages, read_rgb_image
from scribbleseg.engine.inference.band_sinks import LabelSink
from scribbleseg.engine.inference.dispatch import infer_images
from scribbleseg.engine.inference.model import InferenceModel, as_inference_model
from scribbleseg.engine.inference.probabilities import ImageFacts, head_notes, resolve_heads
from scribbleseg.engine.inference.settings import InferenceSettings
from scribbleseg.engine.inference.windows import uses_slide
from scribbleseg.engine.inference.tile_sources import RGBTiles
from scribbleseg.engine.prediction.legend import legend_strip, present_classes
from scribbleseg.engine.prediction.palette_io import blend_overlay, save_label_png, save_probabilities, save_rgb_png
from scribbleseg.engine.prediction.outputs import OVERLAY_DIR, PROBABILITY_DIR, PredictionLayout
from scribbleseg.engine.prediction.probability_file import open_probability_file
from scribbleseg.engine.runtime.progress import progress_bar
from scribbleseg.errors import ConfigError, DataError
from scribbleseg.methods.class_sources import ClassSource

__all__ = ["PredictedFiles", "PredictionOutputs", "PredictionReport", "predict_paths", "prediction_head",
           "prediction_notes", "OVERLAY_DIR", "PROBABILITY_DIR"]

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


@dataclass(frozen=True)
class PredictionOutputs:
    """Which files :func:`predict_paths` writes besides the label PNGs.

    Attributes:
        overlay: colour overlays (``overlays/<name>.png``), blended with opacity ``alpha``.
        probabilities: ``[K, H, W]`` float16 probability maps (``probabilities/<name>.npy``).
        alpha: overlay opacity.
    """

    overlay: bool = False
    probabilities: bool = False
    alpha: float = 0.5


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


def prediction_head(model: InferenceModel, settings: InferenceSettings) -> str:
    """The one head :func:`predict_paths` writes: the head of ``settings``, or the model's default head."""
    heads = settings.heads or (model.default_head,)
    if len(heads) != 1:
        raise ConfigError(f"predict writes one head, {len(heads)} were asked ({', '.join(heads)})")
    return heads[0]


@torch.no_grad()
def predict_paths(model: InferenceModel, paths: str | Path | Sequence[str | Path], out_dir: str | Path,
                  settings: InferenceSettings = InferenceSettings(), outputs: PredictionOutputs = PredictionOutputs(),
                  *, progress: bool = False, skip_bad: bool = False) -> PredictionReport:
    """Predict every image of ``paths`` (a file, a folder, or a list of files) into ``out_dir``.

    Args:
        model: an :class:`~scribbleseg.engine.inference.model.InferenceModel` (a bare method is adapted,
            with VOC-style colours), where it is; it predicts in its ``eval_mode()``. Its ``palette``
            colours the label PNGs and overlays.
        paths: image file, folder of images (jpg/png/bmp/tif) or list of image files.
        out_dir: output folder (created; must be writable; must not be where the input images are).
        settings: one head (none named: the model's default head), the class source (``oracle`` needs
            ground truth, so it is refused here), views, autocast, whole or tiled inference and
            ``tile_batch`` images per forward pass (padded to the largest of the batch; tiles per pass
            for images predicted tile by tile).
        outputs: overlays and probability maps besides the label PNGs.
        progress: show a tqdm bar.
        skip_bad: an image that cannot be read is listed in ``report.skipped`` and the others are
            predicted; without it the first one raises DataError.

    Returns:
        :class:`PredictionReport`: one :class:`PredictedFiles` per predicted image, in input order.
    """
    model = as_inference_model(model)
    if settings.class_source.needs_ground_truth:
        raise ConfigError("class source 'oracle' needs ground-truth labels, which plain images do not have; "
                          "use threshold:N, file:PATH or none")
    settings = replace(settings, class_source=model.class_source(settings.class_source))  # checked by the model
    head = prediction_head(model, settings)
    resolve_heads(model, [head])  # ConfigError when this model cannot run the head
    images = InferenceImages(paths)
    _check_unique_names(images.paths)
    layout = PredictionLayout(out_dir, outputs.overlay, outputs.probabilities)
    layout.check_inputs(images.paths)
    writer = _Writer(model, layout, outputs.alpha, replace(settings, heads=(head,)))
    report = PredictionReport()
    paths_iter: Sequence[Path] = images.paths
    if progress:
        paths_iter = progress_bar(images.paths, desc="predicting", unit="image")
    with model.eval_mode():
        try:
            layout.create()
            for batch in _batches(paths_iter, settings, skip_bad, report.skipped):
                report.extend(writer.write(batch))
        finally:
            if not report:  # nothing written (an error, or every image unreadable): leave no new empty folders
                layout.remove_created()
    return report


def _batches(paths: Sequence[Path], settings: InferenceSettings, skip_bad: bool,
             skipped: dict[str, str]) -> Iterator[list[_Image]]:
    """Readable images in input order: whole-mode ones grouped up to ``settings.tile_batch``, slide ones
    alone (so a tiled image never waits in memory for a batch to fill)."""
    batch_size = settings.tile_batch
    pending: list[_Image] = []
    for path in paths:
        try:
            image = _Image(Path(path), read_rgb_image(path))
        except DataError as err:
            if not skip_bad:
                raise
            skipped[str(path)] = str(err)
            continue
        if uses_slide(settings.slide, image.tiles.height, image.tiles.width):
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
    """Predicts one batch of images (through the dispatcher) and writes its files."""

    model: InferenceModel
    layout: PredictionLayout
    alpha: float
    settings: InferenceSettings  # with the one head

    def write(self, batch: list[_Image]) -> list[PredictedFiles]:
        (head,) = self.settings.heads or ()
        labels: dict[int, LabelSink] = {}
        probability_paths: dict[int, Path] = {}

        @contextlib.contextmanager
        def open_sinks(index: int, height: int, width: int):  # type: ignore[no-untyped-def]
            labels[index] = LabelSink(height, width, self.model.num_classes)
            path = self.layout.probability_path(batch[index].name) if self.layout.probabilities else None
            opened = (open_probability_file(path, self.model.num_classes, height, width)
                      if path is not None else contextlib.nullcontext())
            with opened as probability_sink:  # the .npy is complete (or untouched) when this block ends
                yield {head: [labels[index]] + ([probability_sink] if probability_sink is not None else [])}
            if path is not None:
                probability_paths[index] = path

        output = infer_images(self.model, [image.tiles for image in batch], self.settings,
                              ImageFacts(names=[image.name for image in batch]), open_sinks)
        written = []
        for index, (image, result) in enumerate(zip(batch, output.images)):
            if result.slid:
                written.append(self._write_maps(image, labels[index].labels, probability_paths.get(index), "slide"))
                continue
            probs = result.probabilities[head]  # type: ignore[index]
            probability_path = None
            if self.layout.probabilities:
                probability_path = save_probabilities(probs, self.layout.probability_path(image.name))
            written.append(self._write_maps(image, probs.argmax(dim=0).to("cpu"), probability_path, "whole"))
        return written

    def _write_maps(self, image: _Image, labels: torch.Tensor, probability_path: Path | None,
                    mode: str) -> PredictedFiles:
        """The label PNG and the overlay (blended in bands of rows) of one image."""
        label_path = save_label_png(labels, self.model.palette, self.layout.label_path(image.name))
        overlay_path = None
        if self.layout.overlay:
            label_array = labels.numpy()
            height, width = image.rgb.shape[:2]
            palette, names = self.model.palette, self.model.class_names
            legend = legend_strip(width, present_classes(label_array, len(palette)), names,
                                  palette) if names is not None else None
            blended = np.empty((height + (0 if legend is None else legend.shape[0]), width, 3), dtype=np.uint8)
            if legend is not None:
                blended[height:] = legend  # the classes shown, named, below the image
            for top in range(0, height, OVERLAY_ROWS):
                rows = slice(top, min(top + OVERLAY_ROWS, height))
                blended[rows] = blend_overlay(image.rgb[rows], label_array[rows], palette, alpha=self.alpha)
            overlay_path = save_rgb_png(blended, self.layout.overlay_path(image.name))
        return PredictedFiles(name=image.name, source=image.path, label=label_path, overlay=overlay_path,
                              probabilities=probability_path, mode=mode)


def prediction_notes(method: InferenceModel, head: str, class_source: ClassSource) -> list[str]:
    """Remarks to show the user about ``head`` with ``class_source`` (e.g. none -> equals basic)."""
    return head_notes(method, [head], class_source)
