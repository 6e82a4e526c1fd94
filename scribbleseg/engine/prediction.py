"""Prediction on plain images: palette label PNGs, optional colour overlays and probability maps.

For each input image ``<name>.<ext>`` (``name`` = file stem) under ``out_dir``:

* ``<name>.png``: mode ``"P"`` PNG, pixel value = predicted class id, data set palette attached;
* ``overlays/<name>.png`` (``overlay=True``): RGB, the class colours alpha-blended over the image;
* ``probabilities/<name>.npy`` (``probabilities=True``): float16 ``[K, H, W]`` softmax probabilities.

Images of any size are padded to a multiple of 32, predicted and cropped back (see
:mod:`scribbleseg.engine.inference`). Every file is written atomically; other files already in
``out_dir`` are left alone (same-named outputs are replaced).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from scribbleseg.data import InferenceImages
from scribbleseg.atomic_files import ensure_writable_dir
from scribbleseg.engine.distributed import unwrap_model
from scribbleseg.engine.evaluation import DEFAULT_MS_SCALES
from scribbleseg.engine.inference import head_notes, infer_probabilities, resolve_heads
from scribbleseg.engine.palette_io import (
    blend_overlay,
    denormalize_image,
    save_label_png,
    save_probabilities,
    save_rgb_png,
)
from scribbleseg.errors import ConfigError, DataError
from scribbleseg.methods import BASIC_HEAD, ClassSource, SegmentationMethod, parse_class_source

__all__ = ["PredictedFiles", "predict_paths", "prediction_notes", "OVERLAY_DIR", "PROBABILITY_DIR"]

OVERLAY_DIR = "overlays"
PROBABILITY_DIR = "probabilities"


@dataclass(frozen=True)
class PredictedFiles:
    """Files written for one image (``None`` for outputs not asked for)."""

    name: str
    source: Path
    label: Path
    overlay: Path | None = None
    probabilities: Path | None = None


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
) -> list[PredictedFiles]:
    """Predict every image of ``paths`` (a file, a folder, or a list of files) into ``out_dir``.

    Args:
        method: a :class:`~scribbleseg.methods.SegmentationMethod`; put in eval mode (its mode is restored).
        paths: image file, folder of images (jpg/png/bmp/tif) or list of image files.
        out_dir: output folder (created; must be writable).
        palette: ``K`` RGB triples (the data set palette).
        overlay: also write colour overlays.
        probabilities: also write ``[K, H, W]`` float16 ``.npy`` probability maps.
        head: one of the method's heads (``"basic"`` by default).
        class_source: ``"threshold:N"``, ``"file:PATH"`` or ``"none"`` (``oracle`` needs ground truth, so
            it is refused here).
        class_names: names for the file class source (to accept class names in the JSON).
        device: where to run (``None`` keeps the model's device).
        batch_size: images per forward pass (padded to the largest of the batch).
        ms_flip / scales / amp: as in :func:`scribbleseg.engine.inference.infer_probabilities`.
        alpha: overlay opacity.
        progress: show a tqdm bar.

    Returns:
        One :class:`PredictedFiles` per image, in input order.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    model = unwrap_model(method)
    source = class_source if isinstance(class_source, ClassSource) else parse_class_source(class_source, class_names)
    if source.needs_ground_truth:
        raise ConfigError("class source 'oracle' needs ground-truth labels, which plain images do not have; "
                          "use threshold:N, file:PATH or none")
    resolve_heads(model, [head])  # ConfigError when this model cannot run the head
    images = InferenceImages(paths)
    _check_unique_names(images.paths)
    out_dir = ensure_writable_dir(Path(out_dir))
    if overlay:
        ensure_writable_dir(out_dir / OVERLAY_DIR)
    if probabilities:
        ensure_writable_dir(out_dir / PROBABILITY_DIR)
    if device is not None:
        model.to(torch.device(device))
    view_scales = tuple(float(s) for s in scales)
    if ms_flip and view_scales == (1.0,):
        view_scales = DEFAULT_MS_SCALES
    was_training = model.training
    model.eval()
    written: list[PredictedFiles] = []
    starts = range(0, len(images), batch_size)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc="predicting", unit="batch")
    try:
        for start in starts:
            items = [images[index] for index in range(start, min(start + batch_size, len(images)))]
            names = [item["name"] for item in items]
            output = infer_probabilities(model, [item["image"] for item in items], heads=(head,),
                                         class_source=source, names=names, scales=view_scales,
                                         flip=ms_flip, amp=amp)
            for item, probs in zip(items, output.probabilities[head]):
                written.append(_write_outputs(item, probs, out_dir, palette, overlay, probabilities, alpha))
    finally:
        model.train(was_training)
    return written


def _write_outputs(item: dict, probs: torch.Tensor, out_dir: Path, palette, overlay: bool,
                   probabilities: bool, alpha: float) -> PredictedFiles:
    """Write the label PNG (and overlay / probabilities) of one image; ``probs`` is ``[K, H, W]``."""
    name = item["name"]
    label = probs.argmax(dim=0).to("cpu")
    label_path = save_label_png(label, palette, out_dir / f"{name}.png")
    overlay_path = probability_path = None
    if overlay:
        rgb = denormalize_image(item["image"])
        overlay_path = save_rgb_png(blend_overlay(rgb, label, palette, alpha=alpha),
                                    out_dir / OVERLAY_DIR / f"{name}.png")
    if probabilities:
        probability_path = save_probabilities(probs, out_dir / PROBABILITY_DIR / f"{name}.npy")
    return PredictedFiles(name=name, source=Path(item["path"]), label=label_path, overlay=overlay_path,
                          probabilities=probability_path)


def prediction_notes(method: SegmentationMethod, head: str, class_source: ClassSource) -> list[str]:
    """Remarks to show the user about ``head`` with ``class_source`` (e.g. none -> equals basic)."""
    return head_notes(method, [head], class_source)
