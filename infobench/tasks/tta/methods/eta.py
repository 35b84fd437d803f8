"""ETA: entropy minimisation on reliable, non-redundant samples, weighted by exp(E0 - H)."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from infobench.registry import register
from infobench.tasks.tta.common import (
    ANCHOR_OPTIMIZER,
    EntropyMinimization,
    EntropyParams,
    family_table,
)


class ETAParams(EntropyParams):
    """ETA's filters, on top of the optimizer fields (paper defaults: SGD, lr 0.00025, momentum 0.9)."""

    optimizer: Literal["adam", "sgd"] = Field("sgd", description="Adam or SGD with momentum (paper: SGD)")
    lr: float = Field(2.5e-4, gt=0, description="learning rate (paper: 0.00025, ImageNet-C at batch 64)")
    entropy_factor: float = Field(0.4, gt=0, description="E0 = entropy_factor * ln C: samples with H >= E0 are dropped")
    d_margin: float = Field(0.05, ge=0, le=1, description="epsilon: drop samples whose |cos| with the average prediction is >= this")
    prob_momentum: float = Field(0.9, ge=0, lt=1, description="moving average of the kept samples' mean prediction")


@register("tta.method", "eta")
class ETA(EntropyMinimization):
    """Entropy minimisation on low-entropy, non-redundant samples with weights exp(E0 - H).

    Niu, Wu, Zhang, Chen, Zheng, Zhao, Tan, "Efficient Test-Time Model Adaptation without
    Forgetting", ICML 2022, sample-efficient entropy minimisation (ETA = EATA without the Fisher term):

        S_ent(x) = 1[H(x) < E0] / exp(H(x) - E0),   E0 = 0.4 ln C       (reliability and weight)
        S_div(x) = 1[|cos(y(x), m_{t-1})| < eps],     eps = 0.05         (non-redundancy)
        m_t = 0.9 m_{t-1} + 0.1 mean_{kept} y(x)                          (moving average)
        L = mean_{kept} S_ent(x) * S_div(x) * H(x)

    The redundancy filter applies to the samples the entropy filter kept; the first batch has
    no moving average and skips it (as in the authors' code). BN normalises with test-batch
    statistics; only BN affine parameters are updated. ``woc: true`` adds the
    wisdom-of-crowds filter. The defaults are the paper's ImageNet-C setting (SGD, lr
    0.00025, momentum 0.9, batch 64; eps = 0.05).

    Family defaults (mariodoebler/test-time-adaptation, ``cfgs/cifar10_c/eta.yaml`` and
    ``cfgs/imagenet_c/eta.yaml``, with ``conf.py``): cifar Adam lr 1e-3, d_margin 0.4;
    imagenet SGD lr 0.00025, momentum 0.9, Nesterov, d_margin 0.05. ``E0 = 0.4 ln C`` is the
    same in both (``EATA.MARGIN_E0``).
    """

    Params = ETAParams
    family_defaults = family_table(
        ANCHOR_OPTIMIZER, cifar={"d_margin": 0.4}, imagenet={"d_margin": 0.05}
    )

    def reset_extra(self) -> None:
        self.mean_probs: Tensor | None = None

    def sample_weights(self, logits: Tensor, ent: Tensor, x: Tensor) -> Tensor:
        e0 = self.params.entropy_factor * math.log(self.num_classes)
        with torch.no_grad():
            keep = ent < e0
            probs = logits.softmax(1)
            if self.mean_probs is not None:
                cos = F.cosine_similarity(self.mean_probs[None, :], probs, dim=1)
                keep = keep & (cos.abs() < self.params.d_margin)
            if keep.any():
                batch_mean = probs[keep].mean(0)
                m = self.params.prob_momentum
                self.mean_probs = batch_mean if self.mean_probs is None else m * self.mean_probs + (1 - m) * batch_mean
            return keep * torch.exp(e0 - ent)
