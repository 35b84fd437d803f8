"""What every dataset plugin returns: numpy splits plus optional shifted test domains."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class Split:
    """One labelled set. ``x``: float32 of shape (n, *input_shape); ``y``: int64 of shape (n,).

    ``x`` is a numpy array, or for image sets too large for memory a lazy
    ``infobench.data.images.ImageFiles`` that decodes the rows it is indexed with (subset and
    join it with ``images.take``/``images.concat``, which keep it lazy)."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} rows but y has {len(self.y)}")

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class DataBundle:
    """Train/val/test splits of one dataset, and shifted test sets keyed ``"<shift>@<severity>"``.

    ``domains`` is ordered: a continual TTA stream visits them in this order.
    """

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, ...]
    domains: dict[str, Split] = field(default_factory=dict)


class Dataset:
    """Base class of dataset plugins: ``Dataset(params).load(seed) -> DataBundle``.

    ``seed`` drives only the randomness of shifts (corruption noise); the split into
    train/val/test is fixed by the dataset's own parameters so every seed sees the same data.

    Besides ``load``, a plugin declares what a run's identity and the trained-model cache need:

    ``test_only``
        Names of ``Params`` fields that shape only the shifted test domains, never the train
        and val splits a model is trained on (digits-c's ``corruptions`` and ``severity``).
        :meth:`train_params` leaves them out, so changing only them reuses a trained model.
        Anything that can change train or val (split fractions and seeds, sizes, data seeds,
        the path of the training data) is not test-only. Checked against ``Params`` when the
        plugin class is defined.
    :meth:`files`
        The local files ``load`` will read with the current params, so that a run can be
        identified by their content. Cheap (paths only, nothing parsed); a missing file raises
        the ``DataError`` that ``load`` would, naming the path and the expected layout, so it
        is reported before any run starts. The default, no files, is for generated data.
    :meth:`train_files`
        Those of :meth:`files` that can change the train and val splits; by default all.

    ``family``
        The benchmark family whose published method defaults apply to this data: ``"cifar"``
        (small images, tens or hundreds of classes; also every toy and user dataset) or
        ``"imagenet"``. TTA methods whose papers or anchor configs give different defaults per
        family (EATA's d_margin, for one) take them from this; see ``TTAMethod.family_defaults``.
    """

    Params: ClassVar[type[BaseModel]] = NoParams
    test_only: ClassVar[tuple[str, ...]] = ()
    family: ClassVar[str] = "cifar"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        unknown = [name for name in cls.test_only if name not in cls.Params.model_fields]
        if unknown:
            raise TypeError(f"{cls.__name__}.test_only names {unknown}, not fields of its Params")

    def __init__(self, params: BaseModel | None = None):
        self.params = params if params is not None else self.Params()

    def load(self, seed: int) -> DataBundle:
        raise NotImplementedError

    def files(self) -> list[Path]:
        """The local files :meth:`load` reads with these params (none: generated data)."""
        return []

    def train_files(self) -> list[Path]:
        """The files among :meth:`files` that the train and val splits can depend on."""
        return self.files()

    def fingerprint(self, files: list[Path]) -> list[str] | None:
        """Stand-ins for the content of ``files`` in a run's identity, or None (the default) to
        hash each file. Folders of too many files to hash at every plan (ImageNet-C) return a
        digest of their listing (path, size, mtime): ``infobench.data.files.ListingFingerprint``."""
        return None

    def train_params(self) -> dict:
        """The params as JSON-ready values, less the :attr:`test_only` fields.

        Two instances with equal ``train_params()`` (and equal :meth:`train_files` content)
        give the same train and val splits.
        """
        return self.params.model_dump(mode="json", exclude=set(self.test_only))
