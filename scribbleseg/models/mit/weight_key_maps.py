"""Key layouts of MiT encoder checkpoints (see :mod:`scribbleseg.models.weights.layouts`).

Three layouts are recognised by an anchor key (the stage-1 patch-embedding conv weight):

* ``nvlabs``: the ImageNet files ``mit_b*.pth`` of NVlabs/SegFormer (``patch_embed1.proj``,
  ``block1.0.attn.q``/``kv``/``sr``, ``mlp.dwconv.dwconv``, ``norm1`` ...; classifier ``head.*``).
* ``huggingface``: ``nvidia/mit-b*`` and ``SegformerModel`` / ``SegformerFor*`` files
  (``encoder.patch_embeddings.0``, ``encoder.block.0.0.attention.self.query``/``key``/``value`` ...);
  separate key and value matrices are concatenated into our ``kv`` (keys first).
* ``scribbleseg``: our own names (``stages.0.patch_embed.proj`` ...), e.g. inside a full checkpoint
  under ``encoder.``.
"""

from __future__ import annotations

import torch

from scribbleseg.models.weights.layouts import ConvertedWeights, KeyLayout

_NVLABS_RULES = (
    (r"^patch_embed(\d)\.(proj|norm)\.", "stages.{}.patch_embed.\\2."),
    (r"^block(\d)\.(\d+)\.mlp\.dwconv\.dwconv\.", "stages.{}.blocks.\\2.ffn.dwconv."),
    (r"^block(\d)\.(\d+)\.mlp\.(fc1|fc2)\.", "stages.{}.blocks.\\2.ffn.\\3."),
    (r"^block(\d)\.(\d+)\.(norm1|norm2)\.", "stages.{}.blocks.\\2.\\3."),
    (r"^block(\d)\.(\d+)\.attn\.(q|kv|proj|sr|norm)\.", "stages.{}.blocks.\\2.attn.\\3."),
    (r"^norm(\d)\.", "stages.{}.norm."),
)

_HF_RULES = (
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


MIT_LAYOUTS: tuple[KeyLayout, ...] = (
    KeyLayout("scribbleseg", "stages.0.patch_embed.proj.weight", r"^stages\."),
    KeyLayout("huggingface", "encoder.patch_embeddings.0.proj.weight", r"^encoder\.", _HF_RULES,
              finish=_merge_key_value),
    KeyLayout("nvlabs", "patch_embed1.proj.weight", r"^(patch_embed\d|block\d|norm\d)\.", _NVLABS_RULES,
              one_based=True),
)
