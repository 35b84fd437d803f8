"""cifar10 and cifar10-c loaders on tiny folders written here, including hostile and broken files."""

from __future__ import annotations

import os
import pickle
import re
import struct
import tracemalloc

import numpy as np
import pytest

from infobench import registry
from infobench.data.cifar10 import TRAIN_BATCHES
from infobench.errors import DataError

CIFAR10 = registry.get("dataset", "cifar10")
CIFAR10C = registry.get("dataset", "cifar10-c")
PER_BATCH = 10  # images per training batch file: 50 training images in all


class _Python2Pickler(pickle._Pickler):
    """Writes bytes and str as Python 2 ``str`` opcodes, as in the official CIFAR-10 files.

    Python 3 pickles bytes at protocol 2 through ``_codecs.encode``, a global the loader
    rightly refuses; the official files never contain it. Their numpy dtype arguments ('u1',
    the byte order '|') are Python 2 str too, so they come back as bytes.
    """

    def save_bytes(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    def save_str(self, obj: str) -> None:
        self.save_bytes(obj.encode("latin-1"))

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def _write_python2_batch(path, data: np.ndarray, labels: list[int]) -> None:
    batch = {b"batch_label": b"training batch", b"labels": labels, b"data": data}
    with open(path, "wb") as f:
        _Python2Pickler(f, protocol=2).dump(batch)
    # numpy 1 (which wrote the official files) names its array helpers numpy.core.multiarray.
    path.write_bytes(path.read_bytes().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))


def _images(n: int, offset: int) -> np.ndarray:
    """uint8 (n, 3072) rows whose first pixel tells the image apart: offset + index."""
    data = np.zeros((n, 3072), dtype=np.uint8)
    data[:, 0] = offset + np.arange(n)
    data[:, 1024] = 200  # first pixel of the green plane
    return data


def _write_cifar10(folder, n_test: int = 8):
    folder.mkdir()
    for i, name in enumerate(TRAIN_BATCHES):
        _write_python2_batch(
            folder / name, _images(PER_BATCH, 10 * i), [j % 10 for j in range(PER_BATCH)]
        )
    # The test batch as a Python 3 user would re-pickle it: str keys, a modern protocol.
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": _images(n_test, 100), "labels": list(range(n_test))}, f, protocol=4)
    return folder


def test_cifar10_reads_official_style_batches(tmp_path):
    folder = _write_cifar10(tmp_path / "cifar")
    bundle = CIFAR10(CIFAR10.Params(path=folder, val_fraction=0.2)).load(0)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (40, 10, 8)
    assert bundle.input_shape == (3, 32, 32) and bundle.num_classes == 10
    assert bundle.train.x.dtype == np.float32 and bundle.train.x.shape[1:] == (3, 32, 32)
    # Rows are red, green, blue planes: channel 1 holds the green plane, scaled to [0, 1].
    assert np.all(bundle.test.x[:, 1, 0, 0] == np.float32(200 / 255))
    np.testing.assert_allclose(bundle.test.x[:, 0, 0, 0] * 255, 100 + np.arange(8), atol=1e-4)
    assert bundle.test.y.tolist() == list(range(8))
    ids = np.round(np.concatenate([bundle.train.x, bundle.val.x])[:, 0, 0, 0] * 255)
    assert sorted(ids) == list(range(50))


def test_cifar10_max_train_subsamples_without_moving_val(tmp_path):
    folder = _write_cifar10(tmp_path / "cifar")
    full = CIFAR10(CIFAR10.Params(path=folder)).load(0)
    few = CIFAR10(CIFAR10.Params(path=folder, max_train=20)).load(0)
    assert len(few.train) == 20 and np.array_equal(full.val.x, few.val.x)
    assert np.array_equal(np.bincount(few.train.y, minlength=10), [2] * 10)


