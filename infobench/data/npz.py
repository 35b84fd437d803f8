"""Users' own arrays from one .npz file, split like the digits unless the file brings its splits."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from pydantic import Field

from infobench.data.base import DataBundle, Dataset, Split
from infobench.data.files import (
    PathStr,
    check_features,
    check_labels,
    data_error,
    read_values,
    require_file,
)
from infobench.data.splits import SplitParams, split_stratified
from infobench.errors import DataError
from infobench.registry import register

NPZ_FORMAT = (
    "a .npz archive (numpy.savez) with a numeric array 'x' of shape (n, ...) and integer labels "
    "'y' of shape (n,), optionally the pairs 'x_val'/'y_val' and 'x_test'/'y_test'"
)
NPZ_ARRAYS = ("x", "y", "x_val", "y_val", "x_test", "y_test")
"""The members the loader reads; any others in the archive are left unread."""
NPY_MAGIC = b"\x93NUMPY"
NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
"""The .npy versions numpy writes for numeric arrays (3.0 only adds non-latin-1 field names)."""


def _starts_with(path: Path, prefix: bytes) -> bool:
    with open(path, "rb") as f:
        return f.read(len(prefix)) == prefix


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, name: str
) -> np.ndarray:
    """One .npy member of the archive, its header checked before any value is read.

    Object arrays are refused (nothing is unpickled). The values are read with
    :func:`~infobench.data.files.read_values`, so a header claiming more than the member holds
    allocates nothing, and a member holding more than its header claims is not read through.
    """
    if info.compress_size > path.stat().st_size:
        # zipfile trusts this size: reading a long .npy header could ask the file for that
        # many bytes at once, which Python allocates before reading.
        problem = f"{name!r} claims {info.compress_size} stored bytes, more than the whole file"
        raise data_error(path, problem, NPZ_FORMAT)
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version not in NPY_HEADER_READERS:
            raise data_error(path, f"{name!r} is a .npy of version {version}", NPZ_FORMAT)
        shape, fortran_order, dtype = NPY_HEADER_READERS[version](member)
        if dtype.hasobject:
            raise data_error(path, f"{name!r} holds Python objects (dtype {dtype})", NPZ_FORMAT)
        return read_values(member, shape, dtype, path, NPZ_FORMAT, name, fortran_order)


def read_npz_arrays(path: Path | str) -> dict[str, np.ndarray]:
    """The arrays of :data:`NPZ_ARRAYS` found in the archive at ``path``; 'x' and 'y' must be.

    Other members are never read, so an archive's extra contents cost nothing.
    """
    path = require_file(path, NPZ_FORMAT)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        problem = f"cannot be read as .npz ({err})"
        if isinstance(err, zipfile.BadZipFile) and _starts_with(path, NPY_MAGIC):
            problem = "holds a single .npy array, not a .npz archive"
        raise data_error(path, problem, NPZ_FORMAT) from err
    with archive:
        members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
        if "x" not in members or "y" not in members:
            found = ", ".join(map(repr, members)) or "none"
            raise data_error(path, f"lacks 'x' or 'y' (arrays found: {found})", NPZ_FORMAT)
        arrays = {}
        for name in [name for name in NPZ_ARRAYS if name in members]:
            try:
                arrays[name] = _read_member(archive, members[name], path, name)
            except DataError:
                raise
            except Exception as err:
                # A bad member fails in whichever layer breaks first (zip, zlib, CRC, the .npy
                # header); to the user all of them mean "this array cannot be read".
                problem = f"has an unreadable array {name!r} ({err})"
                raise data_error(path, problem, NPZ_FORMAT) from err
        return arrays


def read_npz_splits(path: Path | str) -> dict[str, Split]:
    """The validated labelled sets of the archive: key ``""`` (the pool), ``"val"``, ``"test"``."""
    arrays = read_npz_arrays(path)
    splits = {}
    for part in ("", "val", "test"):
        x_name, y_name = ("x", "y") if not part else (f"x_{part}", f"y_{part}")
        if (x_name in arrays) != (y_name in arrays):
            given, missing = (x_name, y_name) if x_name in arrays else (y_name, x_name)
            raise data_error(path, f"has {given!r} without {missing!r}", NPZ_FORMAT)
        if x_name not in arrays:
            continue
        x = check_features(arrays[x_name], path, NPZ_FORMAT, name=x_name)
        y = check_labels(arrays[y_name], len(x), path, NPZ_FORMAT, name=y_name)
        if splits and x.shape[1:] != splits[""].x.shape[1:]:
            raise data_error(
                path,
                f"{x_name!r} has examples of shape {x.shape[1:]} but 'x' has {splits[''].x.shape[1:]}",
                NPZ_FORMAT,
            )
        splits[part] = Split(x, y)
    if not len(splits[""]):
        raise data_error(path, "'x' has no rows", NPZ_FORMAT)
    return splits


@register("dataset", "npz")
class NPZ(Dataset):
    """Your arrays from a .npz file: x (n, ...) used as stored, integer labels y (n,)."""

    class Params(SplitParams):
        """The file, and the stratified split of 'x'/'y' for the sets the file does not bring."""

        path: PathStr = Field("data.npz", description=f"the file: {NPZ_FORMAT}")

    test_only = ()  # every field shapes the train and val splits

    def files(self) -> list[Path]:
        return [require_file(self.params.path, NPZ_FORMAT)]

    def load(self, seed: int) -> DataBundle:
        """Val and test come from the file's pairs when present, else are carved from x/y.

        The inputs are cast to float32 but not rescaled; the number of classes is the largest
        label (over all sets) plus one, labels being capped at
        :data:`~infobench.data.files.MAX_CLASSES`.
        """
        p = self.params
        given = read_npz_splits(p.path)
        pool = given[""]
        train, val, test = split_stratified(
            pool.x,
            pool.y,
            0.0 if "val" in given else p.val_fraction,
            0.0 if "test" in given else p.test_fraction,
            p.split_seed,
        )
        val, test = given.get("val", val), given.get("test", test)
        labels = np.concatenate([train.y, val.y, test.y])
        return DataBundle(
            name="npz",
            train=train,
            val=val,
            test=test,
            num_classes=int(labels.max()) + 1,
            input_shape=tuple(pool.x.shape[1:]),
        )
