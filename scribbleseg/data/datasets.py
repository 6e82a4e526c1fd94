"""PyTorch datasets: training on scribbles, evaluation on dense GT, prediction on plain images.

* :class:`ScribbleDataset` -> dict ``image [3, H, W]`` float32, ``scribble [H, W]`` int64, ``crop_classes
  [K]`` bool, ``image_classes [K]`` bool, ``valid [H, W]`` bool. ``crop_classes`` are the classes present
  in the *transformed* (cropped) scribble (a class cut away by the crop is absent); ``image_classes``
  those of the whole image's scribble (image-level labels); ``valid`` is False where the crop shows no
  image (padding, rotation corners). Background counts as a class.
* :class:`EvalDataset` -> dict ``image [3, H, W]``, ``mask [H, W]`` int64 (dense GT, 255 ignore),
  ``classes [K]`` bool (from the GT when present, else from the scribble), ``name``, ``size``
  (``[2]`` int64 original ``(H, W)``) and ``has_dense_gt``. Without a dense GT file it raises
  :class:`DataError` unless ``require_dense_gt=False``, in which case ``mask`` is the scribble and
  ``has_dense_gt`` is ``False`` (so scores on it are scribble-pixel accuracy, not dense mIoU).
* :class:`InferenceImages` -> dict ``image [3, H, W]``, ``name``, ``size``, ``path``.

Images are read with :func:`read_rgb_image` (EXIF orientation, grayscale / RGBA / 16-bit -> RGB
8-bit); labels with :func:`read_label_map` (palette index, range check). Every problem raises
:class:`DataError` naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from scribbleseg.data.class_labels import classes_present
from scribbleseg.data.dataset_info import DatasetInfo, SampleFiles
from scribbleseg.data.image_io import list_image_files, read_label_map, read_rgb_image
from scribbleseg.data.transforms import build_eval_transform
from scribbleseg.errors import DataError

PairTransform = Callable[..., dict]


def _check_same_size(image: np.ndarray, label: np.ndarray, image_path: Path, label_path: Path) -> None:
    if image.shape[:2] != label.shape[:2]:
        raise DataError(f"{label_path} is {label.shape[1]}x{label.shape[0]} (WxH) but its image {image_path} "
                        f"is {image.shape[1]}x{image.shape[0]}; label and image must have the same size")


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """``[H, W, 3]`` float32 -> ``[3, H, W]`` float32 tensor (contiguous)."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))


