"""Fully connected network; its defaults are the MNIST-1D paper's MLP (Greydanus, 2020)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from infobench.models.base import Classifier
from infobench.models.layers import ActivationName, flat_dim, make_activation
from infobench.registry import register


@register("model", "mlp")
class MLP(Classifier):
    """Multilayer perceptron on the flattened input: `depth` hidden layers of `width` units.

    Each hidden layer is Linear -> (BatchNorm1d) -> activation -> (Dropout). The last hidden
    layer's output is the feature vector, so ``feature_dim == width`` (or the flattened input
    size when ``depth == 0``, which makes this logistic regression).
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        width: int = Field(100, ge=1, description="Units per hidden layer.")
        depth: int = Field(2, ge=0, description="Number of hidden layers.")
        activation: ActivationName = Field("relu", description="Nonlinearity after each hidden layer.")
        batchnorm: bool = Field(False, description="BatchNorm1d before each activation.")
        dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout rate after each activation.")

    def __init__(self, params: Params, input_shape: tuple[int, ...], num_classes: int):
        super().__init__(params, input_shape, num_classes)
        layers: list[nn.Module] = []
        in_dim = flat_dim(self.input_shape)
        for _ in range(params.depth):
            layers.append(nn.Linear(in_dim, params.width))
            if params.batchnorm:
                layers.append(nn.BatchNorm1d(params.width))
            layers.append(make_activation(params.activation))
            if params.dropout > 0:
                layers.append(nn.Dropout(params.dropout))
            in_dim = params.width
        self.body = nn.Sequential(*layers)
        self.feature_dim = in_dim
        self.head = nn.Linear(self.feature_dim, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """(n, *input_shape) -> (n, feature_dim): the last hidden layer's activations."""
        return self.body(x.flatten(1))
