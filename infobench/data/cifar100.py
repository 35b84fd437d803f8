"""CIFAR-100 from its "python version" folder (``cifar-100-python``), 100 fine classes.

The folder holds ``train`` (50,000 images) and ``test`` (10,000), pickled dicts with
``b'data'`` uint8 (n, 3072) and ``b'fine_labels'`` (its ``b'coarse_labels'``, the 20
superclasses, and the ``meta`` file are not read). Read as CIFAR-10 is: see
:mod:`infobench.data.cifar`.
"""

from __future__ import annotations

from pydantic import Field

from infobench.data.cifar import IMAGE_SHAPE, CifarFolder, CifarLayout
from infobench.data.files import PathStr
from infobench.data.splits import HeldOutParams
from infobench.registry import register

LAYOUT = CifarLayout("CIFAR-100", ("train",), "test", "fine_labels", num_classes=100)
CIFAR100_FORMAT = LAYOUT.expected

__all__ = ["CIFAR100", "CIFAR100_FORMAT", "IMAGE_SHAPE", "LAYOUT"]


@register("dataset", "cifar100")
class CIFAR100(CifarFolder):
    """CIFAR-100 from the python-version folder, x (n, 3, 32, 32) in [0, 1], 100 fine classes."""

    class Params(HeldOutParams):
        """The CIFAR-100 folder and the val carve-out / subsample of its 50,000 training images."""

        path: PathStr = Field("data/cifar-100-python", description=f"the folder: {CIFAR100_FORMAT}")

    layout = LAYOUT
    test_only = ()  # every field shapes the train and val splits
