"""CIFAR-100-C (Hendrycks & Dietterich, ICLR 2019): CIFAR-100's test set under corruptions.

The corrupted sets (``path``, one .npy per corruption, fine labels in labels.npy) are the
shifted domains; train, val and clean test come from a CIFAR-100 python-version folder
(``train_path``). Loaded exactly as CIFAR-10-C: see :mod:`infobench.data.cifar_c`.
"""

from __future__ import annotations

from pydantic import Field

from infobench.data.cifar100 import CIFAR100_FORMAT, LAYOUT
from infobench.data.cifar_c import CifarCorrupted, CorruptedParams, corrupted_format
from infobench.data.files import PathStr
from infobench.registry import register

CIFAR100C_FORMAT = corrupted_format("CIFAR-100-C", LAYOUT.num_classes)


@register("dataset", "cifar100-c")
class CIFAR100C(CifarCorrupted):
    """CIFAR-100-C corrupted test sets (<corruption>.npy) over clean CIFAR-100 train/val/test."""

    class Params(CorruptedParams):
        """Where the corrupted and the clean data are, and which domains to load."""

        path: PathStr = Field("data/CIFAR-100-C", description=f"the folder: {CIFAR100C_FORMAT}")
        train_path: PathStr = Field(
            "data/cifar-100-python", description=f"clean train/val/test from {CIFAR100_FORMAT}"
        )

    clean = LAYOUT
    title = "CIFAR-100-C"
    # The corrupted sets only ever become test domains; train/val come from train_path.
    test_only = ("path", "corruptions", "severity")
