"""Small CIFAR-style ResNet with BasicBlocks and BatchNorm, for 8x8 and 32x32 images."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from infobench.models.base import Classifier
from infobench.models.layers import (
    ActivationName,
    conv_block,
    downsample_plan,
    image_shape,
    make_activation,
)
from infobench.registry import register


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a residual connection (He et al., 2016), post-activation.

    (n, in_channels, H, W) -> (n, out_channels, H / stride, W / stride). The shortcut is a
    1x1 conv-BN projection when the shape changes and the identity otherwise.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, activation: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = make_activation(activation)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.act2 = make_activation(activation)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


@register("model", "resnet")
class ResNet(Classifier):
    """ResNet of BasicBlocks: a 3x3 stem, one stage per entry of `blocks`, global pooling.

    Stage ``s`` has ``width * 2**s`` channels; every stage after the first halves the
    feature map while it stays at least 2x2 (8x8: 8 -> 4 -> 2; 32x32: 32 -> 16 -> 8).
    ``feature_dim = width * 2**(len(blocks) - 1)``; the defaults give a ResNet-8 with 64
    features.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        width: int = Field(16, ge=1, description="Channels of the stem and first stage; doubled per stage.")
        blocks: list[Annotated[int, Field(ge=1)]] = Field(
            [1, 1, 1], min_length=1, description="BasicBlocks per stage; its length is the number of stages."
        )
        activation: ActivationName = Field("relu", description="Nonlinearity inside the blocks.")

    def __init__(self, params: Params, input_shape: tuple[int, ...], num_classes: int):
        super().__init__(params, input_shape, num_classes)
        self.in_shape = image_shape("resnet", self.input_shape)
        in_channels, height, width = self.in_shape
        self.stem = conv_block(2, in_channels, params.width, kernel_size=3, padding=1,
                               batchnorm=True, activation=params.activation)
        # The first stage keeps the stem's resolution, as in the CIFAR ResNets.
        halves = [False] + downsample_plan(min(height, width), len(params.blocks) - 1)
        stages: list[nn.Module] = []
        channels = params.width
        for s, (n_blocks, halve) in enumerate(zip(params.blocks, halves, strict=True)):
            out_channels = params.width * 2**s
            stage = [BasicBlock(channels, out_channels, 2 if halve else 1, params.activation)]
            stage += [BasicBlock(out_channels, out_channels, 1, params.activation)
                      for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*stage))
            channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.feature_dim = channels
        self.head = nn.Linear(self.feature_dim, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """(n, C, H, W) -> (n, feature_dim): globally average-pooled last stage."""
        return self.pool(self.stages(self.stem(x.reshape(len(x), *self.in_shape))))
