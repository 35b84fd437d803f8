"""CIFAR-10-C (Hendrycks & Dietterich, 2019): CIFAR-10's test set under corruptions, as .npy files.

The corrupted sets are the shifted domains; train, val and clean test come from a CIFAR-10
python-version folder (``train_path``), since CIFAR-10-C ships no training data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field, field_validator

from infobench.data.base import DataBundle, Dataset, Split
from infobench.data.cifar10 import CIFAR10_FORMAT, IMAGE_SHAPE, cifar10_files, cifar10_splits
from infobench.data.files import (
    PathStr,
    check_labels,
    data_error,
    require_dir,
    require_file,
    unit_float,
)
from infobench.data.severity import LEVELS, Severity, as_levels, domain_key
from infobench.data.splits import HeldOutParams
from infobench.registry import register

CIFAR10C_FORMAT = (
    "a CIFAR-10-C folder: one <corruption>.npy per corruption, uint8 of shape (5 * n, 32, 32, 3) "
    "holding severities 1 to 5 in turn, and labels.npy with n or 5 * n labels in 0..9"
)
LABELS_FILE = "labels.npy"


def available_corruptions(folder: Path) -> list[str]:
    """Names of the corruptions in a CIFAR-10-C folder: its .npy stems but labels, sorted."""
    return sorted(p.stem for p in folder.glob("*.npy") if p.name != LABELS_FILE)


def _read_npy(path: Path) -> np.ndarray:
    """A memory-mapped view of one .npy file, so that only the requested severities are read."""
    require_file(path, CIFAR10C_FORMAT)
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as err:
        # Bad magic, a broken header and a truncated body each raise their own type.
        raise data_error(path, f"cannot be read as .npy ({err})", CIFAR10C_FORMAT) from err


def read_labels(folder: Path) -> np.ndarray:
    """The labels of a CIFAR-10-C folder, int64 of shape (n,) or (5 * n,)."""
    path = folder / LABELS_FILE
    raw = _read_npy(path)
    return check_labels(raw, len(raw), path, CIFAR10C_FORMAT, name="labels", num_classes=10)


def corruption_file(folder: Path, name: str) -> Path:
    """``folder/<name>.npy``, or a ``DataError`` listing the corruptions that are there."""
    path = folder / f"{name}.npy"
    if not path.is_file():
        # Name what is there: a misspelt corruption is the likely cause.
        found = ", ".join(available_corruptions(folder)) or "none"
        raise data_error(path, f"no such file (corruptions found: {found})", CIFAR10C_FORMAT)
    return path


def read_corruption(
    folder: Path, name: str, levels: list[int], labels: np.ndarray
) -> dict[int, Split]:
    """The test sets of one corruption at ``levels``: x float32 (n, 3, 32, 32) in [0, 1]."""
    path = corruption_file(folder, name)
    images = _read_npy(path)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise data_error(path, f"holds {images.dtype} of shape {images.shape}", CIFAR10C_FORMAT)
    n, remainder = divmod(len(images), len(LEVELS))
    if remainder or len(labels) not in (n, len(images)):
        raise data_error(
            path,
            f"has {len(images)} images, not 5 severities of the {len(labels)} labels",
            CIFAR10C_FORMAT,
        )
    sets = {}
    for level in levels:
        rows = slice((level - 1) * n, level * n)
        # Stored channels-last (n, 32, 32, 3); the models take channels-first.
        x = unit_float(np.ascontiguousarray(images[rows].transpose(0, 3, 1, 2)))
        y = labels[rows] if len(labels) == len(images) else labels
        sets[level] = Split(x, y.copy())
    return sets


@register("dataset", "cifar10-c")
class CIFAR10C(Dataset):
    """CIFAR-10-C corrupted test sets (<corruption>.npy) over clean CIFAR-10 train/val/test."""

    class Params(HeldOutParams):
        """Where the corrupted and the clean data are, and which domains to load."""

        path: PathStr = Field("data/CIFAR-10-C", description=f"the folder: {CIFAR10C_FORMAT}")
        train_path: PathStr = Field(
            "data/cifar-10-batches-py",
            description=f"clean train/val/test from {CIFAR10_FORMAT}",
        )
        corruptions: list[str] | None = Field(
            None,
            description="corruptions (file stems in path) in domain order; default: every .npy "
            "but labels.npy, sorted by name",
        )
        severity: Severity = Field(
            5, description="severity 1-5, or a list of them; each corruption gets every severity"
        )

        @field_validator("corruptions")
        @classmethod
        def _plain_names(cls, names: list[str] | None) -> list[str] | None:
            if names is None:
                return None
            if not names:
                raise ValueError("give at least one corruption, or leave corruptions unset for all")
            bad = [name for name in names if not name or Path(name).name != name]
            if bad:
                raise ValueError(f"corruptions are file stems without folders, got {bad}")
            if len(set(names)) != len(names):
                raise ValueError(f"corruptions must not repeat, got {names}")
            return names

    # The corrupted sets only ever become test domains; train/val come from train_path.
    test_only = ("path", "corruptions", "severity")

    def _corruptions(self) -> tuple[Path, list[str]]:
        """The CIFAR-10-C folder and the corruptions to load from it, in domain order."""
        folder = require_dir(self.params.path, CIFAR10C_FORMAT)
        names = self.params.corruptions
        if names is None:
            names = available_corruptions(folder)
        if not names:
            raise data_error(folder, "holds no <corruption>.npy file", CIFAR10C_FORMAT)
        return folder, names

    def files(self) -> list[Path]:
        """The labels, the chosen corruptions' files, then the clean CIFAR-10 batches."""
        folder, names = self._corruptions()
        labels = require_file(folder / LABELS_FILE, CIFAR10C_FORMAT)
        return [labels, *(corruption_file(folder, name) for name in names), *self.train_files()]

    def train_files(self) -> list[Path]:
        return cifar10_files(self.params.train_path)

    def load(self, seed: int) -> DataBundle:
        """Domains ``"<corruption>@<severity>"``, by corruption then severity; ``seed`` is unused."""
        p = self.params
        folder, names = self._corruptions()
        labels = read_labels(folder)
        levels = as_levels(p.severity)
        domains = {
            domain_key(name, level): split
            for name in names
            for level, split in read_corruption(folder, name, levels, labels).items()
        }
        train, val, test = cifar10_splits(p.train_path, p)
        return DataBundle(
            name="cifar10-c",
            train=train,
            val=val,
            test=test,
            num_classes=10,
            input_shape=IMAGE_SHAPE,
            domains=domains,
        )
