"""cifar100 and cifar100-c loaders on tiny folders in the release layouts, written here.

The pickles are read by the same code as CIFAR-10's (tested with Python 2 pickles and hostile
files in test_cifar10_loader.py); these tests pin what differs: the file names, the
``b'fine_labels'`` key, 100 classes, and the shared CIFAR-C loader with its ``standard`` list.
"""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest

from infobench import registry
from infobench.data.corruption_names import BENCHMARK_CORRUPTIONS
from infobench.errors import DataError

CIFAR100 = registry.get("dataset", "cifar100")
CIFAR100C = registry.get("dataset", "cifar100-c")


def _rows(n: int, offset: int) -> np.ndarray:
    """uint8 (n, 3072) rows: red plane's first pixel = offset + index, blue plane = 50."""
    data = np.zeros((n, 3072), dtype=np.uint8)
    data[:, 0] = offset + np.arange(n)
    data[:, 2048:] = 50
    return data


def _write_batch(path, data: np.ndarray, fine: list[int]) -> None:
    # The keys and values of the release's pickles (bytes keys, labels as lists).
    batch = {
        b"filenames": [f"img_{i}.png".encode() for i in range(len(data))],
        b"batch_label": b"training batch 1 of 1",
        b"fine_labels": fine,
        b"coarse_labels": [label // 5 for label in fine],
        b"data": data,
    }
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=4)


def _write_cifar100(folder, n_train: int = 40, n_test: int = 6):
    folder.mkdir()
    _write_batch(folder / "train", _rows(n_train, 0), [99 - (i % 4) for i in range(n_train)])
    _write_batch(folder / "test", _rows(n_test, 100), [7 * i for i in range(n_test)])
    (folder / "meta").write_bytes(b"not read")
    return folder


def test_cifar100_reads_the_python_version_folder(tmp_path):
    folder = _write_cifar100(tmp_path / "cifar-100-python")
    bundle = CIFAR100(CIFAR100.Params(path=folder, val_fraction=0.25)).load(0)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (30, 10, 6)
    assert bundle.num_classes == 100 and bundle.input_shape == (3, 32, 32)
    assert bundle.name == "cifar100" and CIFAR100.family == "cifar"
    assert bundle.train.x.dtype == np.float32 and bundle.train.x.shape == (30, 3, 32, 32)
    # Rows are the red, green, blue planes; values scaled to [0, 1].
    assert np.all(bundle.test.x[:, 2] == np.float32(50 / 255)) and np.all(bundle.test.x[:, 1] == 0)
    np.testing.assert_allclose(bundle.test.x[:, 0, 0, 0] * 255, 100 + np.arange(6), atol=1e-4)
    assert bundle.test.y.tolist() == [0, 7, 14, 21, 28, 35]
    # Every training image lands in train or val once, with its fine label.
    x = np.concatenate([bundle.train.x, bundle.val.x])
    y = np.concatenate([bundle.train.y, bundle.val.y])
    ids = np.round(x[:, 0, 0, 0] * 255).astype(int)
    assert sorted(ids) == list(range(40)) and (y == 99 - ids % 4).all()


@pytest.mark.parametrize(
    "batch, match",
    [
        ({b"data": _rows(2, 0), b"labels": [0, 1]}, "lacks a b'data' array or b'fine_labels'"),
        ({b"data": _rows(2, 0), b"fine_labels": [0, 100]}, "'fine_labels' holds label 100 outside 0..99"),
        ({b"data": np.zeros((2, 3072), np.int16), b"fine_labels": [0, 1]}, r"b'data' is int16"),
    ],
)
def test_cifar100_malformed_files_name_the_path_and_format(tmp_path, batch, match):
    folder = _write_cifar100(tmp_path / "c100")
    with open(folder / "test", "wb") as f:
        pickle.dump(batch, f, protocol=4)
    with pytest.raises(DataError, match=match) as info:
        CIFAR100(CIFAR100.Params(path=folder)).load(0)
    assert f"{folder / 'test'}: " in str(info.value)
    assert "expected the CIFAR-100 python version: a folder with train and test" in str(info.value)


def test_cifar100_missing_file_names_it(tmp_path):
    folder = _write_cifar100(tmp_path / "c100")
    (folder / "train").unlink()
    dataset = CIFAR100(CIFAR100.Params(path=folder))
    for call in (dataset.files, lambda: dataset.load(0)):
        with pytest.raises(DataError, match=re.escape(f"{folder / 'train'}: no such file")):
            call()
    (folder / "train").touch()
    assert dataset.files() == [folder / "train", folder / "test"]


