"""The information-plane network: a fully connected net with a list of layer widths.

``infobench/models/mlp.py`` has one width for every hidden layer; the Shwartz-Ziv & Tishby
network narrows layer by layer (12-10-7-5-4-3-2), so it is defined here.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from torch import Tensor, nn

from infobench.models.base import Classifier
from infobench.models.layers import ActivationName, flat_dim, make_activation
from infobench.registry import register


@register("model", "ib_mlp")
class IBMLP(Classifier):
    """MLP with one width per hidden layer (default: Shwartz-Ziv & Tishby's 12-10-7-5-4-3-2).

    Shwartz-Ziv & Tishby, "Opening the Black Box of Deep Neural Networks via Information"
    (arXiv 1703.00810, 2017): hidden layers of 10, 7, 5, 4 and 3 units with tanh, a 2-unit
    softmax output. Each hidden layer is Linear -> activation; the last hidden layer is the
    feature vector and ``head`` maps it to the logits. The activation is selectable (tanh,
    relu, elu, softsign, sigmoid: the activation study of Chelombiev et al., ICLR 2019).

    Initialisation ``truncated_normal`` follows the paper's code: weights from a normal with
    standard deviation 1/sqrt(fan_in) truncated at two standard deviations, biases zero;
    ``torch`` keeps PyTorch's default (uniform, Kaiming-style) initialisation.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        widths: list[PositiveInt] = Field([10, 7, 5, 4, 3], min_length=1,
                                  description="Units of each hidden layer, input side first.")
        activation: ActivationName = Field("tanh", description="Nonlinearity after each hidden layer.")
        init: Literal["truncated_normal", "torch"] = Field(
            "truncated_normal", description="Weight initialisation: the paper's N(0, 1/fan_in) truncated at 2 sd, or PyTorch's default."
        )

    def __init__(self, params: Params, input_shape: tuple[int, ...], num_classes: int):
        super().__init__(params, input_shape, num_classes)
        layers: list[nn.Module] = []
        in_dim = flat_dim(self.input_shape)
        for width in params.widths:
            layers += [nn.Linear(in_dim, width), make_activation(params.activation)]
            in_dim = width
        self.body = nn.Sequential(*layers)
        self.feature_dim = in_dim
        self.head = nn.Linear(in_dim, num_classes)
        if params.init == "truncated_normal":
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    std = 1.0 / math.sqrt(module.in_features)
                    nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
                    nn.init.zeros_(module.bias)

    def features(self, x: Tensor) -> Tensor:
        """(n, *input_shape) -> (n, widths[-1]): the last hidden layer's activations."""
        return self.body(torch.flatten(x, 1))
