"""CIFAR-10-C (Hendrycks & Dietterich, ICLR 2019): CIFAR-10's test set under corruptions.

The corrupted sets (``path``, one .npy per corruption) are the shifted domains; train, val and
clean test come from a CIFAR-10 python-version folder (``train_path``). The format, the
standard benchmark's corruptions and the loading are shared with CIFAR-100-C: see
:mod:`infobench.data.cifar_c`.
"""

from __future__ import annotations

from pydantic import Field

from infobench.data.cifar10 import CIFAR10_FORMAT, LAYOUT
from infobench.data.cifar_c import CifarCorrupted, CorruptedParams, corrupted_format
from infobench.data.files import PathStr
from infobench.registry import register

CIFAR10C_FORMAT = corrupted_format("CIFAR-10-C", LAYOUT.num_classes)


@register("dataset", "cifar10-c")
class CIFAR10C(CifarCorrupted):
    """CIFAR-10-C corrupted test sets (<corruption>.npy) over clean CIFAR-10 train/val/test."""

    class Params(CorruptedParams):
        """Where the corrupted and the clean data are, and which domains to load."""

        path: PathStr = Field("data/CIFAR-10-C", description=f"the folder: {CIFAR10C_FORMAT}")
        train_path: PathStr = Field(
            "data/cifar-10-batches-py", description=f"clean train/val/test from {CIFAR10_FORMAT}"
        )

    clean = LAYOUT
    title = "CIFAR-10-C"
    # The corrupted sets only ever become test domains; train/val come from train_path.
    test_only = ("path", "corruptions", "severity")
