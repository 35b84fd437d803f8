"""Object-destroying shuffles: DeYO's patch shuffle for images and its 1-D analog for signals.

Lee, Jung, Lee, Kim, Kim, "Entropy is not Enough for Test-Time Adaptation: From the
Perspective of Disentangled Factors", ICLR 2024, Sec. 3.2: an image is cut into a
``pieces x pieces`` grid of patches whose order is shuffled, which keeps local texture and
colour but destroys the object's shape. For 1-D signals (MNIST-1D), the signal is cut into
``pieces`` equal segments whose order is shuffled: the documented 1-D analog.

Every sample draws its own permutation (as DeYO's code does). Sizes that ``pieces`` does not
divide are resized (bilinear / linear) to the next multiple, shuffled and resized back. The
permutations are drawn on the CPU (from ``generator``) and moved to the batch's device, so a
seed shuffles alike on every device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _permutations(n: int, pieces: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """(n, pieces) independent random permutations of ``range(pieces)``, drawn on the CPU, on ``device``."""
    return torch.rand(n, pieces, generator=generator, device="cpu").argsort(1).to(device)


def _round_up(size: int, pieces: int) -> int:
    return -(-size // pieces) * pieces


def patch_shuffle(x: Tensor, pieces: int, generator: torch.Generator | None = None) -> Tensor:
    """Shuffle a ``pieces x pieces`` grid of patches of each image in ``x`` (n, C, H, W)."""
    if x.dim() != 4:
        raise ValueError(f"patch_shuffle expects images (n, C, H, W), got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    gh, gw = _round_up(h, pieces), _round_up(w, pieces)
    y = x if (gh, gw) == (h, w) else F.interpolate(x, size=(gh, gw), mode="bilinear", align_corners=False)
    ph, pw = gh // pieces, gw // pieces
    patches = y.reshape(n, c, pieces, ph, pieces, pw).permute(0, 2, 4, 1, 3, 5).reshape(n, pieces * pieces, c, ph, pw)
    order = _permutations(n, pieces * pieces, generator, x.device)
    patches = patches[torch.arange(n, device=x.device)[:, None], order]
    y = patches.reshape(n, pieces, pieces, c, ph, pw).permute(0, 3, 1, 4, 2, 5).reshape(n, c, gh, gw)
    return y if (gh, gw) == (h, w) else F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)


def segment_shuffle(x: Tensor, pieces: int, generator: torch.Generator | None = None) -> Tensor:
    """Shuffle ``pieces`` equal segments of each signal in ``x`` (n, C, L) or (n, L)."""
    if x.dim() not in (2, 3):
        raise ValueError(f"segment_shuffle expects signals (n, L) or (n, C, L), got shape {tuple(x.shape)}")
    flat = x.dim() == 2
    y = x[:, None, :] if flat else x
    n, c, length = y.shape
    gl = _round_up(length, pieces)
    if gl != length:
        y = F.interpolate(y, size=gl, mode="linear", align_corners=False)
    seg = gl // pieces
    segments = y.reshape(n, c, pieces, seg).permute(0, 2, 1, 3)
    segments = segments[torch.arange(n, device=x.device)[:, None], _permutations(n, pieces, generator, x.device)]
    y = segments.permute(0, 2, 1, 3).reshape(n, c, gl)
    if gl != length:
        y = F.interpolate(y, size=length, mode="linear", align_corners=False)
    return y[:, 0] if flat else y


def destroy_objects(x: Tensor, pieces: int, generator: torch.Generator | None = None) -> Tensor:
    """Patch shuffle for 4-D image batches, segment shuffle for 2-D/3-D signal batches."""
    if pieces < 1:
        raise ValueError(f"pieces must be >= 1, got {pieces}")
    if x.dim() == 4:
        return patch_shuffle(x, pieces, generator)
    return segment_shuffle(x, pieces, generator)
