"""The model's own softmax: the baseline every calibration table starts from."""

from __future__ import annotations

import numpy as np

from infobench.registry import register
from infobench.tasks.calibration.methods.base import Calibrator, check_logits


@register("calibration.method", "uncalibrated")
class Uncalibrated(Calibrator):
    """No calibration: softmax of the model's logits."""

    def calibrated_logits(self, logits: np.ndarray) -> np.ndarray:
        return check_logits(logits)[0]