def test_cifar10_missing_folder_and_batch_name_the_path(tmp_path):
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'nowhere'}: no such folder")):
        CIFAR10(CIFAR10.Params(path=tmp_path / "nowhere")).load(0)
    folder = _write_cifar10(tmp_path / "cifar")
    (folder / "data_batch_3").unlink()
    with pytest.raises(
        DataError, match=re.escape(f"{folder / 'data_batch_3'}: no such file")
    ) as info:
        CIFAR10(CIFAR10.Params(path=folder)).load(0)
    assert "CIFAR-10 python version" in str(info.value)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar10_refuses_pickles_that_would_run_code(tmp_path):
    folder = _write_cifar10(tmp_path / "cifar")
    marker = tmp_path / "pwned"
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump({"data": _Exploit(marker), "labels": []}, f, protocol=4)
    with pytest.raises(DataError, match=r"refused to load the global (posix|nt)\.system") as info:
        CIFAR10(CIFAR10.Params(path=folder)).load(0)
    assert str(folder / "data_batch_1") in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, match",
    [
        ("truncated", "cannot be unpickled"),
        (
            {b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]},
            r"b'data' is float32 of shape \(2, 3072\)",
        ),
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, r"shape \(2, 100\)"),
        (
            {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]},
            r"'labels' has shape \(1,\) but there are 2",
        ),
        (
            {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]},
            "'labels' holds label 12 outside 0..9",
        ),
        ({b"labels": [0]}, "lacks a b'data' array"),
        ([1, 2, 3], "holds a list, not a dict"),
    ],
)
def test_cifar10_malformed_batches_name_path_and_format(tmp_path, content, match):
    folder = _write_cifar10(tmp_path / "cifar")
    path = folder / "test_batch"
    if content == "truncated":
        path.write_bytes(path.read_bytes()[:500])
    else:
        with open(path, "wb") as f:
            pickle.dump(content, f, protocol=4)
    with pytest.raises(DataError, match=match) as info:
        CIFAR10(CIFAR10.Params(path=folder)).load(0)
    assert str(path) in str(info.value) and "expected the CIFAR-10 python version" in str(
        info.value
    )


@pytest.mark.parametrize(
    "labels",
    [np.arange(8, dtype=">i2"), [np.int64(i) for i in range(8)], np.arange(8, dtype=np.uint8)],
    ids=["big-endian array", "numpy scalars", "uint8 array"],
)
def test_cifar10_labels_may_be_numpy_arrays_or_scalars(tmp_path, labels):
    folder = _write_cifar10(tmp_path / "cifar")
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": _images(8, 100), "labels": labels}, f, protocol=4)
    bundle = CIFAR10(CIFAR10.Params(path=folder)).load(0)
    assert bundle.test.y.tolist() == list(range(8)) and bundle.test.y.dtype == np.int64


_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # numpy's _reconstruct, whichever module holds it


class _Reduce:
    """Pickles as ``function(*args)``, then ``__setstate__(state)`` when a state is given."""

    def __init__(self, function, args, state=None):
        self.reduced = (function, args) if state is None else (function, args, state)

    def __reduce__(self):
        return self.reduced


class _TamperedDtype:
    """Pickles as numpy's V8 dtype with its flags set to "holds Python objects"."""

    def __reduce__(self):
        return (np.dtype, ("V8", False, True), (3, "|", None, None, None, 8, 1, 1))


def _array(shape, dtype, values):
    return _Reduce(_RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, shape, dtype, False, values))


