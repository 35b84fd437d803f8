"""imagenet-c on a tiny tree in the release layout: <corruption>/<severity>/<wnid>/*.JPEG."""

from __future__ import annotations

import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from infobench import registry
from infobench.data.corruption_names import BENCHMARK_CORRUPTIONS
from infobench.data.images import ImageFiles
from infobench.errors import DataError

IMAGENET_C = registry.get("dataset", "imagenet-c")
WNIDS = ("n01440764", "n01443537", "n01484850")  # the first three ImageNet classes, sorted
FILES = ("ILSVRC2012_val_00000293.JPEG", "ILSVRC2012_val_00002138.JPEG")
CORRUPTIONS = ("gaussian_noise", "fog")


def _colour(corruption: int, label: int, image: int) -> tuple[int, int, int]:
    return 40 * corruption + 20, 60 * label + 10, 100 * image + 30


def _write_tree(root, corruptions=CORRUPTIONS, severities=(5,), val=False, size=(300, 260)):
    """2 JPEGs per class x 3 classes per domain, each of one colour telling (corruption, class,
    image) apart; ``val`` adds the clean folder (corruption index 5) beside it."""
    folders = {(c, s): root / name / str(s) for c, name in enumerate(corruptions) for s in severities}
    if val:
        folders[(5, 0)] = root.parent / "val"
    for (c, _), folder in folders.items():
        for label, wnid in enumerate(WNIDS):
            (folder / wnid).mkdir(parents=True)
            for i, name in enumerate(FILES):
                image = Image.new("RGB", size, _colour(c, label, i))
                image.save(folder / wnid / name, quality=95)
    return root


def _dataset(root, **params):
    """The dataset over the two corruptions written (the default is the benchmark's 15)."""
    return IMAGENET_C(IMAGENET_C.Params(root=root, **{"corruptions": list(CORRUPTIONS), **params}))


def _load(root, **params):
    return _dataset(root, **params).load(0)


def _mean_colours(x: ImageFiles) -> np.ndarray:
    return np.round(x[:].mean(axis=(2, 3)) * 255)


def test_domains_are_lazy_preprocessed_and_labelled_by_sorted_wnid(tmp_path):
    root = _write_tree(tmp_path / "ImageNet-C")
    bundle = _load(root, corruptions=["fog", "gaussian_noise"])
    assert list(bundle.domains) == ["fog@5", "gaussian_noise@5"]
    assert bundle.num_classes == 3 and bundle.input_shape == (3, 224, 224)
    assert IMAGENET_C.family == "imagenet"
    for key, c in (("fog@5", 1), ("gaussian_noise@5", 0)):
        split = bundle.domains[key]
        assert isinstance(split.x, ImageFiles) and split.x.shape == (6, 3, 224, 224)
        assert split.y.tolist() == [0, 0, 1, 1, 2, 2]
        expected = [_colour(c, label, i) for label in range(3) for i in range(2)]
        assert np.abs(_mean_colours(split.x) - expected).max() <= 2  # JPEG, solid colours
        assert split.x[0].min() >= 0 and split.x[0].max() <= 1
    # No training data: empty train and val of the input shape, and no clean test without val_root.
    for part in (bundle.train, bundle.val, bundle.test):
        assert part.x.shape == (0, 3, 224, 224) and part.y.shape == (0,)


def test_the_defaults_are_the_anchors(tmp_path):
    p = IMAGENET_C.Params()
    assert p.corruptions == list(BENCHMARK_CORRUPTIONS) and p.severity == 5
    assert (p.n_per_domain, p.image_size, p.resize) == (5000, 224, 256)
    assert IMAGENET_C.Params(corruptions="standard").corruptions == list(BENCHMARK_CORRUPTIONS)
    # Everything but the preprocessing is test-only: nothing shapes the (empty) train split.
    assert IMAGENET_C(p).train_params() == {"image_size": 224, "resize": 256}


def test_the_subset_is_the_same_images_in_every_domain_and_the_clean_test(tmp_path):
    root = _write_tree(tmp_path / "C", severities=(3, 5), val=True)
    bundle = _load(root, n_per_domain=4, subset_seed=3, severity=[3, 5], val_root=tmp_path / "val")
    assert list(bundle.domains) == ["gaussian_noise@3", "gaussian_noise@5", "fog@3", "fog@5"]
    chosen = [os.sep.join(p.split(os.sep)[-2:]) for p in bundle.domains["fog@5"].x.paths]
    assert len(chosen) == 4 and chosen == sorted(chosen)
    for split in [bundle.test, *bundle.domains.values()]:
        assert [os.sep.join(p.split(os.sep)[-2:]) for p in split.x.paths] == chosen
        assert split.y.tolist() == [WNIDS.index(entry.split(os.sep)[0]) for entry in chosen]
    assert np.abs(_mean_colours(bundle.test.x)[:, 0] - (5 * 40 + 20)).max() <= 2  # the clean images
    other = _load(root, n_per_domain=4, subset_seed=4)
    assert other.domains["fog@5"].x.paths != bundle.domains["fog@5"].x.paths
    assert len(_load(root, n_per_domain=None).domains["fog@5"]) == 6


