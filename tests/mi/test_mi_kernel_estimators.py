"""KDE bounds, adaptive binning, matrix Renyi, DSE/DSMI, Vendi and FFT-KDE: known values and orderings."""

from __future__ import annotations

import numpy as np
import pytest

from infobench.mi.adaptive_binning import AdaptiveBinning
from infobench.mi.binning import Binning
from infobench.mi.dsmi import DSMI
from infobench.mi.fft_kde import FFTKDE
from infobench.mi.kde import KDE
from infobench.mi.kde_adaptive import AdaptiveKDE
from infobench.mi.renyi import MatrixRenyi
from infobench.mi.vendi import Vendi

LN2 = np.log(2)


def bits12() -> np.ndarray:
    return ((np.arange(4096)[:, None] >> np.arange(12)) & 1).astype(np.float64)


def test_kde_bound_by_hand_on_three_points():
    t = np.array([[0.0], [1.0], [3.0]])
    var = 0.5
    k = np.exp(-((t - t.T) ** 2) / (2 * var))
    expected = -np.mean(np.log(k.mean(axis=1)))
    est = KDE(KDE.Params(noise_variance=var))
    assert est.estimate(np.arange(3), t) == pytest.approx(expected, abs=1e-12)


def test_kde_upper_above_lower_and_distinct_points_with_tiny_noise_give_ln_n():
    x = bits12()[:1024, :10]  # all 10-bit inputs
    t = np.tanh(x @ np.random.default_rng(0).normal(size=(10, 6)))
    upper = KDE().estimate(x, t)
    lower = KDE(KDE.Params(bound="lower")).estimate(x, t)
    assert 0 < lower < upper
    tiny = KDE(KDE.Params(noise_variance=1e-8)).estimate(x, 2 * x - 1)
    assert tiny / LN2 == pytest.approx(10.0, abs=1e-6)


def test_kde_label_information_is_ln2_for_separated_classes():
    labels = np.repeat([0, 1], 200)
    t = labels[:, None] * 100.0 + np.random.default_rng(1).normal(0, 0.01, size=(400, 2))
    assert KDE().estimate(t, labels) == pytest.approx(LN2, abs=1e-6)


def test_adaptive_kde_is_invariant_to_rescaling_the_layer_and_matches_kde_at_max_one():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 3))
    t = np.maximum(x @ rng.normal(size=(3, 4)), 0)
    base = AdaptiveKDE().estimate(x, t)
    assert AdaptiveKDE().estimate(x, 50 * t) == pytest.approx(base, rel=1e-9)
    unit = t / np.abs(t).max()
    assert AdaptiveKDE().estimate(x, unit) == pytest.approx(KDE().estimate(x, unit), rel=1e-9)


def test_adaptive_binning_equalises_bin_counts_for_relu_like_data():
    rng = np.random.default_rng(3)
    a = rng.exponential(size=(3000, 1)) ** 3  # long right tail: equal-width bins put most mass in bin 0
    codes, count = AdaptiveBinning(AdaptiveBinning.Params(n_bins=10)).symbols(a)
    counts = np.bincount(codes)
    assert count == 10 and counts.min() >= 290 and counts.max() <= 310
    # equal-mass bins carry the most information a 10-bin variable can: ln 10, where equal-width bins lose most
    est = AdaptiveBinning(AdaptiveBinning.Params(n_bins=10))
    assert est.estimate(a, a) == pytest.approx(np.log(10), abs=2e-3)
    assert Binning(Binning.Params(n_bins=10)).estimate(a, a) < 0.5 * np.log(10)
    x = bits12()  # a one-to-one map of the 12-bit inputs keeps 12 bits
    assert est.estimate(x, 2 * x - 1) / LN2 == pytest.approx(12.0, abs=1e-9)


def test_adaptive_binning_is_invariant_to_a_monotone_map_of_the_whole_layer():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(2000, 2))
    t = x + 0.5 * rng.normal(size=(2000, 2))
    est = AdaptiveBinning()
    base = est.estimate(x, t)
    assert est.estimate(x, np.arcsinh(3 * t) + 1) == pytest.approx(base, abs=1e-12)  # quantile edges follow ranks
    assert Binning().estimate(x, np.arcsinh(3 * t) + 1) != pytest.approx(Binning().estimate(x, t), abs=1e-3)


def test_renyi_of_a_balanced_label_with_itself_is_ln_k():
    labels = np.repeat(np.arange(4), 50)
    est = MatrixRenyi()
    assert est.estimate(labels, labels) == pytest.approx(np.log(4), abs=1e-9)
    assert est.entropy(labels) == pytest.approx(np.log(4), abs=1e-9)


