"""An NVlabs ``mit_b*.pth`` file of a randomly initialised MiT written by our own code (no download): the
pretrained route of the own-data preset is tested with it."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from scribbleseg.models.network_builders import build_backbone
from scribbleseg.models.mit.family import MiTBackbone

# our key -> the NVlabs key (stage i is 0-based here, 1-based there)
_TO_NVLABS = (
    (r"^stages\.(\d)\.patch_embed\.(proj|norm)\.", "patch_embed{}.\\2."),
    (r"^stages\.(\d)\.blocks\.(\d+)\.ffn\.dwconv\.", "block{}.\\2.mlp.dwconv.dwconv."),
    (r"^stages\.(\d)\.blocks\.(\d+)\.ffn\.(fc1|fc2)\.", "block{}.\\2.mlp.\\3."),
    (r"^stages\.(\d)\.blocks\.(\d+)\.(norm1|norm2)\.", "block{}.\\2.\\3."),
    (r"^stages\.(\d)\.blocks\.(\d+)\.attn\.", "block{}.\\2.attn."),
    (r"^stages\.(\d)\.norm\.", "norm{}."),
)


def nvlabs_key(key: str) -> str:
    for pattern, replacement in _TO_NVLABS:
        match = re.match(pattern, key)
        if match:
            return re.sub(pattern, replacement.format(int(match[1]) + 1), key)
    raise KeyError(key)


def write_nvlabs_mit(path: Path, variant: str = "mit_b1", seed: int = 0) -> Path:
    """``path`` (a ``.pth``): a random ``variant`` in the NVlabs layout, with an ImageNet head as released."""
    torch.manual_seed(seed)
    model = build_backbone(MiTBackbone(name=variant))
    state = {nvlabs_key(key): value.clone() for key, value in model.state_dict().items()}
    width = state["norm4.weight"].numel()
    state["head.weight"] = torch.randn(1000, width) * 0.01
    state["head.bias"] = torch.zeros(1000)
    torch.save(state, path)
    return path
