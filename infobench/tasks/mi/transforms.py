"""Invertible maps that preserve mutual information (Czyz et al., "Beyond Normal", NeurIPS 2023).

I(f(X); g(Y)) = I(X; Y) for injective f, g, so each map below turns a distribution of known MI
into a harder one with the same MI. Each takes and returns an array of shape (n, d).

Documented choice: the spiral rotates the plane of the first two coordinates at 1/3 radian per
unit of squared norm; every map is applied to x and to y alike.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.special import ndtr

TransformName = Literal["none", "half_cube", "asinh", "normal_cdf", "spiral"]
SPIRAL_SPEED = 1 / 3  # radians per unit of squared norm, the benchmark's default


def half_cube(a: np.ndarray) -> np.ndarray:
    """x -> x |x|^(1/2): heavier tails, monotone per coordinate."""
    return a * np.sqrt(np.abs(a))


def spiral(a: np.ndarray, speed: float = SPIRAL_SPEED) -> np.ndarray:
    """x -> R(speed * |x|^2) x, a rotation of the first two coordinates by an angle growing
    with the squared norm; the norm is preserved, so the map is inverted by the opposite rotation."""
    if a.shape[1] < 2:
        raise ValueError(f"the spiral transform needs at least 2 dimensions, got {a.shape[1]}")
    theta = speed * np.einsum("ij,ij->i", a, a)
    c, s = np.cos(theta), np.sin(theta)
    out = a.copy()
    out[:, 0] = c * a[:, 0] - s * a[:, 1]
    out[:, 1] = s * a[:, 0] + c * a[:, 1]
    return out


TRANSFORMS = {
    "none": lambda a: a,
    "half_cube": half_cube,
    "asinh": np.arcsinh,
    "normal_cdf": ndtr,
    "spiral": spiral,
}


def apply(name: str, a: np.ndarray) -> np.ndarray:
    """Apply the named MI-preserving map to ``a`` (n, d)."""
    return TRANSFORMS[name](a)
