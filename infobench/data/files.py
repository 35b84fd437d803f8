"""Checks shared by the loaders of users' data files (npz, CIFAR, CIFAR-C, MNIST idx, images).

Every problem with a file becomes a :class:`~infobench.errors.DataError` whose message names the
path and the format that was expected, so the user can fix the file without reading code.

Where data lives: a dataset's ``path`` or ``root`` that is relative is looked for in the current
folder first, then under the folder named by the environment variable ``INFOBENCH_DATA``
(:func:`data_path`); :func:`require_file` and :func:`require_dir` do that lookup, so every
loader that starts from them finds the same files.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, BinaryIO

import numpy as np
from pydantic import BeforeValidator

from infobench.errors import DataError

PathStr = Annotated[
    str,
    BeforeValidator(lambda value: os.fspath(value) if isinstance(value, os.PathLike) else value),
]
"""A pydantic field type for a file or folder path: a string (``Path`` objects are accepted).

Plain strings keep the spec, its JSON dump and ``infobench list`` free of ``PosixPath(...)``.
"""


MAX_CLASSES = 100_000
"""Class labels must lie in ``0 .. MAX_CLASSES - 1``.

A label is an index into the model's output layer and into per-class counts, so one stray value
(say 2**31) would size those at billions of entries. 100,000 is well above any classification
benchmark infobench is meant for (ImageNet-21k has 21,841 classes) and keeps such a layer at a
few hundred MB.
"""

READ_CHUNK = 1 << 20
"""Bytes asked of a stream at a time: file readers (gzip's, Python's) allocate what is asked."""


def data_error(path: Path | str, problem: str, expected: str) -> DataError:
    """A ``DataError`` reading ``"<path>: <problem>; expected <expected>"``."""
    return DataError(f"{path}: {problem}; expected {expected}")


DATA_ENV = "INFOBENCH_DATA"
"""The environment variable naming a folder where relative data paths are looked for too."""


def data_path(path: Path | str) -> Path:
    """Where a data path of a spec points, as an absolute path.

    An absolute path (``~`` expanded) is taken as it is. A relative one is looked for in the
    current folder, then under ``$INFOBENCH_DATA``; the first that exists wins. When neither
    exists the current-folder one is returned, so that the error names it (with
    :func:`_lookup_hint`). Absolute results make the lookup happen once: the files a loader
    finds inside a folder are never looked up again elsewhere.
    """
    path = Path(path).expanduser()
    if path.is_absolute():
        return path
    here = Path.cwd() / path
    root = os.environ.get(DATA_ENV)
    if not here.exists() and root:
        there = Path(root).expanduser().absolute() / path
        if there.exists():
            return there
    return here


def _lookup_hint(path: Path | str) -> str:
    """What a missing relative path was looked for as: the current folder and $INFOBENCH_DATA."""
    path = Path(path).expanduser()
    if path.is_absolute():
        return ""
    root = os.environ.get(DATA_ENV)
    if not root:
        return f" (a relative path: looked in {Path.cwd()}; set ${DATA_ENV} to look in a data folder too)"
    there = Path(root).expanduser().absolute() / path
    return f" (a relative path: looked in {Path.cwd()} and in ${DATA_ENV}, as {there})"


def require_file(path: Path | str, expected: str) -> Path:
    """The existing file ``path`` points to (see :func:`data_path`), else a ``DataError``."""
    found = data_path(path)
    if not found.is_file():
        problem = (
            "is a folder, not a file" if found.is_dir() else "no such file" + _lookup_hint(path)
        )
        raise data_error(found, problem, expected)
    return found


def require_dir(path: Path | str, expected: str) -> Path:
    """The existing folder ``path`` points to (see :func:`data_path`), else a ``DataError``."""
    found = data_path(path)
    if not found.is_dir():
        problem = (
            "is a file, not a folder" if found.is_file() else "no such folder" + _lookup_hint(path)
        )
        raise data_error(found, problem, expected)
    return found


def listing_digest(paths: Sequence[Path]) -> str:
    """sha256 of the (relative path, size, mtime) of ``paths``, in their order: a stand-in for
    their content when they are too many to read (an image folder of tens of GB).

    Paths are taken relative to their common folder, so a folder moved whole (``mv`` keeps
    mtimes) keeps its digest; a file rewritten, added, removed or renamed changes it. A copy
    that does not keep mtimes gets a new digest (a spurious change, never a missed one).
    """
    paths = [Path(p) for p in paths]
    h = hashlib.sha256(f"{len(paths)} files\n".encode())
    if paths:
        common = Path(os.path.commonpath(paths)) if len(paths) > 1 else paths[0].parent
        for p in paths:
            stat = p.stat()
            h.update(
                f"{p.relative_to(common).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
            )
    return h.hexdigest()


class ListingFingerprint:
    """Mix-in of dataset plug-ins that read too many files to hash (image folders): the run's
    identity stands on :func:`listing_digest` of their files instead of their content.

    ``fingerprint(files)`` is the hook the core calls, when a plug-in has it, in place of a
    content digest per file of ``files()`` and of ``train_files()``.
    """

    def fingerprint(self, files: Sequence[Path]) -> list[str]:
        return [listing_digest(files)] if files else []


def check_features(x: np.ndarray, path: Path | str, expected: str, name: str = "x") -> np.ndarray:
    """Numeric, finite inputs of shape (n, ...) with at least one feature axis, as float32."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise data_error(path, f"{name!r} has dtype {x.dtype}, not a numeric one", expected)
    if x.ndim < 2:
        raise data_error(path, f"{name!r} has shape {x.shape}, not (n, ...features)", expected)
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise data_error(path, f"{name!r} contains NaN or infinite values", expected)
    return x


