"""CIFAR-10-C and CIFAR-100-C (Hendrycks & Dietterich, ICLR 2019): a CIFAR test set under
corruptions, one .npy file per corruption.

Each ``<corruption>.npy`` is uint8 (50000, 32, 32, 3): the 10,000 test images at severity 1,
then at 2, ..., then at 5; ``labels.npy`` holds their labels (50,000, or the 10,000 once). The
corrupted sets are the shifted domains, keyed ``"<corruption>@<severity>"``; train, val and
clean test come from the matching python-version folder (``train_path``), since the corrupted
release ships no training data. :class:`CifarCorrupted` is the plug-in shared by both.

Left unset, ``corruptions`` takes every .npy of the folder sorted by name: on the real release
19 corruptions, not the 15 of the TTA benchmark in its order (see
:mod:`infobench.data.corruption_names`), so a spec reproducing the benchmark says
``corruptions: standard``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import Field

from infobench.data.base import DataBundle, Dataset, Split
from infobench.data.cifar import IMAGE_SHAPE, CifarLayout, cifar_files, cifar_splits
from infobench.data.corruption_names import Corruptions
from infobench.data.files import check_labels, data_error, require_dir, require_file, unit_float
from infobench.data.severity import LEVELS, Severity, as_levels, domain_key
from infobench.data.splits import HeldOutParams

LABELS_FILE = "labels.npy"


def corrupted_format(title: str, num_classes: int) -> str:
    """The folder format of ``title`` (e.g. ``"CIFAR-10-C"``), as messages state it."""
    return (
        f"a {title} folder: one <corruption>.npy per corruption, uint8 of shape "
        "(5 * n, 32, 32, 3) holding severities 1 to 5 in turn, and labels.npy with n or 5 * n "
        f"labels in 0..{num_classes - 1}"
    )


def available_corruptions(folder: Path) -> list[str]:
    """Names of the corruptions in a CIFAR-C folder: its .npy stems but labels, sorted."""
    return sorted(p.stem for p in folder.glob("*.npy") if p.name != LABELS_FILE)


def _read_npy(path: Path, expected: str) -> np.ndarray:
    """A memory-mapped view of one .npy file, so that only the requested severities are read."""
    require_file(path, expected)
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as err:
        # Bad magic, a broken header and a truncated body each raise their own type.
        raise data_error(path, f"cannot be read as .npy ({err})", expected) from err


def read_labels(folder: Path, num_classes: int, expected: str) -> np.ndarray:
    """The labels of a CIFAR-C folder, int64 of shape (n,) or (5 * n,)."""
    path = folder / LABELS_FILE
    raw = _read_npy(path, expected)
    return check_labels(raw, len(raw), path, expected, name="labels", num_classes=num_classes)


def corruption_file(folder: Path, name: str, expected: str) -> Path:
    """``folder/<name>.npy``, or a ``DataError`` listing the corruptions that are there."""
    path = folder / f"{name}.npy"
    if not path.is_file():
        # Name what is there: a misspelt corruption is the likely cause.
        found = ", ".join(available_corruptions(folder)) or "none"
        raise data_error(path, f"no such file (corruptions found: {found})", expected)
    return path


def read_corruption(
    folder: Path, name: str, levels: list[int], labels: np.ndarray, expected: str
) -> dict[int, Split]:
    """The test sets of one corruption at ``levels``: x float32 (n, 3, 32, 32) in [0, 1]."""
    path = corruption_file(folder, name, expected)
    images = _read_npy(path, expected)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise data_error(path, f"holds {images.dtype} of shape {images.shape}", expected)
    n, remainder = divmod(len(images), len(LEVELS))
    if remainder or len(labels) not in (n, len(images)):
        raise data_error(
            path,
            f"has {len(images)} images, not 5 severities of the {len(labels)} labels",
            expected,
        )
    sets = {}
    for level in levels:
        rows = slice((level - 1) * n, level * n)
        # Stored channels-last (n, 32, 32, 3); the models take channels-first.
        x = unit_float(np.ascontiguousarray(images[rows].transpose(0, 3, 1, 2)))
        y = labels[rows] if len(labels) == len(images) else labels
        sets[level] = Split(x, y.copy())
    return sets


class CorruptedParams(HeldOutParams):
    """Which corrupted domains to load, and the clean val carve-out (``HeldOutParams``).

    Subclasses add ``path`` (the corrupted folder) and ``train_path`` (the clean one).
    """

    corruptions: Corruptions | None = Field(
        None,
        description="corruptions (file stems in path) in domain order, or 'standard' for the 15 "
        "of the TTA benchmark in its order; default: every .npy but labels.npy, sorted by name",
    )
    severity: Severity = Field(
        5, description="severity 1-5, or a list of them; each corruption gets every severity"
    )


class CifarCorrupted(Dataset):
    """Corrupted test sets (``path``) over a clean CIFAR python-version folder (``train_path``).

    Subclasses set :attr:`clean` (the clean folder's layout), :attr:`title` and a ``Params``
    deriving from :class:`CorruptedParams`.
    """

    clean: ClassVar[CifarLayout]
    title: ClassVar[str]

    @classmethod
    def expected(cls) -> str:
        return corrupted_format(cls.title, cls.clean.num_classes)

    def _corruptions(self) -> tuple[Path, list[str]]:
        """The corrupted folder and the corruptions to load from it, in domain order."""
        folder = require_dir(self.params.path, self.expected())
        names = self.params.corruptions
        if names is None:
            names = available_corruptions(folder)
        if not names:
            raise data_error(folder, "holds no <corruption>.npy file", self.expected())
        return folder, names

    def files(self) -> list[Path]:
        """The labels, the chosen corruptions' files, then the clean batches."""
        folder, names = self._corruptions()
        expected = self.expected()
        labels = require_file(folder / LABELS_FILE, expected)
        corrupted = [corruption_file(folder, name, expected) for name in names]
        return [labels, *corrupted, *self.train_files()]

    def train_files(self) -> list[Path]:
        return cifar_files(self.params.train_path, self.clean)

    def load(self, seed: int) -> DataBundle:
        """Domains ``"<corruption>@<severity>"``, by corruption then severity; ``seed`` is unused."""
        p, expected = self.params, self.expected()
        folder, names = self._corruptions()
        labels = read_labels(folder, self.clean.num_classes, expected)
        levels = as_levels(p.severity)
        domains = {
            domain_key(name, level): split
            for name in names
            for level, split in read_corruption(folder, name, levels, labels, expected).items()
        }
        train, val, test = cifar_splits(p.train_path, p, self.clean)
        return DataBundle(
            name=self.registered_name,
            train=train,
            val=val,
            test=test,
            num_classes=self.clean.num_classes,
            input_shape=IMAGE_SHAPE,
            domains=domains,
        )