@pytest.mark.parametrize(
    "data, match",
    [
        # numpy.ndarray((n,), "O") allocated and filled n object slots: 2**28 took 2 GB, 13 s.
        (_Reduce(np.ndarray, ((2**31,), np.dtype("u1"))), "refused to call numpy.ndarray"),
        (
            _Reduce(_RECONSTRUCT, (np.ndarray, (2**31,), b"B")),
            r"refused array reconstruction of shape \(2147483648,\)",
        ),
        # An object array whose state holds too few items: numpy 2.4 crashes (segfault) on it.
        (_array((1,), np.dtype("O"), []), "refused dtype 'O8' with state"),
        (_array((1,), _TamperedDtype(), b"AAAAAAAA"), "refused dtype 'V8' with state"),
        (_array((2**31,), np.dtype("u1"), bytes(4)), r"needs 2147483648 bytes, found 4"),
        (_array((4194304,) * 3, np.dtype("u1"), b""), f"needs {2**66} bytes, found 0"),
    ],
    ids=[
        "ndarray-call",
        "reconstruct-shape",
        "object-dtype",
        "dtype-flags",
        "short-data",
        "overflow",
    ],
)
def test_cifar10_pickled_arrays_cannot_claim_what_the_file_lacks(tmp_path, data, match):
    """What a pickle claims about an array is checked before numpy is asked to allocate it."""
    folder = _write_cifar10(tmp_path / "cifar")
    path = folder / "test_batch"
    with open(path, "wb") as f:
        pickle.dump({b"data": data, b"labels": []}, f, protocol=4)
    assert path.stat().st_size < 300
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=match) as info:
            CIFAR10(CIFAR10.Params(path=folder)).load(0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20 and str(path) in str(info.value)


def _write_cifar10_c(folder, n: int = 6, labels_per_severity: bool = True):
    """A CIFAR-10-C folder whose pixel values encode (severity, image index)."""
    folder.mkdir()
    for name in ("gaussian_noise", "fog"):
        images = np.zeros((5 * n, 32, 32, 3), dtype=np.uint8)
        images[..., 0] = (np.arange(5 * n) // n + 1)[:, None, None] * 10  # red = 10 * severity
        images[..., 2] = (np.arange(5 * n) % n)[:, None, None]  # blue = index within severity
        np.save(folder / f"{name}.npy", images)
    labels = np.arange(n) % 10
    np.save(folder / "labels.npy", np.tile(labels, 5) if labels_per_severity else labels)
    return folder


@pytest.mark.parametrize("labels_per_severity", [True, False])
def test_cifar10_c_domains(tmp_path, labels_per_severity):
    clean = _write_cifar10(tmp_path / "cifar")
    folder = _write_cifar10_c(tmp_path / "c", labels_per_severity=labels_per_severity)
    params = CIFAR10C.Params(path=folder, train_path=clean, severity=[5, 2])
    bundle = CIFAR10C(params).load(0)
    # Default corruptions: every .npy but the labels, sorted by name.
    assert list(bundle.domains) == ["fog@5", "fog@2", "gaussian_noise@5", "gaussian_noise@2"]
    for key, split in bundle.domains.items():
        severity = int(key.split("@")[1])
        assert split.x.shape == (6, 3, 32, 32) and split.x.dtype == np.float32
        assert split.x.flags.c_contiguous
        np.testing.assert_allclose(split.x[:, 0], 10 * severity / 255)  # channel-first red plane
        np.testing.assert_allclose(split.x[:, 2, 0, 0] * 255, np.arange(6), atol=1e-4)
        assert split.y.tolist() == list(range(6))
    assert len(bundle.test) == 8 and bundle.input_shape == (3, 32, 32)


def test_cifar10_c_selected_corruptions_and_errors(tmp_path):
    clean = _write_cifar10(tmp_path / "cifar")
    folder = _write_cifar10_c(tmp_path / "c")
    bundle = CIFAR10C(
        CIFAR10C.Params(path=folder, train_path=clean, corruptions=["gaussian_noise"])
    ).load(0)
    assert list(bundle.domains) == ["gaussian_noise@5"]

    missing = CIFAR10C(CIFAR10C.Params(path=folder, train_path=clean, corruptions=["snow"]))
    with pytest.raises(
        DataError,
        match=re.escape(
            f"{folder / 'snow.npy'}: no such file (corruptions found: fog, gaussian_noise)"
        ),
    ):
        missing.load(0)

    np.save(folder / "fog.npy", np.zeros((7, 32, 32, 3), np.uint8))
    with pytest.raises(DataError, match="has 7 images, not 5 severities of the 30 labels") as info:
        CIFAR10C(CIFAR10C.Params(path=folder, train_path=clean)).load(0)
    assert str(folder / "fog.npy") in str(info.value) and "CIFAR-10-C folder" in str(info.value)

    np.save(folder / "fog.npy", np.zeros((30, 32, 32), np.uint8))
    with pytest.raises(DataError, match=r"holds uint8 of shape \(30, 32, 32\)"):
        CIFAR10C(CIFAR10C.Params(path=folder, train_path=clean)).load(0)

    (folder / "fog.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match=re.escape(f"{folder / 'fog.npy'}: cannot be read as .npy")):
        CIFAR10C(CIFAR10C.Params(path=folder, train_path=clean)).load(0)


def test_cifar10_c_params_validation():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="names without folders"):
        CIFAR10C.Params(corruptions=["../fog"])
    with pytest.raises(ValidationError, match="severities must be in"):
        CIFAR10C.Params(severity=7)
