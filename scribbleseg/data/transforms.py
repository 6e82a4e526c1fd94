"""Training and evaluation transforms (albumentations 2.x), applied jointly to image and label.

Both builders return an ``albumentations.Compose`` called as ``transform(image=img, mask=label)``
with ``img`` ``[H, W, 3]`` uint8 RGB and ``label`` ``[H, W]`` uint8 class ids; it returns a dict
whose ``"image"`` is ``[h, w, 3]`` float32 ImageNet-normalised and ``"mask"`` is ``[h, w]`` uint8.
Labels (scribbles, dense masks) are always resampled with nearest-neighbour interpolation, so no
new ids appear, and areas that come from outside the image (padding, rotation corners) get the
ignore index 255 in the label and the mean colour (0 after normalisation) in the image.

The evaluation transform only normalises the full image: padding to the network's stride and
cropping the prediction back to the original size is done by the engine.
"""

from __future__ import annotations

import albumentations as A
import cv2

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def _mean_pixel(mean: tuple[float, float, float]) -> tuple[float, float, float]:
    return tuple(255.0 * m for m in mean)


def build_train_transform(crop_size: int | tuple[int, int] = 512, scale: tuple[float, float] = (0.5, 2.0),
                          rotate: float = 10.0, hflip: bool = True, blur: bool = True,
                          mean: tuple[float, float, float] = IMAGENET_MEAN,
                          std: tuple[float, float, float] = IMAGENET_STD, ignore_index: int = 255,
                          seed: int | None = None) -> A.Compose:
    """The paper's training augmentation (section 4.2).

    Random scale in ``scale`` (0.5-2), random rotation within ``±rotate`` degrees, pad to the crop
    size (image: mean colour, label: ``ignore_index``), random crop of ``crop_size`` (512 for VOC),
    horizontal flip (p = 0.5) and Gaussian blur (p = 0.5, sigma 0.1-2), then ImageNet normalisation.

    Args:
        crop_size: ``S`` or ``(H, W)`` of the output crop.
        seed: fixes the augmentation sequence (``None``: random). ``ScribbleDataset`` reseeds the
            transform in each DataLoader worker so workers do not repeat each other's augmentations.
    """
    crop_h, crop_w = (crop_size, crop_size) if isinstance(crop_size, int) else crop_size
    fill = _mean_pixel(mean)
    steps: list[A.BasicTransform] = []
    if scale != (1.0, 1.0):
        steps.append(A.RandomScale(scale_limit=(scale[0] - 1.0, scale[1] - 1.0), interpolation=cv2.INTER_LINEAR,
                                   mask_interpolation=cv2.INTER_NEAREST, p=1.0))
    if rotate:
        steps.append(A.Rotate(limit=(-rotate, rotate), interpolation=cv2.INTER_LINEAR,
                              mask_interpolation=cv2.INTER_NEAREST, border_mode=cv2.BORDER_CONSTANT,
                              fill=fill, fill_mask=ignore_index, p=1.0))
    steps += [
        A.PadIfNeeded(min_height=crop_h, min_width=crop_w, border_mode=cv2.BORDER_CONSTANT,
                      fill=fill, fill_mask=ignore_index, position="center"),
        A.RandomCrop(height=crop_h, width=crop_w),
    ]
    if hflip:
        steps.append(A.HorizontalFlip(p=0.5))
    if blur:
        steps.append(A.GaussianBlur(blur_limit=0, sigma_limit=(0.1, 2.0), p=0.5))
    steps.append(A.Normalize(mean=mean, std=std, max_pixel_value=255.0))
    return A.Compose(steps, seed=seed)


def build_eval_transform(mean: tuple[float, float, float] = IMAGENET_MEAN,
                         std: tuple[float, float, float] = IMAGENET_STD) -> A.Compose:
    """Normalise the full image (no resize, no crop); the label passes through unchanged."""
    return A.Compose([A.Normalize(mean=mean, std=std, max_pixel_value=255.0)])
