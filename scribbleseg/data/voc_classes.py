"""PASCAL VOC 2012 class names, colour palette and the ScribbleSup tag vocabulary.

The palette is VOC's standard one: class id ``i`` gets the colour whose bits are spread over the
three channels (bit 0 of ``i`` into the red MSB, bit 1 into green, bit 2 into blue, then the next
three bits one position lower, ...). Id 255 (unlabeled / ignore) is drawn in VOC's boundary colour
``(224, 224, 192)``.
"""

from __future__ import annotations

VOC_CLASS_NAMES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)

VOC_IGNORE_COLOR: tuple[int, int, int] = (224, 224, 192)

# Short tags used in the ScribbleSup XML files, in class-id order (same order as VOC_CLASS_NAMES).
SCRIBBLESUP_TAGS: tuple[str, ...] = (
    "background", "plane", "bike", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "table", "dog", "horse", "motorbike", "person", "plant", "sheep", "sofa", "train", "monitor",
)


def voc_color(class_id: int) -> tuple[int, int, int]:
    """RGB colour of ``class_id`` in the standard VOC palette (0 <= class_id < 256)."""
    red = green = blue = 0
    value = class_id
    for bit_position in range(8):
        red |= ((value >> 0) & 1) << (7 - bit_position)
        green |= ((value >> 1) & 1) << (7 - bit_position)
        blue |= ((value >> 2) & 1) << (7 - bit_position)
        value >>= 3
    return red, green, blue


VOC_PALETTE: tuple[tuple[int, int, int], ...] = tuple(voc_color(i) for i in range(len(VOC_CLASS_NAMES)))


def scribblesup_tag_to_id() -> dict[str, int]:
    """Lower-case tag -> VOC class id; accepts the short ScribbleSup tags and the VOC long names."""
    mapping = {tag: index for index, tag in enumerate(SCRIBBLESUP_TAGS)}
    mapping.update({name: index for index, name in enumerate(VOC_CLASS_NAMES)})
    mapping.update({"tv": 20, "motorcycle": 14, "airplane": 1, "bicycle": 2})
    return mapping


def full_palette_bytes(palette: tuple[tuple[int, int, int], ...], ignore_index: int = 255) -> list[int]:
    """A 768-entry flat palette for PIL "P" images: the class colours, the ignore colour, black elsewhere."""
    flat = [0] * 768
    for index, (red, green, blue) in enumerate(palette[:256]):
        flat[3 * index: 3 * index + 3] = [red, green, blue]
    if 0 <= ignore_index < 256 and ignore_index >= len(palette):
        flat[3 * ignore_index: 3 * ignore_index + 3] = list(VOC_IGNORE_COLOR)
    return flat
