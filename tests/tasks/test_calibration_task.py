"""Temperature scaling (Guo et al. 2017): exact NLL optimum, argmax unchanged, recovers a known T."""

from __future__ import annotations

import numpy as np
import pytest

from infobench.metrics import nll
from infobench.tasks.calibration.methods.temperature import fit_temperature


def sample_with_temperature(true_t: float, n: int = 20000, classes: int = 10, seed: int = 0):
    """Logits z and labels drawn from softmax(z / true_t): the NLL-optimal temperature is ~true_t."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 4, size=(n, classes))
    p = np.exp(logits / true_t - (logits / true_t).max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    return logits, labels


@pytest.mark.parametrize("true_t", [0.5, 2.0, 3.0])
def test_recovers_the_temperature_that_generated_the_labels(true_t):
    logits, labels = sample_with_temperature(true_t)
    assert fit_temperature(logits, labels) == pytest.approx(true_t, rel=0.05)


def test_the_fit_is_the_exact_optimum_of_the_nll():
    logits, labels = sample_with_temperature(2.0, n=5000, seed=1)
    t = fit_temperature(logits, labels, prior_strength=0)  # Guo et al.'s plain NLL fit
    best = nll(logits / t, labels)
    for factor in (0.999, 1.001, 0.99, 1.01):
        assert nll(logits / (t * factor), labels) > best
    # the copied LBFGS recipe (lr 0.01, 50 steps from T=1) stops short; this fit does not
    assert abs(t - 2.0) < 0.1


def test_temperature_never_changes_the_argmax():
    logits, labels = sample_with_temperature(3.0, n=2000, seed=2)
    t = fit_temperature(logits, labels)
    assert (np.argmax(logits / t, 1) == np.argmax(logits, 1)).all()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="shape"):
        fit_temperature(np.zeros(5), np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match="NaN"):
        fit_temperature(np.full((3, 2), np.nan), np.zeros(3, dtype=int))
