"""Stratified splitting: exact sizes, class balance, determinism, and the split parameters."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from infobench.data.splits import SplitParams, carve_val, split_stratified, stratified_order


def _labels() -> np.ndarray:
    # Unequal classes (50, 30, 15, 5 examples), in blocks as datasets are often stored.
    return np.repeat(np.arange(4), [50, 30, 15, 5])


def test_every_prefix_of_the_order_is_class_balanced():
    y = _labels()
    order = stratified_order(y, seed=0)
    # The proportional count k * n_c / n is met up to an error below 2 for every prefix.
    assert sorted(order) == list(range(len(y)))
    frequency = np.bincount(y) / len(y)
    for k in range(1, len(y) + 1):
        counts = np.bincount(y[order[:k]], minlength=4)
        assert np.all(np.abs(counts - k * frequency) < 2), (k, counts)


def test_split_sizes_are_exact_disjoint_and_cover_the_pool():
    y = _labels()
    x = np.arange(len(y), dtype=np.float32)[:, None]
    train, val, test = split_stratified(x, y, val_fraction=0.2, test_fraction=0.3, seed=1)
    assert (len(train), len(val), len(test)) == (50, 20, 30)
    ids = np.concatenate([train.x[:, 0], val.x[:, 0], test.x[:, 0]])
    assert sorted(ids) == list(range(len(y)))
    # Rows travel with their labels.
    assert np.array_equal(y[test.x[:, 0].astype(int)], test.y)
    for split, fraction in ((train, 0.5), (val, 0.2), (test, 0.3)):
        expected = fraction * np.bincount(y)
        assert np.all(np.abs(np.bincount(split.y, minlength=4) - expected) < 2)


def test_splits_depend_on_the_seed_only():
    y = _labels()
    x = np.arange(len(y))[:, None]
    first = split_stratified(x, y, 0.2, 0.2, seed=3)
    again = split_stratified(x, y, 0.2, 0.2, seed=3)
    other = split_stratified(x, y, 0.2, 0.2, seed=4)
    assert all(np.array_equal(a.x, b.x) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[2].x, other[2].x)


def test_subsampling_train_leaves_val_unchanged_and_balanced():
    y = _labels()
    x = np.arange(len(y))[:, None]
    train_all, val_all = carve_val(x, y, val_fraction=0.1, seed=0)
    train_few, val_few = carve_val(x, y, val_fraction=0.1, seed=0, max_train=20)
    assert np.array_equal(val_all.x, val_few.x)
    assert len(train_all) == 90 and len(train_few) == 20
    assert set(train_few.x[:, 0]) <= set(train_all.x[:, 0])
    assert np.all(np.abs(np.bincount(train_few.y, minlength=4) - 20 * np.bincount(y) / 100) < 2)


def test_split_params_keep_examples_for_training():
    assert SplitParams().model_dump() == {
        "val_fraction": 0.2,
        "test_fraction": 0.2,
        "split_seed": 0,
    }
    with pytest.raises(ValidationError, match="below 1"):
        SplitParams(val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValidationError):
        SplitParams(train_fraction=0.5)
