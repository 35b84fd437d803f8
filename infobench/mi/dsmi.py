"""Diffusion spectral entropy (DSE) of a representation and diffusion spectral MI (DSMI) with a label."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from infobench.mi.base import MIEstimator, check_pair
from infobench.mi.kernels import KernelParams, gaussian_gram, silverman_width, subsample
from infobench.mi.symbols import rows_to_codes
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
    """Diffusion spectral MI with a label: per class, DSE of same-size random subsamples minus the class's DSE.

    Liao, Liu, Huang, Tong, Krishnaswamy et al., "Assessing Neural Network Representations
    During Training Using Noise-Resilient Diffusion Spectral Entropy", ICASSP 2024 (arXiv
    2312.04823), eqs. (1)-(3): S_D(Z, t) = -sum_i alpha_i ln alpha_i with
    alpha_i = |lambda_i|^t / sum_j |lambda_j|^t, lambda the eigenvalues of the diffusion
    operator P = D^-1 K; I_D(Z; Y) = S_D(Z, t) - sum_y p(y) S_D(Z | Y = y, t).

    DSE grows with the number of points, so S_D(Z) of the whole sample against S_D(Z | y) of a
    class of n_y points is positive even for a label independent of Z (0.8 nats for 10 classes
    at n = 1000). As in the authors' ``diffusion_spectral_mutual_information``
    (ChenLiu-1996/DiffusionSpectralEntropy), S_D(Z) is therefore estimated at each class's size:

        I_D(Z; Y) = sum_y p(y) [ mean_r S_D(Z*_{y,r}) - S_D(Z | Y = y) ],

    Z*_{y,r} a random subsample of n_y rows of the whole sample (r = 1..``repetitions``, the
    authors' num_repetitions = 5), drawn from a generator seeded by ``random_state``.

    Documented choices: the Gaussian kernel width is Silverman's rule on the whole sample and is
    kept for every subsample and class (the authors use a fixed sigma = 10 for all, which depends
    on the scale of the data); a random subsample of ``max_samples`` rows first; nats (the
    authors' code reports bits and adds 2^-52 to each alpha_i). x is the representation and y
    the label (the "mixed" case only).
    """

    class Params(KernelParams):
        t: int = Field(1, ge=1, description="diffusion time")
        repetitions: int = Field(5, ge=1, description="random subsamples per class for S_D(Z) at the class's size")

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
        codes, count = rows_to_codes(y)
        # a stream of its own, independent of the max_samples subsample drawn with the same seed
        rng = np.random.default_rng(np.random.SeedSequence(p.random_state).spawn(1)[0])
        total = 0.0
        for code in range(count):
            members = x[codes == code]
            size = len(members)
            unconditional = np.mean([diffusion_spectral_entropy(x[rng.choice(len(x), size, replace=False)], p.t, width)
                                     for _ in range(p.repetitions)])
            total += size / len(x) * (unconditional - diffusion_spectral_entropy(members, p.t, width))
        return float(total)