def test_an_image_list_picks_the_images_in_its_order(tmp_path):
    root = _write_tree(tmp_path / "C")
    listing = tmp_path / "imagenet_test_image_ids.txt"
    listing.write_text(f"{WNIDS[2]}/{FILES[1]}\n{WNIDS[0]}/{FILES[0]}\n\n{WNIDS[1]}/{FILES[0]}\n")
    bundle = _load(root, image_list=listing, n_per_domain=2)
    assert bundle.domains["fog@5"].y.tolist() == [2, 0]
    assert [p.rsplit(os.sep, 1)[1] for p in bundle.domains["gaussian_noise@5"].x.paths] == [FILES[1], FILES[0]]
    dataset = _dataset(root, image_list=listing, n_per_domain=2)
    assert dataset.files()[0] == listing and len(dataset.files()) == 1 + 2 * 2
    listing.write_text(f"{WNIDS[0]}/../../secret.JPEG\n")
    with pytest.raises(DataError, match=re.escape(f"{listing}: entry 1 ")) as info:
        _load(root, image_list=listing)
    assert "RobustBench's imagenet_test_image_ids.txt" in str(info.value)
    listing.write_text(f"{WNIDS[0]}/ILSVRC2012_val_99999999.JPEG\n")
    with pytest.raises(DataError, match="lacks 1 of the chosen images, e.g. n01440764/ILSVRC2012_val_99999999"):
        _load(root, image_list=listing)


def test_layout_errors_name_the_folder_and_the_layout(tmp_path):
    root = _write_tree(tmp_path / "C")
    with pytest.raises(DataError, match=re.escape(f"{root / 'snow'}: no such folder (corruptions found: fog, gaussian_noise)")):
        _load(root, corruptions=["snow"])
    with pytest.raises(DataError, match=re.escape(f"{root / 'gaussian_noise' / '3'}: no such folder")) as info:
        _load(root, severity=3)
    assert "expected an ImageNet-C folder: <corruption>/<severity>/<wnid>/<image>.JPEG" in str(info.value)
    shutil.rmtree(root / "fog" / "5" / WNIDS[1])
    with pytest.raises(DataError, match=re.escape(f"{root / 'fog' / '5'}: has other class folders than")) as info:
        _load(root)
    assert f"(differing: {WNIDS[1]})" in str(info.value)
    (root / "fog" / "5" / WNIDS[1]).mkdir()
    with pytest.raises(DataError, match=re.escape(f"{root / 'fog' / '5'}: lacks 2 of the chosen images")):
        _load(root)


def test_a_broken_jpeg_is_named_when_it_is_decoded(tmp_path):
    root = _write_tree(tmp_path / "C")
    broken = root / "fog" / "5" / WNIDS[2] / FILES[0]
    broken.write_bytes(broken.read_bytes()[:200])
    x = _load(root).domains["fog@5"].x
    x[:4]  # other images decode
    with pytest.raises(DataError, match=re.escape(f"{broken}: cannot be decoded as an image")):
        x[4]


def test_files_are_the_images_read_and_their_listing_digest_tracks_changes(tmp_path):
    root = _write_tree(tmp_path / "C")
    dataset = _dataset(root, n_per_domain=5)
    files = dataset.files()
    assert len(files) == 10 and files[0].is_relative_to(root / "gaussian_noise" / "5")
    assert dataset.train_files() == []
    (digest,) = dataset.fingerprint(files)
    assert dataset.fingerprint(dataset.files()) == [digest]
    moved = shutil.move(tmp_path / "C", tmp_path / "moved")  # a move keeps names, sizes, mtimes
    assert _dataset(moved, n_per_domain=5).fingerprint(
        [moved / f.relative_to(root) for f in files]
    ) == [digest]
    changed = moved / files[3].relative_to(root)
    Image.new("RGB", (300, 260), (1, 2, 3)).save(changed, quality=95)
    assert dataset.fingerprint([moved / f.relative_to(root) for f in files]) != [digest]
