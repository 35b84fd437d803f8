"""Small 2-D CNN for 8x8 digits and 32x32 images: conv-BN-activation blocks, global pooling."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from infobench.models.base import Classifier
from infobench.models.layers import ActivationName, conv_block, downsample_plan, image_shape
from infobench.registry import register


@register("model", "cnn2d")
class CNN2D(Classifier):
    """Small CNN: `depth` blocks of 3x3 conv -> BatchNorm -> activation, then global average pooling.

    Block ``i`` has ``width * 2**i`` channels and is followed by 2x2 max pooling while the
    feature map stays at least 2x2 (8x8: 8 -> 4 -> 2; 32x32: 32 -> 16 -> 8). Global average
    pooling makes the features independent of the input size: ``feature_dim =
    width * 2**(depth - 1)``.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        width: int = Field(32, ge=1, description="Channels of the first block; doubled per block.")
        depth: int = Field(2, ge=1, description="Number of conv blocks.")
        batchnorm: bool = Field(True, description="BatchNorm2d after each convolution.")
        activation: ActivationName = Field("relu", description="Nonlinearity after each convolution.")

    def __init__(self, params: Params, input_shape: tuple[int, ...], num_classes: int):
        super().__init__(params, input_shape, num_classes)
        self.in_shape = image_shape("cnn2d", self.input_shape)
        in_channels, height, width = self.in_shape
        layers: list[nn.Module] = []
        channels = in_channels
        for i, halve in enumerate(downsample_plan(min(height, width), params.depth)):
            out_channels = params.width * 2**i
            layers.append(
                conv_block(2, channels, out_channels, kernel_size=3, padding=1,
                           batchnorm=params.batchnorm, activation=params.activation)
            )
            if halve:
                layers.append(nn.MaxPool2d(2))
            channels = out_channels
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.feature_dim = channels
        self.head = nn.Linear(self.feature_dim, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """(n, C, H, W) -> (n, feature_dim): globally average-pooled last block."""
        return self.body(x.reshape(len(x), *self.in_shape))
