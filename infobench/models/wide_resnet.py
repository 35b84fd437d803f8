"""Wide residual network (Zagoruyko & Komodakis, 2016), laid out so RobustBench checkpoints load."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import Tensor, nn
from torch.nn import functional as F

from infobench.models.base import Classifier
from infobench.models.layers import image_shape
from infobench.registry import register


class WideBasicBlock(nn.Module):
    """Pre-activation block BN-ReLU-conv3x3-BN-ReLU-(dropout)-conv3x3 plus a shortcut (WRN, Fig. 1c/d).

    (n, in_channels, H, W) -> (n, out_channels, H / stride, W / stride). As in the reference
    code, a block that changes the width projects the *activated* input with a 1x1
    ``convShortcut``; a block that keeps it adds the raw input. Dropout sits between the two
    convolutions (WRN Sec. 2.4). Module names are RobustBench's (``bn1``, ``relu1``, ...).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.dropout = dropout
        self.convShortcut = (  # noqa: N815 (the checkpoint's name)
            None if in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
        )

    def forward(self, x: Tensor) -> Tensor:
        pre = self.relu1(self.bn1(x))
        shortcut = x if self.convShortcut is None else self.convShortcut(pre)
        out = self.relu2(self.bn2(self.conv1(pre)))
        out = F.dropout(out, p=self.dropout, training=self.training)
        return shortcut + self.conv2(out)


class WideGroup(nn.Module):
    """``blocks`` WideBasicBlocks in ``self.layer``; only the first changes width and stride."""

    def __init__(self, blocks: int, in_channels: int, out_channels: int, stride: int, dropout: float):
        super().__init__()
        self.layer = nn.Sequential(*(
            WideBasicBlock(in_channels if i == 0 else out_channels, out_channels,
                           stride if i == 0 else 1, dropout)
            for i in range(blocks)
        ))

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)


@register("model", "wrn")
class WideResNet(Classifier):
    """WRN-depth-k: a 3x3 stem, three groups of wide pre-activation blocks, BN-ReLU, global pooling.

    Zagoruyko & Komodakis (2016), "Wide Residual Networks", Table 1: groups of 16k, 32k and
    64k channels with ``(depth - 4) / 6`` blocks each, the last two groups halving the map.
    WRN-28-10 has 36.5M parameters for 10 classes. Parameter names follow RobustBench's
    ``WideResNet`` (``conv1``, ``block1.layer.0.bn1``, ..., ``bn1``, ``fc``) so that its
    checkpoints (e.g. the "Standard" CIFAR-10 model) load; ``fc`` is our ``head``. Inputs are
    [0, 1] images, as RobustBench models take them (no normalisation inside).

    Departure from the reference code: the final pooling is adaptive (global) instead of a
    fixed 8x8 average, which is the same for 32x32 inputs and also serves other sizes.
    """

    checkpoint_renames = {"fc.": "head."}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        depth: int = Field(28, ge=10, description="Convolutional layers plus the head: 6 * blocks_per_group + 4.")
        widen_factor: int = Field(10, ge=1, description="Width multiplier k of the three groups (16k, 32k, 64k channels).")
        dropout: float = Field(0.0, ge=0, lt=1, description="Dropout rate between the two convolutions of a block.")

        @field_validator("depth")
        @classmethod
        def _depth_fits_groups(cls, depth: int) -> int:
            if (depth - 4) % 6:
                raise ValueError(f"depth must be 6n + 4 (e.g. 16, 22, 28, 40), got {depth}")
            return depth

    def __init__(self, params: Params, input_shape: tuple[int, ...], num_classes: int):
        super().__init__(params, input_shape, num_classes)
        self.in_shape = image_shape("wrn", self.input_shape)
        blocks = (params.depth - 4) // 6
        widths = [16, 16 * params.widen_factor, 32 * params.widen_factor, 64 * params.widen_factor]
        self.conv1 = nn.Conv2d(self.in_shape[0], widths[0], 3, padding=1, bias=False)
        self.block1 = WideGroup(blocks, widths[0], widths[1], 1, params.dropout)
        self.block2 = WideGroup(blocks, widths[1], widths[2], 2, params.dropout)
        self.block3 = WideGroup(blocks, widths[2], widths[3], 2, params.dropout)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.relu = nn.ReLU()
        self.feature_dim = widths[3]
        self.head = nn.Linear(self.feature_dim, num_classes)
        # He initialisation (fan-out) of the convolutions, as in the reference code
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.head.bias)

    def features(self, x: Tensor) -> Tensor:
        """(n, C, H, W) -> (n, 64k): BN-ReLU of the last group, globally average-pooled."""
        out = self.block3(self.block2(self.block1(self.conv1(x.reshape(len(x), *self.in_shape)))))
        return F.adaptive_avg_pool2d(self.relu(self.bn1(out)), 1).flatten(1)
