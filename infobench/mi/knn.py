"""Nearest-neighbour primitives in the max-norm, shared by the kNN estimators (KSG, Kozachenko-Leonenko).

Below ``tree_max_dims`` joint dimensions a KD-tree (``scipy.spatial.cKDTree``) is used; above
it, exact brute force in torch over chunks of query rows, where trees become slower than
computing all distances. Both give the same distances (max |a_i - b_i| in float64).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

TREE_MAX_DIMS = 15


class KNNParams(BaseModel):
    """Neighbour-search and preprocessing parameters shared by kNN estimators."""

    model_config = ConfigDict(extra="forbid")
    k: int = Field(3, ge=1, description="number of nearest neighbours")
    standardize: bool = Field(True, description="divide each column by its standard deviation (as sklearn)")
    jitter: float = Field(1e-10, ge=0, description="relative noise added to break ties (Kraskov et al.; sklearn's 1e-10)")
    random_state: int = Field(0, ge=0, description="seed of the tie-breaking noise")
    tree_max_dims: int = Field(TREE_MAX_DIMS, ge=1, description="KD-tree up to this many joint dimensions, brute force above")
    workers: int = Field(-1, description="threads of the KD-tree queries (-1: all cores)")


def standardize_and_jitter(arrays: list[np.ndarray], params: KNNParams) -> list[np.ndarray]:
    """Scale each column to unit variance (without centring) and add tiny noise, as sklearn does.

    The noise of each column is ``jitter * max(1, mean|column|) * N(0, 1)``, drawn from one
    ``RandomState(random_state)`` for the arrays in order, so on 1-D data the result equals
    the input sklearn's ``mutual_info_regression`` passes to its estimator.
    """
    rng = np.random.RandomState(params.random_state)
    out = []
    for a in arrays:
        a = np.array(a, dtype=np.float64)
        if params.standardize:
            std = np.sqrt(np.var(a, axis=0))
            a /= np.where(std > 10 * np.finfo(np.float64).eps, std, 1.0)
        if params.jitter > 0:
            scale = np.maximum(1.0, np.mean(np.abs(a), axis=0))
            a += params.jitter * scale * rng.standard_normal(size=a.shape)
        out.append(a)
    return out


def _chunk_rows(n: int, budget: int = 2**24) -> int:
    return max(1, min(n, budget // max(n, 1)))


def kth_distance(z: np.ndarray, k: int, tree_max_dims: int = TREE_MAX_DIMS, workers: int = -1) -> np.ndarray:
    """Max-norm distance of each row of ``z`` (n, d) to its k-th nearest other row."""
    if z.shape[1] <= tree_max_dims:
        from scipy.spatial import cKDTree

        dist, _ = cKDTree(z).query(z, k=k + 1, p=np.inf, workers=workers)
        return dist[:, -1]
    return joint_kth_and_counts([z], k)[0]


def count_within(v: np.ndarray, radius: np.ndarray, tree_max_dims: int = TREE_MAX_DIMS, workers: int = -1) -> np.ndarray:
    """Number of rows of ``v`` (n, d) within max-norm distance <= radius[i] of row i (itself included)."""
    if v.shape[1] == 1:
        return _count_within_1d(v[:, 0], radius)
    if v.shape[1] <= tree_max_dims:
        from scipy.spatial import cKDTree

        return np.asarray(cKDTree(v).query_ball_point(v, radius, p=np.inf, return_length=True, workers=workers))
    return _brute_counts(v, radius)


def _count_within_1d(v: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Exact 1-D counts by binary search, corrected so that |v_j - v_i| <= r is evaluated as computed."""
    s = np.sort(v)
    n = len(s)
    hi = np.searchsorted(s, v + radius, side="right")
    lo = np.searchsorted(s, v - radius, side="left")
    # v +- r rounds; the set {j : |s_j - v_i| <= r_i} is contiguous in s, so step the ends to it
    while True:
        grow = (hi < n) & (s[np.minimum(hi, n - 1)] - v <= radius)
        shrink = (hi > 0) & (s[np.maximum(hi - 1, 0)] - v > radius)
        if not grow.any() and not shrink.any():
            break
        hi = hi + grow - shrink
    while True:
        grow = (lo > 0) & (v - s[np.maximum(lo - 1, 0)] <= radius)
        shrink = (lo < n) & (v - s[np.minimum(lo, n - 1)] > radius)
        if not grow.any() and not shrink.any():
            break
        lo = lo - grow + shrink
    return hi - lo


def _brute_counts(v: np.ndarray, radius: np.ndarray) -> np.ndarray:
    import torch

    t = torch.from_numpy(np.ascontiguousarray(v))
    r = torch.from_numpy(np.asarray(radius, dtype=np.float64))
    out = np.empty(len(v), dtype=np.int64)
    step = _chunk_rows(len(v))
    with torch.inference_mode():
        for i in range(0, len(v), step):
            d = torch.cdist(t[i : i + step], t, p=float("inf"))
            out[i : i + step] = (d <= r[i : i + step, None]).sum(1).numpy()
    return out


def joint_kth_and_counts(parts: list[np.ndarray], k: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Brute force in torch: the k-th neighbour distance eps_i in the joint max-norm of ``parts``
    (the max of the parts' distances), and for each part the number of other rows at distance
    strictly below eps_i (KSG's n_x, n_y)."""
    import torch

    ts = [torch.from_numpy(np.ascontiguousarray(p, dtype=np.float64)) for p in parts]
    n = len(parts[0])
    eps = np.empty(n)
    counts = [np.empty(n, dtype=np.int64) for _ in parts]
    step = _chunk_rows(n, 2**23)
    with torch.inference_mode():
        for i in range(0, n, step):
            dists = [torch.cdist(t[i : i + step], t, p=float("inf")) for t in ts]
            joint = dists[0]
            for d in dists[1:]:
                joint = torch.maximum(joint, d)
            e = torch.kthvalue(joint, k + 1, dim=1).values  # the row itself is at distance 0
            eps[i : i + step] = e.numpy()
            for c, d in zip(counts, dists):
                c[i : i + step] = ((d < e[:, None]).sum(1) - 1).numpy()
    return eps, counts
