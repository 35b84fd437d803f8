"""digits-c: clean digits splits plus corrupted test domains, deterministic per run seed."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from infobench import registry
from infobench.data.corruptions import CORRUPTIONS
from infobench.data.digits import digit_splits

DigitsC = registry.get("dataset", "digits-c")


def _load(seed: int = 0, **params):
    return DigitsC(DigitsC.Params(**params)).load(seed)


def test_registered_with_a_description():
    assert DigitsC.registered_name == "digits-c"
    assert registry.describe(DigitsC).startswith("Digits with test sets shifted")


def test_default_is_every_corruption_at_severity_5():
    bundle = _load()
    assert list(bundle.domains) == [f"{name}@5" for name in CORRUPTIONS]
    for split in bundle.domains.values():
        assert split.x.shape == bundle.test.x.shape and split.x.dtype == np.float32
        assert np.array_equal(split.y, bundle.test.y)
        assert 0.0 <= split.x.min() and split.x.max() <= 1.0


def test_clean_splits_are_the_digits_splits():
    bundle = _load(seed=3, corruptions=["contrast"])
    train, val, test = digit_splits(DigitsC.Params())
    assert np.array_equal(bundle.train.x, train.x) and np.array_equal(bundle.val.y, val.y)
    assert np.array_equal(bundle.test.x, test.x)
    assert bundle.num_classes == 10 and bundle.input_shape == (1, 8, 8)


def test_domains_ordered_by_corruption_then_severity():
    bundle = _load(corruptions=["rotation", "gaussian_noise"], severity=[3, 1])
    assert list(bundle.domains) == [
        "rotation@3",
        "rotation@1",
        "gaussian_noise@3",
        "gaussian_noise@1",
    ]


def test_noise_is_deterministic_per_seed_and_varies_across_seeds():
    params = {"corruptions": ["gaussian_noise", "elastic_transform"], "severity": [2, 5]}
    a, b, c = _load(0, **params), _load(0, **params), _load(1, **params)
    for key in a.domains:
        assert np.array_equal(a.domains[key].x, b.domains[key].x)
        assert not np.array_equal(a.domains[key].x, c.domains[key].x)


def test_a_domain_does_not_depend_on_which_others_are_requested():
    alone = _load(5, corruptions=["shot_noise"], severity=4)
    among = _load(5, corruptions=["gaussian_noise", "shot_noise"], severity=[1, 4])
    assert np.array_equal(alone.domains["shot_noise@4"].x, among.domains["shot_noise@4"].x)


def test_corruption_grows_with_severity():
    bundle = _load(corruptions=["impulse_noise"], severity=[1, 2, 3, 4, 5])
    change = [
        np.abs(bundle.domains[f"impulse_noise@{s}"].x - bundle.test.x).mean() for s in range(1, 6)
    ]
    assert np.all(np.diff(change) > 0)


def test_unknown_corruption_lists_the_valid_names():
    with pytest.raises(ValidationError) as info:
        DigitsC.Params(corruptions=["gaussian_noise", "fog"])
    message = str(info.value)
    assert "unknown corruption(s) 'fog'" in message
    assert all(name in message for name in CORRUPTIONS)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"severity": 0}, "severities must be in"),
        ({"severity": [2, 6]}, r"got \[6\]"),
        ({"severity": [2, 2]}, "must not repeat"),
        ({"severity": []}, "at least one severity"),
        ({"corruptions": []}, "at least one corruption"),
        ({"corruptions": ["contrast", "contrast"]}, "must not repeat"),
        ({"colour": True}, "Extra inputs are not permitted"),
    ],
)
def test_bad_params_are_rejected(params, match):
    with pytest.raises(ValidationError, match=match):
        DigitsC.Params(**params)
