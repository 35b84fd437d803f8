"""The MNIST IDX loader: header parsing, gzip, scaling, and errors naming the path and format."""

from __future__ import annotations

import gzip
import re
import struct
import time
import tracemalloc

import numpy as np
import pytest

from infobench import registry
from infobench.data.mnist_idx import MNIST_FILES, parse_idx
from infobench.errors import DataError

MNISTIdx = registry.get("dataset", "mnist-idx")


def _idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write_mnist(folder, n_train: int = 20, n_test: int = 6, gz: bool = False):
    """IDX files of 28x28 images whose first pixel is the image's index (labels cycle 0..9)."""
    folder.mkdir()
    for part, n in (("train", n_train), ("test", n_test)):
        images = np.zeros((n, 28, 28), dtype=np.uint8)
        images[:, 0, 0] = np.arange(n)
        images[:, 27, 27] = 255
        labels = (np.arange(n) % 10).astype(np.uint8)
        for name, array, code in zip(
            MNIST_FILES[part], (images, labels), (0x08, 0x08), strict=True
        ):
            raw = _idx_bytes(array, code)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
    return folder


@pytest.mark.parametrize("gz", [False, True])
def test_reads_plain_and_gzipped_files(tmp_path, gz):
    folder = _write_mnist(tmp_path / "mnist", gz=gz)
    bundle = MNISTIdx(MNISTIdx.Params(path=folder, val_fraction=0.1)).load(0)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (18, 2, 6)
    assert bundle.input_shape == (1, 28, 28) and bundle.num_classes == 10
    assert bundle.test.x.shape == (6, 1, 28, 28) and bundle.test.x.dtype == np.float32
    assert bundle.test.y.dtype == np.int64 and bundle.test.y.tolist() == [0, 1, 2, 3, 4, 5]
    assert np.all(bundle.test.x[:, 0, 27, 27] == 1.0)
    np.testing.assert_allclose(bundle.test.x[:, 0, 0, 0] * 255, np.arange(6), atol=1e-4)
    train_ids = np.round(np.concatenate([bundle.train.x, bundle.val.x])[:, 0, 0, 0] * 255)
    assert sorted(train_ids) == list(range(20))


@pytest.mark.parametrize(
    "code, dtype",
    [
        (0x08, np.uint8),
        (0x09, np.int8),
        (0x0B, np.int16),
        (0x0C, np.int32),
        (0x0D, np.float32),
        (0x0E, np.float64),
    ],
)
def test_parse_idx_decodes_every_type_big_endian(code, dtype):
    array = (np.arange(24).reshape(2, 3, 4) * 3).astype(dtype)
    parsed = parse_idx(_idx_bytes(array, code), "mem")
    assert parsed.shape == (2, 3, 4) and parsed.dtype == dtype and np.array_equal(parsed, array)


def test_missing_files_name_the_path(tmp_path):
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'none'}: no such folder")):
        MNISTIdx(MNISTIdx.Params(path=tmp_path / "none")).load(0)
    folder = _write_mnist(tmp_path / "mnist")
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError) as info:
        MNISTIdx(MNISTIdx.Params(path=folder)).load(0)
    message = str(info.value)
    assert f"{folder / 't10k-labels-idx1-ubyte'}: no such file (nor with .gz)" in message
    assert "train-images-idx3-ubyte" in message  # the expected layout is spelled out


def _images_raw(n: int = 20) -> bytes:
    return _idx_bytes(np.zeros((n, 28, 28), dtype=np.uint8))


@pytest.mark.parametrize(
    "raw, match",
    [
        (b"\x08\x03" + _images_raw()[2:], "bad magic number 0803"),
        (b"", "bad magic number none"),
        (b"\x00\x00\x07\x03" + _images_raw()[4:], "unknown type code 0x07"),
        (_images_raw()[:10], r"header truncated: 3 sizes need 16 bytes"),
        (
            _images_raw()[:-5],
            r"truncated: shape \(20, 28, 28\) needs 15680 bytes of values, found 15675",
        ),
        (_images_raw() + b"\x00", "has trailing bytes"),
    ],
)
def test_malformed_idx_names_path_and_format(tmp_path, raw, match):
    folder = _write_mnist(tmp_path / "mnist")
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(raw)
    with pytest.raises(DataError, match=match) as info:
        MNISTIdx(MNISTIdx.Params(path=folder)).load(0)
    assert str(path) in str(info.value) and "expected an IDX file" in str(info.value)


