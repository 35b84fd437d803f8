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
    # True where the continuous case measures I(X; T) for a representation T = y that is a
    # deterministic function of x (a layer's activations), as the KDE bounds do
    deterministic_y: ClassVar[bool] = False
    max_dims: ClassVar[int | None] = None  # the most columns x and y may each have (None: any)
    # True where estimate(x, y) == estimate(y, x) for two real (or two discrete) variables, up to
    # rounding and tie-breaking noise (tests/mi/test_mi_properties.py checks the claim); the
    # critic bounds are symmetric only in distribution (the critic's initialisation differs)
    symmetric: ClassVar[bool] = False

    def __init__(self, params: BaseModel | None = None):
        self.params = params if params is not None else self.Params()

    def estimate(self, x: np.ndarray, y: np.ndarray) -> float:
        """I(X; Y) in nats for x of shape (n, dx) and y of shape (n, dy)."""
        raise NotImplementedError

    @staticmethod
    def kind_of(x: np.ndarray, y: np.ndarray) -> Kind:
        """The case of a pair: both symbols (discrete), both real (continuous), or real x with a label y (mixed)."""
        if is_discrete(x) and is_discrete(y):
            return "discrete"
        if is_discrete(y) and np.asarray(y).reshape(len(y), -1).shape[1] == 1:
            return "mixed"
        return "continuous"

    def unsupported(self, x: np.ndarray, y: np.ndarray) -> str | None:
        """Why this estimator cannot take the pair (x, y), or None when it can."""
        x, y = as_2d(x, "x"), as_2d(y, "y")
        name = getattr(self, "registered_name", type(self).__name__)
        if self.max_dims is not None and max(x.shape[1], y.shape[1]) > self.max_dims:
            return f"{name} takes x and y of at most {self.max_dims} column(s), got x {x.shape} and y {y.shape}"
        kind = self.kind_of(x, y)
        if kind not in self.kinds:
            return f"{name} supports {', '.join(self.kinds)} pairs, not {kind}"
        return None

    def require_supported(self, x: np.ndarray, y: np.ndarray) -> None:
        """Raise ``ValueError`` saying why when this estimator cannot take the pair (x, y)."""
        reason = self.unsupported(x, y)
        if reason is not None:
            raise ValueError(reason)


def is_discrete(a: np.ndarray) -> bool:
    """Whether ``a`` holds symbols (an integer or boolean array) rather than real values."""
    return np.asarray(a).dtype.kind in "biu"


def check_k(n: int, k: int) -> None:
    """A k-nearest-neighbour estimator needs n >= k + 1 samples."""
    if n < k + 1:
        raise ValueError(f"need at least k + 1 = {k + 1} samples for k = {k} neighbours, got {n}")
