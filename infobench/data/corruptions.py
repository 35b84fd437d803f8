"""Image corruptions at severities 1..5, after CIFAR-10-C (Hendrycks & Dietterich, 2019).

Every corruption is a function ``f(images, severity, rng) -> images``: ``images`` is a float
array (n, C, H, W) with values in [0, 1], ``severity`` an int in 1..5 and ``rng`` a
``numpy.random.Generator`` (ignored by the deterministic ones); the result is float32 of the same
shape, clipped to [0, 1]. Geometric corruptions move all channels of an image together.

The parameter per severity is scaled for 8x8 images (scikit-learn digits); lengths are in
pixels. The last column is the test accuracy at severity 5 of a small CNN (two 3x3 conv layers,
Adam, 30 epochs) trained on clean digits, whose clean test accuracy is 0.96 (mean of 2 seeds):
severity 5 hurts every corruption substantially, and none falls to chance (0.10).

=================  ========================================  =====  =====  =====  =====  =====  =====
corruption         parameter (unit)                            1      2      3      4      5    acc@5
=================  ========================================  =====  =====  =====  =====  =====  =====
gaussian_noise     noise standard deviation (intensity)       0.1    0.2    0.3    0.45   0.6    0.56
shot_noise         photons at full intensity (Poisson rate)   20     8      4      2      1      0.58
impulse_noise      fraction of pixels set to 0 or 1           0.05   0.1    0.2    0.3    0.4    0.53
defocus_blur       disk radius, anti-aliased (px)             1.0    1.4    1.8    2.2    2.6    0.46
motion_blur        length of the blur streak (px)             2.0    3.0    4.0    5.0    6.0    0.56
gaussian_blur      blur standard deviation (px)               0.5    0.75   1.0    1.25   1.5    0.59
contrast           factor on the deviation from the mean      0.5    0.35   0.25   0.15   0.1    0.47
brightness         offset added to every pixel (intensity)    0.2    0.3    0.4    0.5    0.6    0.67
pixelate           kept resolution (fraction of the side)     0.875  0.75   0.625  0.5    0.375  0.43
rotation           rotation angle, random sign (degrees)      6      12     18     24     30     0.53
elastic_transform  RMS displacement, smoothed at 1 px (px)    0.3    0.5    0.7    0.9    1.1    0.59
=================  ========================================  =====  =====  =====  =====  =====  =====

Pixelate area-averages the image down to ``round(fraction * side)`` pixels (7, 6, 5, 4, 3 on
8x8) and scales it back up by nearest neighbour. Defocus blur convolves with a disk, whose edge
pixels are weighted by the fraction they cover; motion blur averages copies shifted along a random
direction, centred so the object stays put. Geometric warps fill with 0, the background of
the digits.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

import numpy as np
from scipy import ndimage

from infobench.data.severity import LEVELS

Corruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]

CORRUPTIONS: dict[str, Corruption] = {}
"""Every corruption by name, in the order of the table above (noise, blur, digital, geometric)."""


def corruption(levels: tuple[float, ...]) -> Callable[[Callable], Corruption]:
    """File a kernel ``k(images, level, rng)`` as a corruption taking a severity instead of a level.

    The wrapper owns what all corruptions share: checking the severity, working on a float64
    copy so kernels may write in place, and clipping to [0, 1] as float32.
    """
    if len(levels) != len(LEVELS):
        raise ValueError(f"a corruption needs one level per severity {LEVELS}, got {levels}")

    def decorator(kernel: Callable) -> Corruption:
        @wraps(kernel)
        def corrupt(images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
            if severity not in LEVELS:
                raise ValueError(f"severity must be one of {list(LEVELS)}, got {severity!r}")
            images = np.array(images, dtype=np.float64)
            if images.ndim != 4:
                raise ValueError(f"images must have shape (n, C, H, W), got {images.shape}")
            out = kernel(images, levels[severity - 1], rng)
            return np.clip(out, 0.0, 1.0).astype(np.float32)

        corrupt.levels = levels  # type: ignore[attr-defined]
        CORRUPTIONS[kernel.__name__] = corrupt
        return corrupt

    return decorator


def _pixel_grid(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates (H, W) of an image of shape (..., H, W)."""
    rows, cols = np.meshgrid(np.arange(shape[-2]), np.arange(shape[-1]), indexing="ij")
    return rows.astype(np.float64), cols.astype(np.float64)


