"""Post-hoc calibrators: known values, nested-family orderings and the guarantees each paper states."""

from __future__ import annotations

import numpy as np
import pytest

from infobench.metrics import nll, softmax
from infobench.tasks.calibration.methods.dirichlet import DirichletCalibration
from infobench.tasks.calibration.methods.histogram import HistogramBinning
from infobench.tasks.calibration.methods.isotonic import IsotonicCalibration
from infobench.tasks.calibration.methods.matrix import MatrixScaling
from infobench.tasks.calibration.methods.temperature import TemperatureScaling
from infobench.tasks.calibration.methods.vector import VectorScaling


def draw_labels(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (probs.cumsum(1) > rng.random((len(probs), 1))).argmax(1)


def test_vector_scaling_recovers_per_class_scales_and_biases():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, size=(30000, 4))
    scale, bias = np.array([0.5, 1.0, 2.0, 1.5]), np.array([0.3, -0.2, 0.0, 0.1])
    labels = draw_labels(softmax(logits * scale + bias), rng)
    # Guo et al.'s plain maximum-likelihood fit: no bias penalty, no prior on the scales
    cal = VectorScaling(VectorScaling.Params(l2_bias=0, l2_diag=0, prior_strength=0)).fit(logits, labels)
    np.testing.assert_allclose(np.diag(cal.weight), scale, rtol=0.06)
    # the bias is identified up to a constant shared by all classes
    np.testing.assert_allclose(cal.bias - cal.bias.mean(), bias - bias.mean(), atol=0.05)


def test_nested_families_fit_the_validation_nll_in_order():
    # temperature (1 parameter) is inside vector scaling (W = I / T), which is inside matrix
    # scaling without regularisation: each exact plain-NLL fit can only lower the validation NLL.
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, size=(2000, 5))
    labels = draw_labels(softmax(logits @ rng.normal(0.3, 0.3, size=(5, 5))), rng)
    values = [nll(c.fit(logits, labels).calibrated_logits(logits), labels) for c in (
        TemperatureScaling(TemperatureScaling.Params(prior_strength=0)),
        VectorScaling(VectorScaling.Params(l2_bias=0, l2_diag=0, prior_strength=0)),
        MatrixScaling(MatrixScaling.Params(l2_offdiag=0, l2_bias=0, l2_diag=0, prior_strength=0)))]
    assert nll(logits, labels) >= values[0] >= values[1] - 1e-9 >= values[2] - 2e-9


def test_odir_penalty_shrinks_the_off_diagonal():
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 2, size=(1000, 4))
    labels = draw_labels(softmax(logits[:, ::-1]), rng)  # every class predicted by another's logit
    loose = MatrixScaling(MatrixScaling.Params(l2_offdiag=0.0, l2_bias=0.0, l2_diag=0.0)).fit(logits, labels)
    tight = MatrixScaling(MatrixScaling.Params(l2_offdiag=100.0, l2_bias=100.0, l2_diag=0.0)).fit(logits, labels)
    assert tight.fitted()["weight_offdiag_rms"] < 0.2 * loose.fitted()["weight_offdiag_rms"]
    assert tight.fitted()["bias_rms"] <= loose.fitted()["bias_rms"] + 1e-9


def test_dirichlet_depends_on_the_probabilities_only():
    # q = softmax(W ln softmax(z) + b): adding a constant to a row of logits changes nothing
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, size=(500, 3))
    labels = rng.integers(0, 3, 500)
    cal = DirichletCalibration().fit(logits, labels)
    shifted = logits + rng.normal(0, 5, size=(500, 1))
    np.testing.assert_allclose(cal.transform(shifted), cal.transform(logits), atol=1e-10)
    # and with W = I, b = 0 it is the identity: the fit starts there and may only improve
    assert nll(cal.calibrated_logits(logits), labels) <= nll(logits, labels) + 1e-12


