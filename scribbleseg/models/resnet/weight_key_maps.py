"""Key layouts of ResNet encoder checkpoints (see :mod:`scribbleseg.models.weights.layouts`).

Our names: ``stem.conv`` / ``stem.norm``, then ``stages.{s}.{b}.conv1..3`` / ``norm1..3`` and
``stages.{s}.{b}.shortcut.conv`` / ``.norm`` (stage ``s`` and block ``b`` 0-based). Recognised files:

* ``torchvision``: ImageNet files ``resnet50-*.pth`` / ``resnet101-*.pth`` (``conv1``, ``bn1``,
  ``layer{1-4}.{b}.conv{k}`` / ``bn{k}`` / ``downsample.0`` (conv) / ``downsample.1`` (BatchNorm));
  the ImageNet classifier ``fc.*`` is ignored. Anchor ``layer1.0.conv1.weight``.
* ``huggingface``: ``microsoft/resnet-50`` / ``-101`` and ``ResNetModel`` files
  (``embedder.embedder.convolution`` / ``.normalization``,
  ``encoder.stages.{s}.layers.{b}.layer.{0,1,2}.convolution`` / ``.normalization``,
  ``encoder.stages.{s}.layers.{b}.shortcut.convolution`` / ``.normalization``), also under the
  ``resnet.`` prefix of ``ResNetForImageClassification`` (whose ``classifier.*`` is ignored).
  Anchor ``embedder.embedder.convolution.weight``.
* ``scribbleseg``: our own names, e.g. inside a full checkpoint under ``encoder.``. Anchor ``stem.conv.weight``.
"""

from __future__ import annotations

from scribbleseg.models.weights.layouts import KeyLayout

_BLOCK = r"(\d)\.(\d+)\."  # stage, block

_TORCHVISION_RULES = (
    (r"^conv1\.", "stem.conv."),
    (r"^bn1\.", "stem.norm."),
    (rf"^layer{_BLOCK}conv(\d)\.", "stages.{}.\\2.conv\\3."),
    (rf"^layer{_BLOCK}bn(\d)\.", "stages.{}.\\2.norm\\3."),
    (rf"^layer{_BLOCK}downsample\.0\.", "stages.{}.\\2.shortcut.conv."),
    (rf"^layer{_BLOCK}downsample\.1\.", "stages.{}.\\2.shortcut.norm."),
)

_HF_BLOCK = r"^encoder\.stages\.(\d)\.layers\.(\d+)\."  # stage, block
_HF_RULES = (
    (r"^embedder\.embedder\.convolution\.", "stem.conv."),
    (r"^embedder\.embedder\.normalization\.", "stem.norm."),
    (rf"{_HF_BLOCK}shortcut\.convolution\.", "stages.{}.\\2.shortcut.conv."),
    (rf"{_HF_BLOCK}shortcut\.normalization\.", "stages.{}.\\2.shortcut.norm."),
    *((rf"{_HF_BLOCK}layer\.{k}\.{hf}\.", f"stages.{{}}.\\2.{ours}{k + 1}.")
      for k in range(3) for hf, ours in (("convolution", "conv"), ("normalization", "norm"))),
)

RESNET_LAYOUTS: tuple[KeyLayout, ...] = (
    KeyLayout("scribbleseg", "stem.conv.weight", r"^(stem|stages)\."),
    KeyLayout("huggingface", "embedder.embedder.convolution.weight", r"^(embedder|encoder)\.", _HF_RULES),
    KeyLayout("torchvision", "layer1.0.conv1.weight", r"^(conv1|bn1|layer\d)\.", _TORCHVISION_RULES,
              one_based=True),
)
