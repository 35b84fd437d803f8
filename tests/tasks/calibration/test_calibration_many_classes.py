"""Vector, matrix and Dirichlet calibration with many classes (found preparing a CIFAR-100
experiment, 5,000 x 100 validation logits): the degeneracy program stays sparse and small, a
program too large to solve is skipped and the fit says so, and the cross-validated matrix and
Dirichlet fits keep a calibrated model's accuracy and NLL instead of overfitting, in few steps."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from infobench.metrics import nll, softmax
from infobench.tasks.calibration.methods import affine
from infobench.tasks.calibration.methods.affine import Design, separable_direction
from infobench.tasks.calibration.methods.dirichlet import DirichletCalibration
from infobench.tasks.calibration.methods.matrix import MatrixScaling
from infobench.tasks.calibration.methods.temperature import TemperatureScaling

MIB = 2**20


def calibrated_logits(n: int, classes: int, rng: np.random.Generator):
    """Logits 3 * randn and labels drawn from their own softmax: a calibrated model."""
    logits = 3 * rng.standard_normal((n, classes))
    return logits, (softmax(logits).cumsum(1) > rng.random((n, 1))).argmax(1)


def traced_peak(fn):
    """``fn()`` and the peak memory it allocated (numpy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("diagonal, l2_offdiag", [(True, 0.0), (False, 1.0)])
def test_the_degeneracy_program_of_many_classes_stays_small(diagonal, l2_offdiag):
    # biases free (mu = 0; Guo et al.'s plain vector scaling): 98,000 margin rows over 100 free
    # parameters; the former dense program peaked at 391 MiB (4 s), the sparse reduced one at 13 MiB
    z, y = calibrated_logits(2000, 50, np.random.default_rng(0))
    separable, peak = traced_peak(lambda: separable_direction(Design(z, diagonal), y, l2_offdiag, 0.0))
    assert separable is False  # 2,000 labels drawn at random from a softmax: no direction separates
    assert peak < 50 * MIB


def test_a_program_too_large_is_skipped_and_the_fit_says_so(monkeypatch):
    # lambda = 0 frees 2,450 off-diagonal weights: 98,000 rows of 102 entries, which the former
    # dense program tried to hold in 2 GB (5,000 x 100 logits: 37 GiB, MemoryError)
    z, y = calibrated_logits(2000, 50, np.random.default_rng(1))
    separable, peak = traced_peak(lambda: separable_direction(Design(z, False), y, 0.0, 1.0))
    assert separable is None and peak < 50 * MIB
    # the fit leaves degenerate_reason empty (nothing was found) and reports the check as not made
    monkeypatch.setattr(affine, "MAX_PROGRAM_NONZEROS", 1000)
    z, y = calibrated_logits(200, 5, np.random.default_rng(2))
    unchecked = MatrixScaling(MatrixScaling.Params(l2_offdiag=0, l2_bias=1, l2_diag=1)).fit(z, y)
    assert unchecked.degenerate_reason == "" and unchecked.fitted()["degeneracy_checked"] == 0.0
    assert "degeneracy_checked" not in MatrixScaling(MatrixScaling.Params(l2_offdiag=1, l2_bias=1, l2_diag=1)).fit(z, y).fitted()


@pytest.mark.parametrize("cls", [MatrixScaling, DirichletCalibration])
def test_many_classes_keep_a_calibrated_models_accuracy_and_nll(cls, monkeypatch):
    # 1,000 validation rows x 40 classes (1,640 parameters, the L-BFGS path). The former grid's
    # strongest lambda (per off-diagonal entry 0.06) was chosen and overfit: test accuracy 0.518 ->
    # 0.468 (matrix) / 0.460 (Dirichlet), test NLL 1.78 / 1.79 against 1.59 for temperature
    # scaling, in 7,041 objective evaluations (matrix); now 0.516 / 0.507, 1.590 / 1.607, 339 / 1,357
    rng = np.random.default_rng(0)
    z_val, y_val = calibrated_logits(1000, 40, rng)
    z_test, y_test = calibrated_logits(5000, 40, rng)
    evaluations = []
    value = affine.Objective.value
    monkeypatch.setattr(affine.Objective, "value", lambda self, theta: evaluations.append(1) or value(self, theta))
    log_probs = cls().fit(z_val, y_val).calibrated_log_probs(z_test)
    temperature = TemperatureScaling().fit(z_val, y_val).calibrated_logits(z_test)
    assert nll(log_probs, y_test) < 1.02 * nll(temperature, y_test)
    assert np.mean(log_probs.argmax(1) == y_test) > np.mean(z_test.argmax(1) == y_test) - 0.02
    assert len(evaluations) < 3000
