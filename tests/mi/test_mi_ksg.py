"""KSG: known Gaussian MI, agreement with scikit-learn, invariances, independence, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from infobench.mi.knn import _count_within_1d, count_within, joint_kth_and_counts, use_tree
from infobench.mi.ksg import KSG
from infobench.mi.sklearn_ksg import SklearnKSG


def gaussian_pair(n: int, rho: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    z = np.random.default_rng(seed).multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=n)
    return z[:, :1], z[:, 1:]


def test_bivariate_gaussian_rho_08_within_002_of_truth_at_n4000():
    truth = -0.5 * np.log(1 - 0.8**2)  # 0.5108 nats
    # one draw has a standard deviation of about 0.02 at n = 4000; the mean of 4 draws is checked
    estimates = [KSG().estimate(*gaussian_pair(4000, 0.8, seed=s)) for s in range(4)]
    assert np.mean(estimates) == pytest.approx(truth, abs=0.02)


@pytest.mark.parametrize("n", [200, 1000])
def test_agrees_with_sklearn_mutual_info_regression_to_1e_6(n):
    x, y = gaussian_pair(n, 0.6, seed=n)
    assert KSG().estimate(x, y) == pytest.approx(SklearnKSG().estimate(x, y), abs=1e-6)


def test_mixed_label_agrees_with_sklearn_mutual_info_classif():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, size=600)
    x = labels + rng.normal(size=600)
    assert KSG().estimate(x, labels) == pytest.approx(SklearnKSG().estimate(x, labels), abs=1e-6)


def test_invariant_to_invertible_transform_of_one_variable():
    x, y = gaussian_pair(2000, 0.7, seed=3)
    base = KSG().estimate(x, y)
    # rank-preserving maps leave the marginal neighbour counts unchanged only up to estimator error
    assert KSG().estimate(np.sinh(2 * x), y) == pytest.approx(base, abs=0.05)
    assert KSG().estimate(x, 3 * y + 7) == pytest.approx(base, abs=1e-9)  # affine: standardised away


def test_independent_variables_have_mi_near_zero_and_clipping():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(3000, 2)), rng.normal(size=(3000, 3))
    assert abs(KSG().estimate(x, y)) < 0.02
    assert KSG(KSG.Params(clip_negative=True)).estimate(x, y) >= 0.0


def test_tree_and_brute_force_give_the_same_estimate():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(500, 3))
    y = x @ rng.normal(size=(3, 2)) + rng.normal(size=(500, 2))
    tree = KSG().estimate(x, y)
    brute = KSG(KSG.Params(tree_max_dims=1)).estimate(x, y)
    assert tree == pytest.approx(brute, abs=1e-6)  # brute force runs in float32
    # the mixed (label) case compares brute-force radii with float64 counts: they must match exactly
    labels = (x[:, 0] > 0).astype(np.int64)
    mixed_tree = KSG().estimate(x, labels)
    assert KSG(KSG.Params(tree_max_dims=1)).estimate(x, labels) == pytest.approx(mixed_tree, abs=1e-12)


def test_multivariate_gaussian_grows_with_dimension_and_is_biased_down():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2000, 4))
    y = x + rng.normal(size=(2000, 4))  # I = 4 * 0.5 * ln 2
    truth = 2 * np.log(2)
    est = KSG().estimate(x, y)
    assert 0.8 * truth < est < truth + 0.02


def test_exact_1d_counts_match_brute_force_at_boundaries():
    v = np.array([0.0, 0.1, 0.2, 0.3, 0.30000000000000004, 1.0])
    r = np.array([0.1, 0.2, 0.1, 0.0, 0.7, 0.0])
    brute = (np.abs(v[None, :] - v[:, None]) <= r[:, None]).sum(1)
    assert (_count_within_1d(v, r) == brute).all()


def maxnorm(a: np.ndarray) -> np.ndarray:
    return np.abs(a[:, None, :] - a[None, :, :]).max(axis=2)


@pytest.mark.parametrize("workers", [1, 2])
def test_compiled_brute_force_matches_distance_matrices_with_ties(workers):
    # small integers are exact in float32 and make many equal distances, ties at eps included
    rng = np.random.default_rng(8)
    x = rng.integers(0, 4, size=(300, 3)).astype(np.float64)
    y = rng.integers(0, 4, size=(300, 2)).astype(np.float64)
    dx, dy = maxnorm(x), maxnorm(y)
    k = 3
    eps_ref = np.sort(np.maximum(dx, dy), axis=1)[:, k]  # column 0 is the row itself
    eps, (nx, ny) = joint_kth_and_counts([x, y], k, workers)
    assert np.array_equal(eps, eps_ref)
    assert np.array_equal(nx, (dx < eps_ref[:, None]).sum(1) - 1)
    assert np.array_equal(ny, (dy < eps_ref[:, None]).sum(1) - 1)
    radius = rng.uniform(0, 2, size=300)
    forced_brute = count_within(x, radius, tree_max_dims=1, workers=workers)
    assert np.array_equal(forced_brute, (dx <= radius[:, None]).sum(1))
    assert np.array_equal(forced_brute, count_within(x, radius, tree_max_dims=99))


def test_search_choice_follows_the_measured_crossover_and_can_be_forced():
    assert use_tree(64000, 2, None) and use_tree(500, 2, None)  # 1-D KSG stays exact (sklearn)
    assert not use_tree(4000, 10, None) and use_tree(200_000, 10, None)
    assert use_tree(16000, 4, None) and not use_tree(4000, 4, None)
    assert use_tree(500, 40, 99) and not use_tree(10**6, 2, 1)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="k \\+ 1 = 4"):
        KSG().estimate(np.zeros((3, 1)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="NaN"):
        KSG().estimate(np.array([1.0, np.nan, 2, 3, 4]), np.arange(5.0))
    with pytest.raises(ValueError, match="sklearn_ksg takes x and y of at most 1 column"):
        SklearnKSG().estimate(np.zeros((10, 2)), np.zeros(10))