def test_inconsistent_files_are_rejected(tmp_path):
    folder = _write_mnist(tmp_path / "mnist")
    (folder / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(19, dtype=np.uint8)))
    with pytest.raises(DataError, match=r"'labels' has shape \(19,\) but there are 20 inputs"):
        MNISTIdx(MNISTIdx.Params(path=folder)).load(0)
    (folder / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros((20, 1), dtype=np.uint8)))
    with pytest.raises(DataError, match="has shape"):
        MNISTIdx(MNISTIdx.Params(path=folder)).load(0)
    (folder / "train-images-idx3-ubyte").write_bytes(
        _idx_bytes(np.zeros((20, 28, 28), np.int32), 0x0C)
    )
    with pytest.raises(DataError, match=r"holds int32 of shape \(20, 28, 28\)"):
        MNISTIdx(MNISTIdx.Params(path=folder)).load(0)


def test_corrupt_gzip_names_the_path(tmp_path):
    folder = _write_mnist(tmp_path / "mnist", gz=True)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match=re.escape(f"{path}: cannot be read")):
        MNISTIdx(MNISTIdx.Params(path=folder)).load(0)


def _refused_load(folder) -> tuple[int, str]:
    """The peak traced allocation (numpy's arrays included) of loading ``folder``, which must
    fail, and its DataError message."""
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as info:
            MNISTIdx(MNISTIdx.Params(path=folder)).load(0)
        return tracemalloc.get_traced_memory()[1], str(info.value)
    finally:
        tracemalloc.stop()


def test_gzip_with_6_gib_of_trailing_zeros_is_refused_unread(tmp_path):
    """Issue 12.13: "An idx file with 6 GiB of trailing zeros (6.4 MB gzipped) is read whole
    before the size check" (it ran out of a 4 GB address space after 44 s)."""
    folder = _write_mnist(tmp_path / "mnist")
    (folder / "train-images-idx3-ubyte").unlink()
    path = folder / "train-images-idx3-ubyte.gz"
    # gzip members may be concatenated: 6144 copies of 1 MiB of zeros, written in milliseconds.
    zeros = gzip.compress(bytes(2**20), compresslevel=9)
    with open(path, "wb") as f:
        f.write(gzip.compress(_images_raw()))
        for _ in range(6 * 1024):
            f.write(zeros)
    assert path.stat().st_size < 7e6
    started = time.perf_counter()
    peak, message = _refused_load(folder)
    assert peak < 4 * 2**20 and time.perf_counter() - started < 2.0
    assert f"{path}: has trailing bytes: shape (20, 28, 28) needs 15680 bytes of values" in message


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "shape, needs", [((4194304, 4194304, 4194304), 2**66), ((2**20, 28, 28), 2**20 * 784)]
)
def test_header_sizes_are_bounded_before_allocating(tmp_path, gz, shape, needs):
    """Issue 12.13: "an idx header of (4194304, 4194304, 4194304) overflows `np.prod`" (to 0,
    so an empty body passed the size check); and a header claiming 822 MB of a 15 kB body."""
    folder = _write_mnist(tmp_path / "mnist", gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    raw = struct.pack(">BBBB3I", 0, 0, 0x08, 3, *shape) + bytes(15680)
    (folder / name).write_bytes(gzip.compress(raw) if gz else raw)
    peak, message = _refused_load(folder)
    assert peak < 4 * 2**20
    assert (
        f"{folder / name}: truncated: shape {shape} needs {needs} bytes of values, found 15680"
        in message
    )


def test_a_label_beyond_max_classes_is_refused(tmp_path):
    """The labels file's type code may be int32: one label of 2**31 - 1 would make 2**31 classes."""
    folder = _write_mnist(tmp_path / "mnist")
    labels = (np.arange(20) % 10).astype(np.int32)
    labels[3] = 2**31 - 1
    (folder / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(labels, 0x0C))
    peak, message = _refused_load(folder)
    assert (
        f"{folder / 'train-labels-idx1-ubyte'}: 'labels' holds label {2**31 - 1}, but labels must be below"
        in message
    )
