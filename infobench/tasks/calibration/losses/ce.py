"""Cross-entropy: the standard training loss, ``-log softmax(z)_y``; the reference every
calibration-aware loss is compared with. It trains through the core loop and shares the cached
model of every task that trains with the default loss.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from infobench.registry import register
from infobench.tasks.calibration.losses.base import TrainingLoss


@register("calibration.loss", "ce")
class CrossEntropy(TrainingLoss):
    """Cross-entropy (the default training loss)."""

    def batch_loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        return F.cross_entropy(logits, labels)
