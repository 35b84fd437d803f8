"""Kolchinsky-Tracey pairwise-distance bounds on MI for a representation with Gaussian noise (Saxe et al.)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from infobench.mi.base import MIEstimator, check_pair, is_discrete
from infobench.mi.kernels import log_mean_kernel
from infobench.mi.symbols import mean_over_labels
from infobench.registry import register

Bound = Literal["upper", "lower"]


def noisy_entropy_excess(t: np.ndarray, variance: float, bound: Bound) -> float:
    """H(T + Z) - H(Z) for Z ~ N(0, variance I), bounded by pairwise distances between rows of t:
    upper (KL): -mean_i ln mean_j exp(-|t_i - t_j|^2 / (2 var));
    lower (Bhattacharyya): the same with 8 var in place of 2 var."""
    scale = (2.0 if bound == "upper" else 8.0) * variance
    return float(-np.mean(log_mean_kernel(np.asarray(t, dtype=np.float64), scale)))


def kde_label_mi(t: np.ndarray, labels: np.ndarray, variance: float, bound: Bound) -> float:
    """I(T; Y) = H(T) - sum_y p(y) H(T | Y = y) for T = t + noise and a label array (n, 1)."""
    h_given = mean_over_labels(lambda part: noisy_entropy_excess(part, variance, bound), t, labels)
    return noisy_entropy_excess(t, variance, bound) - h_given


@register("mi.estimator", "kde")
class KDE(MIEstimator):
    """Kolchinsky-Tracey pairwise-distance upper (or lower) bound, Gaussian noise variance 0.1.

    Kolchinsky & Tracey, "Estimating Mixture Entropy with Pairwise Distances", Entropy 2017,
    eqs. (6)-(8), as used by Saxe et al., "On the Information Bottleneck Theory of Deep
    Learning", ICLR 2018: a layer T = h(X) + Z, Z ~ N(0, sigma^2 I) is a mixture of Gaussians
    centred on the samples' activations h_i, and

        I(X; T) <= -1/N sum_i ln 1/N sum_j exp(-|h_i - h_j|^2 / (2 sigma^2))   (KL, upper)
        I(X; T) >= -1/N sum_i ln 1/N sum_j exp(-|h_i - h_j|^2 / (8 sigma^2))   (Bhattacharyya, lower)

    and I(T; Y) = H(T) - sum_y p(y) H(T | Y = y) with each entropy bounded the same way.

    Documented choice: for two real arrays, y is the representation (T = y + Z, a deterministic
    function of x: I(X; T)); with a label y, x is the representation (I(T; Y)). The estimate is
    of the noisy representation, so it is not an estimate of I(X; Y) for arbitrary (X, Y).
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        noise_variance: float = Field(0.1, gt=0, description="sigma^2 of the added Gaussian noise (Saxe et al.: 0.1)")
        bound: Bound = Field("upper", description="upper (KL) or lower (Bhattacharyya) pairwise-distance bound")

    kinds = ("continuous", "mixed")
    deterministic_y = True

    def variance(self, t: np.ndarray) -> float:
        """The noise variance for the representation ``t``."""
        return self.params.noise_variance

    def estimate(self, x: np.ndarray, y: np.ndarray) -> float:
        x, y = check_pair(x, y)
        if is_discrete(y) and not is_discrete(x):  # I(T; Y) with T = x
            return kde_label_mi(x, y, self.variance(x), self.params.bound)
        t = y.astype(np.float64)  # I(X; T) with T = y
        return noisy_entropy_excess(t, self.variance(t), self.params.bound)
