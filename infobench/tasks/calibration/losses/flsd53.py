"""FLSD-53: focal loss with a sample-dependent gamma (Mukhoti et al., "Calibrating Deep Neural
Networks using Focal Loss", NeurIPS 2020, Sec. 5):

    L = -(1 - p_y)^gamma(p_y) log p_y,   gamma(p_y) = 5 if p_y < 0.2 else 3,

the schedule chosen from their Lambert-W bound (gamma is not differentiated through).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from infobench.registry import register
from infobench.tasks.calibration.losses.base import TrainingLoss
from infobench.tasks.calibration.losses.focal import focal_loss


@register("calibration.loss", "flsd53")
class AdaptiveFocalLoss(TrainingLoss):
    """Sample-dependent focal loss FLSD-53: gamma 5 when p_y < 0.2, else 3 (Mukhoti et al. 2020)."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        gamma_low: float = Field(5.0, ge=0, description="gamma for samples with p_y below the threshold")
        gamma_high: float = Field(3.0, ge=0, description="gamma for the other samples")
        threshold: float = Field(0.2, gt=0, lt=1, description="p_y below which gamma_low applies")

    def batch_loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        p_y = F.softmax(logits.detach(), dim=1).gather(1, labels[:, None])[:, 0]
        gamma = torch.where(p_y < self.params.threshold, self.params.gamma_low, self.params.gamma_high)
        return focal_loss(logits, labels, gamma)
