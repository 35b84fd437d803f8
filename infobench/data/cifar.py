"""CIFAR-10 and CIFAR-100 from their "python version" folders (Krizhevsky, 2009).

Both ship pickled dicts holding ``b'data'``, uint8 (n, 3072) whose rows are the red, green and
blue 32x32 planes in turn, and a list of labels (CIFAR-10 ``b'labels'``, CIFAR-100
``b'fine_labels'``). The pickles are read with :mod:`infobench.data.pickles`, which executes
nothing they name. A :class:`CifarLayout` says which files and label key one dataset uses;
:class:`CifarFolder` is the dataset plug-in shared by both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from infobench.data.base import DataBundle, Dataset, Split
from infobench.data.files import check_labels, data_error, require_dir, require_file, unit_float
from infobench.data.pickles import load_pickle, unpickled_array
from infobench.data.splits import HeldOutParams, carve_val

IMAGE_SHAPE = (3, 32, 32)


@dataclass(frozen=True)
class CifarLayout:
    """The files of one CIFAR python-version folder and how their labels are stored."""

    title: str
    """The dataset's name in messages, e.g. ``"CIFAR-10"``."""
    train_files: tuple[str, ...]
    test_file: str
    label_key: str
    num_classes: int

    @property
    def expected(self) -> str:
        """The folder format, as error messages and parameter descriptions state it."""
        files = " and ".join([", ".join(self.train_files), self.test_file])
        return (
            f"the {self.title} python version: a folder with {files}, each a pickled dict with "
            f"b'data' uint8 (n, 3072) and b'{self.label_key}' (n,) in 0..{self.num_classes - 1}"
        )


def _field(batch: dict, key: str) -> Any:
    # Python 2 pickles (the official files) read with encoding="bytes" have bytes keys;
    # batches re-pickled under Python 3 usually have str keys.
    return unpickled_array(batch.get(key.encode(), batch.get(key)))


def read_batch(path: Path | str, layout: CifarLayout) -> tuple[np.ndarray, np.ndarray]:
    """One batch file: images uint8 (n, 3, 32, 32) and labels int64 (n,)."""
    path, expected = require_file(path, layout.expected), layout.expected
    batch = load_pickle(path, expected)
    if not isinstance(batch, dict):
        raise data_error(path, f"holds a {type(batch).__name__}, not a dict", expected)
    data, labels = _field(batch, "data"), _field(batch, layout.label_key)
    if not isinstance(data, np.ndarray) or labels is None:
        raise data_error(path, f"lacks a b'data' array or b'{layout.label_key}'", expected)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != np.prod(IMAGE_SHAPE):
        raise data_error(path, f"b'data' is {data.dtype} of shape {data.shape}", expected)
    labels = check_labels(
        np.asarray(labels), len(data), path, expected, layout.label_key, layout.num_classes
    )
    # Rows store the red, green and blue 32x32 planes in turn: already channels-first.
    return data.reshape(-1, *IMAGE_SHAPE), labels


def cifar_files(folder: Path | str, layout: CifarLayout) -> list[Path]:
    """The batch files of a CIFAR folder, training files first; a ``DataError`` if one lacks."""
    folder = require_dir(folder, layout.expected)
    names = (*layout.train_files, layout.test_file)
    return [require_file(folder / name, layout.expected) for name in names]


def cifar_splits(
    folder: Path | str, params: HeldOutParams, layout: CifarLayout
) -> tuple[Split, Split, Split]:
    """Clean (train, val, test), x float32 (n, 3, 32, 32) in [0, 1]; val is carved from train."""
    folder = require_dir(folder, layout.expected)
    parts = [read_batch(folder / name, layout) for name in layout.train_files]
    x, y = np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])
    # Split while still uint8, so only the kept rows are ever expanded to float32.
    train, val = carve_val(x, y, params.val_fraction, params.split_seed, params.max_train)
    x_test, y_test = read_batch(folder / layout.test_file, layout)
    return (
        Split(unit_float(train.x), train.y),
        Split(unit_float(val.x), val.y),
        Split(unit_float(x_test), y_test),
    )


class CifarFolder(Dataset):
    """A CIFAR python-version folder (``Params.path``), x (n, 3, 32, 32) in [0, 1].

    Subclasses set :attr:`layout` and a ``Params`` (a :class:`HeldOutParams` with ``path``).
    """

    layout: ClassVar[CifarLayout]

    def files(self) -> list[Path]:
        return cifar_files(self.params.path, self.layout)

    def load(self, seed: int) -> DataBundle:
        train, val, test = cifar_splits(self.params.path, self.params, self.layout)
        return DataBundle(
            name=self.registered_name,
            train=train,
            val=val,
            test=test,
            num_classes=self.layout.num_classes,
            input_shape=IMAGE_SHAPE,
        )
