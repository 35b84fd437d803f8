"""Label smoothing (Szegedy et al., "Rethinking the Inception Architecture", CVPR 2016, Sec. 7;
its calibration effect in Mueller, Kornblith & Hinton, "When Does Label Smoothing Help?",
NeurIPS 2019):

    L = -sum_k [(1 - eps) 1(k = y) + eps / C] log p_k,     eps = 0.1.
"""

from __future__ import annotations

import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from infobench.registry import register
from infobench.tasks.calibration.losses.base import TrainingLoss


@register("calibration.loss", "label_smoothing")
class LabelSmoothing(TrainingLoss):
    """Cross-entropy against targets mixed with the uniform distribution (eps = 0.1)."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        eps: float = Field(0.1, ge=0, lt=1, description="mass moved from the label to the uniform distribution")

    def batch_loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        return F.cross_entropy(logits, labels, label_smoothing=self.params.eps)
