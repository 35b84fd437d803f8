"""Multinomial logistic regression: the flattened input feeds a linear head directly."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn

from infobench.models.base import Classifier
from infobench.models.layers import flat_dim
from infobench.registry import register


@register("model", "linear")
class LinearClassifier(Classifier):
    """Logistic regression on the flattened input (features are the raw input values)."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, params: BaseModel, input_shape: tuple[int, ...], num_classes: int):
        super().__init__(params, input_shape, num_classes)
        self.feature_dim = flat_dim(self.input_shape)
        self.head = nn.Linear(self.feature_dim, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """(n, *input_shape) -> (n, prod(input_shape)): the input itself, flattened."""
        return x.flatten(1)