def test_renyi_orders_dependence_and_is_near_zero_for_independence():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 1))
    est = MatrixRenyi()
    strong = est.estimate(x, x + 0.3 * rng.normal(size=(300, 1)))
    weak = est.estimate(x, x + 2.0 * rng.normal(size=(300, 1)))
    none = est.estimate(x, rng.normal(size=(300, 1)))
    assert strong > weak > none  # independence is not ~0: the estimator's small-sample bias


def test_vendi_score_counts_distinct_samples():
    v = Vendi()
    assert v.score(np.ones((40, 3))) == pytest.approx(1.0, abs=1e-9)
    assert v.score(np.eye(40)) == pytest.approx(40.0, abs=1e-9)
    # two orthogonal directions, equally often: an effective number of 2
    assert v.score(np.repeat(np.eye(2), 20, axis=0)) == pytest.approx(2.0, abs=1e-9)
    # labels against themselves: the entropy of the label distribution
    labels = np.repeat(np.arange(3), 30)
    assert v.estimate(labels, labels) == pytest.approx(np.log(3), abs=1e-9)


def test_dsmi_orders_class_separation_and_dse_grows_with_spread():
    rng = np.random.default_rng(5)
    labels = np.repeat([0, 1], 200)
    est = DSMI()
    far = est.estimate(labels[:, None] * 6.0 + rng.normal(size=(400, 2)), labels)
    near = est.estimate(labels[:, None] * 1.0 + rng.normal(size=(400, 2)), labels)
    none = est.estimate(rng.normal(size=(400, 2)), labels)
    assert far > near > none
    fixed = DSMI(DSMI.Params(width=1.0))
    assert fixed.entropy(3 * rng.normal(size=(300, 3))) > fixed.entropy(rng.normal(size=(300, 3)))
    with pytest.raises(ValueError, match="mixed"):
        est.estimate(rng.normal(size=(50, 1)), rng.normal(size=(50, 1)))


def test_fft_kde_near_gaussian_truth_and_screens_the_informative_feature_first():
    rng = np.random.default_rng(6)
    z = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=4000)
    truth = -0.5 * np.log(1 - 0.25)
    est = FFTKDE()
    assert est.estimate(z[:, :1], z[:, 1:]) == pytest.approx(truth, abs=0.04)
    scores = est.screen(np.hstack([rng.normal(size=(4000, 2)), z[:, :1]]), z[:, 1])
    assert scores.argmax() == 2 and scores[:2].max() < 0.03
    with pytest.raises(ValueError, match="at most 1 column"):
        est.estimate(z, z[:, :1])


def test_fft_kde_label_case_for_separated_classes_is_ln2():
    labels = np.repeat([0, 1], 500)
    x = labels * 50.0 + np.random.default_rng(7).normal(size=1000)
    assert FFTKDE().estimate(x, labels) == pytest.approx(LN2, abs=1e-3)


@pytest.mark.parametrize("classes", [2, 5, 10])
def test_dsmi_of_an_independent_label_is_near_zero(classes):
    # issue 15 item 2: DSE of all 1000 points minus the class-weighted DSE of classes of 1000 / k
    # points gave 0.19 / 0.50 / 0.83 nats here; each class is now compared with random subsamples
    # of its own size (the authors' construction)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 2))
    labels = rng.integers(0, classes, size=1000)
    assert abs(DSMI().estimate(x, labels)) < 0.04


def test_dsmi_subsamples_are_seeded():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], 100)
    x = labels[:, None] + rng.normal(size=(300, 2))
    first = DSMI().estimate(x, labels)
    assert DSMI().estimate(x, labels) == first
    assert DSMI(DSMI.Params(random_state=1)).estimate(x, labels) != first
    # a single repetition is noisier but estimates the same quantity
    assert DSMI(DSMI.Params(repetitions=1)).estimate(x, labels) == pytest.approx(first, abs=0.1)


def test_vendi_refuses_one_real_column_with_the_cosine_kernel():
    # issue 15: cos between 1-D vectors is sign(x_i x_j), so the MI was 0 whatever the dependence
    x = np.random.default_rng(2).normal(size=(200, 1))
    with pytest.raises(ValueError, match="kernel 'gaussian'"):
        Vendi().estimate(x, 2 * x)
    with pytest.raises(ValueError, match="single real column"):
        Vendi().score(x)
    assert "cosine kernel" in Vendi().unsupported(x, np.arange(200))
    assert Vendi().unsupported(np.hstack([x, x**2]), np.arange(200)) is None
    assert Vendi(Vendi.Params(kernel="gaussian")).estimate(x, 2 * x) > 1.0
