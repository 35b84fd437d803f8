"""Kozachenko-Leonenko entropy and MI (with and without the autoencoder compression step)."""

from __future__ import annotations

import numpy as np
import pytest

from infobench.mi.kl_entropy import KLEntropy, kl_entropy


def test_entropy_of_a_standard_normal_and_a_uniform_square():
    rng = np.random.default_rng(0)
    assert kl_entropy(rng.normal(size=(5000, 2)), 3) == pytest.approx(np.log(2 * np.pi * np.e), abs=0.05)
    assert kl_entropy(rng.uniform(0, 2, size=(5000, 2)), 3) == pytest.approx(2 * np.log(2), abs=0.05)


def test_mi_of_a_gaussian_pair_and_a_mixture_label():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 1))
    y = 0.8 * x + 0.6 * rng.normal(size=(4000, 1))
    assert KLEntropy().estimate(x, y) == pytest.approx(-0.5 * np.log(1 - 0.64), abs=0.06)
    labels = np.repeat([0, 1], 1000)
    separated = labels[:, None] * 50.0 + rng.normal(size=(2000, 1))
    assert KLEntropy().estimate(separated, labels) == pytest.approx(np.log(2), abs=0.02)


def test_compression_to_enough_dimensions_changes_nothing_and_redundant_copies_compress():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1500, 1))
    y = 0.8 * x + 0.6 * rng.normal(size=(1500, 1))
    plain = KLEntropy().estimate(x, y)
    assert KLEntropy(KLEntropy.Params(compress_dim=1)).estimate(x, y) == plain  # nothing wider than 1
    # x seen through 4 redundant coordinates: an autoencoder to 1 dimension keeps the information
    wide = np.hstack([x, -x, 2 * x, x + 1])
    compressed = KLEntropy(KLEntropy.Params(compress_dim=1, ae_epochs=30)).estimate(wide, y)
    assert compressed == pytest.approx(-0.5 * np.log(1 - 0.64), abs=0.1)


def test_bad_settings_and_small_labels_are_refused():
    with pytest.raises(ValueError, match="compress_dim"):
        KLEntropy.Params(noise_std=0.1)
    with pytest.raises(ValueError, match="at most k = 3"):
        KLEntropy().estimate(np.random.default_rng(3).normal(size=(10, 1)), np.array([0] * 8 + [1] * 2))


def test_repeated_rows_give_the_same_entropies_with_brute_force_as_with_the_tree():
    # issue 12 item 6: float32 brute force lost the tie-breaking noise; the k-th distance of a
    # repeated row became that of an arbitrary duplicate (MI 191 nats on this input instead of 0.43)
    rng = np.random.default_rng(0)
    x = rng.integers(1, 4, (500, 2)).astype(float)
    y = x + rng.integers(0, 2, (500, 2))
    brute = KLEntropy(KLEntropy.Params(tree_max_dims=1)).estimate(x, y)
    tree = KLEntropy(KLEntropy.Params(tree_max_dims=99)).estimate(x, y)
    assert brute == pytest.approx(tree, abs=1e-12)
    assert brute == pytest.approx(0.4276834396, abs=1e-9)
