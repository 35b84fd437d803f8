"""DeYO's object-destroying shuffles and RMT's augmentation: what they keep and what they move."""

from __future__ import annotations

import pytest
import torch

from infobench.tasks.tta.methods.augment import random_augment
from infobench.tasks.tta.methods.shuffle import destroy_objects, patch_shuffle, segment_shuffle


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_patch_shuffle_moves_whole_patches_and_keeps_every_pixel():
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8)
    y = patch_shuffle(x, 4, gen())
    assert y.shape == x.shape
    # a permutation of pixels: same multiset of values per sample
    assert torch.equal(y.flatten(1).sort(1).values, x.flatten(1).sort(1).values)
    # patches move intact: every 2x2 output patch is one of the input's 2x2 patches
    def patches(t):
        return {tuple(t[0, 0, 2 * i: 2 * i + 2, 2 * j: 2 * j + 2].flatten().tolist()) for i in range(4) for j in range(4)}
    assert patches(y) == patches(x)
    assert not torch.equal(y, x)  # 16! orders: the seeded draw is not the identity


def test_segment_shuffle_moves_whole_segments():
    x = torch.arange(3 * 40, dtype=torch.float32).reshape(3, 1, 40)
    y = segment_shuffle(x, 4, gen())
    segs_in = {tuple(x[1, 0, 10 * k: 10 * k + 10].tolist()) for k in range(4)}
    segs_out = {tuple(y[1, 0, 10 * k: 10 * k + 10].tolist()) for k in range(4)}
    assert segs_in == segs_out
    # a bare (n, L) batch keeps its shape
    assert segment_shuffle(x[:, 0], 4, gen()).shape == (3, 40)


def test_one_piece_is_the_identity_and_odd_sizes_keep_their_shape():
    x = torch.rand(2, 3, 8, 8, generator=gen(1))
    assert torch.allclose(destroy_objects(x, 1, gen()), x)
    odd = torch.rand(2, 1, 7, 9, generator=gen(2))
    assert destroy_objects(odd, 4, gen()).shape == odd.shape
    assert destroy_objects(torch.rand(2, 1, 41), 4, gen()).shape == (2, 1, 41)


def test_shuffle_rejects_bad_input():
    with pytest.raises(ValueError, match="pieces"):
        destroy_objects(torch.rand(2, 1, 8, 8), 0)
    with pytest.raises(ValueError, match="images"):
        patch_shuffle(torch.rand(2, 8), 2)


def test_augment_keeps_shape_and_stays_close_to_the_input():
    # smooth images (Gaussian blobs at random centres): a small affine map barely changes them
    grid = torch.arange(8.0)
    centre = 2 + 4 * torch.rand(16, 2, generator=gen(3))
    x = torch.exp(-((grid[None, :, None] - centre[:, 0, None, None]) ** 2
                    + (grid[None, None, :] - centre[:, 1, None, None]) ** 2) / 8)[:, None]
    y = random_augment(x, gen(4))
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert not torch.equal(y, x)
    # a mild augmentation: the augmented batch stays correlated with the original
    corr = torch.corrcoef(torch.stack([x.flatten(), y.flatten()]))[0, 1]
    assert corr > 0.8
    s = torch.rand(4, 1, 40, generator=gen(5))
    assert random_augment(s, gen(6)).shape == s.shape
    assert random_augment(s[:, 0], gen(6)).shape == (4, 40)
    with pytest.raises(ValueError, match="expects"):
        random_augment(torch.rand(3))
