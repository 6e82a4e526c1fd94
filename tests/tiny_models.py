"""Tiny model configs shared by the tests (a 4-stage MiT of a few thousand parameters)."""

from __future__ import annotations

from scribbleseg.engine.config.schema import ModelConfig
from scribbleseg.models.heads.segformer_family import SegFormerDecoder
from scribbleseg.models.mit.family import MiTBackbone, MiTDims


def tiny_model_config(embed_dims=(8, 16, 32, 64), num_heads=(1, 1, 2, 4), embed_dim: int = 16,
                      **model_fields) -> ModelConfig:
    """A MiT of ``embed_dims`` (depth 1 per stage) with a SegFormer decoder of width ``embed_dim``."""
    backbone = MiTBackbone(name=None, dims=MiTDims(embed_dims=embed_dims, num_heads=num_heads), drop_path=0.0)
    return ModelConfig(backbone=backbone, decoder=SegFormerDecoder(embed_dim=embed_dim, dropout=0.0),
                       **model_fields)


def tiny_model_mapping(embed_dims=(8, 16, 32, 64), num_heads=(1, 1, 2, 4), embed_dim: int = 16) -> dict:
    """:func:`tiny_model_config` as the YAML mapping of the ``model`` section."""
    return tiny_model_config(embed_dims, num_heads, embed_dim).model_dump()


def tiny_run_model(drop: float = 0.1) -> dict:
    """The ``model`` section of the tiny training runs (YAML mapping): a MiT of 8-64 channels with 1-2-4-8
    heads and a SegFormer decoder 16 wide; ``drop`` is both the stochastic depth and the decoder dropout
    (0.1 = the defaults)."""
    return {"backbone": {"name": None, "drop_path": drop,
                         "dims": {"embed_dims": [8, 16, 32, 64], "depths": [1, 1, 1, 1], "num_heads": [1, 2, 4, 8]}},
            "decoder": {"embed_dim": 16, "dropout": drop}}


def write_tiny_run_config(folder, raw: dict, data_seed: int = 0, num_train: int = 4, num_val: int = 1):
    """A synthetic data set of 32x32 images in ``folder/data`` and ``raw`` (with that ``data.root``) as
    ``folder/tiny.yaml``; returns the YAML's path."""
    import yaml

    from scribbleseg.data import make_synthetic_dataset

    root = make_synthetic_dataset(folder / "data", seed=data_seed, num_train=num_train, num_val=num_val, size=32)
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump({**raw, "data": {**raw["data"], "root": str(root)}}))
    return path
