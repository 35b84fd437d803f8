"""A shift of your own as image folders: clean train/test sets and shifted domains.

Layout of ``root`` (each part optional, at least one present)::

    train/<class>/<image>             trains a source model (val is carved from it)
    test/<class>/<image>              the clean test set
    domains/<domain>/<class>/<image>  one folder per shifted test domain

Images are any format Pillow reads (.png, .jpg, ...; see :mod:`infobench.data.folders` for
what is listed), converted to RGB, the shorter side resized to ``resize`` (default
``image_size``), centre-cropped to ``image_size`` and scaled to [0, 1]: x is float32
(n, 3, image_size, image_size).

Labels are the indices of the classes in ``classes``; by default the sorted class folder names
of ``train/`` (else of ``test/`` and the domains together). A class folder outside them is an
error. Domains come in the order of ``domains``, by default sorted by folder name.

Memory: when every image fits in :data:`EAGER_LIMIT_BYTES` as float32 the images are decoded
once, at load, into numpy arrays (so every task and method can use them); larger folders stay
on disk as :class:`~infobench.data.images.ImageFiles`, decoded batch by batch when read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field, field_validator

from infobench.data.base import DataBundle, Dataset, Split
from infobench.data.files import ListingFingerprint, PathStr, data_error, require_dir
from infobench.data.folders import class_images, labelled, sub_folders
from infobench.data.images import ImageFiles
from infobench.data.splits import HeldOutParams, carve_val
from infobench.registry import register

IMAGE_FOLDER_FORMAT = (
    "an image folder: train/<class>/<image> (optional, trains a source model), "
    "test/<class>/<image> (optional, the clean test set) and domains/<domain>/<class>/<image> "
    "(optional, one folder per shifted domain); images Pillow reads (.png, .jpg, ...)"
)
EAGER_LIMIT_BYTES = 1 << 30
"""Folders whose images take at most 1 GiB as float32 (about 80,000 images of 3x32x32, or
5,000 of 3x224x224) are decoded into memory at load; larger ones are read lazily."""


@register("dataset", "image-folder")
class ImageFolder(ListingFingerprint, Dataset):
    """Your images in class folders: train/, test/ and domains/<domain>/ (the shifted sets).

    The run's identity digests the list of the images (relative path, size, mtime), not their
    content, so that a folder of many images is not read through at every plan.
    """

    class Params(HeldOutParams):
        """The folder, the classes and domains to read, and the preprocessing of the images."""

        root: PathStr = Field("data/images", description=f"the folder: {IMAGE_FOLDER_FORMAT}")
        classes: list[str] | None = Field(
            None,
            description="class folder names in label order; default: those of train/ sorted "
            "(without train/: those of test/ and the domains)",
        )
        domains: list[str] | None = Field(
            None, description="domain folders in stream order; default: every one, sorted by name"
        )
        image_size: int = Field(32, ge=1, le=4096, description="side of the centre crop")
        resize: int | None = Field(
            None, ge=1, le=8192, description="shorter side before the crop (null: image_size)"
        )

        @field_validator("classes", "domains")
        @classmethod
        def _names(cls, names: list[str] | None) -> list[str] | None:
            if names is None:
                return None
            bad = [n for n in names if not n or n in (".", "..") or "/" in n or "\\" in n]
            if not names or bad or len(set(names)) != len(names):
                raise ValueError(f"give distinct folder names without '/', got {names}")
            return names

    # The domains only ever become test domains; train, val, test and classes come from root.
    test_only = ("domains",)

    def _listings(self) -> tuple[Path, dict[str, dict[str, list[str]]], list[str]]:
        """The root, the class listing of each set present (``train``, ``test``, then the
        domains as ``domains/<name>``) and the classes."""
        root = require_dir(self.params.root, IMAGE_FOLDER_FORMAT)
        listings = {
            part: class_images(root / part, IMAGE_FOLDER_FORMAT)
            for part in ("train", "test")
            if (root / part).is_dir()
        }
        found = sub_folders(root / "domains") if (root / "domains").is_dir() else []
        for name in self.params.domains or found:
            if name not in found:
                problem = f"no such folder (domains found: {', '.join(found) or 'none'})"
                raise data_error(root / "domains" / name, problem, IMAGE_FOLDER_FORMAT)
            listings[f"domains/{name}"] = class_images(root / "domains" / name, IMAGE_FOLDER_FORMAT)
        if not listings:
            raise data_error(root, "holds none of train/, test/, domains/", IMAGE_FOLDER_FORMAT)
        classes = self.params.classes
        if classes is None:
            sources = [listings["train"]] if "train" in listings else listings.values()
            classes = sorted({name for listing in sources for name in listing})
        return root, listings, classes

    def _labelled(self) -> tuple[dict[str, tuple[list[Path], np.ndarray]], list[str]]:
        root, listings, classes = self._listings()
        sets = {
            part: labelled(root / part, listing, classes, IMAGE_FOLDER_FORMAT)
            for part, listing in listings.items()
        }
        return sets, classes

    def files(self) -> list[Path]:
        """Every image read: train/, test/, then the domains in order."""
        sets, _ = self._labelled()
        return [path for paths, _ in sets.values() for path in paths]

    def train_files(self) -> list[Path]:
        sets, _ = self._labelled()
        return sets["train"][0] if "train" in sets else []

    def load(self, seed: int) -> DataBundle:
        """Train/val (carved from train/), test and the domains; ``seed`` is unused."""
        p = self.params
        sets, classes = self._labelled()
        shape = (3, p.image_size, p.image_size)

        def split(part: str) -> Split:
            if part not in sets:
                return Split(np.zeros((0, *shape), np.float32), np.zeros(0, np.int64))
            paths, labels = sets[part]
            return Split(ImageFiles(paths, p.image_size, p.resize, IMAGE_FOLDER_FORMAT), labels)

        pool = split("train")
        train, val = carve_val(pool.x, pool.y, p.val_fraction, p.split_seed, p.max_train)
        clean = [train, val, split("test")]
        domains = {part.removeprefix("domains/"): split(part) for part in sets if "/" in part}
        if sum(s.x.nbytes for s in [*clean, *domains.values()]) <= EAGER_LIMIT_BYTES:
            clean = [Split(np.asarray(s.x), s.y) for s in clean]
            domains = {name: Split(np.asarray(s.x), s.y) for name, s in domains.items()}
        train, val, test = clean
        return DataBundle(
            name="image-folder",
            train=train,
            val=val,
            test=test,
            num_classes=len(classes),
            input_shape=shape,
            domains=domains,
        )
