"""Translate MiT encoder key names of other checkpoints into scribbleseg's names.

Three layouts are recognised by an anchor key (the stage-1 patch-embedding conv weight); whatever
precedes the anchor (``""``, ``"segformer."``, ``"backbone."``, ``"model.encoder."`` ...) is the prefix:

* ``nvlabs``: the ImageNet files ``mit_b*.pth`` of NVlabs/SegFormer (``patch_embed1.proj``,
  ``block1.0.attn.q``/``kv``/``sr``, ``mlp.dwconv.dwconv``, ``norm1`` ...; classifier ``head.*``).
* ``huggingface``: ``nvidia/mit-b*`` and ``SegformerModel`` / ``SegformerFor*`` files
  (``encoder.patch_embeddings.0``, ``encoder.block.0.0.attention.self.query``/``key``/``value`` ...);
  separate key and value matrices are concatenated into our ``kv`` (keys first).
* ``scribbleseg``: our own names (``stages.0.patch_embed.proj`` ...), e.g. inside a full checkpoint
  under ``encoder.``.

Keys outside the encoder part of the layout (classifier, decode head, prototype bank ...) are returned
as ``ignored``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

_NVLABS_RULES: tuple[tuple[str, str], ...] = (
    (r"^patch_embed(\d)\.(proj|norm)\.", "stages.{}.patch_embed.\\2."),
    (r"^block(\d)\.(\d+)\.mlp\.dwconv\.dwconv\.", "stages.{}.blocks.\\2.ffn.dwconv."),
    (r"^block(\d)\.(\d+)\.mlp\.(fc1|fc2)\.", "stages.{}.blocks.\\2.ffn.\\3."),
    (r"^block(\d)\.(\d+)\.(norm1|norm2)\.", "stages.{}.blocks.\\2.\\3."),
    (r"^block(\d)\.(\d+)\.attn\.(q|kv|proj|sr|norm)\.", "stages.{}.blocks.\\2.attn.\\3."),
    (r"^norm(\d)\.", "stages.{}.norm."),
)

_HF_RULES: tuple[tuple[str, str], ...] = (
    (r"^encoder\.patch_embeddings\.(\d)\.proj\.", "stages.{}.patch_embed.proj."),
    (r"^encoder\.patch_embeddings\.(\d)\.layer_norm\.", "stages.{}.patch_embed.norm."),
    (r"^encoder\.block\.(\d)\.(\d+)\.layer_norm_1\.", "stages.{}.blocks.\\2.norm1."),
    (r"^encoder\.block\.(\d)\.(\d+)\.layer_norm_2\.", "stages.{}.blocks.\\2.norm2."),
    (r"^encoder\.block\.(\d)\.(\d+)\.attention\.self\.query\.", "stages.{}.blocks.\\2.attn.q."),
    (r"^encoder\.block\.(\d)\.(\d+)\.attention\.self\.key\.", "stages.{}.blocks.\\2.attn.<k>."),
    (r"^encoder\.block\.(\d)\.(\d+)\.attention\.self\.value\.", "stages.{}.blocks.\\2.attn.<v>."),
    (r"^encoder\.block\.(\d)\.(\d+)\.attention\.self\.sr\.", "stages.{}.blocks.\\2.attn.sr."),
    (r"^encoder\.block\.(\d)\.(\d+)\.attention\.self\.layer_norm\.", "stages.{}.blocks.\\2.attn.norm."),
    (r"^encoder\.block\.(\d)\.(\d+)\.attention\.output\.dense\.", "stages.{}.blocks.\\2.attn.proj."),
    (r"^encoder\.block\.(\d)\.(\d+)\.mlp\.dense1\.", "stages.{}.blocks.\\2.ffn.fc1."),
    (r"^encoder\.block\.(\d)\.(\d+)\.mlp\.dense2\.", "stages.{}.blocks.\\2.ffn.fc2."),
    (r"^encoder\.block\.(\d)\.(\d+)\.mlp\.dwconv\.dwconv\.", "stages.{}.blocks.\\2.ffn.dwconv."),
    (r"^encoder\.layer_norm\.(\d)\.", "stages.{}.norm."),
)

# (format name, anchor key, regex a stripped key must match to belong to the encoder)
LAYOUTS: tuple[tuple[str, str, str], ...] = (
    ("scribbleseg", "stages.0.patch_embed.proj.weight", r"^stages\."),
    ("huggingface", "encoder.patch_embeddings.0.proj.weight", r"^encoder\."),
    ("nvlabs", "patch_embed1.proj.weight", r"^(patch_embed\d|block\d|norm\d)\."),
)


@dataclass
class ConvertedWeights:
    """Result of :func:`convert_to_scribbleseg`: encoder tensors under our names plus bookkeeping."""

    source_format: str
    prefix: str
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    source_names: dict[str, str] = field(default_factory=dict)  # our name -> name in the file
    ignored: list[str] = field(default_factory=list)


def detect_layout(keys: list[str]) -> tuple[str, str, str] | None:
    """Return ``(format, prefix, member_regex)`` of the first layout whose anchor ends a key, else None."""
    for name, anchor, member in LAYOUTS:
        for key in keys:
            if key.endswith(anchor):
                prefix = key[: len(key) - len(anchor)]
                if prefix == "" or prefix.endswith("."):
                    return name, prefix, member
    return None


def _apply_rules(key: str, rules: tuple[tuple[str, str], ...], one_based: bool) -> str:
    """Rename one key with the first matching rule; stage numbers become 0-based ``stages.i``."""
    for pattern, template in rules:
        match = re.match(pattern, key)
        if match:
            stage = int(match.group(1)) - (1 if one_based else 0)
            return re.sub(pattern, template.format(stage), key, count=1)
    return key


def _merge_key_value(converted: ConvertedWeights) -> None:
    """Concatenate Hugging Face's separate ``<k>`` / ``<v>`` tensors into one ``kv`` (keys first)."""
    for name in [n for n in converted.tensors if ".attn.<k>." in n]:
        value_name = name.replace(".attn.<k>.", ".attn.<v>.")
        if value_name not in converted.tensors:
            continue
        kv_name = name.replace(".attn.<k>.", ".attn.kv.")
        key_tensor = converted.tensors.pop(name)
        value_tensor = converted.tensors.pop(value_name)
        converted.tensors[kv_name] = torch.cat([key_tensor, value_tensor], dim=0)
        source_k = converted.source_names.pop(name)
        source_v = converted.source_names.pop(value_name)
        converted.source_names[kv_name] = f"{source_k} + {source_v}"


def convert_to_scribbleseg(state: dict[str, torch.Tensor], layout: tuple[str, str, str]) -> ConvertedWeights:
    """Rename the encoder tensors of ``state`` (layout from :func:`detect_layout`) to our names.

    Keys that do not belong to the encoder go to ``ignored``. Unknown encoder-looking keys keep their
    stripped name, so the caller reports them as unexpected.
    """
    source_format, prefix, member = layout
    converted = ConvertedWeights(source_format=source_format, prefix=prefix)
    for key, tensor in state.items():
        stripped = key[len(prefix):] if key.startswith(prefix) else None
        if stripped is None or not re.match(member, stripped):
            converted.ignored.append(key)
            continue
        if source_format == "huggingface":
            ours = _apply_rules(stripped, _HF_RULES, one_based=False)
        elif source_format == "nvlabs":
            ours = _apply_rules(stripped, _NVLABS_RULES, one_based=True)
        else:
            ours = stripped
        converted.tensors[ours] = tensor
        converted.source_names[ours] = key
    if source_format == "huggingface":
        _merge_key_value(converted)
    return converted
