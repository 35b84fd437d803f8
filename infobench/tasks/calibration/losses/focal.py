"""Focal loss (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017, Eq. 4), used for
calibration by Mukhoti et al., "Calibrating Deep Neural Networks using Focal Loss", NeurIPS
2020, Sec. 4:

    L = -(1 - p_y)^gamma log p_y,      p = softmax(z),

with gamma = 3, Mukhoti et al.'s best fixed value. gamma = 0 is cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from infobench.registry import register
from infobench.tasks.calibration.losses.base import TrainingLoss


def focal_loss(logits: Tensor, labels: Tensor, gamma: Tensor | float) -> Tensor:
    """Mean of ``-(1 - p_y)^gamma log p_y``; ``gamma`` a scalar or a (b,) tensor of per-sample values."""
    log_p = F.log_softmax(logits, dim=1).gather(1, labels[:, None])[:, 0]
    return -(torch.pow(1.0 - log_p.exp(), gamma) * log_p).mean()


@register("calibration.loss", "focal")
class FocalLoss(TrainingLoss):
    """Focal loss with a fixed gamma (Mukhoti et al. 2020: gamma = 3)."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        gamma: float = Field(3.0, ge=0, description="focusing parameter; 0 is cross-entropy")

    def batch_loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        return focal_loss(logits, labels, self.params.gamma)
