"""Image corruptions: contract (shape, dtype, range), severity ordering, randomness, geometry."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from infobench.data import corruptions
from infobench.data.corruptions import CORRUPTIONS, corrupt
from infobench.data.digits import digit_images

RANDOM = {
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "motion_blur",
    "rotation",
    "elastic_transform",
}
# Pixelating 8x8 digits to 5x5 aliases strokes onto the coarse grid more than 4x4 does, so its
# distance from clean is not monotone in severity (its accuracy still drops; see the module).
MONOTONE = sorted(set(CORRUPTIONS) - {"pixelate"})


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return np.array(digit_images()[0][:200])


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_contract_shape_dtype_range_and_input_untouched(name, digits):
    before = digits.copy()
    for severity in (1, 3, 5):
        out = corrupt(digits, name, severity, np.random.default_rng(0))
        assert out.shape == digits.shape and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0
        assert not np.array_equal(out, digits)
    assert np.array_equal(digits, before)


@pytest.mark.parametrize("name", MONOTONE)
def test_change_from_clean_grows_with_severity(name, digits):
    change = [
        np.abs(corrupt(digits, name, s, np.random.default_rng(0)) - digits).mean()
        for s in range(1, 6)
    ]
    assert np.all(np.diff(change) > 0), change


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_randomness_comes_from_the_generator_only(name, digits):
    first = corrupt(digits, name, 3, np.random.default_rng(1))
    again = corrupt(digits, name, 3, np.random.default_rng(1))
    other = corrupt(digits, name, 3, np.random.default_rng(2))
    assert np.array_equal(first, again)
    assert np.array_equal(first, other) == (name not in RANDOM)


@pytest.mark.parametrize(
    "name",
    ["defocus_blur", "motion_blur", "gaussian_blur", "rotation", "elastic_transform", "pixelate"],
)
def test_spatial_corruptions_treat_all_channels_alike(name, digits):
    rgb = np.repeat(digits[:20], 3, axis=1)
    out = corrupt(rgb, name, 4, np.random.default_rng(0))
    assert np.array_equal(out[:, 0], out[:, 1]) and np.array_equal(out[:, 0], out[:, 2])


@pytest.mark.parametrize(
    "name", ["defocus_blur", "motion_blur", "gaussian_blur", "pixelate", "contrast"]
)
def test_constant_images_are_left_constant(name):
    flat = np.full((4, 1, 8, 8), 0.3)
    out = corrupt(flat, name, 5, np.random.default_rng(0))
    np.testing.assert_allclose(out, 0.3, atol=1e-6)


def test_pixelate_leaves_blocks_of_the_kept_resolution(digits):
    out = corruptions.pixelate(digits, 5, np.random.default_rng(0))
    # Severity 5 keeps 3x3 pixels of the 8x8 image.
    assert max(len(np.unique(image)) for image in out) <= 9


def test_rotation_matches_scipy_rotate_with_either_sign(digits):
    out = corruptions.rotation(digits[:10], 5, np.random.default_rng(0))
    for image, rotated in zip(digits[:10, 0], out[:, 0], strict=True):
        candidates = [
            np.clip(
                ndimage.rotate(image, angle, reshape=False, order=1, mode="grid-constant"), 0, 1
            )
            for angle in (30, -30)
        ]
        assert min(np.abs(rotated - c).max() for c in candidates) < 1e-5


def test_brightness_saturates_at_one():
    out = corruptions.brightness(np.full((1, 1, 8, 8), 0.9), 5, np.random.default_rng(0))
    assert np.all(out == 1.0)


def test_bad_arguments_are_rejected(digits):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="severity must be one of"):
        corrupt(digits, "contrast", 6, rng)
    with pytest.raises(
        ValueError, match=r"unknown corruption 'fog'; valid: gaussian_noise, shot_noise"
    ):
        corrupt(digits, "fog", 1, rng)
    with pytest.raises(ValueError, match=r"\(n, C, H, W\)"):
        corrupt(digits[:, 0], "contrast", 1, rng)


def test_docstring_table_states_the_levels_in_use():
    table = {
        line.split()[0]: line.split()[-6:-1]
        for line in corruptions.__doc__.splitlines()
        if line.split() and line.split()[0] in CORRUPTIONS
    }
    assert list(table) == list(CORRUPTIONS)
    for name, column in table.items():
        assert [float(v) for v in column] == [float(v) for v in CORRUPTIONS[name].levels], name
