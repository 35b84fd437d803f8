"""KSG: known Gaussian MI, agreement with scikit-learn, invariances, independence, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from infobench.mi.knn import (
    KNNParams,
    _count_within_1d,
    count_within,
    joint_kth_and_counts,
    standardize_and_jitter,
    use_tree,
)
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
    assert tree == pytest.approx(brute, abs=1e-12)  # float32 passes, float64 answers
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


def brute_reference(x: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 eps and marginal counts from full distance matrices, as the KD-tree path defines them:
    rows within nextafter(eps, 0) (strictly below eps; at 0 when eps is 0), the row itself left out."""
    dx, dy = maxnorm(x), maxnorm(y)
    eps = np.sort(np.maximum(dx, dy), axis=1)[:, k]  # column 0 is the row itself
    radius = np.nextafter(eps, 0)[:, None]
    return eps, (dx <= radius).sum(1) - 1, (dy <= radius).sum(1) - 1


@pytest.mark.parametrize("workers", [1, 2])
def test_compiled_brute_force_matches_distance_matrices_with_ties(workers):
    # small integers are exact in float32 and make many equal distances, ties at eps and eps = 0 included
    rng = np.random.default_rng(8)
    x = rng.integers(0, 4, size=(300, 3)).astype(np.float64)
    y = rng.integers(0, 4, size=(300, 2)).astype(np.float64)
    dx = maxnorm(x)
    k = 3
    eps_ref, nx_ref, ny_ref = brute_reference(x, y, k)
    assert (eps_ref == 0).any()
    eps, (nx, ny) = joint_kth_and_counts([x, y], k, workers)
    assert np.array_equal(eps, eps_ref)
    assert np.array_equal(nx, nx_ref) and np.array_equal(ny, ny_ref)
    radius = rng.uniform(0, 2, size=300)
    forced_brute = count_within(x, radius, tree_max_dims=1, workers=workers)
    assert np.array_equal(forced_brute, (dx <= radius[:, None]).sum(1))
    assert np.array_equal(forced_brute, count_within(x, radius, tree_max_dims=99))


def quantised_pair(n: int, dx: int, dy: int, levels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Repeated rows, as saturated or quantised activations give: y depends on x through its first column."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, levels + 1, (n, dx)).astype(float)
    return x, x[:, :1] + rng.integers(0, 2, (n, dy))


def test_repeated_rows_give_the_tree_s_estimate_not_inf():
    # issue 12 item 6: float32 brute force lost the 1e-10 tie-breaking noise, eps became 0 and KSG inf
    rng = np.random.default_rng(0)
    x = rng.integers(1, 4, (500, 2)).astype(float)
    y = x + rng.integers(0, 2, (500, 2))
    assert not use_tree(500, 4, None)  # the default takes brute force here
    brute = KSG().estimate(x, y)
    assert brute == pytest.approx(1.2457425773, abs=1e-9)
    assert brute == KSG(KSG.Params(tree_max_dims=99)).estimate(x, y)


@pytest.mark.parametrize("seed", range(6))
def test_brute_force_equals_the_tree_on_tied_data(seed):
    # property: on repeated rows (any k, shape and number of levels) the two searches give the same
    # eps, counts and estimates, for the continuous and the mixed (Ross) case
    rng = np.random.default_rng(100 + seed)
    n, dx, dy, levels, k = int(rng.integers(60, 400)), int(rng.integers(1, 4)), int(rng.integers(1, 4)), \
        int(rng.integers(2, 5)), int(rng.integers(1, 6))
    x, y = quantised_pair(n, dx, dy, levels, seed)
    tree, brute = KSG.Params(k=k, tree_max_dims=99, workers=1), KSG.Params(k=k, tree_max_dims=1, workers=1)
    assert np.isfinite(KSG(brute).estimate(x, y))
    assert KSG(brute).estimate(x, y) == pytest.approx(KSG(tree).estimate(x, y), abs=1e-12)
    labels = (x[:, 0] + y[:, -1] > levels).astype(np.int64)
    xy = np.hstack([x, y])
    assert KSG(brute).estimate(xy, labels) == pytest.approx(KSG(tree).estimate(xy, labels), abs=1e-12)
    jittered = standardize_and_jitter([x, y], KNNParams())
    eps_ref, nx_ref, ny_ref = brute_reference(*jittered, k)
    eps, (nx, ny) = joint_kth_and_counts(jittered, k, workers=1)
    assert np.array_equal(eps, eps_ref) and np.array_equal(nx, nx_ref) and np.array_equal(ny, ny_ref)


def test_brute_force_is_exact_far_from_the_origin():
    # float32 loses digits on large values: 1e4 + small steps must still give float64's answer
    x, y = quantised_pair(300, 3, 2, 3, seed=9)
    x, y = x * 1e-3 + 1e4, y + 1e-9 * np.random.default_rng(10).normal(size=(300, 2))
    eps_ref, nx_ref, ny_ref = brute_reference(x, y, 3)
    eps, (nx, ny) = joint_kth_and_counts([x, y], 3, workers=1)
    assert np.array_equal(eps, eps_ref) and np.array_equal(nx, nx_ref) and np.array_equal(ny, ny_ref)


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
