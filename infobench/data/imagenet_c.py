"""ImageNet-C (Hendrycks & Dietterich, ICLR 2019): ImageNet's validation set under corruptions.

The release is a folder per corruption and severity, holding the 50,000 validation images in
class folders: ``ROOT/<corruption>/<severity>/<wnid>/<image>.JPEG``. The classes are the sorted
wnid folder names (1000 on the real data), so the labels are the class indices of torchvision's
and timm's pretrained ImageNet models. Each domain ``"<corruption>@<severity>"`` holds the same
images (same relative paths) in every corruption. Images are decoded lazily
(:class:`~infobench.data.images.ImageFiles`), batch by batch, as the anchors' preprocessing
does: resize 256, centre crop 224, values in [0, 1]; the model normalises them.

The TTA anchors (RobustBench; the CoTTA/RMT code) adapt on the 15 benchmark corruptions at
severity 5, 5,000 images per corruption: RobustBench's fixed list ``imagenet_test_image_ids.txt``
(``<wnid>/<file>`` lines, drawn uniformly at random from the 50,000). infobench ships no such
list; by default it draws ``n_per_domain`` images uniformly at random with ``subset_seed``
(the same draw for every corruption, and for the clean test set). Pass the list itself as
``image_list`` to adapt on exactly the anchors' images.

There is no training data: a pretrained model is used (``train: none``), and train and val are
empty arrays of the input shape. The optional clean validation folder (``val_root``, class
folders ``<wnid>/<image>.JPEG`` with ImageNet-C's file names) gives the clean test split, on the
same images as the domains.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from infobench.data.base import DataBundle, Dataset, Split
from infobench.data.corruption_names import BENCHMARK_CORRUPTIONS, Corruptions
from infobench.data.files import (
    ListingFingerprint,
    PathStr,
    data_error,
    require_dir,
    require_file,
)
from infobench.data.folders import class_images, sub_folders
from infobench.data.images import ImageFiles
from infobench.data.severity import Severity, as_levels, domain_key
from infobench.registry import register

IMAGENET_C_FORMAT = (
    "an ImageNet-C folder: <corruption>/<severity>/<wnid>/<image>.JPEG, the same wnid class "
    "folders (1000; sorted, their indices are the labels) and image names in every corruption "
    "and severity"
)
IMAGENET_VAL_FORMAT = (
    "the clean ImageNet validation set in class folders, <wnid>/<image>.JPEG, with the wnids and "
    "image names of ImageNet-C"
)
IMAGE_LIST_FORMAT = (
    "a text file of image paths relative to a domain folder, one '<wnid>/<image>' per line "
    "(RobustBench's imagenet_test_image_ids.txt)"
)
MAX_LIST_BYTES = 64 << 20
"""An image list larger than 64 MiB is refused unread (50,000 lines take 2 MB)."""


def read_image_list(path: Path | str) -> list[str]:
    """The ``<wnid>/<image>`` entries of an image list, in file order (blank lines skipped)."""
    path = require_file(path, IMAGE_LIST_FORMAT)
    if path.stat().st_size > MAX_LIST_BYTES:
        raise data_error(path, f"is larger than {MAX_LIST_BYTES >> 20} MiB", IMAGE_LIST_FORMAT)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise data_error(path, f"is not UTF-8 text ({err})", IMAGE_LIST_FORMAT) from err
    entries = [line.strip() for line in lines if line.strip()]
    for n, entry in enumerate(entries, 1):
        parts = entry.split("/")
        if len(parts) != 2 or not all(parts) or any(p in (".", "..") for p in parts):
            raise data_error(
                path, f"entry {n} {entry!r} is not '<wnid>/<image>'", IMAGE_LIST_FORMAT
            )
    if len(set(entries)) != len(entries):
        raise data_error(path, "lists an image twice", IMAGE_LIST_FORMAT)
    if not entries:
        raise data_error(path, "lists no image", IMAGE_LIST_FORMAT)
    return entries


def _entries(listing: dict[str, list[str]]) -> list[str]:
    return [f"{name}/{image}" for name, images in listing.items() for image in images]


@register("dataset", "imagenet-c")
class ImageNetC(ListingFingerprint, Dataset):
    """ImageNet-C domains (<corruption>/<severity>/<wnid>/*.JPEG), decoded lazily; no train data.

    The run's identity digests the list of the images read (relative path, size, mtime), not
    their content: hashing 75,000 JPEGs (about 7 GB) at every plan would take minutes.
    """

    class Params(BaseModel):
        """Where ImageNet-C is, which domains and images to read, and the preprocessing."""

        model_config = ConfigDict(extra="forbid")

        root: PathStr = Field("data/ImageNet-C", description=f"the folder: {IMAGENET_C_FORMAT}")
        corruptions: Corruptions = Field(
            default_factory=lambda: list(BENCHMARK_CORRUPTIONS),
            description="corruption folders in domain order; default (or 'standard'): the 15 of "
            "the TTA benchmark in its order",
        )
        severity: Severity = Field(
            5, description="severity 1-5, or a list of them; each corruption gets every severity"
        )
        n_per_domain: int | None = Field(
            5000,
            ge=1,
            description="images per domain, the same ones in every domain (the anchors: 5000); "
            "null: all",
        )
        subset_seed: int = Field(
            0, ge=0, description="seed of the uniform draw of n_per_domain images"
        )
        image_list: PathStr | None = Field(
            None,
            description=f"instead of the seeded draw, the images of {IMAGE_LIST_FORMAT}; the "
            "first n_per_domain of them",
        )
        val_root: PathStr | None = Field(
            None, description=f"the clean test split, from {IMAGENET_VAL_FORMAT}; none: empty"
        )
        image_size: int = Field(224, ge=1, le=4096, description="side of the centre crop")
        resize: int | None = Field(
            256, ge=1, le=8192, description="shorter side before the crop (null: image_size)"
        )

    # Train and val are always empty: only the empty arrays' shape depends on params.
    test_only = (
        "root", "corruptions", "severity", "n_per_domain", "subset_seed", "image_list", "val_root",
    )  # fmt: skip
    family = "imagenet"

    def _domain_folders(self) -> dict[str, Path]:
        """The folder of each domain, keyed ``"<corruption>@<severity>"`` in domain order."""
        root = require_dir(self.params.root, IMAGENET_C_FORMAT)
        folders = {}
        for corruption in self.params.corruptions:
            if not (root / corruption).is_dir():
                found = ", ".join(sub_folders(root)) or "none"
                problem = f"no such folder (corruptions found: {found})"
                raise data_error(root / corruption, problem, IMAGENET_C_FORMAT)
            for level in as_levels(self.params.severity):
                folders[domain_key(corruption, level)] = root / corruption / str(level)
        return folders

    def _chosen(self, first: list[str]) -> list[str]:
        """The ``<wnid>/<image>`` entries every domain must hold: the image list's (in its order),
        or a seeded draw from the first domain's (``first``, sorted), kept sorted."""
        p = self.params
        if p.image_list is not None:
            return read_image_list(p.image_list)[: p.n_per_domain]
        if p.n_per_domain is None or p.n_per_domain >= len(first):
            return first
        rng = np.random.default_rng(p.subset_seed)
        keep = np.sort(rng.choice(len(first), size=p.n_per_domain, replace=False))
        return [first[i] for i in keep]

    def _plan(self) -> tuple[list[str], list[str], dict[str, Path]]:
        """The classes, the chosen images and the folders (domains, then ``"val"``), each
        checked to hold those classes and images. Folders are listed, nothing is read: on the
        real data about 0.2 s per domain of 50,000 images."""
        folders = self._domain_folders()
        if self.params.val_root is not None:
            folders["val"] = require_dir(self.params.val_root, IMAGENET_VAL_FORMAT)
        first = next(iter(folders.values()))
        chosen, classes = [], []
        for key, folder in folders.items():
            expected = IMAGENET_VAL_FORMAT if key == "val" else IMAGENET_C_FORMAT
            listing = class_images(folder, expected)
            if not classes:  # the first domain sets the classes and the images to read
                classes, chosen = list(listing), self._chosen(_entries(listing))
                if not chosen:
                    raise data_error(folder, "holds no image", expected)
            if list(listing) != classes:
                differ = sorted(set(listing) ^ set(classes))
                shown = ", ".join(differ[:5]) + (", ..." if len(differ) > 5 else "")
                problem = f"has other class folders than {first} (differing: {shown})"
                raise data_error(folder, problem, expected)
            held = set(_entries(listing))
            missing = [entry for entry in chosen if entry not in held]
            if missing:
                problem = f"lacks {len(missing)} of the chosen images, e.g. {missing[0]}"
                raise data_error(folder, problem, expected)
        return classes, chosen, folders

    def files(self) -> list[Path]:
        """The image list (if any), the chosen images of each domain, then the clean ones."""
        _, chosen, folders = self._plan()
        listed = (
            [require_file(self.params.image_list, IMAGE_LIST_FORMAT)]
            if self.params.image_list
            else []
        )
        return listed + [folder / entry for folder in folders.values() for entry in chosen]

    def train_files(self) -> list[Path]:
        return []  # no training data: train and val are empty

    def load(self, seed: int) -> DataBundle:
        """The domains, by corruption then severity, and the clean test split; ``seed`` is unused."""
        p = self.params
        classes, chosen, folders = self._plan()
        index = {name: i for i, name in enumerate(classes)}
        labels = np.array([index[entry.split("/")[0]] for entry in chosen], dtype=np.int64)

        def images(folder: Path, expected: str) -> Split:
            paths = [folder / entry for entry in chosen]
            return Split(ImageFiles(paths, p.image_size, p.resize, expected), labels.copy())

        shape = (3, p.image_size, p.image_size)
        empty = Split(np.zeros((0, *shape), np.float32), np.zeros(0, np.int64))
        test = images(folders.pop("val"), IMAGENET_VAL_FORMAT) if "val" in folders else empty
        domains = {key: images(folder, IMAGENET_C_FORMAT) for key, folder in folders.items()}
        return DataBundle(
            name="imagenet-c",
            train=empty,
            val=empty,
            test=test,
            num_classes=len(classes),
            input_shape=shape,
            domains=domains,
        )
