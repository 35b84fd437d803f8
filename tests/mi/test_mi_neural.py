"""Critic bounds (MINE/DV, NWJ, InfoNCE, WDM): near a known Gaussian MI, InfoNCE capped at ln b, WDM ~0 when
independent, held-out evaluation (no overfitting above the truth), seeded split."""

from __future__ import annotations

import numpy as np
import pytest

from infobench import registry

FAST = {"steps": 150, "batch_size": 128}


def gaussian(n: int, rho: float, dim: int = 1, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim))
    return x, rho * x + np.sqrt(1 - rho**2) * rng.normal(size=(n, dim))


@pytest.mark.parametrize("name", ["mine", "nwj", "infonce"])
def test_lower_bounds_approach_the_gaussian_truth_from_below(name):
    cls = registry.get("mi.estimator", name)
    # NWJ and InfoNCE are bounds in expectation on held-out rows; DV's log of a mean is not
    assert cls.is_bound == (name != "mine")
    x, y = gaussian(1500, 0.8)
    truth = -0.5 * np.log(1 - 0.64)
    value = cls(cls.Params(**FAST)).estimate(x, y)
    assert truth - 0.15 < value < truth + 0.05


def test_infonce_never_exceeds_ln_batch_size():
    cls = registry.get("mi.estimator", "infonce")
    x, y = gaussian(1000, 0.99, dim=4, seed=1)  # true MI = 4 * 1.96 nats, far above ln 16
    value = cls(cls.Params(steps=100, batch_size=16)).estimate(x, y)
    assert value <= np.log(16) + 1e-9 and value > 0.5 * np.log(16)


def test_wdm_separates_dependent_from_independent_pairs():
    cls = registry.get("mi.estimator", "wdm")
    x, y = gaussian(1000, 0.9, seed=2)
    dependent = cls(cls.Params(**FAST)).estimate(x, y)
    independent = cls(cls.Params(**FAST)).estimate(x, np.random.default_rng(3).normal(size=(1000, 1)))
    assert dependent > 0.3 and abs(independent) < 0.1


def test_label_enters_one_hot_and_results_are_seeded():
    cls = registry.get("mi.estimator", "nwj")
    rng = np.random.default_rng(4)
    labels = np.repeat([0, 1], 400)
    x = labels[:, None] * 8.0 + rng.normal(size=(800, 1))
    a = cls(cls.Params(**FAST)).estimate(x, labels)
    assert a == pytest.approx(np.log(2), abs=0.1)
    assert cls(cls.Params(**FAST)).estimate(x, labels) == a


@pytest.mark.parametrize("name", ["mine", "nwj", "infonce"])
def test_independent_pairs_are_not_overfitted_above_zero(name):
    # issue 15 item 3: evaluated on its own training rows the critic overfits (0.59 / 0.33 / 0.66
    # nats here with 300 steps); on held-out rows, with the critic picked on a validation slice, none is above 0
    cls = registry.get("mi.estimator", name)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(500, 5)), rng.normal(size=(500, 5))
    assert cls(cls.Params(steps=300, batch_size=128)).estimate(x, y) < 0.02


def test_split_is_seeded_disjoint_and_refuses_too_few_rows():
    cls = registry.get("mi.estimator", "nwj")
    fit, valid, held_out = cls().split(100)
    assert (len(fit), len(valid), len(held_out)) == (40, 10, 50)
    assert len(np.unique(np.concatenate([fit, valid, held_out]))) == 100
    assert np.array_equal(cls().split(100)[2], held_out)
    assert not np.array_equal(cls(cls.Params(random_state=1)).split(100)[2], held_out)
    with pytest.raises(ValueError, match="2 validation"):
        cls().estimate(np.zeros((8, 1)), np.zeros((8, 1)))
