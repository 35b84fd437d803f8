"""DeYO: entropy minimisation on samples whose prediction depends on the object's shape (PLPD)."""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from infobench.registry import register
from infobench.tasks.tta.common import (
    ANCHOR_OPTIMIZER,
    EntropyMinimization,
    EntropyParams,
    family_table,
    seeded_generator,
)
from infobench.tasks.tta.methods.shuffle import destroy_objects


def plpd(logits: Tensor, logits_destroyed: Tensor) -> Tensor:
    """Pseudo-label probability difference (DeYO, Sec. 3): (n, C), (n, C) -> (n,).

    ``PLPD = p(x)[y] - p(x')[y]`` with ``y = argmax p(x)`` and ``x'`` the object-destroyed input.
    """
    p = logits.softmax(1)
    y = p.argmax(1, keepdim=True)
    return (p.gather(1, y) - logits_destroyed.softmax(1).gather(1, y))[:, 0]


class DeYOParams(EntropyParams):
    optimizer: Literal["adam", "sgd"] = Field("sgd", description="SGD with momentum 0.9 (DeYO, following SAR/EATA) or Adam")
    lr: float = Field(2.5e-4, gt=0, description="learning rate (DeYO's ImageNet-C setting, batch 64)")
    entropy_filter: float = Field(
        0.5, gt=0, description="keep samples with entropy below entropy_filter * ln C (tau_Ent)"
    )
    entropy_margin: float = Field(
        0.4, gt=0, description="Ent_0 of the weighting exp(-(H - Ent_0)), as a fraction of ln C"
    )
    plpd_threshold: float = Field(0.2, description="keep samples with PLPD above this (tau_PLPD)")
    pieces: int = Field(4, ge=2, description="patch grid side (images) or segment count (signals) of the shuffle")
    reweight_entropy: bool = Field(True, description="add the entropy weight exp(-(H - Ent_0))")
    reweight_plpd: bool = Field(True, description="add the PLPD weight exp(PLPD)")


@register("tta.method", "deyo")
class DeYO(EntropyMinimization):
    """Entropy filter 0.5 ln C + PLPD filter 0.2 from a patch/segment shuffle; weights exp(-(H-E0)) + exp(PLPD).

    Lee, Jung, Lee, Kim, Kim, "Entropy is not Enough for Test-Time Adaptation: From the
    Perspective of Disentangled Factors", ICLR 2024, Sec. 3 (PLPD, sample selection and
    weighting). For a test batch,

        PLPD(x) = p(x)[y_hat] - p(x')[y_hat],   y_hat = argmax p(x),   x' = patch-shuffled x
        S = { x : H(x) < tau_Ent and PLPD(x) > tau_PLPD },   tau_Ent = 0.5 ln C, tau_PLPD = 0.2
        alpha(x) = exp(-(H(x) - Ent_0)) + exp(PLPD(x)),      Ent_0 = 0.4 ln C
        L = mean_{x in S} alpha(x) H(x)      (alpha detached)

    minimised over the BN affine parameters with BN on test-batch statistics, one SGD step
    (lr 2.5e-4, momentum 0.9) per batch. The transform is DeYO's patch shuffle (a 4x4 grid)
    for images; for 1-D signals it is a shuffle of 4 segments (the documented 1-D analog).

    Documented choices: x' of the whole batch goes through the model in one no-grad forward
    pass (the reference code forwards only the entropy-filtered samples, so its BN statistics
    come from that subset); with x' = x the PLPD is then exactly 0.

    Departure from the reference code (Jhyun17/DeYO, ``methods/deyo.py``) on sizes the grid
    does not divide: the reference resizes every image to ``(W // pieces) * pieces`` on both
    sides, the multiple *below*, taken from the width alone (it assumes square images), and
    back after the shuffle. infobench resizes each side to the multiple *above* its own
    length (``shuffle.patch_shuffle``): the shuffle then never downsamples, so no detail is
    averaged away before p(x') is compared with p(x), non-square images keep their aspect,
    and a side shorter than ``pieces`` still gets a grid (the multiple below would be 0).
    Sizes the grid divides (28, 32, 224 with 4 pieces) are shuffled identically either way.

    Family defaults (mariodoebler/test-time-adaptation, ``cfgs/cifar10_c/deyo.yaml`` and
    ``cfgs/imagenet_c/deyo.yaml``, with ``conf.py``): cifar Adam lr 1e-3; imagenet SGD lr
    0.00025, momentum 0.9, Nesterov. The filters (``DEYO.MARGIN`` 0.5, ``DEYO.PLPD`` 0.2,
    ``EATA.MARGIN_E0`` 0.4) and the 4x4 patch grid are the same in both.
    """

    Params = DeYOParams
    family_defaults = family_table(ANCHOR_OPTIMIZER)

    def reset_extra(self) -> None:
        self.generator = seeded_generator()

    def destroy(self, x: Tensor) -> Tensor:
        """The object-destroying transform x -> x' (patch or segment shuffle)."""
        return destroy_objects(x, self.params.pieces, self.generator)

    def sample_weights(self, logits: Tensor, ent: Tensor, x: Tensor) -> Tensor:
        p = self.params
        log_c = math.log(logits.shape[1])
        ent = ent.detach()
        with torch.no_grad():
            score = plpd(logits.detach(), self.model(self.destroy(x)))
        keep = (ent < p.entropy_filter * log_c) & (score > p.plpd_threshold)
        weight = torch.zeros_like(ent)
        if p.reweight_entropy:
            weight = weight + torch.exp(-(ent - p.entropy_margin * log_c))
        if p.reweight_plpd:
            weight = weight + torch.exp(score)
        if not (p.reweight_entropy or p.reweight_plpd):
            weight = torch.ones_like(ent)
        self.last_plpd = score
        return torch.where(keep, weight, torch.zeros_like(weight))

    def loss(self, logits: Tensor, x: Tensor) -> Tensor | None:
        out = super().loss(logits, x)
        self.batch_stats["plpd"] = float(self.last_plpd.mean())
        return out