def test_histogram_binning_by_hand():
    # two classes, 2 equal-width bins; p1 = .2 .4 .6 .8 .9, labels 0 1 0 1 1
    p1 = np.array([0.2, 0.4, 0.6, 0.8, 0.9])
    logits = np.log(np.stack([1 - p1, p1], axis=1))
    labels = np.array([0, 1, 0, 1, 1])
    cal = HistogramBinning(HistogramBinning.Params(n_bins=2)).fit(logits, labels)
    # class 1: bin (0, .5] holds .2 .4 (hits 0 1) -> 1/2; bin (.5, 1] holds .6 .8 .9 (0 1 1) -> 2/3
    # class 0, p0 = .8 .6 .4 .2 .1: bin (0, .5] holds .4 .2 .1 (hits 1 0 0) -> 1/3;
    # bin (.5, 1] holds .8 .6 (hits 1 0) -> 1/2
    np.testing.assert_allclose(cal.theta, [[1 / 3, 0.5], [0.5, 2 / 3]])
    # a new sample with p1 = .7: scores (1/3, 2/3) already sum to one; p1 = .3: (1/2, 1/2)
    np.testing.assert_allclose(cal.transform(np.log([[0.3, 0.7], [0.7, 0.3]])), [[1 / 3, 2 / 3], [0.5, 0.5]])


def test_probability_calibrators_floor_zero_probabilities_for_the_nll():
    # every label is 1: class 0's bins all hold frequency 0, so q = (0, 1) exactly
    p1 = np.array([0.2, 0.4, 0.6, 0.8])
    cal = HistogramBinning(HistogramBinning.Params(n_bins=2)).fit(
        np.log(np.stack([1 - p1, p1], axis=1)), np.ones(4, dtype=int))
    logits = np.log([[0.7, 0.3]])
    np.testing.assert_array_equal(cal.transform(logits), [[0.0, 1.0]])
    log_q = cal.calibrated_log_probs(logits)
    np.testing.assert_allclose(np.exp(log_q), [[1e-6 / (1 + 1e-6), 1 / (1 + 1e-6)]])
    assert nll(log_q, [0]) == pytest.approx(-np.log(1e-6 / (1 + 1e-6)))


def test_histogram_empty_bin_is_the_identity_and_mass_bins_hold_equal_counts():
    p1 = np.linspace(0.05, 0.45, 40)  # nothing above .5
    logits = np.log(np.stack([1 - p1, p1], axis=1))
    labels = (np.arange(40) % 2).astype(int)
    width = HistogramBinning(HistogramBinning.Params(n_bins=4)).fit(logits, labels)
    assert width.theta[1, 3] == pytest.approx(0.875)  # empty (.75, 1]: its midpoint
    mass = HistogramBinning(HistogramBinning.Params(n_bins=4, binning="mass")).fit(logits, labels)
    assert np.bincount(mass._bins(softmax(logits))[:, 1], minlength=4).tolist() == [10, 10, 10, 10]


def test_isotonic_by_hand_pools_adjacent_violators():
    # class 1 scores .2 .4 .6 .8 with hits 0 1 0 1: PAV pools the middle pair -> 0, .5, .5, 1;
    # class 0 is the mirror image, so the one-vs-rest values already sum to one
    p1 = np.array([0.2, 0.4, 0.6, 0.8])
    logits = np.log(np.stack([1 - p1, p1], axis=1))
    labels = np.array([0, 1, 0, 1])
    cal = IsotonicCalibration().fit(logits, labels)
    np.testing.assert_allclose(cal.transform(logits), [[1, 0], [0.5, 0.5], [0.5, 0.5], [0, 1]], atol=1e-12)


def test_isotonic_is_monotone_in_each_class_probability():
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 2, size=(800, 3))
    labels = draw_labels(softmax(1.7 * logits), rng)
    cal = IsotonicCalibration().fit(logits, labels)
    grid = np.linspace(0.001, 0.999, 200)
    for k, model in enumerate(cal.models):
        assert np.all(np.diff(model.predict(grid)) >= 0), k


@pytest.mark.parametrize("cls", [VectorScaling, MatrixScaling, DirichletCalibration, HistogramBinning, IsotonicCalibration])
def test_every_calibrator_gives_distributions_and_refuses_bad_input(cls):
    rng = np.random.default_rng(5)
    logits = rng.normal(0, 2, size=(300, 4))
    labels = rng.integers(0, 4, 300)
    cal = cls().fit(logits, labels)
    probs = cal.transform(logits)
    assert probs.shape == (300, 4) and np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-9)
    assert np.all(np.isfinite(cal.calibrated_log_probs(logits)))
    with pytest.raises(ValueError, match="3 classes, the calibrator was fitted on 4"):
        cal.transform(logits[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        cls().fit(np.full((3, 4), np.nan), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="shape"):
        cls().fit(logits[:, 0], labels)
