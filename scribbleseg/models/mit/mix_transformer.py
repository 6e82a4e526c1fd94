"""Mix Transformer (MiT) encoder of SegFormer (Xie et al., 2021), written for scribbleseg.

Four stages, each: overlapping patch embedding -> ``depth`` transformer blocks (efficient
self-attention + Mix-FFN, pre-norm, residual with stochastic depth) -> LayerNorm. The encoder maps an
image ``[N, 3, H, W]`` to four feature maps ``[N, C_i, H_i, W_i]``; with the default strides
``(4, 2, 2, 2)`` they are at 1/4, 1/8, 1/16 and 1/32 of the input, the PFA authors use
``(4, 2, 2, 1)`` so the last stage stays at 1/16.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from scribbleseg.errors import ConfigError
from scribbleseg.models.mit.drop_path import DropPath
from scribbleseg.models.mit.efficient_attention import EfficientSelfAttention
from scribbleseg.models.mit.variants import resolve_variant
from scribbleseg.models.mit.mix_ffn import MixFFN
from scribbleseg.models.mit.patch_embedding import OverlapPatchEmbedding
from scribbleseg.models.stage_settings import four_positive
from scribbleseg.models.weight_init import init_segformer_weights


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + drop(attn(norm1(x)))`` then ``x + drop(ffn(norm2(x)))``; tokens ``[N, L, C]``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, sr_ratio: int, drop_path: float,
                 layer_norm_eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.attn = EfficientSelfAttention(dim, num_heads, sr_ratio)
        self.norm2 = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.ffn = MixFFN(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """``x [N, L, C]`` -> ``[N, L, C]``."""
        x = x + self.drop_path(self.attn(self.norm1(x), height, width))
        return x + self.drop_path(self.ffn(self.norm2(x), height, width))


class MixTransformerStage(nn.Module):
    """Patch embedding, blocks and final LayerNorm: ``[N, C_in, H, W]`` -> ``[N, C, H / s, W / s]``."""

    def __init__(self, in_channels: int, dim: int, patch_size: int, stride: int, num_heads: int,
                 mlp_ratio: float, sr_ratio: int, drop_paths: Sequence[float], layer_norm_eps: float) -> None:
        super().__init__()
        self.patch_embed = OverlapPatchEmbedding(in_channels, dim, patch_size, stride)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, num_heads, mlp_ratio, sr_ratio, rate, layer_norm_eps) for rate in drop_paths
        )
        self.norm = nn.LayerNorm(dim, eps=layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return this stage's map ``[N, C, H', W']`` (contiguous NCHW: one copy of the tokens)."""
        tokens, height, width = self.patch_embed(x)
        for block in self.blocks:
            tokens = block(tokens, height, width)
        tokens = self.norm(tokens)
        batch, _, channels = tokens.shape
        return tokens.transpose(1, 2).reshape(batch, channels, height, width).contiguous()


class MixTransformer(nn.Module):
    """MiT encoder: image ``[N, 3, H, W]`` -> list of 4 maps ``[N, embed_dims[i], H_i, W_i]``.

    ``H_i = ceil(H_{i-1} / strides[i])`` with ``H_0 = H`` (odd kernels, padding ``kernel // 2``).
    Build a named variant with :meth:`from_name`, or pass explicit widths for tiny test models.
    Invalid settings raise :class:`~scribbleseg.errors.ConfigError`. ``layer_norm_eps`` applies to the
    block and stage norms (1e-6 as in the ImageNet-trained NVlabs weights; Hugging Face uses 1e-5).
    """

    def __init__(
        self,
        embed_dims: Sequence[int] = (64, 128, 320, 512),
        num_heads: Sequence[int] = (1, 2, 5, 8),
        depths: Sequence[int] = (2, 2, 2, 2),
        mlp_ratios: Sequence[float] = (4, 4, 4, 4),
        sr_ratios: Sequence[int] = (8, 4, 2, 1),
        strides: Sequence[int] = (4, 2, 2, 2),
        patch_sizes: Sequence[int] = (7, 3, 3, 3),
        in_channels: int = 3,
        drop_path_rate: float = 0.0,
        layer_norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.embed_dims: tuple[int, int, int, int] = four_positive("embed_dims", embed_dims, int)
        self.num_heads = four_positive("num_heads", num_heads, int)
        self.depths = four_positive("depths", depths, int)
        self.mlp_ratios = four_positive("mlp_ratios", mlp_ratios, float)
        self.sr_ratios = four_positive("sr_ratios", sr_ratios, int)
        self.strides = four_positive("strides", strides, int)
        self.patch_sizes = four_positive("patch_sizes", patch_sizes, int)
        bad_heads = [i + 1 for i in range(4) if self.embed_dims[i] % self.num_heads[i]]
        if bad_heads:
            raise ConfigError(f"embed_dims {self.embed_dims} must be divisible by num_heads {self.num_heads} "
                              f"(stage {bad_heads[0]} is not)")
        if not 0.0 <= drop_path_rate < 1.0:
            raise ConfigError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
        self.drop_path_rate = float(drop_path_rate)
        self.variant_name: str | None = None  # "mit_b1" etc. when built by from_name

        total = sum(self.depths)
        rates = [self.drop_path_rate * i / max(total - 1, 1) for i in range(total)]  # linear, 0 -> max
        stages = []
        channels_in, start = in_channels, 0
        for i in range(4):
            stages.append(MixTransformerStage(
                channels_in, self.embed_dims[i], self.patch_sizes[i], self.strides[i], self.num_heads[i],
                self.mlp_ratios[i], self.sr_ratios[i], rates[start:start + self.depths[i]], layer_norm_eps,
            ))
            channels_in, start = self.embed_dims[i], start + self.depths[i]
        self.stages = nn.ModuleList(stages)
        self.apply(init_segformer_weights)

    @classmethod
    def from_name(cls, name: str, strides: Sequence[int] = (4, 2, 2, 2), drop_path_rate: float = 0.0,
                  **overrides) -> MixTransformer:
        """Build ``mit_b0`` ... ``mit_b5`` (see :data:`~scribbleseg.models.MIT_VARIANTS`).

        ``overrides`` may replace any constructor argument (e.g. ``layer_norm_eps``, ``in_channels``).
        Unknown names raise :class:`~scribbleseg.errors.ConfigError`.
        """
        variant = resolve_variant(name)
        kwargs = dict(embed_dims=variant.embed_dims, num_heads=variant.num_heads, depths=variant.depths,
                      mlp_ratios=variant.mlp_ratios, sr_ratios=variant.sr_ratios, strides=tuple(strides),
                      drop_path_rate=drop_path_rate)
        kwargs.update(overrides)
        model = cls(**kwargs)
        model.variant_name = variant.name
        return model

    @property
    def out_channels(self) -> tuple[int, int, int, int]:
        """Channels of the 4 stage maps (the encoder contract shared by every backbone)."""
        return self.embed_dims

    @property
    def output_strides(self) -> tuple[int, int, int, int]:
        """Cumulative stride of each stage's map w.r.t. the input, e.g. ``(4, 8, 16, 32)``."""
        out, total = [], 1
        for s in self.strides:
            total *= s
            out.append(total)
        return tuple(out)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x [N, C_in, H, W]`` -> ``[m_1, m_2, m_3, m_4]`` with ``m_i [N, embed_dims[i], H_i, W_i]``.

        The maps are contiguous NCHW tensors, so ``.view`` and friends work on them as usual.
        """
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps
