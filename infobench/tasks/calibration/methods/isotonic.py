"""Isotonic regression, one-vs-rest and renormalised (Zadrozny & Elkan, "Transforming classifier
scores into accurate multiclass probability estimates", KDD 2002; Guo et al. 2017, Sec. 4.1).

For each class k a non-decreasing step function ``f_k`` is fitted to the validation pairs
``(p_ik, 1[y_i = k])`` by pool-adjacent-violators, minimising ``sum_i (f_k(p_ik) - 1[y_i = k])^2``
with ``p = softmax(z)``; then ``q_k = f_k(p_k) / sum_j f_j(p_j)``. scikit-learn's
``IsotonicRegression`` fits each f_k (linear interpolation between its steps, values clipped to
[0, 1], inputs outside the validation range clipped to it).
Documented choices: a row whose one-vs-rest values are all 0 becomes uniform; for the NLL every
probability is floored at ``min_prob`` and renormalised.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from infobench.metrics import softmax
from infobench.registry import register
from infobench.tasks.calibration.methods.base import (
    ProbabilityCalibrator,
    check_logits,
    renormalise,
)


@register("calibration.method", "isotonic")
class IsotonicCalibration(ProbabilityCalibrator):
    """Isotonic regression of each class probability (one-vs-rest), renormalised."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        min_prob: float = Field(1e-6, gt=0, lt=0.1, description="floor of each probability before the log of the NLL")

    def fit(self, logits: np.ndarray, labels: np.ndarray) -> IsotonicCalibration:
        from sklearn.isotonic import IsotonicRegression

        logits, labels = check_logits(logits, labels)
        probs = softmax(np.asarray(logits, dtype=np.float64))
        self.models = [
            IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(probs[:, k], labels == k)
            for k in range(probs.shape[1])
        ]
        return self

    def transform(self, logits: np.ndarray) -> np.ndarray:
        logits, _ = check_logits(logits)
        probs = softmax(np.asarray(logits, dtype=np.float64))
        if probs.shape[1] != len(self.models):
            raise ValueError(f"logits have {probs.shape[1]} classes, the calibrator was fitted on {len(self.models)}")
        scores = np.stack([m.predict(probs[:, k]) for k, m in enumerate(self.models)], axis=1)
        return renormalise(scores)

    def fitted(self) -> dict[str, float]:
        return {"isotonic_steps_mean": float(np.mean([len(m.X_thresholds_) for m in self.models]))}
