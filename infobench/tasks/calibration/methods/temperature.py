"""Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017, Sec. 4.2).

``q = softmax(z / T)`` with one scalar T > 0 fitted by minimising the validation NLL. The
NLL is convex in the inverse temperature b = 1/T (a log-sum-exp of functions linear in b
minus a linear term), so Newton's method on b finds the true optimum:

    f(b)   = mean_i [ logsumexp_j(b z_ij) - b z_iy ]
    f'(b)  = mean_i [ E_{p_b}[z_i] - z_iy ]
    f''(b) = mean_i [ Var_{p_b}[z_i] ] >= 0

The widely copied LBFGS recipe (lr 0.01, 50 iterations on T) stops well short of the optimum;
this one stops when |f'(b)| is at machine precision.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from infobench.registry import register
from infobench.tasks.calibration.methods.base import Calibrator, check_logits


def _nll_derivatives(b: float, logits: np.ndarray, target_logit: np.ndarray) -> tuple[float, float, float]:
    """NLL and its first two derivatives with respect to the inverse temperature ``b``."""
    scaled = b * logits
    shift = scaled.max(axis=1, keepdims=True)
    weights = np.exp(scaled - shift)
    norm = weights.sum(axis=1)
    probs = weights / norm[:, None]
    mean_z = np.einsum("ij,ij->i", probs, logits)
    mean_z2 = np.einsum("ij,ij->i", probs, logits * logits)
    value = float(np.mean(np.log(norm) + shift[:, 0] - b * target_logit))
    return value, float(np.mean(mean_z - target_logit)), float(np.mean(np.maximum(mean_z2 - mean_z**2, 0.0)))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, max_iter: int = 100, tol: float = 1e-10) -> float:
    """The NLL-optimal temperature T for ``logits`` (n, C) and integer ``labels`` (n,)."""
    check_logits(logits, labels)
    z = logits.astype(np.float64)
    target = z[np.arange(len(z)), labels]
    b = 1.0
    value, grad, hess = _nll_derivatives(b, z, target)
    for _ in range(max_iter):
        if abs(grad) < tol or hess <= 0:
            break
        step = grad / hess
        # Newton step with backtracking; b stays positive (T = inf would be b = 0)
        while True:
            candidate = b - step
            if candidate > 0:
                new = _nll_derivatives(candidate, z, target)
                if new[0] <= value + 1e-15:
                    break
            step /= 2
            if abs(step) < 1e-15:
                return 1.0 / b
        b = candidate
        value, grad, hess = new
    return 1.0 / b


@register("calibration.method", "temperature")
class TemperatureScaling(Calibrator):
    """Temperature scaling: one scalar T fitted by exact NLL minimisation (Guo et al. 2017)."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        max_iter: int = Field(100, ge=1, description="Newton iterations on 1/T (converges in ~10)")

    temperature: float = 1.0

    def fit(self, logits: np.ndarray, labels: np.ndarray) -> TemperatureScaling:
        self.temperature = fit_temperature(logits, labels, max_iter=self.params.max_iter)
        return self

    def calibrated_logits(self, logits: np.ndarray) -> np.ndarray:
        return logits / self.temperature

    def fitted(self) -> dict[str, float]:
        return {"temperature": self.temperature}
