"""scribbleseg.data: data set layouts, robust image/label reading, scribble tools, transforms, checks.

Public API (contract with the engine, see docs/ARCHITECTURE.md)::

    info, samples = open_dataset(root, layout="folder" | "voc" | "auto", split="train")
    layout, splits = list_splits(root)            (the splits a data set has)
    ScribbleDataset(samples, info, transform)[i]  -> dict(image [3,H,W] float32, scribble [H,W] int64,
                                                          crop_classes [K], image_classes [K], valid [H,W])
    EvalDataset(samples, info, transform)[i]      -> dict(image, mask, classes, name, size, has_dense_gt)
    InferenceImages(folder_or_paths)[i]           -> dict(image, name, size, path)
    build_train_transform(crop_size=512), build_eval_transform()
    make_synthetic_dataset(out_dir, seed=0, num_train=200, num_val=50, size=128)
    import_cvat_xml(xml, images_dir, out_dir, split="train")        -> ConversionReport (folder layout)
    import_labelstudio_json(json, images_dir, out_dir, split="train") -> ConversionReport
    validate_dataset(info, samples) -> list[Problem]
    find_unscribbled(samples, info, workers=4) -> list[SampleFiles]   (scribbles with no labelled pixel)

Label convention: class ids ``0..K-1`` (background = 0 for VOC and the synthetic set), 255 =
unlabeled (scribbles) / ignored (dense ground truth). This package imports only
``scribbleseg.errors`` from the rest of scribbleseg.
"""

from scribbleseg.data.class_labels import class_pixel_counts, classes_present, image_level_labels
from scribbleseg.data.imports.conversion_report import ConversionReport
from scribbleseg.data.imports.cvat import import_cvat_xml, parse_cvat_xml
from scribbleseg.data.dataset_info import DatasetInfo, SampleFiles
from scribbleseg.data.datasets import EvalDataset, InferenceImages, ScribbleDataset
from scribbleseg.data.image_io import (
    IMAGE_EXTENSIONS,
    RGBLabelError,
    list_image_files,
    read_label_map,
    read_rgb_image,
    write_png_atomic,
)
from scribbleseg.data.imports.labelstudio import import_labelstudio_json, parse_labelstudio_json
from scribbleseg.data.imports.labelstudio_rle import decode_labelstudio_rle
from scribbleseg.data.open_dataset import detect_layout, list_splits, open_dataset
from scribbleseg.data.imports.palette_conversion import convert_palette_folder, rgb_to_ids
from scribbleseg.data.scribble_coverage import describe_unscribbled, find_unscribbled
from scribbleseg.data.scribble_simulation import simulate_scribble_folder, simulate_scribbles
from scribbleseg.data.imports.scribblesup_xml import convert_scribblesup_folder, parse_scribblesup_xml
from scribbleseg.data.stats import DatasetStats, compute_stats
from scribbleseg.data.synthetic import SYNTHETIC_CLASS_NAMES, make_synthetic_dataset
from scribbleseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_eval_transform, build_train_transform
from scribbleseg.data.validation import Problem, scan_dataset, validate_dataset
from scribbleseg.data.voc_classes import VOC_CLASS_NAMES, VOC_PALETTE

__all__ = [
    "DatasetInfo", "SampleFiles", "open_dataset", "detect_layout", "list_splits",
    "ScribbleDataset", "EvalDataset", "InferenceImages",
    "build_train_transform", "build_eval_transform", "IMAGENET_MEAN", "IMAGENET_STD",
    "make_synthetic_dataset", "SYNTHETIC_CLASS_NAMES",
    "simulate_scribbles", "simulate_scribble_folder",
    "convert_scribblesup_folder", "parse_scribblesup_xml", "ConversionReport",
    "import_cvat_xml", "parse_cvat_xml", "import_labelstudio_json", "parse_labelstudio_json",
    "decode_labelstudio_rle",
    "convert_palette_folder", "rgb_to_ids",
    "validate_dataset", "scan_dataset", "Problem", "compute_stats", "DatasetStats",
    "find_unscribbled", "describe_unscribbled",
    "classes_present", "class_pixel_counts", "image_level_labels",
    "read_rgb_image", "read_label_map", "write_png_atomic", "list_image_files", "IMAGE_EXTENSIONS",
    "RGBLabelError", "VOC_CLASS_NAMES", "VOC_PALETTE",
]
