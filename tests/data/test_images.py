"""Lazy image arrays: decoding as the anchors preprocess, numpy-like indexing, take/concat
without decoding, and batches read alike with and without DataLoader workers."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from infobench.data import images
from infobench.data.images import ImageFiles, Preprocess, concat, decode_image, iter_batches, take
from infobench.errors import DataError


def _noise_images(folder, sizes, seed=0) -> list:
    """PNG files of random pixels, one per (width, height), in several Pillow modes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i, (w, h) in enumerate(sizes):
        mode = ("RGB", "L", "RGBA")[i % 3]
        channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
        pixels = rng.integers(0, 256, size=(h, w, channels), dtype=np.uint8)
        image = Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode)
        paths.append(folder / f"img_{i}.png")
        image.save(paths[-1])
    return paths


SIZES = [(20, 16), (16, 20), (16, 16), (30, 12), (12, 12), (17, 23), (40, 18)]


@pytest.fixture
def files(tmp_path):
    paths = _noise_images(tmp_path / "png", SIZES)
    eager = np.stack([decode_image(p, 12, 14) for p in paths])
    return paths, eager


def test_the_centre_crop_of_a_two_colour_image_is_where_torchvision_puts_it(tmp_path):
    """512x256, red left half, blue right: the shorter side is already 256, so no resize; the
    224 crop starts at column round(288 / 2) = 144, so the colours meet at crop column 112."""
    pixels = np.zeros((256, 512, 3), np.uint8)
    pixels[:, :256, 0] = 255
    pixels[:, 256:, 2] = 255
    Image.fromarray(pixels).save(tmp_path / "two.png")
    x = decode_image(tmp_path / "two.png", 224, 256)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    assert (x[0, :, :112] == 1).all() and (x[2, :, :112] == 0).all()
    assert (x[0, :, 112:] == 0).all() and (x[2, :, 112:] == 1).all()


def test_resize_keeps_the_aspect_and_rounds_like_torchvision(tmp_path):
    """30x20 to shorter side 10: 15x10 (int(10 * 30 / 20)); crop 10 at left round(2.5) = 2."""
    (path,) = _noise_images(tmp_path, [(30, 20)])
    with Image.open(path) as image:
        by_hand = image.convert("RGB").resize((15, 10), Image.BILINEAR).crop((2, 0, 12, 10))
    expected = np.asarray(by_hand, np.float32).transpose(2, 0, 1) / 255
    assert np.array_equal(decode_image(path, 10), expected)  # resize None: to the crop size


def test_a_side_shorter_than_the_crop_is_padded_with_zeros(tmp_path):
    Image.new("RGB", (4, 4), (255, 255, 255)).save(tmp_path / "white.png")
    x = decode_image(tmp_path / "white.png", 8, 4)
    assert (x[:, 2:6, 2:6] == 1).all() and x.sum() == 3 * 16


def test_unreadable_and_oversized_images_name_the_path_and_layout(tmp_path, monkeypatch):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(DataError, match=re.escape(f"{bad}: cannot be decoded as an image")) as info:
        Preprocess(8, expected="the layout")(bad)
    assert str(info.value).endswith("; expected the layout")
    (good,) = _noise_images(tmp_path / "ok", [(20, 10)])
    monkeypatch.setattr(images, "MAX_PIXELS", 199)
    with pytest.raises(DataError, match=re.escape(f"{good}: is 20x10 pixels, more than 199")):
        decode_image(good, 8)


def test_indexing_decodes_exactly_what_numpy_indexing_gives(files):
    paths, eager = files
    x = ImageFiles(paths, 12, 14)
    assert len(x) == 7 and x.shape == (7, 3, 12, 12) and x.ndim == 4 and x.dtype == np.float32
    assert np.array_equal(x[3], eager[3]) and np.array_equal(x[-1], eager[-1])
    mask = np.array([True, False, True, True, False, False, True])
    for key in (slice(1, 5), slice(None, None, -2), [4, 0, 4], np.array([-1, 2]), mask, np.zeros(0, int), []):
        assert np.array_equal(x[key], eager[key]), key
    assert np.array_equal(np.asarray(x), eager) and x.nbytes == eager.nbytes
    with pytest.raises(IndexError):
        x[7]
    with pytest.raises(IndexError):
        x[mask[:3]]
    with pytest.raises(IndexError):
        x[:, 0]


def test_take_and_concat_stay_lazy_and_equal_their_numpy_versions(files):
    paths, eager = files
    x = ImageFiles(paths, 12, 14)
    noise = np.random.default_rng(1).random((3, 3, 12, 12), dtype=np.float32)
    joined = concat([take(x, [6, 1]), noise, x, take(x, slice(2, 4))])
    assert isinstance(joined, ImageFiles) and len(joined._sources) == 2  # x's files once
    expected = np.concatenate([eager[[6, 1]], noise, eager, eager[2:4]])
    assert np.array_equal(joined[:], expected)
    order = np.random.default_rng(2).permutation(len(expected))
    assert np.array_equal(take(joined, order)[:], expected[order])
    assert joined.paths[:3] == [str(paths[6]), str(paths[1]), None]
    # Numpy in, numpy out.
    assert type(take(eager, [0, 2])) is np.ndarray and np.array_equal(take(eager, [0, 2]), eager[[0, 2]])
    assert type(concat([eager, noise])) is np.ndarray
    with pytest.raises(ValueError, match="cannot concatenate images of shapes"):
        concat([x, np.zeros((1, 3, 5, 5), np.float32)])


def test_decoding_everything_at_once_is_refused_beyond_the_limit(files, monkeypatch):
    paths, _ = files
    monkeypatch.setattr(images, "ARRAY_LIMIT_BYTES", 1000)
    with pytest.raises(DataError, match="refused to decode all 7 images at once"):
        np.asarray(ImageFiles(paths, 12, 14))


@pytest.mark.parametrize("workers", [0, 2])
def test_iter_batches_gives_the_same_tensors_with_and_without_workers(files, workers):
    paths, eager = files
    ranges = [(0, 3), (3, 4), (4, 7), (1, 5)]
    lazy = list(iter_batches(ImageFiles(paths, 12, 14), ranges, "cpu", num_workers=workers))
    in_memory = list(iter_batches(eager, ranges, torch.device("cpu")))
    assert len(lazy) == len(ranges)
    for (start, stop), a, b in zip(ranges, lazy, in_memory, strict=True):
        assert a.dtype == torch.float32 and a.device.type == "cpu"
        assert torch.equal(a, torch.from_numpy(eager[start:stop])) and torch.equal(a, b)


def test_default_workers_are_the_usable_cores_up_to_8():
    assert 1 <= images.default_workers() <= 8


@pytest.mark.parametrize("workers", [0, 2])
def test_a_broken_image_in_a_batch_raises_its_own_message(files, workers):
    """A worker's DataError reaches the caller as it was raised, without the DataLoader's
    "Caught DataError in DataLoader worker process" traceback before the path."""
    paths, _ = files
    paths[5].write_bytes(b"not a png")
    batches = iter_batches(ImageFiles(paths, 12, 14, "the layout"), [(0, 3), (3, 7)], "cpu", num_workers=workers)
    assert next(batches).shape == (3, 3, 12, 12)
    with pytest.raises(DataError) as info:
        next(batches)
    assert str(info.value).startswith(f"{paths[5]}: cannot be decoded as an image")
    assert str(info.value).endswith("; expected the layout")
