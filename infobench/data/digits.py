"""scikit-learn's bundled 8x8 handwritten digits: 1,797 images of 10 classes, no download needed."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from infobench.data.base import DataBundle, Dataset, Split
from infobench.data.splits import SplitParams, split_stratified
from infobench.errors import InfobenchError
from infobench.registry import register

# load_digits stores pixel intensities as integers 0..16.
_MAX_INTENSITY = 16.0


def _bundled_digits_file() -> Path:
    """sklearn's digits.csv.gz, found without importing sklearn (which takes ~0.9 s per process)."""
    found = importlib.util.find_spec("sklearn")
    if found is None or not found.submodule_search_locations:
        raise InfobenchError("the digits data set ships with scikit-learn, which is not installed: pip install scikit-learn")
    return Path(next(iter(found.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"


@lru_cache(maxsize=1)
def digit_images() -> tuple[np.ndarray, np.ndarray]:
    """All digits: x float32 (1797, 1, 8, 8) in [0, 1], y int64 (1797,); read-only, cached.

    Read from the same file ``sklearn.datasets.load_digits`` reads (one row per image: 64
    pixels then the label); a test checks both give identical arrays.
    """
    path = _bundled_digits_file()
    if path.exists():
        table = np.loadtxt(path, delimiter=",", dtype=np.float64)
        pixels, labels = table[:, :-1], table[:, -1]
    else:  # a future scikit-learn that moves the file: same data through its public loader
        from sklearn.datasets import load_digits

        raw = load_digits()
        pixels, labels = raw.data, raw.target
    x = (pixels.reshape(-1, 8, 8) / _MAX_INTENSITY).astype(np.float32)[:, None, :, :]
    y = labels.astype(np.int64)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def digit_files() -> list[Path]:
    """The file :func:`digit_images` reads: sklearn's digits.csv.gz (none if sklearn moved it)."""
    path = _bundled_digits_file()
    return [path] if path.exists() else []


def digit_splits(params: SplitParams) -> tuple[Split, Split, Split]:
    """Stratified (train, val, test) splits of the digits, fixed by ``params`` (not the run seed)."""
    x, y = digit_images()
    return split_stratified(x, y, params.val_fraction, params.test_fraction, params.split_seed)


@register("dataset", "digits")
class Digits(Dataset):
    """scikit-learn 8x8 digits (1,797 images, 10 classes), x (n, 1, 8, 8) in [0, 1]."""

    class Params(SplitParams):
        """Stratified split of the 1,797 digits; train keeps 1 - val_fraction - test_fraction."""

    test_only = ()  # every field moves rows between train, val and test

    def files(self) -> list[Path]:
        return digit_files()

    def load(self, seed: int) -> DataBundle:
        train, val, test = digit_splits(self.params)
        return DataBundle(
            name="digits", train=train, val=val, test=test, num_classes=10, input_shape=(1, 8, 8)
        )
