"""image-folder: train/, test/ and domains/<name>/ class folders of a user's own shift."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from infobench import registry
from infobench.data import image_folder
from infobench.data.images import ImageFiles
from infobench.errors import DataError

IMAGE_FOLDER = registry.get("dataset", "image-folder")
CLASSES = ("cat", "dog", "emu")


def _colour(part: int, label: int, image: int) -> tuple[int, int, int]:
    return 30 * part + 10, 80 * label + 5, 40 * image + 20


def _write(root, parts=("train", "test", "domains/snow", "domains/blur"), per_class=4, classes=CLASSES):
    """PNG images 12x10 of one colour telling (part, class, image) apart; a stray file too."""
    for p, part in enumerate(parts):
        for label, name in enumerate(classes):
            folder = root / part / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (12, 10), _colour(p, label, i)).save(folder / f"{i}.png")
            (folder / "notes.txt").write_text("not an image")
    return root


def _dataset(root, **params):
    return IMAGE_FOLDER(IMAGE_FOLDER.Params(root=root, image_size=8, **params))


def _colours(x) -> np.ndarray:
    return np.round(np.asarray(x).mean(axis=(2, 3)) * 255)


def test_sets_labels_and_domains_come_from_the_folders(tmp_path):
    root = _write(tmp_path / "mine")
    bundle = _dataset(root, val_fraction=0.25).load(0)
    assert bundle.num_classes == 3 and bundle.input_shape == (3, 8, 8) and bundle.name == "image-folder"
    assert list(bundle.domains) == ["blur", "snow"]  # sorted by name
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (9, 3, 12)
    assert sorted(bundle.val.y.tolist()) == [0, 1, 2]  # stratified carve-out
    for split, p in [(bundle.test, 1), (bundle.domains["snow"], 2), (bundle.domains["blur"], 3)]:
        assert type(split.x) is np.ndarray and split.x.shape == (12, 3, 8, 8)  # small: in memory
        assert split.y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
        expected = [_colour(p, label, i) for label in range(3) for i in range(4)]
        assert np.array_equal(_colours(split.x), expected)
    pooled = np.concatenate([bundle.train.x, bundle.val.x])
    labels = np.concatenate([bundle.train.y, bundle.val.y])
    assert (_colours(pooled)[:, 1] == 80 * labels + 5).all()


def test_params_choose_domains_and_class_order(tmp_path):
    root = _write(tmp_path / "mine")
    bundle = _dataset(root, domains=["snow"], classes=["emu", "cat", "dog"]).load(0)
    assert list(bundle.domains) == ["snow"]
    assert bundle.domains["snow"].y.tolist() == [1] * 4 + [2] * 4 + [0] * 4  # folders by name
    plain, other_domains = _dataset(root), _dataset(root, domains=["blur"])
    assert plain.train_params() == other_domains.train_params()  # domains are test-only
    assert plain.train_files() == other_domains.train_files() == [
        root / "train" / name / f"{i}.png" for name in CLASSES for i in range(4)
    ]
    assert len(plain.files()) == 4 * 12 and len(other_domains.files()) == 3 * 12
    assert plain.fingerprint(plain.files()) != other_domains.fingerprint(other_domains.files())


def test_large_folders_stay_lazy_and_read_the_same(tmp_path, monkeypatch):
    root = _write(tmp_path / "mine")
    eager = _dataset(root).load(0)
    monkeypatch.setattr(image_folder, "EAGER_LIMIT_BYTES", 0)
    lazy = _dataset(root).load(0)
    for a, b in zip([eager.train, eager.val, eager.test, *eager.domains.values()],
                    [lazy.train, lazy.val, lazy.test, *lazy.domains.values()], strict=True):
        assert isinstance(b.x, ImageFiles)
        assert np.array_equal(a.x, b.x[:]) and np.array_equal(a.y, b.y)


def test_without_train_the_classes_come_from_test_and_domains(tmp_path):
    root = _write(tmp_path / "mine", parts=("test", "domains/fog"))
    (root / "domains" / "fog" / "fox").mkdir()
    bundle = _dataset(root).load(0)
    assert bundle.num_classes == 4 and len(bundle.train) == len(bundle.val) == 0
    assert bundle.train.x.shape == (0, 3, 8, 8) and list(bundle.domains) == ["fog"]
    assert _dataset(root).train_files() == []


def test_layout_errors_name_the_path_and_layout(tmp_path):
    root = _write(tmp_path / "mine")
    with pytest.raises(DataError, match=re.escape(f"{root / 'domains' / 'fog'}: no such folder (domains found: blur, snow)")) as info:
        _dataset(root, domains=["fog"]).files()
    assert "expected an image folder: train/<class>/<image>" in str(info.value)
    (root / "domains" / "snow" / "yak").mkdir()
    with pytest.raises(DataError, match=re.escape(f"{root / 'domains' / 'snow'}: has class folders that are not classes: yak")):
        _dataset(root).load(0)
    empty = tmp_path / "empty"
    (empty / "other").mkdir(parents=True)
    with pytest.raises(DataError, match=re.escape(f"{empty}: holds none of train/, test/, domains/")):
        _dataset(empty).load(0)
    with pytest.raises(ValueError, match="distinct folder names"):
        IMAGE_FOLDER.Params(domains=["../x"])