class _TransformedPairs(Dataset):
    """Shared reading + transform logic; reseeds albumentations transforms once per DataLoader worker."""

    def __init__(self, samples: Sequence[SampleFiles], info: DatasetInfo, transform: PairTransform | None):
        self.samples = list(samples)
        self.info = info
        self.transform = transform if transform is not None else build_eval_transform()
        self._seeded_for: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def _reseed_in_worker(self) -> None:
        worker = get_worker_info()
        if worker is None or not hasattr(self.transform, "set_random_seed"):
            return
        key = (os.getpid(), worker.seed)
        if self._seeded_for != key:
            self.transform.set_random_seed(worker.seed % (2**32))
            self._seeded_for = key

    def _read_pair(self, sample: SampleFiles, label_path: Path | None, what: str) -> tuple[np.ndarray, np.ndarray]:
        image = read_rgb_image(sample.image)
        if label_path is None:
            raise DataError(f"no {what} for image {sample.image}")
        label = read_label_map(label_path, self.info.num_classes, self.info.ignore_index, what=what)
        _check_same_size(image, label, sample.image, label_path)
        return image, label

    def _apply(self, image: np.ndarray, label: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        self._reseed_in_worker()
        out = self.transform(image=image, mask=label)
        return image_to_tensor(out["image"]), torch.from_numpy(np.asarray(out["mask"], dtype=np.int64))


class ScribbleDataset(_TransformedPairs):
    """Training samples: image, scribble and the classes present in the transformed scribble.

    Args:
        samples: from :func:`open_dataset`; every sample needs a scribble file (a split listed
            with ``scribble=None``, i.e. an evaluation split, raises :class:`DataError`).
        info: the data set's :class:`DatasetInfo`.
        transform: albumentations-style ``transform(image=, mask=) -> dict`` (e.g.
            :func:`build_train_transform`); default: normalise only.

    ``__getitem__`` returns a dict ``image [3, H, W]`` float32, ``scribble [H, W]`` int64, ``crop_classes
    [K]`` and ``image_classes [K]`` bool (classes scribbled in the transformed crop and in the whole
    image) and ``valid [H, W]`` bool (pixels that show the image, not padding).
    """

    def __init__(self, samples: Sequence[SampleFiles], info: DatasetInfo, transform: PairTransform | None = None):
        super().__init__(samples, info, transform)
        without = [s.name for s in self.samples if s.scribble is None]
        if without:
            folder = f"scribbles/{info.split}/" if info.layout == "folder" else \
                "pascal_2012_scribble/ (or the folder given as scribble_dir)"
            raise DataError(f"split '{info.split}' of {info.root} has no scribbles ({len(without)} of "
                            f"{len(self.samples)} samples, e.g. '{without[0]}'): training needs a scribble PNG "
                            f"per image in {folder}")

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.samples[index]
        image, scribble = self._read_pair(sample, sample.scribble, "scribble")
        image_classes = classes_present(scribble, self.info.num_classes)
        self._reseed_in_worker()
        # a mask of ones rides along: the transform fills padding / rotation corners with the ignore index
        out = self.transform(image=image, mask=scribble, masks=[np.ones_like(scribble)])
        scribble_t = torch.from_numpy(np.asarray(out["mask"], dtype=np.int64))
        return {
            "image": image_to_tensor(out["image"]),
            "scribble": scribble_t,
            "crop_classes": classes_present(scribble_t, self.info.num_classes),
            "image_classes": image_classes,
            "valid": torch.from_numpy(np.asarray(out["masks"][0]) == 1),
        }


class EvalDataset(_TransformedPairs):
    """Evaluation samples on the full image with dense ground truth (see module docstring)."""

    def __init__(self, samples: Sequence[SampleFiles], info: DatasetInfo, transform: PairTransform | None = None,
                 require_dense_gt: bool = True):
        super().__init__(samples, info, transform)
        self.require_dense_gt = require_dense_gt
        if require_dense_gt:
            without = [s for s in self.samples if s.mask is None]
            if without:
                raise DataError(
                    f"{len(without)} of {len(self.samples)} evaluation sample(s) have no dense ground truth "
                    f"(e.g. '{without[0].name}', image {without[0].image}); add masks (folder layout: "
                    "masks/<split>/, VOC: SegmentationClassAug/ or SegmentationClass/) or evaluate "
                    "against scribbles with require_dense_gt=False")

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        has_dense_gt = sample.mask is not None
        label_path = sample.mask if has_dense_gt else sample.scribble
        image, label = self._read_pair(sample, label_path, "dense mask" if has_dense_gt else "scribble")
        image_t, mask_t = self._apply(image, label)
        return {
            "image": image_t,
            "mask": mask_t,
            "classes": classes_present(mask_t, self.info.num_classes),
            "name": sample.name,
            "size": torch.tensor(image.shape[:2], dtype=torch.int64),
            "has_dense_gt": has_dense_gt,
        }


class InferenceImages(Dataset):
    """Plain images for prediction: a folder, one file, or a list of files.

    ``__getitem__`` returns a dict ``image [3, H, W]`` float32 normalised, ``name`` (stem),
    ``size`` (``[2]`` int64 ``(H, W)``) and ``path`` (str).
    """

    def __init__(self, paths: str | Path | Sequence[str | Path], transform: PairTransform | None = None):
        if isinstance(paths, (str, Path)):
            path = Path(paths)
            self.paths = list_image_files(path) if path.is_dir() else [path]
        else:
            self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise DataError(f"no images (jpg, png, bmp, tif) found in {paths}")
        missing = [str(p) for p in self.paths if not p.is_file()]
        if missing:
            raise DataError(f"image(s) not found: {', '.join(missing[:10])}")
        self.transform = transform if transform is not None else build_eval_transform()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        image = read_rgb_image(path)
        return {
            "image": image_to_tensor(self.transform(image=image)["image"]),
            "name": path.stem,
            "size": torch.tensor(image.shape[:2], dtype=torch.int64),
            "path": str(path),
        }
