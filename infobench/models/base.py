"""The contract every model plugin keeps: ``features(x)`` then a linear ``head``."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Classifier(nn.Module):
    """A classifier split into a feature extractor and a linear head.

    Subclasses build ``self.head = nn.Linear(self.feature_dim, num_classes)`` and implement
    ``features``. Later tasks hook layers (forward hooks), add heads on ``features`` or
    replace ``head``; nothing else about the model may be assumed.
    """

    Params: ClassVar[type[BaseModel]] = NoParams
    feature_dim: int
    head: nn.Linear

    def __init__(self, params: BaseModel, input_shape: tuple[int, ...], num_classes: int):
        super().__init__()
        self.params = params
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes

    def features(self, x: Tensor) -> Tensor:
        """Penultimate representation of shape (n, feature_dim)."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
