"""1-D CNN for signals such as MNIST-1D: the paper's ConvBase (Greydanus, 2020)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from infobench.models.base import Classifier
from infobench.models.layers import ActivationName, conv_block, conv_out_length, signal_shape
from infobench.registry import register

# The paper's ConvBase geometry: three strided convolutions, each roughly halving the length.
_LAYERS = 3
_KERNEL, _STRIDE, _PADDING = 5, 2, 1


@register("model", "cnn1d")
class CNN1D(Classifier):
    """Three strided 1-D convolutions (kernel 5, stride 2, padding 1) then a linear head.

    Inputs are (n, C, L) or (n, L). Features are the last conv map flattened, of size
    ``channels * L3``; for MNIST-1D (L=40) lengths go 40 -> 19 -> 9 -> 4, so 25 * 4 = 100.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        channels: int = Field(25, ge=1, description="Channels of every convolution.")
        batchnorm: bool = Field(False, description="BatchNorm1d after each convolution.")
        activation: ActivationName = Field("relu", description="Nonlinearity after each convolution.")

    def __init__(self, params: Params, input_shape: tuple[int, ...], num_classes: int):
        super().__init__(params, input_shape, num_classes)
        self.in_channels, length = signal_shape("cnn1d", self.input_shape)
        blocks = []
        channels = self.in_channels
        for _ in range(_LAYERS):
            blocks.append(
                conv_block(1, channels, params.channels, kernel_size=_KERNEL, stride=_STRIDE,
                           padding=_PADDING, batchnorm=params.batchnorm,
                           activation=params.activation)
            )
            channels = params.channels
            length = conv_out_length(length, _KERNEL, _STRIDE, _PADDING)
            if length < 1:
                raise ValueError(
                    f"cnn1d: input shape {self.input_shape} is too short for {_LAYERS} "
                    f"stride-{_STRIDE} convolutions (length must be at least 15)"
                )
        self.convs = nn.Sequential(*blocks)
        self.feature_dim = params.channels * length
        self.head = nn.Linear(self.feature_dim, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """(n, C, L) or (n, L) -> (n, channels * L3): the last conv map, flattened."""
        x = x.reshape(len(x), self.in_channels, -1)
        return self.convs(x).flatten(1)
