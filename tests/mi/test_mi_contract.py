"""Every registered MI estimator keeps the base contract: clear errors for bad input, declared kinds."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from infobench import registry
from infobench.mi.base import MIEstimator

NAMES = registry.names("mi.estimator")


def test_the_issue_s_estimators_are_registered():
    expected = {"binning", "adaptive_binning", "kde", "kde_adaptive", "ksg", "sklearn_ksg", "kl_entropy", "mine",
                "nwj", "infonce", "wdm", "dsmi", "renyi", "fft_kde", "vendi"}
    assert expected <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_gets_a_clear_error(name):
    est = registry.get("mi.estimator", name)()
    good = np.random.default_rng(0).normal(size=(20, 1))
    with pytest.raises(ValueError, match="NaN"):
        est.estimate(np.where(np.arange(20)[:, None] == 3, np.nan, good), good)
    with pytest.raises(ValueError, match="same number of rows"):
        est.estimate(good, good[:10])
    with pytest.raises(ValueError, match=r"shape \(n, d\)"):
        est.estimate(good[:, :, None], good)


@pytest.mark.parametrize("name", NAMES)
def test_params_forbid_unknown_keys_and_kinds_are_declared(name):
    cls = registry.get("mi.estimator", name)
    assert issubclass(cls, MIEstimator) and cls.kinds and set(cls.kinds) <= {"continuous", "discrete", "mixed"}
    with pytest.raises(ValidationError):
        cls.Params(no_such_parameter=1)
    assert registry.describe(cls)


def test_kind_of_a_pair_and_unsupported_reasons():
    real, labels = np.zeros((5, 2)), np.arange(5)
    assert MIEstimator.kind_of(real, labels) == "mixed"
    assert MIEstimator.kind_of(labels, labels) == "discrete"
    assert MIEstimator.kind_of(real, real) == "continuous"
    assert "not continuous" in registry.get("mi.estimator", "dsmi")().unsupported(real, real)
    assert "at most 1 column" in registry.get("mi.estimator", "sklearn_ksg")().unsupported(real, real[:, :1])
    assert registry.get("mi.estimator", "ksg")().unsupported(real, labels) is None
