"""The contract of a mutual-information (or entropy) estimator.

``estimate(x, y)`` takes arrays of shape (n, dx) and (n, dy) and returns I(X; Y) in nats.
Each estimator declares the cases it supports through ``kinds``: ``"continuous"`` (both
real-valued), ``"discrete"`` (both take finitely many values; rows are symbols) and
``"mixed"`` (``x`` continuous, ``y`` a discrete label). Inputs are checked by
``check_pair`` so every estimator refuses a wrong shape, a NaN or too few samples the same
way.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

Kind = Literal["continuous", "discrete", "mixed"]


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


def as_2d(a: np.ndarray, name: str) -> np.ndarray:
    """``a`` as a float or int array of shape (n, d); a 1-D array becomes one column."""
    a = np.asarray(a)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d) or (n,), got {a.shape}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


def check_pair(x: np.ndarray, y: np.ndarray, min_samples: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Validate an (x, y) pair: 2-D, same number of rows, finite, at least ``min_samples`` rows."""
    x, y = as_2d(x, "x"), as_2d(y, "y")
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same number of rows, got {len(x)} and {len(y)}")
    if len(x) < min_samples:
        raise ValueError(f"need at least {min_samples} samples, got {len(x)}")
    return x, y


class MIEstimator:
    """Base class; subclasses register with ``@register("mi.estimator", name)``."""

    Params: ClassVar[type[BaseModel]] = NoParams
    kinds: ClassVar[tuple[Kind, ...]] = ("continuous",)
    is_bound: ClassVar[bool] = False  # variational bounds report a bound, not an estimate

    def __init__(self, params: BaseModel | None = None):
        self.params = params if params is not None else self.Params()

    def estimate(self, x: np.ndarray, y: np.ndarray) -> float:
        """I(X; Y) in nats for x of shape (n, dx) and y of shape (n, dy)."""
        raise NotImplementedError


def is_discrete(a: np.ndarray) -> bool:
    """Whether ``a`` holds symbols (an integer or boolean array) rather than real values."""
    return np.asarray(a).dtype.kind in "biu"


def check_k(n: int, k: int) -> None:
    """A k-nearest-neighbour estimator needs n >= k + 1 samples."""
    if n < k + 1:
        raise ValueError(f"need at least k + 1 = {k + 1} samples for k = {k} neighbours, got {n}")
