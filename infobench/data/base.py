"""What every dataset plugin returns: numpy splits plus optional shifted test domains."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class Split:
    """One labelled set. ``x``: float32 of shape (n, *input_shape); ``y``: int64 of shape (n,)."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} rows but y has {len(self.y)}")

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class DataBundle:
    """Train/val/test splits of one dataset, and shifted test sets keyed ``"<shift>@<severity>"``.

    ``domains`` is ordered: a continual TTA stream visits them in this order.
    """

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, ...]
    domains: dict[str, Split] = field(default_factory=dict)


class Dataset:
    """Base class of dataset plugins: ``Dataset(params).load(seed) -> DataBundle``.

    ``seed`` drives only the randomness of shifts (corruption noise); the split into
    train/val/test is fixed by the dataset's own parameters so every seed sees the same data.
    """

    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, params: BaseModel | None = None):
        self.params = params if params is not None else self.Params()

    def load(self, seed: int) -> DataBundle:
        raise NotImplementedError
