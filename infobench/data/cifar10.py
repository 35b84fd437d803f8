"""CIFAR-10 from its "python version" folder, read without executing anything from the pickles.

The folder holds data_batch_1 ... data_batch_5 (10,000 training images each) and test_batch;
see :mod:`infobench.data.cifar` for the format and :mod:`infobench.data.pickles` for how the
pickles are read safely.
"""

from __future__ import annotations

from pydantic import Field

from infobench.data.cifar import IMAGE_SHAPE, CifarFolder, CifarLayout
from infobench.data.files import PathStr
from infobench.data.splits import HeldOutParams
from infobench.registry import register

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
LAYOUT = CifarLayout("CIFAR-10", TRAIN_BATCHES, TEST_BATCH, "labels", num_classes=10)
CIFAR10_FORMAT = LAYOUT.expected

__all__ = ["CIFAR10", "CIFAR10_FORMAT", "IMAGE_SHAPE", "LAYOUT", "TEST_BATCH", "TRAIN_BATCHES"]


@register("dataset", "cifar10")
class CIFAR10(CifarFolder):
    """CIFAR-10 from the python-version folder, x (n, 3, 32, 32) in [0, 1], 10 classes."""

    class Params(HeldOutParams):
        """The CIFAR-10 folder and the val carve-out / subsample of its 50,000 training images."""

        path: PathStr = Field(
            "data/cifar-10-batches-py", description=f"the folder: {CIFAR10_FORMAT}"
        )

    layout = LAYOUT
    test_only = ()  # every field shapes the train and val splits
