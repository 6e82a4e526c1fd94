"""The consistency loss of PFA (section 3.4, eq. 10); the partial cross-entropy (eq. 9) every method
shares is :func:`scribbleseg.methods.partial_ce.partial_cross_entropy`.

``consistency_loss`` compares the basic prediction ``p`` with an augmented one ``p_aug`` (both logits
``[N, K, h, w]`` at decoder resolution), averaged over the ``N*h*w`` pixels:

* ``"ce"`` (default, eq. 10): ``-sum_c p_c log p_aug_c``. The basic prediction is the target and is
  detached by default (``detach_target``), so the consistency term trains the augmenter (and, through the
  augmented branch, the encoder and classifier) towards the basic prediction.
* ``"kl"``: ``sum_c p_c (log p_c - log p_aug_c)``: eq. 10 minus the target entropy; same gradient w.r.t.
  ``p_aug`` as ``"ce"`` when the target is detached.
* ``"released"``: the authors' released code, ``nn.CrossEntropyLoss(softmax(basic), softmax(aug))``, i.e.
  ``-sum_c softmax(aug)_c log_softmax(softmax(basic))_c``: probabilities are fed where logits are expected
  and the roles are swapped; nothing is detached. Kept for reproduction only.
"""

from __future__ import annotations

from torch import Tensor

from scribbleseg.errors import ConfigError


def consistency_loss(basic: Tensor, augmented: Tensor, kind: str = "ce", detach_target: bool = True) -> Tensor:
    """Eq. (10) and variants: consistency of ``augmented`` with ``basic`` (logits ``[N, K, h, w]``), float32."""
    if basic.shape != augmented.shape:
        raise ValueError(f"basic {tuple(basic.shape)} and augmented {tuple(augmented.shape)} differ")
    basic = basic.float()
    augmented = augmented.float()
    if kind == "released":
        per_pixel = -(augmented.softmax(1) * basic.softmax(1).log_softmax(1)).sum(1)
        return per_pixel.mean()
    target_logits = basic.detach() if detach_target else basic
    target = target_logits.softmax(1)
    log_augmented = augmented.log_softmax(1)
    if kind == "ce":
        return -(target * log_augmented).sum(1).mean()
    if kind == "kl":
        return (target * (target_logits.log_softmax(1) - log_augmented)).sum(1).mean()
    raise ConfigError(f"pfa.consistency must be 'ce', 'kl' or 'released', got {kind!r}")
