"""CIFAR-10 from its "python version" folder, read without executing anything from the pickles.

The batches are pickled dicts, and a pickle can name any importable callable to run on load.
:class:`RestrictedUnpickler` therefore resolves only the few numpy globals an array needs and
refuses every other, so a tampered file fails with a ``DataError`` instead of running code.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from infobench.data.base import DataBundle, Dataset, Split
from infobench.data.files import (
    PathStr,
    check_labels,
    data_error,
    require_dir,
    require_file,
    unit_float,
)
from infobench.data.splits import HeldOutParams, carve_val
from infobench.errors import DataError
from infobench.registry import register

try:
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy < 2 has no numpy._core
    from numpy.core import multiarray as _multiarray

CIFAR10_FORMAT = (
    "the CIFAR-10 python version: a folder with data_batch_1 ... data_batch_5 and test_batch, "
    "each a pickled dict with b'data' uint8 (n, 3072) and b'labels' (n,) in 0..9"
)
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
IMAGE_SHAPE = (3, 32, 32)

# numpy 1 pickles (the official files) name numpy.core.multiarray, numpy 2 numpy._core.multiarray;
# both map to the objects of the numpy installed, so nothing is imported on the pickle's behalf.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{
        (module, name): getattr(_multiarray, name)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    },
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays and builtin containers, and refuses other globals."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DataError(
                f"refused to load the global {module}.{name} (only numpy arrays are allowed)"
            ) from None


def _field(batch: dict, key: str) -> Any:
    # Python 2 pickles (the official files) read with encoding="bytes" have bytes keys;
    # batches re-pickled under Python 3 usually have str keys.
    return batch.get(key.encode(), batch.get(key))


def read_batch(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """One batch file: images uint8 (n, 3, 32, 32) and labels int64 (n,)."""
    path = require_file(path, CIFAR10_FORMAT)
    with open(path, "rb") as f:
        try:
            batch = RestrictedUnpickler(f, encoding="bytes").load()
        except Exception as err:
            # A damaged pickle fails in whichever opcode breaks (EOFError, UnpicklingError,
            # ValueError, ...); a refused global is a DataError. All mean "not a CIFAR batch".
            raise data_error(path, f"cannot be unpickled ({err})", CIFAR10_FORMAT) from err
    if not isinstance(batch, dict):
        raise data_error(path, f"holds a {type(batch).__name__}, not a dict", CIFAR10_FORMAT)
    data, labels = _field(batch, "data"), _field(batch, "labels")
    if not isinstance(data, np.ndarray) or labels is None:
        raise data_error(path, "lacks a b'data' array or b'labels'", CIFAR10_FORMAT)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != np.prod(IMAGE_SHAPE):
        raise data_error(path, f"b'data' is {data.dtype} of shape {data.shape}", CIFAR10_FORMAT)
    labels = check_labels(
        np.asarray(labels), len(data), path, CIFAR10_FORMAT, name="labels", num_classes=10
    )
    # Rows store the red, green and blue 32x32 planes in turn: already channels-first.
    return data.reshape(-1, *IMAGE_SHAPE), labels


def _read_batches(folder: Path, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    parts = [read_batch(folder / name) for name in names]
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def cifar10_splits(folder: Path | str, params: HeldOutParams) -> tuple[Split, Split, Split]:
    """Clean (train, val, test), x float32 (n, 3, 32, 32) in [0, 1]; val is carved from train."""
    folder = require_dir(folder, CIFAR10_FORMAT)
    x, y = _read_batches(folder, TRAIN_BATCHES)
    # Split while still uint8, so only the kept rows are ever expanded to float32.
    train, val = carve_val(x, y, params.val_fraction, params.split_seed, params.max_train)
    x_test, y_test = read_batch(folder / TEST_BATCH)
    return (
        Split(unit_float(train.x), train.y),
        Split(unit_float(val.x), val.y),
        Split(unit_float(x_test), y_test),
    )


@register("dataset", "cifar10")
class CIFAR10(Dataset):
    """CIFAR-10 from the python-version folder, x (n, 3, 32, 32) in [0, 1], 10 classes."""

    class Params(HeldOutParams):
        """The CIFAR-10 folder and the val carve-out / subsample of its 50,000 training images."""

        path: PathStr = Field(
            "data/cifar-10-batches-py", description=f"the folder: {CIFAR10_FORMAT}"
        )

    def load(self, seed: int) -> DataBundle:
        train, val, test = cifar10_splits(self.params.path, self.params)
        return DataBundle(
            name="cifar10", train=train, val=val, test=test, num_classes=10, input_shape=IMAGE_SHAPE
        )
