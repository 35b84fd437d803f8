"""Property tests (hypothesis): metric ranges, temperature keeps the argmax, calibrated -> ECE 0."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infobench import metrics as M
from infobench.tasks.calibration.methods.temperature import TemperatureScaling

PROPERTY = settings(max_examples=40, deadline=None, derandomize=True)


@st.composite
def predictions(draw):
    n = draw(st.integers(1, 60))
    c = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, draw(st.floats(0.01, 20.0)), size=(n, c))
    if draw(st.booleans()):  # ties and exact one-hot rows
        logits = np.round(logits)
    return M.softmax(logits), rng.integers(0, c, n), draw(st.integers(1, 20))


@PROPERTY
@given(predictions(), st.sampled_from(M.BINNINGS))
def test_calibration_errors_lie_in_zero_one(pred, binning):
    probs, labels, n_bins = pred
    for value in (M.ece(probs, labels, n_bins, binning), M.ace(probs, labels, n_bins, binning),
                  M.mce(probs, labels, n_bins, binning), M.classwise_ece(probs, labels, n_bins),
                  M.debiased_l2_ce(probs, labels, n_bins, binning)):
        assert 0.0 <= value <= 1.0 + 1e-12
    # ECE is a weighted mean of the gaps, MCE their max, ACE their plain mean
    assert M.ece(probs, labels, n_bins, binning) <= M.mce(probs, labels, n_bins, binning) + 1e-12
    assert M.ace(probs, labels, n_bins, binning) <= M.mce(probs, labels, n_bins, binning) + 1e-12


@PROPERTY
@given(predictions())
def test_auroc_is_the_probability_a_correct_prediction_outranks_a_wrong_one(pred):
    probs, labels, _ = pred
    correct = probs.argmax(1) == labels
    if correct.all() or not correct.any():
        return
    conf = probs.max(1)
    right, wrong = conf[correct][:, None], conf[~correct][None, :]
    pairs = np.mean((right > wrong) + 0.5 * (right == wrong))  # every pair, ties one half
    value = M.auroc_correctness(probs, labels)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(pairs, abs=1e-12)


@PROPERTY
@given(st.integers(0, 2**31 - 1), st.integers(2, 8), st.floats(0.05, 20.0))
def test_temperature_scaling_never_changes_the_argmax(seed, classes, scale):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, scale, size=(200, classes))
    labels = rng.integers(0, classes, 200)
    cal = TemperatureScaling().fit(logits, labels)
    assert cal.temperature > 0
    np.testing.assert_array_equal(cal.calibrated_logits(logits).argmax(1), logits.argmax(1))


@pytest.mark.parametrize("metric", [M.classwise_ece, M.debiased_l2_ce, M.ace])
def test_a_calibrated_predictor_has_calibration_error_approaching_zero(metric):
    # labels drawn from the predicted distribution itself: calibrated by construction
    rng = np.random.default_rng(0)
    values = []
    for n in (500, 5_000, 200_000):
        probs = M.softmax(rng.normal(0, 2, size=(n, 4)))
        labels = (probs.cumsum(1) > rng.random((n, 1))).argmax(1)
        values.append(metric(probs, labels, n_bins=10))
    assert values[0] > values[2]
    assert values[2] < 0.01
