"""Label-preserving random augmentation of test batches (RMT's ``tta_transform`` analog).

Döbler, Marsden, Yang (CVPR 2023) augment CIFAR test images with colour jitter, a random
affine map (rotation, translation, scale), Gaussian blur, flips and Gaussian noise. Small
digits and 1-D signals get the label-preserving subset that applies to them:

- images (n, C, H, W): rotation in [-15, 15] degrees, translation up to 1/16 of a side,
  scale in [0.9, 1.1] (one affine map per sample, bilinear, zero padding); contrast and
  brightness jitter (factor in [0.8, 1.2], offset in [-0.1, 0.1] times the sample's std);
  Gaussian noise of std 0.005 times the batch's std.
- signals (n, L) or (n, C, L): the same translation and scale along the length (no rotation,
  no flip: a mirrored signal is another signal), then the same jitter and noise.

Documented choice: flips and blur are left out (a flipped digit or signal can change class;
blurring an 8x8 image erases it). Randomness comes from ``generator``; every random number
(and the affine maps built from them) is drawn on the CPU and moved to the batch's device, so
a seed augments alike on every device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from infobench.tasks.tta.common import host_random


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> Tensor:
    """``n`` draws of U[low, high) on the CPU."""
    return low + (high - low) * torch.rand(n, generator=generator, device="cpu")


def _affine_maps(n: int, image: bool, generator: torch.Generator | None) -> Tensor:
    """(n, 2, 3) random affine maps on the CPU: rotation (images only), scale, translation."""
    angle = _uniform(n, -15.0, 15.0, generator) * (math.pi / 180.0) if image else torch.zeros(n, device="cpu")
    scale = _uniform(n, 0.9, 1.1, generator)
    shift = _uniform(2 * n, -1.0 / 8, 1.0 / 8, generator).reshape(n, 2)  # 1/16 of a side in [-1, 1] units
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    if not image:
        theta[:, 1] = torch.tensor([0.0, 1.0, 0.0], device="cpu")  # no movement across the (size-1) height
    return theta


def random_augment(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """A randomly augmented copy of ``x`` (images or signals, see the module docstring)."""
    if x.dim() not in (2, 3, 4):
        raise ValueError(f"random_augment expects (n, L), (n, C, L) or (n, C, H, W), got {tuple(x.shape)}")
    n = x.shape[0]
    image = x.dim() == 4
    grid_in = x if image else (x[:, None, None, :] if x.dim() == 2 else x[:, :, None, :])
    theta = _affine_maps(n, image, generator).to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(grid_in.shape), align_corners=False)
    out = F.grid_sample(grid_in, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = out if image else out.reshape(x.shape)
    dims = tuple(range(1, x.dim()))
    std = x.std(dim=dims, keepdim=True).clamp_min(1e-8)
    view = (n,) + (1,) * (x.dim() - 1)
    contrast = _uniform(n, 0.8, 1.2, generator).reshape(view).to(device=x.device, dtype=x.dtype)
    offset = _uniform(n, -0.1, 0.1, generator).reshape(view).to(device=x.device, dtype=x.dtype) * std
    mean = out.mean(dim=dims, keepdim=True)
    out = (out - mean) * contrast + mean + offset
    # the noise scale stays a device tensor: float(x.std()) would wait for the device
    return out + host_random("normal", out.shape, generator, out) * (0.005 * x.std())
