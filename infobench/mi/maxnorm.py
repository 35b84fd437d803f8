"""Compiled (numba) brute-force max-norm neighbour kernels behind the kNN estimators.

The arrays are column-major views, ``cols`` (D, n): the coordinates of all variables stacked, with
``starts`` (P + 1,) the first column of each of P parts (KSG's x and y) and D at the end. A part's
distance from row i to every row j is max_a |cols[a, i] - cols[a, j]|, one pass over the n columns
per coordinate, which the compiler vectorises; the joint distance is the max over parts.

Why compiled code: the same passes in torch need a separate memory sweep for each of the
subtract, abs and max steps, and the k-th-smallest selection and the counts are two more sweeps
(``torch.topk`` alone cost as much as a 10-dimensional distance block). Here a block of rows is
computed once and stays in cache for the selection and the counts: 3-5x faster than the torch
blocks it replaced (see benchmarks/bench_mi.py). The fast-math flags are those that let the
max-reduction vectorise (reassociation and friends), not the no-NaN/no-inf ones: the selection
starts from inf.

Why float32 with a float64 check: the distance passes run in float32 (twice the vector width of
float64), but the answer must be that of the float64 inputs. KSG's tie-breaking noise (1e-10 of
the scale) is below float32's resolution, so on repeated or quantised rows float32 sees exact ties
(a k-th distance of 0) that float64 does not. A float32 distance is within ``tol`` of the float64
one (a bound from the magnitude of the inputs), so only the rows whose float32 distance lies
within a few ``tol`` of the k-th distance are recomputed in float64: one or two per row on
continuous data (no measurable cost); on tied data, where whole groups of duplicates are
undecided, a float64 pass over the part's columns decides a row's count instead (about 2x the
time of the float32-only kernel on the quantised data of benchmarks/bench_mi.py). The result
equals float64 brute force exactly, ties included.

Every kernel releases the GIL, so blocks of rows run on Python threads in parallel.
"""

from __future__ import annotations

import numba
import numpy as np

_JIT = dict(nogil=True, cache=True, fastmath={"nsz", "arcp", "contract", "afn", "reassoc"})


@numba.njit(**_JIT)
def _part_distances(cols, a0, a1, i, out):
    """out[j] = max over columns a0..a1-1 of |cols[a, i] - cols[a, j]|."""
    n = cols.shape[1]
    q = cols[a0, i]
    for j in range(n):
        out[j] = abs(q - cols[a0, j])
    for a in range(a0 + 1, a1):
        q = cols[a, i]
        for j in range(n):
            out[j] = max(out[j], abs(q - cols[a, j]))


@numba.njit(**_JIT)
def _exact_distance(exact, a0, a1, i, j):
    """The float64 max-norm distance between rows i and j over columns a0..a1-1 of ``exact`` (n, D)."""
    d = 0.0
    for a in range(a0, a1):
        d = max(d, abs(exact[i, a] - exact[j, a]))
    return d


