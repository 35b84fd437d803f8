"""Shared fit of affine calibration maps ``q = softmax(W x + b)`` (vector, matrix, Dirichlet).

``x`` is the logit vector (vector and matrix scaling, Guo et al. 2017) or the log of the
softmax probabilities (Dirichlet calibration, Kull et al. 2019). The objective is the mean
validation NLL plus the ODIR penalty of Kull et al. 2019 (Sec. 4, "off-diagonal and intercept
regularisation"):

    L(W, b) = mean_i [ logsumexp(W x_i + b) - (W x_i + b)_{y_i} ]
              + lambda / (C (C - 1)) * sum_{j != k} W_jk^2 + mu / C * sum_k b_k^2

minimised by L-BFGS (scipy) with the exact gradient ``dL/dW = (Q - Y)^T X / n + penalty
terms`` from the identity map (W = I, b = 0), so an unhelpful calibrator stays close to the
model's own softmax. Not registered: the concrete calibrators are the files next to this one.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.optimize import minimize

from infobench.metrics import log_softmax
from infobench.tasks.calibration.methods.base import Calibrator, check_logits


def fit_affine(
    x: np.ndarray,
    labels: np.ndarray,
    *,
    diagonal: bool,
    l2_offdiag: float = 0.0,
    l2_bias: float = 0.0,
    max_iter: int = 1000,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``W`` (C, C) and ``b`` (C,) of ``softmax(x W^T + b)`` to ``labels``; returns (W, b).

    ``diagonal`` restricts W to a diagonal (vector scaling). ``x``: (n, C) float; ``labels``: (n,).
    """
    n, c = x.shape
    onehot = np.zeros((n, c))
    onehot[np.arange(n), labels] = 1.0
    off = ~np.eye(c, dtype=bool)
    w_scale = l2_offdiag / (c * (c - 1)) if c > 1 else 0.0
    b_scale = l2_bias / c

    def unpack(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if diagonal:
            return np.diag(theta[:c]), theta[c:]
        return theta[: c * c].reshape(c, c), theta[c * c :]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = unpack(theta)
        scores = x @ w.T + b
        log_q = log_softmax(scores)
        value = -np.mean(log_q[np.arange(n), labels])
        resid = (np.exp(log_q) - onehot) / n  # d(mean NLL) / d scores
        grad_w = resid.T @ x
        grad_b = resid.sum(axis=0)
        value += w_scale * np.sum(w[off] ** 2) + b_scale * np.sum(b**2)
        grad_w = grad_w + 2 * w_scale * np.where(off, w, 0.0)
        grad_b = grad_b + 2 * b_scale * b
        grad = np.concatenate([np.diag(grad_w) if diagonal else grad_w.ravel(), grad_b])
        return float(value), grad

    start = np.concatenate([np.ones(c) if diagonal else np.eye(c).ravel(), np.zeros(c)])
    result = minimize(objective, start, jac=True, method="L-BFGS-B",
                      options={"maxiter": max_iter, "gtol": 1e-9, "ftol": 1e-14})
    return unpack(result.x)


class AffineCalibrator(Calibrator):
    """Base of calibrators ``softmax(W x + b)``; subclasses set ``diagonal`` and ``on_log_probs``."""

    diagonal: ClassVar[bool] = False
    on_log_probs: ClassVar[bool] = False  # x = log softmax(logits) (Dirichlet) instead of logits

    weight: np.ndarray
    bias: np.ndarray

    def _inputs(self, logits: np.ndarray) -> np.ndarray:
        z = np.asarray(logits, dtype=np.float64)
        return log_softmax(z) if self.on_log_probs else z

    def fit(self, logits: np.ndarray, labels: np.ndarray) -> AffineCalibrator:
        check_logits(logits, labels)
        params = self.params
        self.weight, self.bias = fit_affine(
            self._inputs(logits), np.asarray(labels), diagonal=self.diagonal,
            l2_offdiag=getattr(params, "l2_offdiag", 0.0), l2_bias=getattr(params, "l2_bias", 0.0),
            max_iter=params.max_iter,
        )
        return self

    def calibrated_logits(self, logits: np.ndarray) -> np.ndarray:
        check_logits(logits)
        if logits.shape[1] != self.bias.shape[0]:
            raise ValueError(f"logits have {logits.shape[1]} classes, the calibrator was fitted on {self.bias.shape[0]}")
        return self._inputs(logits) @ self.weight.T + self.bias

    def fitted(self) -> dict[str, float]:
        c = self.bias.shape[0]
        off = self.weight[~np.eye(c, dtype=bool)]
        return {
            "weight_diag_mean": float(np.mean(np.diag(self.weight))),
            "weight_offdiag_rms": float(np.sqrt(np.mean(off**2))) if off.size else 0.0,
            "bias_rms": float(np.sqrt(np.mean(self.bias**2))),
        }