def _warp(images: np.ndarray, src_rows: np.ndarray, src_cols: np.ndarray, mode: str) -> np.ndarray:
    """Bilinear resampling: ``out[i, c, r, q] = images[i, c, src_rows[i, r, q], src_cols[i, r, q]]``.

    ``images`` is (n, C, H, W); ``src_*`` (n, H, W) give per image where each output pixel is
    read from, shared by all channels. Out-of-image reads follow ``mode`` of
    ``scipy.ndimage.map_coordinates`` ("grid-constant" fills with 0).
    """
    n, c, h, w = images.shape
    planes = images.reshape(n * c, h, w)
    # One map_coordinates call over the whole batch: the leading coordinate picks the plane
    # (always an integer, so interpolation never mixes planes).
    plane = np.broadcast_to(np.arange(n * c, dtype=np.float64)[:, None, None], planes.shape)
    coords = np.stack([plane, np.repeat(src_rows, c, axis=0), np.repeat(src_cols, c, axis=0)])
    return ndimage.map_coordinates(planes, coords, order=1, mode=mode).reshape(images.shape)


@corruption((0.1, 0.2, 0.3, 0.45, 0.6))
def gaussian_noise(images: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise of standard deviation ``std``."""
    return images + std * rng.standard_normal(images.shape)


@corruption((20, 8, 4, 2, 1))
def shot_noise(images: np.ndarray, photons: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson photon noise: a pixel of intensity v becomes Poisson(v * photons) / photons."""
    return rng.poisson(images * photons) / photons


@corruption((0.05, 0.1, 0.2, 0.3, 0.4))
def impulse_noise(images: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Salt-and-pepper noise: each pixel value is replaced by 0 or 1 with probability ``fraction``."""
    hit = rng.random(images.shape) < fraction
    salt = rng.random(images.shape) < 0.5
    images[hit] = salt[hit]
    return images


def _disk_kernel(radius: float) -> np.ndarray:
    """Normalised disk of ``radius`` pixels, each weight the fraction of its pixel inside the disk.

    Coverage is estimated on a 16x16 sub-grid per pixel: at 8x8 the disk spans a few pixels, and
    a hard 0/1 disk would make the blur jump between radii instead of growing smoothly.
    """
    half = int(np.ceil(radius))
    sub = (np.arange(16) + 0.5) / 16 - 0.5
    centres = np.arange(-half, half + 1)
    points = (centres[:, None] + sub[None, :]).ravel()
    inside = (points[:, None] ** 2 + points[None, :] ** 2) <= radius**2
    size = len(centres)
    coverage = inside.reshape(size, 16, size, 16).mean(axis=(1, 3))
    return coverage / coverage.sum()


@corruption((1.0, 1.4, 1.8, 2.2, 2.6))
def defocus_blur(images: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Defocus: convolution with an anti-aliased disk of ``radius`` pixels."""
    kernel = _disk_kernel(radius)[None, None]
    return ndimage.convolve(images, kernel, mode="nearest")


@corruption((2.0, 3.0, 4.0, 5.0, 6.0))
def motion_blur(images: np.ndarray, length: float, rng: np.random.Generator) -> np.ndarray:
    """Average of copies shifted along a streak of ``length`` pixels in a random direction per image."""
    n = len(images)
    angle = rng.uniform(0.0, np.pi, size=n)
    rows, cols = _pixel_grid(images.shape)
    # Sample the streak at least once per pixel of its length, on both sides of the centre.
    offsets = np.linspace(-length / 2, length / 2, 2 * int(np.ceil(length)) + 1)
    total = np.zeros_like(images)
    for offset in offsets:
        d_row = (offset * np.sin(angle))[:, None, None]
        d_col = (offset * np.cos(angle))[:, None, None]
        total += _warp(images, rows + d_row, cols + d_col, mode="nearest")
    return total / len(offsets)


@corruption((0.5, 0.75, 1.0, 1.25, 1.5))
def gaussian_blur(images: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur of standard deviation ``sigma`` pixels."""
    return ndimage.gaussian_filter(images, sigma=(0, 0, sigma, sigma), mode="nearest")


@corruption((0.5, 0.35, 0.25, 0.15, 0.1))
def contrast(images: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Shrink each image's deviation from its own mean intensity by ``factor``."""
    mean = images.mean(axis=(1, 2, 3), keepdims=True)
    return (images - mean) * factor + mean


@corruption((0.2, 0.3, 0.4, 0.5, 0.6))
def brightness(images: np.ndarray, offset: float, rng: np.random.Generator) -> np.ndarray:
    """Add ``offset`` to every pixel (saturating at 1)."""
    return images + offset


def _area_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) matrix averaging input pixels over each output pixel's footprint."""
    edges = np.linspace(0.0, size_in, size_out + 1)
    left = np.maximum(edges[:-1, None], np.arange(size_in)[None, :])
    right = np.minimum(edges[1:, None], np.arange(size_in)[None, :] + 1)
    overlap = np.clip(right - left, 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def _nearest_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) 0/1 matrix copying the input pixel nearest to each output pixel."""
    source = np.floor((np.arange(size_out) + 0.5) * size_in / size_out).astype(int)
    return np.eye(size_in)[source]


@corruption((0.875, 0.75, 0.625, 0.5, 0.375))
def pixelate(images: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Area-downsample to ``fraction`` of the resolution, then upsample by nearest neighbour."""
    h, w = images.shape[-2:]
    small_h, small_w = max(1, round(fraction * h)), max(1, round(fraction * w))
    rows = _nearest_matrix(small_h, h) @ _area_matrix(h, small_h)
    cols = _nearest_matrix(small_w, w) @ _area_matrix(w, small_w)
    return np.einsum("rh,nchw,qw->ncrq", rows, images, cols)


@corruption((6, 12, 18, 24, 30))
def rotation(images: np.ndarray, degrees: float, rng: np.random.Generator) -> np.ndarray:
    """Rotate each image about its centre by ``degrees``, clockwise or anticlockwise at random."""
    h, w = images.shape[-2:]
    theta = np.deg2rad(degrees) * rng.choice([-1.0, 1.0], size=len(images))[:, None, None]
    rows, cols = _pixel_grid(images.shape)
    dr, dc = rows - (h - 1) / 2, cols - (w - 1) / 2
    src_rows = np.cos(theta) * dr - np.sin(theta) * dc + (h - 1) / 2
    src_cols = np.sin(theta) * dr + np.cos(theta) * dc + (w - 1) / 2
    return _warp(images, src_rows, src_cols, mode="grid-constant")


@corruption((0.3, 0.5, 0.7, 0.9, 1.1))
def elastic_transform(images: np.ndarray, rms: float, rng: np.random.Generator) -> np.ndarray:
    """Warp by a random smooth displacement field whose RMS length is ``rms`` pixels."""
    n, _, h, w = images.shape
    # White noise smoothed at 1 px gives a field coherent over a few pixels, i.e. stroke-sized
    # at 8x8; rescaling it fixes the displacement size independently of the smoothing.
    field = ndimage.gaussian_filter(rng.standard_normal((2, n, h, w)), sigma=(0, 0, 1, 1))
    field *= rms / np.sqrt((field**2).sum(axis=0).mean(axis=(1, 2)))[None, :, None, None]
    rows, cols = _pixel_grid(images.shape)
    return _warp(images, rows + field[0], cols + field[1], mode="grid-constant")


def corrupt(images: np.ndarray, name: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Apply the corruption called ``name``; unknown names raise ``ValueError`` listing the valid ones."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; valid: {', '.join(CORRUPTIONS)}")
    return CORRUPTIONS[name](images, severity, rng)
