"""Relative data paths: the current folder first, then under $INFOBENCH_DATA, for every loader
of files; a path found in neither is named with where it was looked for and the layout."""

from __future__ import annotations

import re

import numpy as np
import pytest

from infobench import registry
from infobench.data.cifar10 import TEST_BATCH, TRAIN_BATCHES
from infobench.data.files import DATA_ENV, data_path
from infobench.data.mnist_idx import MNIST_FILES
from infobench.errors import DataError


@pytest.fixture
def places(tmp_path, monkeypatch):
    """A working folder and a data folder (named by $INFOBENCH_DATA), both empty."""
    work, data = tmp_path / "work", tmp_path / "store"
    work.mkdir()
    data.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv(DATA_ENV, str(data))
    return work, data


def _plugin(name: str, **params):
    cls = registry.get("dataset", name)
    return cls(cls.Params(**params))


def _touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).touch()


def test_the_current_folder_comes_first_then_infobench_data(places):
    work, data = places
    (data / "sets").mkdir()
    (data / "sets" / "d.npz").touch()
    assert data_path("sets/d.npz") == data / "sets" / "d.npz"
    (work / "sets").mkdir()
    (work / "sets" / "d.npz").touch()
    assert data_path("sets/d.npz") == work / "sets" / "d.npz"
    assert data_path(data / "sets" / "d.npz") == data / "sets" / "d.npz"  # absolute: as given
    assert data_path("absent.npz") == work / "absent.npz"  # so that the error names it


def test_every_file_loader_finds_its_relative_path_under_infobench_data(places):
    _, data = places
    _touch(data / "cifar", *TRAIN_BATCHES, TEST_BATCH)
    _touch(data / "c10c", "labels.npy", "fog.npy")
    _touch(data / "mnist", *(name for pair in MNIST_FILES.values() for name in pair))
    _touch(data / "c100", "train", "test")
    _touch(data / "c100c", "labels.npy", "fog.npy")
    _touch(data / "inc" / "fog" / "5" / "n01", "a.JPEG")
    _touch(data / "mine" / "domains" / "fog" / "cat", "a.png")
    np.savez(data / "d.npz", x=np.zeros((4, 2)), y=np.arange(4) % 2)
    plugins = {
        "npz": _plugin("npz", path="d.npz"),
        "cifar10": _plugin("cifar10", path="cifar"),
        "cifar10-c": _plugin("cifar10-c", path="c10c", train_path="cifar"),
        "cifar100": _plugin("cifar100", path="c100"),
        "cifar100-c": _plugin("cifar100-c", path="c100c", train_path="c100"),
        "mnist-idx": _plugin("mnist-idx", path="mnist"),
        "imagenet-c": _plugin("imagenet-c", root="inc", corruptions=["fog"]),
        "image-folder": _plugin("image-folder", root="mine"),
    }
    for name, dataset in plugins.items():
        files = dataset.files()
        assert files and all(f.is_absolute() and f.is_relative_to(data) for f in files), name
    assert len(plugins["npz"].load(0).train) == 2


@pytest.mark.parametrize(
    "name, params, layout",
    [
        ("npz", {"path": "gone.npz"}, "expected a .npz archive"),
        ("cifar100", {"path": "gone"}, "expected the CIFAR-100 python version"),
        ("imagenet-c", {"root": "gone"}, "expected an ImageNet-C folder"),
        ("image-folder", {"root": "gone"}, "expected an image folder"),
    ],
)
def test_a_missing_relative_path_names_both_places_and_the_layout(places, name, params, layout):
    work, data = places
    with pytest.raises(DataError) as info:
        _plugin(name, **params).files()
    message = str(info.value)
    assert message.startswith(f"{work / 'gone'}")
    assert f"looked in {work} and in ${DATA_ENV}, as {data / 'gone'}" in message and layout in message


def test_without_infobench_data_the_hint_says_how_to_set_it(places, monkeypatch):
    work, _ = places
    monkeypatch.delenv(DATA_ENV)
    with pytest.raises(DataError, match=re.escape(f"looked in {work}; set ${DATA_ENV} to look in a data folder too")):
        _plugin("cifar10", path="nowhere").files()
    absent = work / "absolute.npz"
    with pytest.raises(DataError, match=re.escape(f"{absent}: no such file; expected")):
        _plugin("npz", path=absent).files()  # an absolute path gets no hint: it is looked up once
