"""The folder layout for your own data: ``root/dataset.yaml`` plus one folder per kind and split.

::

    root/
      dataset.yaml              class_names (required), palette, ignore_index (255), name, description
      images/<split>/x.jpg      jpg / jpeg / png / bmp / tif / tiff
      scribbles/<split>/x.png   class ids 0..K-1, ignore_index = unlabeled (same stem as the image)
      masks/<split>/x.png       optional dense ground truth (same stem), ignore_index = ignore

A split without scribble PNGs (e.g. ``val`` with images + masks only) is listed with ``scribble=None``:
it can be evaluated, not trained on.

``dataset.yaml`` is read strictly (a repeated key is an error naming it and its line) and validated
with pydantic; an unknown key is an error naming the key.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from scribbleseg.data.dataset_info import DatasetInfo, SampleFiles
from scribbleseg.data.image_io import IMAGE_EXTENSIONS, write_text_atomic
from scribbleseg.data.voc_classes import voc_color
from scribbleseg.errors import DataError
from scribbleseg.yaml_reading import read_yaml_file

DATASET_YAML = "dataset.yaml"


class FolderDatasetSpec(BaseModel):
    """Schema of ``dataset.yaml``."""

    model_config = ConfigDict(extra="forbid")

    class_names: list[str] = Field(min_length=1)
    palette: list[tuple[int, int, int]] | None = None
    ignore_index: int = Field(default=255, ge=0, le=255)
    name: str | None = None
    description: str | None = None

    @field_validator("class_names")
    @classmethod
    def _unique_names(cls, names: list[str]) -> list[str]:
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate class names {duplicates}")
        return names

    @field_validator("palette")
    @classmethod
    def _colours_in_range(cls, palette: list[tuple[int, int, int]] | None):
        if palette is not None and any(not 0 <= c <= 255 for colour in palette for c in colour):
            raise ValueError("palette colours must be [R, G, B] with values 0..255")
        return palette

    @model_validator(mode="after")
    def _consistent(self) -> "FolderDatasetSpec":
        if self.palette is not None and len(self.palette) != len(self.class_names):
            raise ValueError(f"palette has {len(self.palette)} colours for {len(self.class_names)} classes")
        if self.ignore_index < len(self.class_names):
            raise ValueError(f"ignore_index {self.ignore_index} is a class id (K = {len(self.class_names)})")
        return self


def _describe_validation_error(err: ValidationError) -> str:
    parts = []
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            parts.append(f"unknown key '{key}' (allowed: {', '.join(FolderDatasetSpec.model_fields)})")
        else:
            parts.append(f"key '{key}': {item['msg']}")
    return "; ".join(parts)


def load_dataset_yaml(path: str | Path) -> FolderDatasetSpec:
    """Parse and validate ``dataset.yaml``; DataError naming the file and the bad (or repeated) key."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} not found: the folder layout needs a dataset.yaml with at least 'class_names'")
    content = read_yaml_file(path, DataError)
    if not isinstance(content, dict):
        raise DataError(f"{path} must be a mapping with at least 'class_names'")
    return validate_dataset_spec(content, str(path))


def validate_dataset_spec(content: dict, source: str) -> FolderDatasetSpec:
    """Validate a ``dataset.yaml`` mapping; DataError naming ``source`` and the bad key."""
    try:
        return FolderDatasetSpec.model_validate(content)
    except ValidationError as err:
        raise DataError(f"{source}: {_describe_validation_error(err)}") from err


def write_dataset_yaml(root: str | Path, spec: FolderDatasetSpec) -> Path:
    """Write ``root/dataset.yaml`` atomically (keys in schema order, unset optional keys left out)."""
    path = Path(root) / DATASET_YAML
    write_text_atomic(path, yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True), sort_keys=False,
                                    default_flow_style=None))
    return path


def _stems_to_files(folder: Path, extensions: tuple[str, ...]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.suffix.lower() not in extensions:
            continue
        if path.stem in files:
            raise DataError(f"two files with the stem '{path.stem}' in {folder}: {files[path.stem].name} and {path.name}")
        files[path.stem] = path
    return files


def open_folder_dataset(root: str | Path, split: str = "train") -> tuple[DatasetInfo, list[SampleFiles]]:
    """Read ``dataset.yaml`` and list the samples of ``split`` (union of image and scribble stems).

    A scribble without image gets the expected image path ``images/<split>/<stem>.*`` (missing), so
    validation reports it; open_dataset's file check raises on it. A split whose ``scribbles/<split>/``
    is absent or holds no PNG is an evaluation split: every sample gets ``scribble=None`` (and likewise
    ``mask=None`` without mask PNGs). Once the folder holds one scribble, every image needs one.
    """
    root = Path(root)
    spec = load_dataset_yaml(root / DATASET_YAML)
    palette = tuple(tuple(c) for c in spec.palette) if spec.palette else tuple(
        voc_color(i) for i in range(len(spec.class_names)))
    info = DatasetInfo(class_names=tuple(spec.class_names), palette=palette, ignore_index=spec.ignore_index,
                       root=root, layout="folder", split=split)
    image_dir, scribble_dir, mask_dir = (root / kind / split for kind in ("images", "scribbles", "masks"))
    if not image_dir.is_dir():
        available = sorted(p.name for p in (root / "images").iterdir() if p.is_dir()) \
            if (root / "images").is_dir() else []
        raise DataError(f"split folder {image_dir} not found (splits available: {available or 'none'})")
    images = _stems_to_files(image_dir, IMAGE_EXTENSIONS)
    scribbles = _stems_to_files(scribble_dir, (".png",)) if scribble_dir.is_dir() else {}
    has_masks = mask_dir.is_dir() and bool(_stems_to_files(mask_dir, (".png",)))
    stems = sorted(set(images) | set(scribbles))
    samples = [
        SampleFiles(
            name=stem,
            image=images.get(stem, image_dir / f"{stem}.*"),
            scribble=(scribble_dir / f"{stem}.png") if scribbles else None,
            mask=(mask_dir / f"{stem}.png") if has_masks else None,
        )
        for stem in stems
    ]
    return info, samples
