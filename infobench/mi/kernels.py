"""Pairwise squared distances and Gram matrices shared by the kernel estimators (KDE, Renyi, DSE, Vendi).

Device: the distances (and KDE's log-sum-exp over them) run in torch, float64, on the run's
device (``infobench.device.current()``; the CPU in place of Apple's MPS, which has no float64);
inputs and results are host arrays. The eigen-decompositions of the Gram matrices stay in numpy
on the host: at the default 1000-row subsample they take milliseconds.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class SubsampleParams(BaseModel):
    """Parameters of the estimators whose O(n^3) eigen-decompositions run on a random subsample."""

    model_config = ConfigDict(extra="forbid")
    max_samples: int | None = Field(1000, ge=2, description="rows used (random subsample); None: all")
    random_state: int = Field(0, ge=0, description="seed of the subsample")


class KernelParams(SubsampleParams):
    width: float | None = Field(None, gt=0, description="Gaussian kernel width; None: Silverman's rule per variable")


def _float64_device():
    """Where float64 distance work runs: the run's device, or the CPU when that is MPS (no float64)."""
    import torch

    from infobench import device as devices

    where = devices.current()
    return where if where.type != "mps" else torch.device("cpu")


def _on_device(a: np.ndarray, where):
    import torch

    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)).to(where)


def _torch_sq_dists(ta, tb):
    """Squared Euclidean distances between float64 tensors, by differences (no |a|^2 + |b|^2 - 2ab
    cancellation, so never negative)."""
    import torch

    return torch.cdist(ta, tb, compute_mode="donot_use_mm_for_euclid_dist").square_()


def sq_dists(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Squared Euclidean distances (n, m) between the rows of ``a`` (n, d) and ``b`` (m, d), float64, >= 0."""
    import torch

    where = _float64_device()
    ta = _on_device(a, where)
    tb = ta if b is None else _on_device(b, where)
    with torch.inference_mode():
        return _torch_sq_dists(ta, tb).cpu().numpy()


def log_mean_kernel(a: np.ndarray, scale: float) -> np.ndarray:
    """ln (1/n) sum_j exp(-|a_i - a_j|^2 / scale) for each row i of ``a`` (n, d), chunked over rows.

    Distances and the log-sum-exp stay in torch (float64): scipy's logsumexp over the same blocks
    was 2x slower, and the KDE bounds of an information plane call this per layer and epoch."""
    import torch

    ta = _on_device(a, _float64_device())
    n = len(a)
    out = torch.empty(n, dtype=torch.float64, device=ta.device)
    step = max(1, 2**22 // max(n, 1))
    with torch.inference_mode():
        for i in range(0, n, step):
            block = _torch_sq_dists(ta[i : i + step], ta).div_(-scale)
            torch.logsumexp(block, dim=1, out=out[i : i + step])
    return out.cpu().numpy() - np.log(n)


def silverman_width(a: np.ndarray) -> float:
    """Silverman's rule of thumb for a Gaussian kernel in d dimensions:
    h = (4 / (d + 2))^(1 / (d + 4)) n^(-1 / (d + 4)) times the mean per-column standard deviation."""
    n, d = a.shape
    std = float(np.mean(np.std(a, axis=0)))
    return (4 / (d + 2)) ** (1 / (d + 4)) * n ** (-1 / (d + 4)) * (std if std > 0 else 1.0)


def gaussian_gram(a: np.ndarray, width: float) -> np.ndarray:
    """K_ij = exp(-|a_i - a_j|^2 / (2 width^2)), (n, n)."""
    return np.exp(-sq_dists(a) / (2 * width**2))


def label_gram(labels: np.ndarray) -> np.ndarray:
    """K_ij = 1 when rows i and j carry the same symbol, else 0 (the kernel of a discrete variable)."""
    from infobench.mi.symbols import rows_to_codes

    codes, _ = rows_to_codes(labels)
    return (codes[:, None] == codes[None, :]).astype(np.float64)


def subsample(arrays: list[np.ndarray], max_samples: int | None, seed: int) -> list[np.ndarray]:
    """The same random ``max_samples`` rows of each array (all rows when there are fewer or None)."""
    n = len(arrays[0])
    if max_samples is None or n <= max_samples:
        return arrays
    idx = np.sort(np.random.default_rng(seed).choice(n, size=max_samples, replace=False))
    return [a[idx] for a in arrays]


def spectral_entropy(gram: np.ndarray, alpha: float = 1.0) -> float:
    """Renyi alpha-entropy, in nats, of the eigenvalues of gram / trace(gram) (alpha = 1: von Neumann):
    S_alpha = ln(sum_i l_i^alpha) / (1 - alpha), S_1 = -sum_i l_i ln l_i."""
    eig = np.clip(np.linalg.eigvalsh(gram / np.trace(gram)), 0.0, None)
    eig = eig[eig > 0]
    if abs(alpha - 1.0) < 1e-12:
        return float(-(eig * np.log(eig)).sum())
    return float(np.log((eig**alpha).sum()) / (1 - alpha))


def variable_gram(a: np.ndarray, width: float | None) -> np.ndarray:
    """The Gram matrix of one variable: the label kernel for symbols, else Gaussian (Silverman's width if None)."""
    from infobench.mi.base import is_discrete

    if is_discrete(a):
        return label_gram(a)
    a = np.asarray(a, dtype=np.float64)
    return gaussian_gram(a, silverman_width(a) if width is None else width)