@numba.njit(**_JIT)
def kth_and_counts_block(cols, exact, exact_cols, starts, k, tol, first, last, neighbour, eps, counts):
    """For rows i in [first, last), exactly as float64 brute force on ``exact`` (n, D) would give:
    ``eps[i]``, the joint max-norm distance to the k-th nearest other row (the (k+1)-th smallest,
    the row itself being at 0), ``neighbour[i]`` that row (ties go to the lower index), and for
    each part p < counts.shape[0] (none when counts has no rows) ``counts[p, i]``, the number of
    other rows whose part-p distance is strictly below eps[i] (KSG's n_x, n_y; rows at 0 when
    eps[i] is 0, as a KD-tree query with radius nextafter(eps, 0) counts them).

    ``cols`` (D, n) is ``exact`` transposed to float32 (shifted by a constant per column, which
    leaves distances unchanged), and ``tol`` is twice a bound on |float32 distance - float64
    distance|. The float64 values come twice: ``exact`` (n, D) for a few rows at a time,
    ``exact_cols`` (D, n) for whole float64 passes.
    """
    n_parts = len(starts) - 1
    n = cols.shape[1]
    dist = np.empty((n_parts, n), cols.dtype)
    best = np.empty(k + 1, cols.dtype)
    candidates = np.empty(n, np.int64)
    candidate_dist = np.empty(n, cols.dtype)
    unsure = np.empty(n, np.int64)  # candidates whose order against eps float32 cannot settle
    unsure_joint = np.empty(n, np.float64)
    unsure_parts = np.empty((n_parts, n), np.float64)
    taken = np.zeros(n, np.bool_)
    dist64 = np.empty(n, np.float64)
    band = np.float32(2 * tol)
    for i in range(first, last):
        for p in range(n_parts):
            _part_distances(cols, starts[p], starts[p + 1], i, dist[p])
        # float32: the k+1 smallest joint distances, and every row within 2 tol of the largest of them
        best[:] = np.inf
        threshold = np.float32(np.inf)
        n_candidates = 0
        for j in range(n):
            v = dist[0, j]
            for p in range(1, n_parts):
                v = max(v, dist[p, j])
            if v <= threshold:  # rare after the first rows: a branch, not a pass
                candidates[n_candidates] = j
                candidate_dist[n_candidates] = v
                n_candidates += 1
                if v < best[k]:  # insertion into the k+1 smallest so far, kept sorted
                    s = k
                    while s > 0 and best[s - 1] > v:
                        best[s] = best[s - 1]
                        s -= 1
                    best[s] = v
                    threshold = best[k] + band
        # float64 for the candidates near the float32 k-th distance; those clearly below are in the k+1
        below = 0
        n_unsure = 0
        for c in range(n_candidates):
            v = candidate_dist[c]
            if v < best[k] - band:
                below += 1
            elif v <= threshold:
                j = candidates[c]
                joint = 0.0
                for p in range(n_parts):
                    d = _exact_distance(exact, starts[p], starts[p + 1], i, j)
                    unsure_parts[p, n_unsure] = d
                    joint = max(joint, d)
                unsure[n_unsure] = j
                unsure_joint[n_unsure] = joint
                n_unsure += 1
        # the (k + 1 - below)-th smallest float64 joint distance among the unsure, ties to the lower index
        pick = -1
        for _ in range(k + 1 - below):
            pick = -1
            for u in range(n_unsure):
                if not taken[u] and (pick < 0 or unsure_joint[u] < unsure_joint[pick]
                                     or (unsure_joint[u] == unsure_joint[pick] and unsure[u] < unsure[pick])):
                    pick = u
            taken[pick] = True
        taken[:n_unsure] = False
        e = unsure_joint[pick]
        eps[i] = e
        neighbour[i] = unsure[pick]
        # counts: float32 decides all but the rows within tol of eps, float64 decides those
        radius = np.nextafter(e, 0.0)  # d <= radius: d < e, or d == 0 when e is 0
        lo, hi = np.float32(e - tol), np.float32(e + tol)
        for p in range(counts.shape[0]):
            surely, maybe = 0, 0
            for j in range(n):
                d = dist[p, j]
                surely += d < lo
                maybe += d <= hi
            maybe -= surely
            exact_below = 0
            for u in range(n_unsure):  # these have their float64 distances already
                d = dist[p, unsure[u]]
                if lo <= d <= hi:
                    maybe -= 1
                    exact_below += unsure_parts[p, u] <= radius
            if maybe > 0:
                # undecided rows among the others (rare, but many on tied data): a float64 pass
                _part_distances(exact_cols, starts[p], starts[p + 1], i, dist64)
                surely, exact_below = 0, 0
                for j in range(n):
                    surely += dist64[j] <= radius
            counts[p, i] = surely + exact_below - 1  # the row itself is at distance 0 <= radius


@numba.njit(**_JIT)
def counts_within_block(cols, radius, first, last, counts):
    """counts[i] = the rows j (i itself included) with max-norm distance <= radius[i], rows [first, last)."""
    n = cols.shape[1]
    dist = np.empty(n, cols.dtype)
    for i in range(first, last):
        _part_distances(cols, 0, cols.shape[0], i, dist)
        r = radius[i]
        c = 0
        for j in range(n):
            c += dist[j] <= r
        counts[i] = c
