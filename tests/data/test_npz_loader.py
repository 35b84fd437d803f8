"""The npz loader: splits taken from the file or carved from it, and errors naming the path."""

from __future__ import annotations

import re

import numpy as np
import pytest

from infobench import registry
from infobench.errors import DataError

NPZ = registry.get("dataset", "npz")


def _load(path, **params):
    return NPZ(NPZ.Params(path=path, **params)).load(0)


def _pool(n: int = 30, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 2, 5)), np.arange(n) % classes


def test_pool_only_is_split_stratified(tmp_path):
    x, y = _pool()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    bundle = _load(tmp_path / "d.npz", val_fraction=0.2, test_fraction=0.2)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (18, 6, 6)
    assert np.array_equal(np.bincount(bundle.test.y), [2, 2, 2])
    assert bundle.input_shape == (2, 5) and bundle.num_classes == 3
    assert bundle.train.x.dtype == np.float32 and bundle.train.y.dtype == np.int64
    # Inputs are used as stored (cast, not rescaled).
    assert np.allclose(
        np.sort(np.concatenate([bundle.train.x, bundle.val.x, bundle.test.x]).ravel()),
        np.sort(x.astype(np.float32).ravel()),
    )


def test_given_splits_are_used_and_only_missing_ones_carved(tmp_path):
    x, y = _pool()
    x_test, y_test = np.ones((4, 2, 5)), np.array([0, 1, 2, 4.0])  # whole floats count as labels
    np.savez(tmp_path / "d.npz", x=x, y=y, x_test=x_test, y_test=y_test)
    bundle = _load(tmp_path / "d.npz", val_fraction=0.1, test_fraction=0.5)
    assert np.array_equal(bundle.test.x, x_test) and bundle.test.y.tolist() == [0, 1, 2, 4]
    assert (len(bundle.train), len(bundle.val)) == (27, 3)
    assert bundle.num_classes == 5  # the largest label over every set, plus one


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "absent.npz"
    with pytest.raises(
        DataError, match=re.escape(f"{path}: no such file; expected a .npz archive")
    ):
        _load(path)


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"x": np.zeros((3, 2))}, r"lacks 'x' or 'y' \(arrays found: 'x'\)"),
        ({"x": np.zeros((3, 2)), "y": np.zeros(4)}, r"'y' has shape \(4,\) but there are 3 inputs"),
        ({"x": np.zeros((3, 2)), "y": np.array([0, 1.5, 1])}, "'y' holds non-integer values"),
        ({"x": np.zeros((3, 2)), "y": np.array([0, -1, 1])}, "negative labels"),
        ({"x": np.array([[0.0], [np.nan], [1.0]]), "y": np.zeros(3)}, "'x' contains NaN"),
        ({"x": np.zeros(3), "y": np.zeros(3)}, r"'x' has shape \(3,\), not \(n, \.\.\.features\)"),
        (
            {"x": np.zeros((3, 2)), "y": np.zeros(3), "x_val": np.zeros((2, 2))},
            "has 'x_val' without 'y_val'",
        ),
        (
            {
                "x": np.zeros((3, 2)),
                "y": np.zeros(3),
                "x_test": np.zeros((2, 3)),
                "y_test": np.zeros(2),
            },
            r"'x_test' has examples of shape \(3,\) but 'x' has \(2,\)",
        ),
    ],
)
def test_malformed_arrays_name_the_path_and_format(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=match) as info:
        _load(path)
    assert str(path) in str(info.value) and "expected a .npz archive" in str(info.value)


def test_files_that_are_not_npz_archives(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"definitely not a zip archive")
    with pytest.raises(DataError, match=re.escape(f"{garbage}: cannot be read as .npz")):
        _load(garbage)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(DataError, match="holds a single .npy array"):
        _load(single)
    truncated = tmp_path / "truncated.npz"
    np.savez(truncated, x=np.zeros((50, 4)), y=np.zeros(50))
    truncated.write_bytes(truncated.read_bytes()[:300])
    with pytest.raises(DataError, match=re.escape(str(truncated))):
        _load(truncated)
