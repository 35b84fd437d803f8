"""MNIST (or Fashion-MNIST) from the original IDX files, parsed from their header by hand.

An IDX file is: two zero bytes, a type code byte, a byte giving the number of dimensions ``d``,
``d`` big-endian uint32 sizes, then the values in C order, big-endian. Files may be gzipped.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
from pydantic import Field

from infobench.data.base import DataBundle, Dataset, Split
from infobench.data.files import (
    PathStr,
    check_labels,
    data_error,
    read_values,
    require_dir,
    unit_float,
)
from infobench.data.splits import HeldOutParams, carve_val
from infobench.registry import register

IDX_FORMAT = (
    "an IDX file (optionally .gz): bytes 0x00 0x00, a type code, the number of dimensions d, "
    "d big-endian uint32 sizes, then exactly that many big-endian values"
)
MNIST_FORMAT = (
    "a folder with train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
    "t10k-labels-idx1-ubyte (each optionally .gz): uint8 images (n, H, W) and uint8 labels (n,)"
)
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# IDX type codes and the big-endian numpy dtypes they denote.
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx_stream(stream: BinaryIO, path: Path | str) -> np.ndarray:
    """The array encoded by the IDX bytes of ``stream`` (read from ``path``, named in errors).

    The header is checked before any value is read, and the values are read with
    :func:`~infobench.data.files.read_values`: what the header claims is never allocated
    before the file shows it holds that much, and data past the claimed size is not read.
    """
    magic = stream.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0:
        raise data_error(path, f"bad magic number {magic.hex() or 'none'}", IDX_FORMAT)
    code, ndim = magic[2], magic[3]
    if code not in IDX_TYPES:
        raise data_error(path, f"unknown type code 0x{code:02x}", IDX_FORMAT)
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise data_error(
            path, f"header truncated: {ndim} sizes need {4 + 4 * ndim} bytes", IDX_FORMAT
        )
    shape = struct.unpack(f">{ndim}I", sizes)
    dtype = IDX_TYPES[code]
    values = read_values(stream, shape, dtype, path, IDX_FORMAT)
    # Native byte order; a no-op (no copy) for the one-byte types of MNIST.
    return values.astype(dtype.newbyteorder("="), copy=False)


def parse_idx(raw: bytes, path: Path | str) -> np.ndarray:
    """The array encoded by the IDX bytes ``raw`` (read from ``path``, named in errors)."""
    return read_idx_stream(io.BytesIO(raw), path)


def read_idx(path: Path) -> np.ndarray:
    """The array in an IDX file, gunzipped (as a stream) when the name ends in .gz."""
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as stream:
            return read_idx_stream(stream, path)
    except (OSError, EOFError, zlib.error) as err:
        # gzip reports a damaged stream as BadGzipFile (an OSError), EOFError or zlib.error.
        raise data_error(path, f"cannot be read ({err})", IDX_FORMAT) from err


def find_idx(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/name.gz`` when only that exists; else a ``DataError``."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise data_error(folder / name, "no such file (nor with .gz)", MNIST_FORMAT)


def read_mnist_part(folder: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (n, H, W) and labels int64 (n,) of the "train" or "test" part."""
    images_name, labels_name = MNIST_FILES[part]
    images_path, labels_path = find_idx(folder, images_name), find_idx(folder, labels_name)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise data_error(images_path, f"holds {images.dtype} of shape {images.shape}", MNIST_FORMAT)
    if not len(images):
        raise data_error(images_path, "holds no images", MNIST_FORMAT)
    labels = check_labels(labels, len(images), labels_path, MNIST_FORMAT, name="labels")
    return images, labels


@register("dataset", "mnist-idx")
class MNISTIdx(Dataset):
    """MNIST-style IDX files (plain or .gz), x (n, 1, 28, 28) in [0, 1]."""

    class Params(HeldOutParams):
        """The folder of the four IDX files and the val carve-out / subsample of train."""

        path: PathStr = Field("data/mnist", description=f"the folder: {MNIST_FORMAT}")

    test_only = ()  # every field shapes the train and val splits

    def files(self) -> list[Path]:
        """The four IDX files, each plain or .gz as :func:`find_idx` picks it."""
        folder = require_dir(self.params.path, MNIST_FORMAT)
        return [find_idx(folder, name) for names in MNIST_FILES.values() for name in names]

    def load(self, seed: int) -> DataBundle:
        p = self.params
        folder = require_dir(p.path, MNIST_FORMAT)
        x, y = read_mnist_part(folder, "train")
        x_test, y_test = read_mnist_part(folder, "test")
        if x.shape[1:] != x_test.shape[1:]:
            raise data_error(
                folder,
                f"train images are {x.shape[1:]} but test images {x_test.shape[1:]}",
                MNIST_FORMAT,
            )
        train, val = carve_val(x, y, p.val_fraction, p.split_seed, p.max_train)

        def as_split(images: np.ndarray, labels: np.ndarray) -> Split:
            return Split(unit_float(images)[:, None, :, :], labels)

        return DataBundle(
            name="mnist-idx",
            train=as_split(train.x, train.y),
            val=as_split(val.x, val.y),
            test=as_split(x_test, y_test),
            num_classes=int(max(y.max(), y_test.max())) + 1,
            input_shape=(1, *x.shape[1:]),
        )
