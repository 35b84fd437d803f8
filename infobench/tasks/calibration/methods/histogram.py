"""Histogram binning, one-vs-rest (Zadrozny & Elkan, "Obtaining calibrated probability estimates
from decision trees and naive Bayesian classifiers", ICML 2001; multi-class as in Guo et al. 2017,
Sec. 4.1).

For each class k the model's probability ``p_k = softmax(z)_k`` is put into one of M bins and
replaced by the bin's validation frequency of class k,

    theta_km = |{i in B_km : y_i = k}| / |B_km|,    q_k = theta_{k, m(p_k)},

and the C one-vs-rest values are renormalised to sum to 1 (Guo et al.: "the bin scores are
normalised"). Equal-width bins use the metrics' convention (right-closed, 1.0 in the last
bin); equal-mass bins split each class's validation scores into M quantile groups.
Documented choices: an empty bin predicts its own midpoint (equal-width) so the map is the
identity there; a row whose one-vs-rest scores are all 0 becomes uniform; for the NLL every
probability is floored at ``min_prob`` and renormalised.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from infobench.metrics import softmax, width_bin_index
from infobench.registry import register
from infobench.tasks.calibration.methods.base import (
    ProbabilityCalibrator,
    check_logits,
    renormalise,
)


@register("calibration.method", "histogram")
class HistogramBinning(ProbabilityCalibrator):
    """Histogram binning: each class probability replaced by its bin's frequency, then renormalised."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        n_bins: int = Field(15, ge=1, le=10000, description="bins per class (M)")
        binning: Literal["width", "mass"] = Field("width", description="equal-width or equal-mass (per class) bins")
        min_prob: float = Field(1e-6, gt=0, lt=0.1, description="floor of each probability before the log of the NLL")

    theta: np.ndarray  # (C, M) bin frequencies
    edges: np.ndarray  # (C, M - 1) inner edges of the mass bins

    def _bins(self, probs: np.ndarray) -> np.ndarray:
        if self.params.binning == "width":
            return width_bin_index(probs, self.params.n_bins)
        # per class: number of inner edges strictly below p -> right-closed bins, as for width
        return np.stack([np.searchsorted(self.edges[k], probs[:, k], side="left")
                         for k in range(probs.shape[1])], axis=1)

    def fit(self, logits: np.ndarray, labels: np.ndarray) -> HistogramBinning:
        logits, labels = check_logits(logits, labels)
        probs = softmax(np.asarray(logits, dtype=np.float64))
        n, c = probs.shape
        m = self.params.n_bins
        if self.params.binning == "mass":
            quantiles = np.linspace(0, 1, m + 1)[1:-1]
            self.edges = np.quantile(probs, quantiles, axis=0).T.reshape(c, m - 1)
        ids = (self._bins(probs) + m * np.arange(c)).ravel()
        hits = np.zeros_like(probs)
        hits[np.arange(n), labels] = 1.0
        counts = np.bincount(ids, minlength=c * m).reshape(c, m)
        positives = np.bincount(ids, weights=hits.ravel(), minlength=c * m).reshape(c, m)
        midpoints = np.broadcast_to((np.arange(m) + 0.5) / m, (c, m))
        if self.params.binning == "mass":  # an empty mass bin: the mean of its edges
            lo = np.concatenate([np.zeros((c, 1)), self.edges], axis=1)
            hi = np.concatenate([self.edges, np.ones((c, 1))], axis=1)
            midpoints = (lo + hi) / 2
        self.theta = np.divide(positives, counts, out=midpoints.copy(), where=counts > 0)
        return self

    def transform(self, logits: np.ndarray) -> np.ndarray:
        logits, _ = check_logits(logits)
        probs = softmax(np.asarray(logits, dtype=np.float64))
        if probs.shape[1] != self.theta.shape[0]:
            raise ValueError(f"logits have {probs.shape[1]} classes, the calibrator was fitted on {self.theta.shape[0]}")
        scores = self.theta[np.arange(probs.shape[1]), self._bins(probs)]
        return renormalise(scores)

    def fitted(self) -> dict[str, float]:
        return {"bins": float(self.params.n_bins)}
