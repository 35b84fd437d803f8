"""Kraskov-Stoegbauer-Grassberger kNN estimator of I(X; Y) (algorithm 1, max-norm)."""

from __future__ import annotations

import numpy as np
from pydantic import Field
from scipy.special import digamma

from infobench.mi.base import MIEstimator, check_k, check_pair, is_discrete
from infobench.mi.knn import (
    KNNParams,
    count_within,
    joint_kth_and_counts,
    kth_distance,
    standardize_and_jitter,
    use_tree,
)
from infobench.registry import register


def ksg_mi(x: np.ndarray, y: np.ndarray, params: KNNParams) -> float:
    """KSG algorithm 1 on real-valued x (n, dx), y (n, dy), already validated; nats."""
    n, k = len(x), params.k
    x, y = standardize_and_jitter([x, y], params)
    if use_tree(n, x.shape[1] + y.shape[1], params.tree_max_dims):
        eps = kth_distance(np.hstack([x, y]), k, params.tree_max_dims, params.workers)
        radius = np.nextafter(eps, 0)  # strictly closer than the k-th joint neighbour
        nx = count_within(x, radius, params.tree_max_dims, params.workers) - 1
        ny = count_within(y, radius, params.tree_max_dims, params.workers) - 1
    else:
        _, (nx, ny) = joint_kth_and_counts([x, y], k, params.workers)
    return float(digamma(n) + digamma(k) - np.mean(digamma(nx + 1)) - np.mean(digamma(ny + 1)))


def ross_mi(x: np.ndarray, labels: np.ndarray, params: KNNParams) -> float:
    """Ross's kNN estimator of I(X; Y) for real x (n, dx) and a discrete label (n,); nats.

    I = psi(N) + <psi(k_i)> - <psi(N_{y_i})> - <psi(m_i)>, with eps_i the distance to the
    k-th neighbour among points of the same label and m_i the points of any label within
    eps_i (itself included). Points whose label occurs once are left out, as in the paper.
    """
    (x,) = standardize_and_jitter([x], params)
    _, codes, label_counts = np.unique(labels, return_inverse=True, return_counts=True)
    codes = codes.reshape(-1)
    counts = label_counts[codes]
    keep = counts > 1
    if keep.sum() < 2:
        raise ValueError("every label occurs once: the mixed kNN estimator needs repeated labels")
    eps = np.zeros(len(x))
    k_all = np.zeros(len(x))
    for code in np.flatnonzero(label_counts > 1):
        members = codes == code
        k = min(params.k, int(label_counts[code]) - 1)
        eps[members] = kth_distance(x[members], k, params.tree_max_dims, params.workers)
        k_all[members] = k
    x, eps, k_all, counts = x[keep], eps[keep], k_all[keep], counts[keep]
    m = count_within(x, np.nextafter(eps, 0), params.tree_max_dims, params.workers)
    return float(digamma(len(x)) + np.mean(digamma(k_all)) - np.mean(digamma(counts)) - np.mean(digamma(m)))


@register("mi.estimator", "ksg")
class KSG(MIEstimator):
    """Kraskov-Stoegbauer-Grassberger kNN estimator (k=3, algorithm 1, max-norm, standardised).

    Kraskov, Stoegbauer & Grassberger, "Estimating mutual information", Phys. Rev. E 69,
    066138 (2004), eq. (8): with eps_i the max-norm distance from z_i = (x_i, y_i) to its
    k-th nearest neighbour and n_x(i), n_y(i) the points strictly closer than eps_i in each
    marginal,

        I(X; Y) = psi(k) + psi(N) - < psi(n_x + 1) + psi(n_y + 1) >.

    Inputs are divided by their standard deviation and get noise of 1e-10 times
    max(1, mean |column|), drawn from ``RandomState(random_state)`` (x first, then y), the
    preprocessing of scikit-learn's ``mutual_info_regression``: on identical 1-D data the two
    agree to rounding. Neighbours come from a KD-tree or from exact compiled brute force,
    whichever is faster for n and the joint dimension (``knn.use_tree``; ``tree_max_dims``
    forces the choice); 1-D marginal counts use a binary search.

    Documented choices: the raw estimate is returned (it can be slightly negative near
    independence; sklearn clips at 0 unless ``clip_negative``). A discrete label y (integer
    array) uses Ross's kNN estimator for the mixed case (B. C. Ross, "Mutual Information
    between Discrete and Continuous Data Sets", PLoS ONE 2014, eq. 2), as sklearn does.
    """

    class Params(KNNParams):
        clip_negative: bool = Field(False, description="report max(0, estimate), as sklearn does")

    kinds = ("continuous", "mixed")
    symmetric = True

    def estimate(self, x: np.ndarray, y: np.ndarray) -> float:
        x, y = check_pair(x, y)
        check_k(len(x), self.params.k)
        if is_discrete(y) and y.shape[1] == 1:
            value = ross_mi(x, y[:, 0], self.params)
        else:
            value = ksg_mi(x, y, self.params)
        return max(value, 0.0) if self.params.clip_negative else value
