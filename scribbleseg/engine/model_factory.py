"""Build the PFA segmentor (MiT encoder + SegFormer head + prototype machinery) from a config."""

from __future__ import annotations

from scribbleseg.engine.config import ExperimentConfig, ModelConfig, PfaConfig
from scribbleseg.models import MixTransformer, SegFormerHead, load_encoder_weights
from scribbleseg.pfa import PFASegmentor, PFASettings


def build_encoder(model_cfg: ModelConfig) -> MixTransformer:
    """The Mix Transformer named by ``model.backbone`` or shaped by ``model.dims``."""
    if model_cfg.dims is not None:
        dims = model_cfg.dims
        return MixTransformer(
            embed_dims=dims.embed_dims, depths=dims.depths, num_heads=dims.num_heads,
            mlp_ratios=dims.mlp_ratios, sr_ratios=dims.sr_ratios, strides=model_cfg.strides,
            drop_path_rate=model_cfg.drop_path,
        )
    # an unknown name raises ConfigError listing the variants (MixTransformer.from_name)
    return MixTransformer.from_name(model_cfg.backbone, strides=model_cfg.strides,
                                    drop_path_rate=model_cfg.drop_path)


def backbone_label(model_cfg: ModelConfig) -> str:
    """A short description of the encoder shape, used to check that a checkpoint fits a config."""
    if model_cfg.dims is not None:
        dims = model_cfg.dims
        return (f"mit(custom embed_dims={list(dims.embed_dims)} depths={list(dims.depths)} "
                f"strides={list(model_cfg.strides)})")
    return f"{model_cfg.backbone}(strides={list(model_cfg.strides)})"


def pfa_settings(pfa_cfg: PfaConfig, ignore_index: int = 255) -> PFASettings:
    """The ``pfa`` config section as the method's own settings object (fields map 1:1)."""
    fields = pfa_cfg.model_dump()
    fields["pce_target"] = pfa_cfg.pce_target.as_dict()
    return PFASettings(**fields, ignore_index=ignore_index)


def build_segmentor(cfg: ExperimentConfig, num_classes: int, load_pretrained: bool = True,
                    ignore_index: int = 255) -> PFASegmentor:
    """A fresh :class:`PFASegmentor` for ``num_classes`` classes.

    Args:
        cfg: experiment config (``model`` and ``pfa`` sections are used).
        num_classes: K, the number of classes including background.
        load_pretrained: load ``model.pretrained`` into the encoder (off when a checkpoint follows).
        ignore_index: label value of unscribbled pixels in the training scribbles.
    """
    encoder = build_encoder(cfg.model)
    if load_pretrained and cfg.model.pretrained:
        load_encoder_weights(encoder, cfg.model.pretrained)  # a path or a Hugging Face Hub id
    head = SegFormerHead(in_channels=encoder.embed_dims, num_classes=num_classes,
                         embed_dim=cfg.model.embed_dim, dropout=cfg.model.dropout)
    return PFASegmentor(encoder, head, num_classes=num_classes, settings=pfa_settings(cfg.pfa, ignore_index))
