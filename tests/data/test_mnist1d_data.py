"""mnist1d: the package's generator reproduced exactly, splits, and generator-override shifts."""

from __future__ import annotations

import random

import numpy as np
import pytest
from mnist1d.data import get_dataset_args, make_dataset
from pydantic import ValidationError

from infobench import registry
from infobench.data.mnist1d import generate_raw

MNIST1D = registry.get("dataset", "mnist1d")
SMALL = 500  # examples per test load: enough for every property, ten times faster than 5000


def _load(seed: int = 0, **params):
    return MNIST1D(MNIST1D.Params(**params)).load(seed)


@pytest.fixture(scope="module")
def package() -> dict:
    """The package's own dataset for its default arguments (seed 42, 5000 examples)."""
    return make_dataset(get_dataset_args())


def test_generator_reproduces_make_dataset_for_default_args(package):
    x, y = generate_raw(5000, 42)
    standardised = (x - x.mean()) / x.std()
    assert np.array_equal(standardised[:4000], package["x"])
    assert np.array_equal(standardised[4000:], package["x_test"])
    assert np.array_equal(y[:4000], package["y"]) and np.array_equal(y[4000:], package["y_test"])


def test_bundle_is_the_package_split_with_val_carved_from_train(package):
    bundle = _load()
    assert bundle.input_shape == (1, 40) and bundle.num_classes == 10 and bundle.domains == {}
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (3600, 400, 1000)
    for split in (bundle.train, bundle.val, bundle.test):
        assert (
            split.x.dtype == np.float32
            and split.y.dtype == np.int64
            and split.x.shape[1:] == (1, 40)
        )
    np.testing.assert_allclose(bundle.test.x[:, 0], package["x_test"], atol=1e-5)
    # Train and val together are exactly the package's training rows.
    ours = np.concatenate([bundle.train.x[:, 0], bundle.val.x[:, 0]])
    np.testing.assert_allclose(
        np.sort(ours, axis=0), np.sort(package["x"].astype(np.float32), axis=0), atol=1e-5
    )
    assert np.all(np.abs(np.bincount(bundle.val.y) - 40) < 2)


def test_loading_leaves_global_rngs_alone():
    np.random.seed(123)
    random.seed(123)
    expected = (np.random.rand(), random.random())
    np.random.seed(123)
    random.seed(123)
    _load(num_samples=SMALL, data_seed=7)
    assert (np.random.rand(), random.random()) == expected


def test_shifted_domain_pairs_with_clean_test_and_keeps_source_statistics():
    shifts = {
        "noise@2": {"corr_noise_scale": 0.5, "iid_noise_scale": 0.04},
        "same": {"shear_scale": 0.75},  # the package default: no shift at all
    }
    bundle = _load(num_samples=SMALL, shifts=shifts)
    assert list(bundle.domains) == ["noise@2", "same"]
    clean, noisy = bundle.test, bundle.domains["noise@2"]
    # Standardised with the clean statistics, a no-op override gives the clean test set back.
    np.testing.assert_array_equal(bundle.domains["same"].x, clean.x)
    assert np.array_equal(noisy.y, clean.y) and noisy.x.shape == clean.x.shape
    assert not np.allclose(noisy.x, clean.x)
    # More noise spreads the signals: with the source's statistics the spread shows.
    assert noisy.x.std() > clean.x.std()


def test_translation_shift_changes_the_examples():
    bundle = _load(num_samples=SMALL, shifts={"far": {"max_translation": 5}})
    assert bundle.domains["far"].x.shape == bundle.test.x.shape
    assert np.abs(bundle.domains["far"].x - bundle.test.x).mean() > 0.1


def test_data_seed_changes_the_data_and_run_seed_does_not():
    a, b = _load(0, num_samples=SMALL), _load(9, num_samples=SMALL)
    assert np.array_equal(a.train.x, b.train.x)
    c = _load(0, num_samples=SMALL, data_seed=1)
    assert not np.array_equal(a.test.x, c.test.x)


@pytest.mark.parametrize(
    "shifts, match",
    [
        (
            {"x": {"noise_scale": 1.0}},
            "shift 'x': unknown generator argument 'noise_scale'; valid: corr_noise_scale",
        ),
        ({"x": {"shear_scale": -1.0}}, "shear_scale must be >= 0"),
        ({"x": {"max_translation": 2.5}}, "max_translation must be an integer >= 1"),
        ({"x": {"max_translation": 0}}, "max_translation must be an integer >= 1"),
    ],
)
def test_bad_shifts_are_rejected_naming_the_key(shifts, match):
    with pytest.raises(ValidationError, match=match):
        MNIST1D.Params(shifts=shifts)
