"""Kozachenko-Leonenko kNN entropy, MI as H(X) + H(Y) - H(X, Y), optionally on autoencoder codes."""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator
from scipy.special import digamma

from infobench.mi.base import MIEstimator, check_k, check_pair, is_discrete
from infobench.mi.knn import KNNParams, kth_distance, standardize_and_jitter, torch_threads
from infobench.mi.symbols import mean_over_labels
from infobench.registry import register


def kl_entropy(a: np.ndarray, k: int, tree_max_dims: int | None = None, workers: int = -1) -> float:
    """Kozachenko-Leonenko differential entropy of the rows of ``a`` (n, d), in nats, max-norm:
    H = psi(N) - psi(k) + d/N sum_i ln(2 r_i), r_i the distance to the k-th neighbour
    (Kraskov et al. 2004, eq. 20 with the unit-diameter cube c_d = 1)."""
    n, d = a.shape
    r = kth_distance(a, k, tree_max_dims, workers)
    r = np.maximum(r, np.finfo(np.float64).tiny)  # repeated rows would give ln 0
    return float(digamma(n) - digamma(k) + d * np.mean(np.log(2 * r)))


def autoencoder_codes(a: np.ndarray, dim: int, epochs: int, seed: int) -> np.ndarray:
    """Codes (n, dim) of ``a`` (n, d) from a small MLP autoencoder (d-64-dim-64-d, tanh) trained
    with Adam (lr 1e-3, batch 256) on the mean squared reconstruction error.

    Trained on the run's device (``infobench.device.current()``); the weights are initialised
    and the batches shuffled on the host from ``seed``, so every device starts alike."""
    import torch
    from torch import nn

    from infobench import device as devices

    where = devices.current()
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    data = torch.from_numpy(np.asarray(a, dtype=np.float32)).to(where)
    width = 64
    encoder = nn.Sequential(nn.Linear(a.shape[1], width), nn.Tanh(), nn.Linear(width, dim)).to(where)
    decoder = nn.Sequential(nn.Linear(dim, width), nn.Tanh(), nn.Linear(width, a.shape[1])).to(where)
    opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-3)
    with torch_threads(1):
        for _ in range(epochs):
            for idx in torch.randperm(len(data), generator=gen).to(where).split(256):
                batch = data[idx]
                loss = ((decoder(encoder(batch)) - batch) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.inference_mode():
            return encoder(data).cpu().double().numpy()


@register("mi.estimator", "kl_entropy")
class KLEntropy(MIEstimator):
    """Kozachenko-Leonenko entropies, I = H(X) + H(Y) - H(X,Y); optional autoencoder compression first.

    Kozachenko & Leonenko, "Sample estimate of the entropy of a random vector", Probl.
    Peredachi Inf. 1987, in the max-norm form of Kraskov et al. (2004), eq. (20):
    H = psi(N) - psi(k) + (d/N) sum_i ln(2 r_i). For a label Y, I = H(X) - sum_y p(y) H(X | y).

    With ``compress_dim`` set, this is the lossy-compression pipeline of Butakov, Tolmachev,
    Malanchuk & Frolov, "Information Bottleneck Analysis of Deep Neural Networks via Lossy
    Compression", ICLR 2024: Gaussian noise of ``noise_std`` makes the (otherwise
    deterministic) representation stochastic so that its MI is finite, an autoencoder
    compresses each real variable wider than ``compress_dim`` to that many dimensions, and the
    MI of the compressed codes is estimated.

    Documented choices: the autoencoder is d-64-c-64-d with tanh, Adam 1e-3, batch 256,
    ``ae_epochs`` epochs, seeded by ``random_state``; entropies use the max-norm (KSG's metric).
    """

    class Params(KNNParams):
        compress_dim: int | None = Field(None, ge=1, description="autoencoder code size; None: no compression")
        ae_epochs: int = Field(100, ge=1, description="autoencoder training epochs")
        noise_std: float = Field(0.0, ge=0, description="std of Gaussian noise added to real variables first")

        @model_validator(mode="after")
        def _noise_with_compression(self):
            if self.noise_std > 0 and self.compress_dim is None:
                raise ValueError("noise_std belongs to the compression pipeline; set compress_dim too")
            return self

    kinds = ("continuous", "mixed")
    symmetric = True

    def _prepare(self, a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        p = self.params
        if p.compress_dim is None:
            return a
        if p.noise_std > 0:
            a = a + p.noise_std * rng.standard_normal(a.shape)
        if a.shape[1] > p.compress_dim:
            a = autoencoder_codes(a, p.compress_dim, p.ae_epochs, p.random_state)
        return a

    def estimate(self, x: np.ndarray, y: np.ndarray) -> float:
        p = self.params
        x, y = check_pair(x, y)
        check_k(len(x), p.k)
        rng = np.random.default_rng(p.random_state)
        args = (p.k, p.tree_max_dims, p.workers)
        if is_discrete(y) and not is_discrete(x):
            (x,) = standardize_and_jitter([self._prepare(x.astype(np.float64), rng)], p)
            values, counts = np.unique(y, return_counts=True)
            if counts.min() <= p.k:
                raise ValueError(f"label {values[counts.argmin()]} has at most k = {p.k} samples; "
                                 "the conditional entropy needs more")
            h_given = mean_over_labels(lambda part: kl_entropy(part, *args), x, y)
            return kl_entropy(x, *args) - h_given
        x, y = (self._prepare(a.astype(np.float64), rng) for a in (x, y))
        x, y = standardize_and_jitter([x, y], p)
        return kl_entropy(x, *args) + kl_entropy(y, *args) - kl_entropy(np.hstack([x, y]), *args)
