"""Streams over lazy image domains (ImageNet-C): they stay lazy and equal, row for row, the
streams built from the same images in memory."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from infobench.data.base import DataBundle, Split
from infobench.data.images import ImageFiles
from infobench.tasks.tta.streams import build_stream, noise_range

SIZE = 4


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """The same two domains (levels 1-5 of 'noise' and 'blur', 10 images each, 2 classes) as
    lazy ImageFiles and as decoded arrays; train is in memory in both."""
    folder = tmp_path_factory.mktemp("png")
    rng = np.random.default_rng(0)
    lazy, eager = {}, {}
    for shift in ("noise", "blur"):
        for level in range(1, 6):
            paths = []
            for i in range(10):
                paths.append(folder / f"{shift}{level}_{i}.png")
                Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(paths[-1])
            y = np.arange(10) % 2
            x = ImageFiles(paths, SIZE)
            lazy[f"{shift}@{level}"] = Split(x, y)
            eager[f"{shift}@{level}"] = Split(x[:], y.copy())
    train = Split(rng.uniform(0.25, 0.75, (8, 3, SIZE, SIZE)).astype(np.float32), np.arange(8) % 2)

    def bundle(domains):
        return DataBundle("toy", train, train, train, 2, (3, SIZE, SIZE), domains)

    return bundle(lazy), bundle(eager)


@pytest.mark.parametrize(
    "order, options",
    [
        ("continual", {"max_per_domain": 7, "rounds": 2}),
        ("mixed", {}),
        ("gradual", {"shuffle": False}),
        ("dirichlet", {"delta": 0.05}),
        ("single", {"domain": "blur@3"}),
        ("open_set", {"outlier_ratio": 0.3, "noise_outliers": True, "held_out_classes": (1,)}),
    ],
)
def test_a_lazy_stream_equals_the_stream_in_memory(bundles, order, options):
    lazy_data, eager_data = bundles
    lazy = build_stream(lazy_data, order, 4, np.random.default_rng(5), **options)
    eager = build_stream(eager_data, order, 4, np.random.default_rng(5), **options)
    assert isinstance(lazy.x, ImageFiles) and type(eager.x) is np.ndarray
    assert lazy.x.shape == eager.x.shape and np.array_equal(lazy.x[:], eager.x)
    assert np.array_equal(lazy.y, eager.y) and np.array_equal(lazy.domain, eager.domain)
    assert lazy.segments == eager.segments and lazy.domain_names == eager.domain_names


def test_noise_outliers_without_training_data_lie_in_the_unit_range(bundles):
    """ImageNet-C has no training data (a pretrained model): its train split is empty, whose
    min() raised "zero-size array" before; noise outliers then take [0, 1]."""
    lazy_data, _ = bundles
    empty = Split(np.zeros((0, 3, SIZE, SIZE), np.float32), np.zeros(0, np.int64))
    data = DataBundle("toy", empty, empty, empty, 2, (3, SIZE, SIZE), lazy_data.domains)
    stream = build_stream(data, "open_set", 4, np.random.default_rng(0), outlier_ratio=0.5, noise_outliers=True)
    noise = stream.x[np.flatnonzero(stream.y < 0)]
    assert len(noise) == 10 * 10 and noise.min() >= 0 and noise.max() <= 1 and noise.std() > 0.2
    assert noise_range(empty.x) == noise_range(lazy_data.domains["noise@1"].x) == (0.0, 1.0)
    assert noise_range(lazy_data.train.x) == (float(lazy_data.train.x.min()), float(lazy_data.train.x.max()))
