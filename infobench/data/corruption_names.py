"""Naming corruptions in a spec: the TTA benchmark's 15, and checks on user-given names.

The standard TTA benchmark on CIFAR-10-C, CIFAR-100-C and ImageNet-C (Wang et al., Tent, ICLR
2021; Wang et al., CoTTA, CVPR 2022; Doebler et al., RMT, CVPR 2023) adapts on the 15
corruptions of Hendrycks & Dietterich (ICLR 2019) in the order of :data:`BENCHMARK_CORRUPTIONS`
(the anchors' ``CORRUPTION.TYPE``), at severity 5. The releases hold 4 more (gaussian_blur,
saturate, spatter, speckle_noise), which that benchmark leaves out.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

BENCHMARK_CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform",
    "pixelate", "jpeg_compression",
)  # fmt: skip
"""The 15 corruptions of the TTA benchmark, in its order."""

STANDARD = "standard"
"""What a spec may write for :data:`BENCHMARK_CORRUPTIONS`: ``corruptions: standard``."""


def _standard(value: object) -> object:
    return list(BENCHMARK_CORRUPTIONS) if value == STANDARD else value


def _plain_names(names: list[str]) -> list[str]:
    if not names:
        raise ValueError("give at least one corruption")
    bad = [n for n in names if not n or n in (".", "..") or PurePath(n).name != n or "\\" in n]
    if bad:
        raise ValueError(f"corruptions are names without folders (file or folder stems), got {bad}")
    if len(set(names)) != len(names):
        raise ValueError(f"corruptions must not repeat, got {names}")
    return names


Corruptions = Annotated[list[str], BeforeValidator(_standard), AfterValidator(_plain_names)]
"""A pydantic field type: corruption names in domain order, or ``"standard"`` for the 15."""
