"""Building blocks shared by the model plugins: activations, conv blocks, input-shape checks."""

from __future__ import annotations

import math
from typing import Literal, get_args

from torch import nn

from infobench.registry import did_you_mean

ActivationName = Literal["relu", "tanh", "elu", "softsign", "sigmoid"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "softsign": nn.Softsign,
    "sigmoid": nn.Sigmoid,
}
# The Literal is what pydantic validates specs against; keep it and the table in step.
assert set(get_args(ActivationName)) == set(_ACTIVATIONS)


def make_activation(name: str) -> nn.Module:
    """A fresh activation module for ``name`` (one of ``ActivationName``).

    Unknown names raise ``ValueError`` listing the known ones and the closest match.
    """
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        known = sorted(_ACTIVATIONS)
        raise ValueError(
            f"unknown activation {name!r}{did_you_mean(name, known)}; known: {', '.join(known)}"
        ) from None


def conv_block(
    ndim: int,
    in_channels: int,
    out_channels: int,
    *,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    batchnorm: bool,
    activation: str,
) -> nn.Sequential:
    """conv -> (BatchNorm) -> activation, 1-D (``ndim=1``) or 2-D (``ndim=2``).

    The convolution drops its bias under BatchNorm, whose shift makes it redundant.
    """
    conv_cls = {1: nn.Conv1d, 2: nn.Conv2d}[ndim]
    norm_cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[ndim]
    layers: list[nn.Module] = [
        conv_cls(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                 bias=not batchnorm)
    ]
    if batchnorm:
        layers.append(norm_cls(out_channels))
    layers.append(make_activation(activation))
    return nn.Sequential(*layers)


def conv_out_length(length: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution along one axis (PyTorch's formula, dilation 1)."""
    return (length + 2 * padding - kernel_size) // stride + 1


def downsample_plan(size: int, steps: int, min_size: int = 2) -> list[bool]:
    """Which of ``steps`` stages halve a spatial side of ``size`` pixels.

    A stage halves only while the result stays at least ``min_size``, so one architecture
    serves 8x8 digits (8 -> 4 -> 2, then no more halving) and 32x32 images (32 -> 16 -> 8).
    """
    plan = []
    for _ in range(steps):
        halve = size // 2 >= min_size
        plan.append(halve)
        if halve:
            size //= 2
    return plan


def signal_shape(model: str, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """``(channels, length)`` of a 1-D input; a bare ``(length,)`` counts as one channel."""
    if len(input_shape) == 1:
        return 1, int(input_shape[0])
    if len(input_shape) == 2:
        return int(input_shape[0]), int(input_shape[1])
    raise ValueError(f"model {model!r} takes 1-D signals (C, L) or (L,); got input shape {input_shape}")


def image_shape(model: str, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(channels, height, width)`` of an image input; a bare ``(H, W)`` counts as one channel."""
    if len(input_shape) == 2:
        return 1, int(input_shape[0]), int(input_shape[1])
    if len(input_shape) == 3:
        c, h, w = input_shape
        return int(c), int(h), int(w)
    raise ValueError(f"model {model!r} takes images (C, H, W) or (H, W); got input shape {input_shape}")


def flat_dim(input_shape: tuple[int, ...]) -> int:
    """Number of values in one input of ``input_shape``."""
    return math.prod(int(d) for d in input_shape)
