"""Image class folders (``<folder>/<class>/<image>``), listed as torchvision's ImageFolder does.

A class is a sub-folder; its images are the files directly inside it whose extension is one of
:data:`~infobench.data.images.IMAGE_EXTENSIONS` (any case). Class folders and images are sorted
by name; names starting with a dot (``.DS_Store``, ``.ipynb_checkpoints``) and other files are
skipped. Nested folders inside a class folder are not read (ImageFolder would walk them).
Listing reads folder entries only, never an image.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from infobench.data.files import data_error, require_dir
from infobench.data.images import IMAGE_EXTENSIONS


def sub_folders(folder: Path) -> list[str]:
    """Names of the sub-folders of ``folder`` (not hidden), sorted."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def image_names(folder: Path) -> list[str]:
    """Names of the image files directly in ``folder`` (not hidden), sorted."""
    with os.scandir(folder) as entries:
        return sorted(
            e.name
            for e in entries
            if not e.name.startswith(".")
            and e.name.lower().endswith(IMAGE_EXTENSIONS)
            and e.is_file()
        )


def class_images(folder: Path | str, expected: str) -> dict[str, list[str]]:
    """Each class folder of ``folder`` and its image names, classes sorted; ``DataError`` when
    ``folder`` is missing or holds no class folder."""
    folder = require_dir(folder, expected)
    classes = sub_folders(folder)
    if not classes:
        raise data_error(folder, "holds no class folder", expected)
    return {name: image_names(folder / name) for name in classes}


def labelled(
    folder: Path, listing: dict[str, list[str]], classes: list[str], expected: str
) -> tuple[list[Path], np.ndarray]:
    """The image paths of ``listing`` (from ``folder``) and their labels, the index in
    ``classes``; a class folder not in ``classes`` is a ``DataError``."""
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(listing) - set(index))
    if unknown:
        shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise data_error(folder, f"has class folders that are not classes: {shown}", expected)
    paths = [folder / name / image for name, images in listing.items() for image in images]
    labels = [index[name] for name, images in listing.items() for _ in images]
    return paths, np.asarray(labels, dtype=np.int64)
