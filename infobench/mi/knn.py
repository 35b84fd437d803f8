"""Nearest-neighbour primitives in the max-norm, shared by the kNN estimators (KSG, Kozachenko-Leonenko).

Below ``tree_max_dims`` joint dimensions a KD-tree (``scipy.spatial.cKDTree``) is used, in
float64; above it, exact brute force in torch over chunks of query rows, in float32, where trees
become slower than computing all distances.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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
    workers: int = Field(-1, ge=-1, description="threads of the KD-tree queries (-1: the run's torch thread count)")


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


def _threads(workers: int) -> int:
    """``workers``, or for -1 the thread count the run gave torch (so --jobs N does not oversubscribe)."""
    if workers > 0:
        return workers
    import torch

    return torch.get_num_threads()


def kth_distance(z: np.ndarray, k: int, tree_max_dims: int = TREE_MAX_DIMS, workers: int = -1) -> np.ndarray:
    """Max-norm distance of each row of ``z`` (n, d) to its k-th nearest other row."""
    if z.shape[1] <= tree_max_dims:
        from scipy.spatial import cKDTree

        dist, _ = cKDTree(z).query(z, k=k + 1, p=np.inf, workers=_threads(workers))
        return dist[:, -1]
    return joint_kth_and_counts([z], k, workers)[0]


def count_within(v: np.ndarray, radius: np.ndarray, tree_max_dims: int = TREE_MAX_DIMS, workers: int = -1) -> np.ndarray:
    """Number of rows of ``v`` (n, d) within max-norm distance <= radius[i] of row i (itself included)."""
    if v.shape[1] == 1:
        return _count_within_1d(v[:, 0], radius)
    if v.shape[1] <= tree_max_dims:
        from scipy.spatial import cKDTree

        return np.asarray(cKDTree(v).query_ball_point(v, radius, p=np.inf, return_length=True, workers=_threads(workers)))
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

    t = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64))
    r = torch.from_numpy(np.asarray(radius, dtype=np.float64))
    out = np.empty(len(v), dtype=np.int64)
    step = _chunk_rows(len(v))
    with torch.inference_mode():
        for i in range(0, len(v), step):
            d = torch.cdist(t[i : i + step], t, p=float("inf"))
            out[i : i + step] = (d <= r[i : i + step, None]).sum(1).numpy()
    return out


def _maxnorm_block(q, columns, out, scratch):
    """out[i, j] = max_k |q[i, k] - columns[k, j]|: one pass per dimension over a (rows, n) block,
    in place (vectorised along the n columns, about 1.5x faster than ``torch.cdist(p=inf)``)."""
    import torch

    torch.sub(q[:, :1], columns[0], out=out).abs_()
    for k in range(1, q.shape[1]):
        torch.sub(q[:, k : k + 1], columns[k], out=scratch).abs_()
        torch.maximum(out, scratch, out=out)
    return out


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch's intra-op work on ``n`` threads inside the block, then restore the setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def joint_kth_and_counts(parts: list[np.ndarray], k: int, workers: int = -1) -> tuple[np.ndarray, list[np.ndarray]]:
    """Brute force in torch: the k-th neighbour distance eps_i in the joint max-norm of ``parts``
    (the max of the parts' distances), and for each part the number of other rows at distance
    strictly below eps_i (KSG's n_x, n_y).

    Distances are computed in float32 (half the memory traffic of float64); the counts are exact
    for the float32-rounded inputs, which can differ from float64 only on ties closer than 1e-7.
    The returned eps_i is the float64 distance to the neighbour found, so that it can be compared
    with float64 distances elsewhere (Ross's mixed estimator counts against it). Blocks of rows small enough to stay in cache are shared among ``workers`` Python threads,
    each running single-threaded torch ops (torch releases the GIL): fine-grained intra-op
    parallelism on such small blocks collapses on a loaded machine.
    """
    import torch

    rows = [torch.from_numpy(np.ascontiguousarray(p, dtype=np.float32)) for p in parts]
    columns = [r.T.contiguous() for r in rows]
    n = len(parts[0])
    neighbour = np.empty(n, dtype=np.int64)
    counts = [np.empty(n, dtype=np.int64) for _ in parts]
    step = max(1, min(n, 2**17 // max(n, 1)))  # blocks of about 0.5 MB stay in cache
    starts = list(range(0, n, step))
    threads = max(1, min(_threads(workers), len(starts)))

    def work(first: int) -> None:
        blocks = [torch.empty(step, n) for _ in range(len(parts) + 2)]
        joint, scratch = blocks[-2], blocks[-1]
        with torch.inference_mode():
            for i in starts[first::threads]:
                m = min(step, n - i)
                dists = [_maxnorm_block(r[i : i + m], c, b[:m], scratch[:m]) for r, c, b in zip(rows, columns, blocks)]
                joint[:m].copy_(dists[0])
                for d in dists[1:]:
                    torch.maximum(joint[:m], d, out=joint[:m])
                # the row itself is at distance 0, so the (k+1)-th smallest is the k-th neighbour
                nearest = torch.topk(joint[:m], k + 1, dim=1, largest=False, sorted=True)
                e = nearest.values[:, -1:]
                neighbour[i : i + m] = nearest.indices[:, -1].numpy()
                for c, d in zip(counts, dists):
                    c[i : i + m] = ((d < e).sum(1, dtype=torch.int32) - 1).numpy()

    with torch_threads(1):
        if threads == 1:
            work(0)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(work, range(threads)))
    eps = np.max([np.abs(np.asarray(p, dtype=np.float64) - np.asarray(p, dtype=np.float64)[neighbour]).max(axis=1)
                  for p in parts], axis=0)
    return eps, counts
