"""The digits dataset: shapes, value range, split sizes and stratification, run-seed independence."""

from __future__ import annotations

import numpy as np

from infobench import registry
from infobench.data.base import DataBundle
from infobench.data.digits import digit_images


def _load(seed: int = 0, **params) -> DataBundle:
    cls = registry.get("dataset", "digits")
    return cls(cls.Params(**params)).load(seed)


def test_shapes_dtypes_and_pixel_range():
    bundle = _load()
    assert bundle.num_classes == 10 and bundle.input_shape == (1, 8, 8) and bundle.domains == {}
    for split in (bundle.train, bundle.val, bundle.test):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int64
        assert split.x.shape[1:] == (1, 8, 8)
        assert split.x.min() >= 0.0 and split.x.max() <= 1.0
    # load_digits intensities reach 16, which must map to exactly 1.
    assert bundle.train.x.max() == 1.0


def test_default_split_is_60_20_20_and_stratified():
    bundle = _load()
    sizes = [len(bundle.train), len(bundle.val), len(bundle.test)]
    assert sum(sizes) == 1797 and sizes == [1079, 359, 359]
    overall = np.bincount(np.concatenate([bundle.train.y, bundle.val.y, bundle.test.y]))
    for split in (bundle.train, bundle.val, bundle.test):
        expected = len(split) * overall / overall.sum()
        assert np.all(np.abs(np.bincount(split.y, minlength=10) - expected) < 2)


def test_splits_partition_the_1797_digits():
    bundle = _load()
    parts = np.concatenate([bundle.train.x, bundle.val.x, bundle.test.x]).reshape(1797, -1)
    source = digit_images()[0].reshape(1797, -1)
    # Compare as multisets of images: every digit lands in exactly one split.
    for got, want in zip(
        np.unique(parts, axis=0, return_counts=True),
        np.unique(source, axis=0, return_counts=True),
        strict=True,
    ):
        assert np.array_equal(got, want)


def test_split_ignores_the_run_seed_but_follows_split_seed():
    a, b = _load(seed=0), _load(seed=7)
    assert np.array_equal(a.test.x, b.test.x) and np.array_equal(a.train.y, b.train.y)
    c = _load(split_seed=1)
    assert not np.array_equal(a.test.x, c.test.x)


def test_fractions_are_parameters():
    bundle = _load(val_fraction=0.1, test_fraction=0.3)
    assert (len(bundle.val), len(bundle.test)) == (round(0.1 * 1797), round(0.3 * 1797))


def test_loaded_arrays_are_private_copies():
    first = _load()
    first.train.x[:] = 0.5
    assert not np.all(_load().train.x == 0.5)


def test_digits_read_without_sklearn_match_load_digits(monkeypatch):
    from sklearn.datasets import load_digits

    from infobench.data import digits

    raw = load_digits()
    for bundled in (digits._bundled_digits_file(), digits._bundled_digits_file().with_name("moved.csv.gz")):
        digits.digit_images.cache_clear()
        monkeypatch.setattr(digits, "_bundled_digits_file", lambda bundled=bundled: bundled)
        x, y = digits.digit_images()
        np.testing.assert_array_equal(x[:, 0] * 16.0, raw.images)
        np.testing.assert_array_equal(y, raw.target)
    digits.digit_images.cache_clear()
