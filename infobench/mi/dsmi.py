"""Diffusion spectral entropy (DSE) of a representation and diffusion spectral MI (DSMI) with a label."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from infobench.mi.base import MIEstimator, check_pair
from infobench.mi.kernels import KernelParams, gaussian_gram, silverman_width, subsample
from infobench.mi.symbols import mean_over_labels
from infobench.registry import register


def diffusion_spectral_entropy(z: np.ndarray, t: int, width: float) -> float:
    """DSE, in nats: with K the Gaussian kernel of width ``width`` and P = D^-1 K the diffusion
    operator, alpha_i = |lambda_i(P)|^t / sum_j |lambda_j(P)|^t and DSE = -sum_i alpha_i ln alpha_i.
    P's eigenvalues are those of the symmetric D^-1/2 K D^-1/2."""
    k = gaussian_gram(z, width)
    d = 1 / np.sqrt(k.sum(axis=1))
    eig = np.abs(np.linalg.eigvalsh(d[:, None] * k * d[None, :])) ** t
    p = eig / eig.sum()
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


@register("mi.estimator", "dsmi")
class DSMI(MIEstimator):
    """Diffusion spectral MI with a label: DSE(Z) - sum_y p(y) DSE(Z | y) (t=1); ``entropy`` gives the DSE.

    Liao, Liu, Huang, Tong, Krishnaswamy et al., "Assessing Neural Network Representations
    During Training Using Noise-Resilient Diffusion Spectral Entropy", ICASSP 2024 (arXiv
    2312.04823), eqs. (1)-(3): S_D(Z, t) = -sum_i alpha_i ln alpha_i with
    alpha_i = |lambda_i|^t / sum_j |lambda_j|^t, lambda the eigenvalues of the diffusion
    operator P = D^-1 K; I_D(Z; Y) = S_D(Z, t) - sum_y p(y) S_D(Z | Y = y, t).

    Documented choices: the Gaussian kernel width is Silverman's rule on the whole sample and is
    kept for the class-conditional entropies; a random subsample of ``max_samples`` rows; nats.
    x is the representation and y the label (the "mixed" case only).
    """

    class Params(KernelParams):
        t: int = Field(1, ge=1, description="diffusion time")

    kinds = ("mixed",)

    def _width(self, z: np.ndarray) -> float:
        return silverman_width(z) if self.params.width is None else self.params.width

    def entropy(self, z: np.ndarray) -> float:
        """DSE of a representation (n, d), in nats."""
        (z,) = subsample([np.asarray(z, dtype=np.float64)], self.params.max_samples, self.params.random_state)
        return diffusion_spectral_entropy(z, self.params.t, self._width(z))

    def estimate(self, x: np.ndarray, y: np.ndarray) -> float:
        x, y = check_pair(x, y)
        self.require_supported(x, y)
        p = self.params
        x, y = subsample([x.astype(np.float64), y], p.max_samples, p.random_state)
        width = self._width(x)
        conditional = mean_over_labels(lambda part: diffusion_spectral_entropy(part, p.t, width), x, y)
        return diffusion_spectral_entropy(x, p.t, width) - conditional
