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


def _nll_derivatives(
    b: float, logits: np.ndarray, target_logit: np.ndarray, top: np.ndarray
) -> tuple[float, float, float]:
    """NLL and its first two derivatives with respect to the inverse temperature ``b`` > 0.

    ``top`` is the row max of ``logits``: for b > 0 the row max of ``b * logits`` is ``b * top``,
    so no reduction is spent on the shift. One temporary of the logits' size is reused in place.
    """
    ones = np.ones(logits.shape[1])
    weights = np.multiply(logits, b)
    weights -= (b * top)[:, None]
    np.exp(weights, out=weights)
    norm = weights @ ones  # row sums by BLAS mat-vec, much faster than sum(axis=1) on few columns
    weights *= logits
    mean_z = (weights @ ones) / norm
    mean_z2 = np.einsum("ij,ij->i", weights, logits) / norm
    value = float(np.mean(np.log(norm) + b * (top - target_logit)))
    return value, float(np.mean(mean_z - target_logit)), float(np.mean(np.maximum(mean_z2 - mean_z**2, 0.0)))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, max_iter: int = 100, tol: float = 1e-10) -> float:
    """The NLL-optimal temperature T for ``logits`` (n, C) and integer ``labels`` (n,)."""
    check_logits(logits, labels)
    z = logits.astype(np.float64)
    target = z[np.arange(len(z)), labels]
    top = z.max(axis=1)
    b = 1.0
    value, grad, hess = _nll_derivatives(b, z, target, top)
    for _ in range(max_iter):
        if abs(grad) < tol or hess <= 0:
            break
        step = grad / hess
        # Newton step with backtracking; b stays positive (T = inf would be b = 0)
        while True:
            candidate = b - step
            if candidate > 0:
                new = _nll_derivatives(candidate, z, target, top)
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