def check_labels(
    y: np.ndarray,
    n: int,
    path: Path | str,
    expected: str,
    name: str = "y",
    num_classes: int | None = None,
) -> np.ndarray:
    """Class labels 0, 1, ... (below ``num_classes`` if given) of shape (n,), as int64.

    Integer dtypes and floats holding whole numbers are accepted. Without ``num_classes`` labels
    must still be below :data:`MAX_CLASSES`, as the number of classes is then taken from them.
    """
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise data_error(path, f"{name!r} has shape {y.shape} but there are {n} inputs", expected)
    if y.dtype.kind not in "biuf":
        raise data_error(path, f"{name!r} has dtype {y.dtype}, not integer labels", expected)
    if y.dtype.kind == "f" and not (np.isfinite(y).all() and (y == np.round(y)).all()):
        raise data_error(path, f"{name!r} holds non-integer values", expected)
    if len(y) and y.min() < 0:
        raise data_error(path, f"{name!r} holds negative labels (min {y.min()})", expected)
    if len(y) and num_classes is not None and y.max() >= num_classes:
        raise data_error(
            path, f"{name!r} holds label {y.max()} outside 0..{num_classes - 1}", expected
        )
    if len(y) and y.max() >= MAX_CLASSES:
        raise data_error(
            path,
            f"{name!r} holds label {y.max()}, but labels must be below {MAX_CLASSES:,} "
            "(class indices 0, 1, ...)",
            expected,
        )
    return y.astype(np.int64)


def read_values(
    stream: BinaryIO,
    shape: tuple[int, ...],
    dtype: np.dtype,
    path: Path | str,
    expected: str,
    name: str | None = None,
    fortran_order: bool = False,
) -> np.ndarray:
    """The array of ``shape`` and ``dtype`` whose values are the rest of ``stream``, exactly.

    A header's claims are not trusted with memory: the size is computed with Python ints (no
    overflow), and the values are read in chunks of :data:`READ_CHUNK` and only up to one byte
    past that size, so memory grows with the bytes really there, never with the claim, and
    trailing data (however much a gzip would expand to) is detected without being read. A
    ``DataError`` names ``path`` (and the array ``name``) when the stream holds fewer or more.
    """
    nbytes = math.prod(shape) * dtype.itemsize
    values = bytearray()
    while len(values) <= nbytes:
        chunk = stream.read(min(READ_CHUNK, nbytes + 1 - len(values)))
        if not chunk:
            break
        values += chunk
    if len(values) != nbytes:
        problem, found = (
            ("truncated", len(values)) if len(values) < nbytes else ("has trailing bytes", "more")
        )
        prefix = f"{name!r} " if name else ""
        raise data_error(
            path,
            f"{prefix}{problem}: shape {shape} needs {nbytes} bytes of values, found {found}",
            expected,
        )
    return np.frombuffer(values, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")


def unit_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixel values 0..255 as float32 in [0, 1]."""
    return np.asarray(pixels, dtype=np.float32) / np.float32(255)
