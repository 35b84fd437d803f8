"""What dataset plugins declare for run identity: the files they read and their test-only params."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from infobench import registry
from infobench.data.base import Dataset
from infobench.data.cifar10 import TEST_BATCH, TRAIN_BATCHES
from infobench.data.mnist_idx import MNIST_FILES
from infobench.errors import DataError

# The plugins of infobench.data, and the params that may change without retraining.
TEST_ONLY = {
    "npz": (),
    "cifar10": (),
    "cifar10-c": ("path", "corruptions", "severity"),
    "cifar100": (),
    "cifar100-c": ("path", "corruptions", "severity"),
    "imagenet-c": (
        "root", "corruptions", "severity", "n_per_domain", "subset_seed", "image_list", "val_root",
    ),
    "image-folder": ("domains",),
    "mnist-idx": (),
    "digits": (),
    "digits-c": ("corruptions", "severity"),
    "mnist1d": ("shifts",),
}


def _plugin(name: str, **params) -> Dataset:
    cls = registry.get("dataset", name)
    return cls(cls.Params(**params))


def _touch(folder: Path, *names: str) -> list[Path]:
    """Empty files: files() must not parse anything, so their content never matters."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).touch()
    return [folder / name for name in names]


@pytest.mark.parametrize("name", TEST_ONLY)
def test_every_plugin_declares_test_only_and_train_params_drop_exactly_those(name):
    cls = registry.get("dataset", name)
    assert cls.test_only == TEST_ONLY[name] and "test_only" in vars(cls)
    params = cls.Params().model_dump(mode="json")
    train_params = cls(cls.Params()).train_params()
    assert train_params == {k: v for k, v in params.items() if k not in TEST_ONLY[name]}
    json.dumps(train_params)  # JSON-ready, for the core's cache key


def test_test_only_must_name_params_fields():
    with pytest.raises(TypeError, match=r"Typo.test_only names \['corruption'\], not fields"):

        class Typo(registry.get("dataset", "digits-c")):
            test_only = ("corruption",)


def test_digits_c_corruptions_leave_train_and_val_unchanged():
    contrast = _plugin("digits-c", corruptions=["contrast"], severity=1)
    noise = _plugin("digits-c", corruptions=["gaussian_noise", "defocus_blur"], severity=[3, 5])
    assert contrast.train_params() == noise.train_params()
    a, b = contrast.load(0), noise.load(0)
    for part in ("train", "val", "test"):
        assert np.array_equal(getattr(a, part).x, getattr(b, part).x)
    assert list(a.domains) != list(b.domains)
    other_split = _plugin("digits-c", corruptions=["contrast"], severity=1, split_seed=1)
    assert other_split.train_params() != contrast.train_params()
    assert not np.array_equal(other_split.load(0).train.x, a.train.x)


def test_mnist1d_shifts_leave_train_and_val_unchanged():
    plain = _plugin("mnist1d", num_samples=100)
    shifted = _plugin("mnist1d", num_samples=100, shifts={"shear@2.0": {"shear_scale": 1.5}})
    assert plain.train_params() == shifted.train_params()
    a, b = plain.load(0), shifted.load(0)
    assert np.array_equal(a.train.x, b.train.x) and np.array_equal(a.val.x, b.val.x)
    assert list(b.domains) == ["shear@2.0"] and not a.domains
    assert plain.files() == []


def test_npz_files_name_the_path(tmp_path):
    path = tmp_path / "d.npz"
    path.touch()
    dataset = _plugin("npz", path=path)
    assert dataset.files() == [path] and dataset.train_files() == [path]
    assert dataset.train_params()["path"] == str(path)
    missing = tmp_path / "absent.npz"
    with pytest.raises(DataError, match=re.escape(f"{missing}: no such file; expected a .npz")):
        _plugin("npz", path=missing).files()


def test_digits_files_are_sklearns_bundled_table():
    (path,) = _plugin("digits").files()
    assert path.name == "digits.csv.gz" and path.is_file()
    assert _plugin("digits-c", corruptions=["defocus_blur"]).files() == [path]


def test_cifar10_files_are_the_six_batches(tmp_path):
    folder = tmp_path / "cifar"
    batches = _touch(folder, *TRAIN_BATCHES, TEST_BATCH)
    assert _plugin("cifar10", path=folder).files() == batches
    (folder / "data_batch_4").unlink()
    with pytest.raises(DataError, match=re.escape(f"{folder / 'data_batch_4'}: no such file")):
        _plugin("cifar10", path=folder).files()
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'none'}: no such folder")):
        _plugin("cifar10", path=tmp_path / "none").files()


def test_cifar10_c_files_are_exactly_what_the_params_read(tmp_path):
    batches = _touch(tmp_path / "cifar", *TRAIN_BATCHES, TEST_BATCH)
    folder = tmp_path / "c"
    labels, fog, frost, noise = _touch(
        folder, "labels.npy", "fog.npy", "frost.npy", "gaussian_noise.npy"
    )
    every = _plugin("cifar10-c", path=folder, train_path=tmp_path / "cifar")
    assert every.files() == [labels, fog, frost, noise, *batches]
    chosen = _plugin(
        "cifar10-c",
        path=folder,
        train_path=tmp_path / "cifar",
        corruptions=["gaussian_noise", "fog"],
    )
    assert chosen.files() == [labels, noise, fog, *batches]
    # The corrupted sets never reach training: only the clean batches can change a model.
    assert chosen.train_files() == every.train_files() == batches
    assert chosen.train_params() == every.train_params()

    typo = _plugin("cifar10-c", path=folder, train_path=tmp_path / "cifar", corruptions=["snow"])
    found = "corruptions found: fog, frost, gaussian_noise"
    with pytest.raises(
        DataError, match=re.escape(f"{folder / 'snow.npy'}: no such file ({found})")
    ):
        typo.files()
    labels.unlink()
    with pytest.raises(DataError, match=re.escape(f"{labels}: no such file")):
        every.files()


def test_mnist_idx_files_pick_plain_or_gz_as_load_does(tmp_path):
    folder = tmp_path / "mnist"
    names = [name for pair in MNIST_FILES.values() for name in pair]
    _touch(folder, names[0], f"{names[1]}.gz", *names[2:])
    expected = [folder / names[0], folder / f"{names[1]}.gz", *(folder / n for n in names[2:])]
    assert _plugin("mnist-idx", path=folder).files() == expected
    (folder / names[3]).unlink()
    with pytest.raises(
        DataError, match=re.escape(f"{folder / names[3]}: no such file (nor with .gz)")
    ):
        _plugin("mnist-idx", path=folder).files()
