"""The CIFAR ResNets of the distillation benchmarks (CRD, DKD): resnet8x4 and resnet32x4.

Tian et al. (2020), "Contrastive Representation Distillation", and Zhao et al. (2022),
"Decoupled Knowledge Distillation", use the same teacher/student ResNets (RepDistiller's
``models/resnet.py``, copied into mdistiller): a 3x3 stem and three stages of post-activation
BasicBlocks, ``(depth - 2) / 6`` blocks per stage. Parameter names are theirs (``conv1``,
``bn1``, ``layer1.0.downsample.0``, ..., ``fc``), so their checkpoints (saved as
``{'model': state_dict}``) load; ``fc`` is our ``head``. Those checkpoints were trained on
inputs normalised with the CIFAR-100 mean and std: give the model block ``normalize: cifar100``.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn
from torch.nn import functional as F

from infobench.models.base import Classifier, NoParams
from infobench.models.layers import image_shape
from infobench.registry import register


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the input (projected by ``downsample`` when the shape
    changes), then ReLU (He et al., 2016). (n, in, H, W) -> (n, out, H / stride, W / stride)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = (
            nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                          nn.BatchNorm2d(out_channels))
            if stride != 1 or in_channels != out_channels else None
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class CifarResNet(Classifier):
    """RepDistiller's CIFAR ResNet of BasicBlocks; subclasses fix ``depth`` and ``filters``.

    ``filters`` are the channels of the stem and of the three stages; stages 2 and 3 halve
    the map (32 -> 16 -> 8). Departure from the reference code: the final pooling is adaptive
    (global) instead of a fixed 8x8 average, which is the same for 32x32 inputs.
    """

    Params = NoParams
    depth: ClassVar[int]
    filters: ClassVar[tuple[int, int, int, int]]
    checkpoint_renames = {"fc.": "head."}

    def __init__(self, params: NoParams, input_shape: tuple[int, ...], num_classes: int):
        super().__init__(params, input_shape, num_classes)
        name = getattr(type(self), "registered_name", type(self).__name__)
        self.in_shape = image_shape(name, self.input_shape)
        blocks = (self.depth - 2) // 6
        stem, *widths = self.filters
        self.conv1 = nn.Conv2d(self.in_shape[0], stem, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU()
        channels = stem
        for i, (width, stride) in enumerate(zip(widths, (1, 2, 2), strict=True), 1):
            stage = [BasicBlock(channels if b == 0 else width, width, stride if b == 0 else 1)
                     for b in range(blocks)]
            self.add_module(f"layer{i}", nn.Sequential(*stage))
            channels = width
        self.feature_dim = channels
        self.head = nn.Linear(self.feature_dim, num_classes)
        # He initialisation (fan-out) of the convolutions, as in the reference code
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: Tensor) -> Tensor:
        """(n, C, H, W) -> (n, filters[-1]): the last stage, globally average-pooled."""
        out = self.relu(self.bn1(self.conv1(x.reshape(len(x), *self.in_shape))))
        out = self.layer3(self.layer2(self.layer1(out)))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)


@register("model", "resnet8x4")
class ResNet8x4(CifarResNet):
    """resnet8x4 (CRD/DKD student): depth 8, filters 32-64-128-256, 1.23M parameters for CIFAR-100."""

    depth = 8
    filters = (32, 64, 128, 256)


@register("model", "resnet32x4")
class ResNet32x4(CifarResNet):
    """resnet32x4 (CRD/DKD teacher): depth 32, filters 32-64-128-256, 7.43M parameters for CIFAR-100."""

    depth = 32
    filters = (32, 64, 128, 256)
