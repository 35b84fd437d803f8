"""Vendi score: exp of the entropy of the similarity matrix's eigenvalues, a diversity measure."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from infobench.mi.base import MIEstimator, as_2d, check_pair, is_discrete
from infobench.mi.kernels import (
    SubsampleParams,
    label_gram,
    spectral_entropy,
    subsample,
    variable_gram,
)
from infobench.registry import register


def cosine_gram(a: np.ndarray) -> np.ndarray:
    """K_ij = <a_i, a_j> / (|a_i| |a_j|) (a zero row is similar only to itself)."""
    norm = np.linalg.norm(a, axis=1, keepdims=True)
    unit = np.where(norm > 0, a / np.where(norm > 0, norm, 1.0), 0.0)
    k = unit @ unit.T
    np.fill_diagonal(k, 1.0)
    return k


@register("mi.estimator", "vendi")
class Vendi(MIEstimator):
    """Vendi score diversity exp(-sum l ln l) of K/n; ``estimate`` is the matching von Neumann MI.

    Friedman & Dieng, "The Vendi Score: A Diversity Evaluation Metric for Machine Learning",
    TMLR 2023, eq. (1): VS(X) = exp(-sum_i lambda_i ln lambda_i), lambda the eigenvalues of
    K / n for a similarity kernel with K_ii = 1; VS is the effective number of distinct
    samples. ``score(a)`` returns it. As an information quantity, ``estimate`` returns
    ln VS(X) + ln VS(Y) - ln VS(X, Y) with the joint kernel K_X o K_Y, the order-1 (von Neumann)
    case of the matrix-based entropy (Sanchez Giraldo et al. 2015).

    Documented choices: the cosine-similarity kernel for embeddings (the paper's choice for
    learned features) or a Gaussian kernel of Silverman's width; a label uses [y_i = y_j];
    a random subsample of ``max_samples`` rows. The cosine kernel of one real column is
    sign(a_i) sign(a_j): it sees only the sign, so its MI is 0 for any 1-D pair; such input is
    refused (``unsupported``) with the advice to use the Gaussian kernel.
    """

    class Params(SubsampleParams):
        kernel: Literal["cosine", "gaussian"] = Field("cosine", description="similarity kernel of real variables")

    kinds = ("continuous", "mixed", "discrete")
    symmetric = True

    def unsupported(self, x: np.ndarray, y: np.ndarray) -> str | None:
        reason = super().unsupported(x, y)
        if reason is None:
            reason = self._one_column_cosine(as_2d(x, "x"), "x") or self._one_column_cosine(as_2d(y, "y"), "y")
        return reason

    def _one_column_cosine(self, a: np.ndarray, name: str) -> str | None:
        if self.params.kernel == "cosine" and not is_discrete(a) and a.shape[1] == 1:
            return (f"vendi's cosine kernel on a single real column ({name}) is sign({name}_i {name}_j): it sees only "
                    f"the sign, so the score is at most 2 and the MI 0; use kernel 'gaussian' for 1-D data")
        return None

    def gram(self, a: np.ndarray) -> np.ndarray:
        if is_discrete(a):
            return label_gram(a)
        if self.params.kernel == "cosine":
            return cosine_gram(np.asarray(a, dtype=np.float64))
        return variable_gram(a, None)

    def score(self, a: np.ndarray) -> float:
        """The Vendi score of the rows of ``a`` (n, d): between 1 (all alike) and n (all distinct)."""
        a = as_2d(a, "a")
        reason = self._one_column_cosine(a, "a")
        if reason is not None:
            raise ValueError(reason)
        (a,) = subsample([a], self.params.max_samples, self.params.random_state)
        return float(np.exp(spectral_entropy(self.gram(a), 1.0)))

    def estimate(self, x: np.ndarray, y: np.ndarray) -> float:
        x, y = check_pair(x, y)
        self.require_supported(x, y)
        x, y = subsample([x, y], self.params.max_samples, self.params.random_state)
        kx, ky = self.gram(x), self.gram(y)
        return spectral_entropy(kx, 1.0) + spectral_entropy(ky, 1.0) - spectral_entropy(kx * ky, 1.0)