def _write_cifar100_c(folder, names=("gaussian_noise", "fog"), n: int = 4):
    """CIFAR-100-C: per corruption (5 * n, 32, 32, 3) uint8, red = 10 * severity + corruption
    index, green = image index; labels.npy with 5 * n fine labels."""
    folder.mkdir()
    for c, name in enumerate(names):
        images = np.zeros((5 * n, 32, 32, 3), dtype=np.uint8)
        images[..., 0] = (10 * (np.arange(5 * n) // n + 1) + c)[:, None, None]
        images[..., 1] = (np.arange(5 * n) % n)[:, None, None]
        np.save(folder / f"{name}.npy", images)
    np.save(folder / "labels.npy", np.tile(np.arange(n) * 30 + 9, 5))  # 9, 39, 69, 99
    return folder


def test_cifar100_c_domains_and_clean_splits(tmp_path):
    clean = _write_cifar100(tmp_path / "c100")
    folder = _write_cifar100_c(tmp_path / "CIFAR-100-C")
    params = CIFAR100C.Params(path=folder, train_path=clean, corruptions=["fog", "gaussian_noise"], severity=[5, 1])
    bundle = CIFAR100C(params).load(0)
    assert list(bundle.domains) == ["fog@5", "fog@1", "gaussian_noise@5", "gaussian_noise@1"]
    assert bundle.name == "cifar100-c" and bundle.num_classes == 100 and len(bundle.test) == 6
    for key, split in bundle.domains.items():
        name, level = key.split("@")
        c = ("gaussian_noise", "fog").index(name)
        assert split.x.shape == (4, 3, 32, 32) and split.x.dtype == np.float32
        np.testing.assert_allclose(split.x[:, 0] * 255, 10 * int(level) + c, atol=1e-4)
        np.testing.assert_allclose(split.x[:, 1, 0, 0] * 255, np.arange(4), atol=1e-4)
        assert split.y.tolist() == [9, 39, 69, 99]
    same_train = CIFAR100C(CIFAR100C.Params(path=folder, train_path=clean, severity=2))
    assert same_train.train_params() == CIFAR100C(params).train_params()
    assert same_train.train_files() == [clean / "train", clean / "test"]


def test_cifar100_c_standard_is_the_benchmark_list_in_its_order(tmp_path):
    clean = _write_cifar100(tmp_path / "c100")
    extra = ("speckle_noise", "saturate")  # in the release, not in the benchmark
    folder = _write_cifar100_c(tmp_path / "C", names=(*BENCHMARK_CORRUPTIONS, *extra), n=1)
    standard = CIFAR100C(CIFAR100C.Params(path=folder, train_path=clean, corruptions="standard"))
    assert list(standard.load(0).domains) == [f"{name}@5" for name in BENCHMARK_CORRUPTIONS]
    assert BENCHMARK_CORRUPTIONS[:3] == ("gaussian_noise", "shot_noise", "impulse_noise")
    assert BENCHMARK_CORRUPTIONS[-1] == "jpeg_compression" and len(BENCHMARK_CORRUPTIONS) == 15
    # Left unset: every .npy of the folder, sorted by name (cifar10-c's default, kept).
    every = CIFAR100C(CIFAR100C.Params(path=folder, train_path=clean))
    assert list(every.load(0).domains) == [f"{n}@5" for n in sorted((*BENCHMARK_CORRUPTIONS, *extra))]


def test_cifar100_c_errors_name_the_path_and_format(tmp_path):
    clean = _write_cifar100(tmp_path / "c100")
    folder = _write_cifar100_c(tmp_path / "C")
    np.save(folder / "labels.npy", np.full(20, 100))
    with pytest.raises(DataError, match="'labels' holds label 100 outside 0..99") as info:
        CIFAR100C(CIFAR100C.Params(path=folder, train_path=clean)).load(0)
    assert f"{folder / 'labels.npy'}: " in str(info.value) and "a CIFAR-100-C folder" in str(info.value)
    snow = CIFAR100C(CIFAR100C.Params(path=folder, train_path=clean, corruptions=["snow"]))
    found = "corruptions found: fog, gaussian_noise"
    with pytest.raises(DataError, match=re.escape(f"{folder / 'snow.npy'}: no such file ({found})")):
        snow.files()
