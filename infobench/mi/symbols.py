"""Rows of an array as symbols, and entropies of symbol sequences (the plug-in estimator).

``rows_to_codes`` maps each row of an (n, d) array to an integer code so that equal rows get
equal codes, exactly: rows are read as raw bytes; rows of at most 8 bytes are packed into one
uint64, longer rows are hashed to uint64 and the hash is checked for collisions (each row is
compared with the first row of its hash group; on a collision the rows are sorted as bytes
instead). This is 6-30x faster than ``np.unique(a, axis=0)``.
"""

from __future__ import annotations

import numpy as np

_MULTIPLIERS = np.random.default_rng(0x1B873593).integers(1, 2**63, size=4096, dtype=np.uint64) | np.uint64(1)


def _row_bytes(a: np.ndarray) -> np.ndarray:
    """(n, w) uint8 view of each row's bytes, with -0.0 read as 0.0 so equal values give equal bytes."""
    a = np.asarray(a)
    if a.dtype.kind == "f":
        a = a + 0.0  # -0.0 + 0.0 == +0.0
    elif a.dtype.kind == "b":
        a = a.astype(np.uint8)
    a = np.ascontiguousarray(a.reshape(len(a), -1))
    return a.view(np.uint8).reshape(len(a), -1)


def rows_to_codes(a: np.ndarray) -> tuple[np.ndarray, int]:
    """(codes, count): ``codes[i] == codes[j]`` iff rows i and j are equal; codes in [0, count)."""
    raw = _row_bytes(a)
    n, width = raw.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0
    pad = (-width) % 8
    if pad:
        raw = np.concatenate([raw, np.zeros((n, pad), dtype=np.uint8)], axis=1)
    words = np.ascontiguousarray(raw).view(np.uint64)  # (n, ceil(width / 8))
    if words.shape[1] == 1:
        _, codes = np.unique(words[:, 0], return_inverse=True)
        return codes.astype(np.int64), int(codes.max()) + 1
    mult = _MULTIPLIERS[np.arange(words.shape[1]) % len(_MULTIPLIERS)]
    with np.errstate(over="ignore"):
        hashed = (words * mult).sum(axis=1, dtype=np.uint64)
        hashed ^= hashed >> np.uint64(29)
    uniq, first, codes = np.unique(hashed, return_index=True, return_inverse=True)
    if not (words == words[first[codes]]).all():  # a hash collision: sort the rows as bytes
        _, codes = np.unique(raw.view(np.dtype((np.void, raw.shape[1]))).ravel(), return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    return codes, int(codes.max()) + 1


def entropy_of_codes(codes: np.ndarray, count: int | None = None) -> float:
    """Plug-in Shannon entropy, in nats, of a sequence of integer codes."""
    counts = np.bincount(codes, minlength=count or 0)
    counts = counts[counts > 0]
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def mutual_information_of_codes(cx: np.ndarray, kx: int, cy: np.ndarray, ky: int) -> float:
    """Plug-in I(X; Y) = H(X) + H(Y) - H(X, Y) in nats from two code sequences."""
    if kx * ky < 2**62:
        joint = cx * ky + cy
        _, cj = np.unique(joint, return_inverse=True)
    else:
        cj, _ = rows_to_codes(np.stack([cx, cy], axis=1))
    return max(entropy_of_codes(cx, kx) + entropy_of_codes(cy, ky) - entropy_of_codes(cj.reshape(-1)), 0.0)


def mean_over_labels(fn, a: np.ndarray, labels: np.ndarray) -> float:
    """sum_y p(y) fn(a[labels == y]): a conditional entropy H(A | Y) from an entropy function ``fn``."""
    codes, count = rows_to_codes(labels)
    weights = np.bincount(codes, minlength=count) / len(codes)
    return float(sum(w * fn(a[codes == c]) for c, w in enumerate(weights) if w > 0))


class PlugInEstimator:
    """Mixin of the binning estimators: ``symbols(a) -> (codes, count)`` per variable, then plug-in MI."""

    def symbols(self, a: np.ndarray) -> tuple[np.ndarray, int]:
        raise NotImplementedError

    def estimate(self, x: np.ndarray, y: np.ndarray) -> float:
        from infobench.mi.base import check_pair

        x, y = check_pair(x, y)
        cx, kx = self.symbols(x)
        cy, ky = self.symbols(y)
        return mutual_information_of_codes(cx, kx, cy, ky)
