"""Nearest-neighbour primitives in the max-norm, shared by the kNN estimators (KSG, Kozachenko-Leonenko).

Each search takes either a KD-tree (``scipy.spatial.cKDTree``, float64) or exact compiled brute
force over blocks of query rows (``infobench.mi.maxnorm``), whichever ``use_tree`` says is faster
for the number of rows and dimensions (``tree_max_dims`` forces the choice): trees lose to
computing all distances as the dimension grows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


def use_tree(n: int, dims: int, tree_max_dims: int | None) -> bool:
    """KD-tree or brute force for n rows of ``dims`` (joint) dimensions.

    With ``tree_max_dims`` set: the tree up to that many dimensions. Unset (None): the faster of
    the two as measured on one core (benchmarks/bench_mi.py): brute force costs ~n^2 whatever the
    dimension, the tree ~n^1.4 with a constant growing ~1.6x per dimension, so the tree wins from
    about n = 2^(10.6 + 0.65 dims) rows: 9k at 4 joint dimensions, 57k at 8, 140k at 10. Two or
    fewer dimensions always take the tree. Both searches give float64's answer, ties included, so
    the choice changes the time, never the estimate."""
    if tree_max_dims is not None:
        return dims <= tree_max_dims
    return dims <= 2 or np.log2(max(n, 1)) > 10.6 + 0.65 * dims


class KNNParams(BaseModel):
    """Neighbour-search and preprocessing parameters shared by kNN estimators."""

    model_config = ConfigDict(extra="forbid")
    k: int = Field(3, ge=1, description="number of nearest neighbours")
    standardize: bool = Field(True, description="divide each column by its standard deviation (as sklearn)")
    jitter: float = Field(1e-10, ge=0, description="relative noise added to break ties (Kraskov et al.; sklearn's 1e-10)")
    random_state: int = Field(0, ge=0, description="seed of the tie-breaking noise")
    tree_max_dims: int | None = Field(None, ge=1, description="KD-tree up to this many joint dimensions, brute force above; None: the faster for n and the dimension")
    workers: int = Field(-1, ge=-1, description="threads of the neighbour search, tree or brute force (-1: the run's torch thread count)")


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


def _threads(workers: int) -> int:
    """``workers``, or for -1 the thread count the run gave torch (so --jobs N does not oversubscribe)."""
    if workers > 0:
        return workers
    import torch

    return torch.get_num_threads()


def kth_distance(z: np.ndarray, k: int, tree_max_dims: int | None = None, workers: int = -1) -> np.ndarray:
    """Max-norm distance of each row of ``z`` (n, d) to its k-th nearest other row."""
    if use_tree(len(z), z.shape[1], tree_max_dims):
        from scipy.spatial import cKDTree

        dist, _ = cKDTree(z).query(z, k=k + 1, p=np.inf, workers=_threads(workers))
        return dist[:, -1]
    return joint_kth_and_counts([z], k, workers, with_counts=False)[0]


def count_within(v: np.ndarray, radius: np.ndarray, tree_max_dims: int | None = None, workers: int = -1) -> np.ndarray:
    """Number of rows of ``v`` (n, d) within max-norm distance <= radius[i] of row i (itself included)."""
    if v.shape[1] == 1:
        return _count_within_1d(v[:, 0], radius)
    if use_tree(len(v), v.shape[1], tree_max_dims):
        from scipy.spatial import cKDTree

        return np.asarray(cKDTree(v).query_ball_point(v, radius, p=np.inf, return_length=True, workers=_threads(workers)))
    return _brute_counts(v, radius, workers)


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


def _brute_counts(v: np.ndarray, radius: np.ndarray, workers: int = -1) -> np.ndarray:
    from infobench.mi.maxnorm import counts_within_block

    cols = np.ascontiguousarray(np.asarray(v, dtype=np.float64).T)
    r = np.ascontiguousarray(radius, dtype=np.float64)
    out = np.empty(len(v), dtype=np.int64)
    _over_row_blocks(len(v), workers, lambda first, last: counts_within_block(cols, r, first, last, out))
    return out


def _over_row_blocks(n: int, workers: int, work) -> None:
    """Call ``work(first, last)`` over blocks of the n rows, interleaved on ``workers`` threads
    (the compiled kernels release the GIL)."""
    threads = max(1, min(_threads(workers), n // 64 or 1))
    if threads == 1:
        work(0, n)
        return
    from concurrent.futures import ThreadPoolExecutor

    step = max(64, n // (16 * threads))  # many blocks: threads finish together on a loaded machine
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda first: work(first, min(first + step, n)), range(0, n, step)))


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


def joint_kth_and_counts(parts: list[np.ndarray], k: int, workers: int = -1,
                         with_counts: bool = True) -> tuple[np.ndarray, list[np.ndarray]]:
    """Brute force (compiled, ``infobench.mi.maxnorm``): the k-th neighbour distance eps_i in the
    joint max-norm of ``parts`` (the max of the parts' distances), and for each part the number of
    other rows at distance strictly below eps_i (KSG's n_x, n_y; at distance 0 where eps_i is 0, as
    the KD-tree path's radius nextafter(eps, 0) gives; no counts when ``with_counts`` is False).

    The results are those of float64 brute force, ties included (repeated rows, quantised
    values): the distance passes run in float32 and the rows that float32 cannot place against
    eps_i are recomputed in float64 (see ``infobench.mi.maxnorm``). Each column is shifted to be
    centred on its range first, which leaves distances unchanged and keeps the float32 error,
    which grows with the magnitude of the values, small.
    """
    from infobench.mi.maxnorm import kth_and_counts_block

    exact = np.ascontiguousarray(np.hstack([np.asarray(p, dtype=np.float64) for p in parts]))
    n = len(exact)
    centred = exact - (exact.max(axis=0) + exact.min(axis=0)) / 2
    cols = np.ascontiguousarray(centred.T, dtype=np.float32)
    # |float32 distance - float64 distance| <= 4.01 u32 max|centred| + 4 u64 max|exact| (the rounding of
    # the shift, of each value to float32 and of the subtraction); the kernel takes twice that
    tol = 2 * (4.01 * 2.0**-24 * np.abs(centred).max(initial=0.0) + 4 * 2.0**-53 * np.abs(exact).max(initial=0.0))
    starts = np.cumsum([0] + [p.shape[1] for p in parts]).astype(np.int64)
    neighbour = np.empty(n, dtype=np.int64)
    eps = np.empty(n, dtype=np.float64)
    counts = np.empty((len(parts) if with_counts else 0, n), dtype=np.int64)
    exact_cols = np.ascontiguousarray(exact.T)
    _over_row_blocks(n, workers, lambda first, last: kth_and_counts_block(
        cols, exact, exact_cols, starts, k, tol, first, last, neighbour, eps, counts))
    return eps, list(counts)
