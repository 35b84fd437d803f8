"""Users' own arrays from one .npz file, split like the digits unless the file brings its splits.

Shifted test domains (for TTA) come from members ``domain/<name>/x`` and ``domain/<name>/y``,
written with ``np.savez(path, x=x, y=y, **{"domain/fog/x": x_fog, "domain/fog/y": y_fog})``
(numpy keeps the ``/`` in the member name, ``domain/fog/x.npy``, and ``np.load`` gives it back
as the key). Domains keep the archive's order (the order of the keyword arguments of
``np.savez``), which is the order a continual stream visits them; a name may carry a severity,
``domain/fog@5/x``, for per-severity metrics.
"""

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
    "'y' of shape (n,), optionally the pairs 'x_val'/'y_val' and 'x_test'/'y_test', and shifted "
    "domains as pairs 'domain/<name>/x'/'domain/<name>/y' (inputs shaped as 'x', labels among "
    "those of the other sets)"
)
NPZ_ARRAYS = ("x", "y", "x_val", "y_val", "x_test", "y_test")
"""The members the loader reads besides the domains'; others outside ``domain/`` are left unread."""
DOMAIN_PREFIX = "domain/"
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


def _domain_names(members: list[str], path: Path) -> list[str]:
    """The domain names of ``domain/<name>/x|y`` members, in archive order; any other member
    under ``domain/`` is an error (a misspelt domain array would otherwise go unread)."""
    names = []
    for member in members:
        if not member.startswith(DOMAIN_PREFIX):
            continue
        name, _, array = member.removeprefix(DOMAIN_PREFIX).partition("/")
        if not name or array not in ("x", "y"):
            problem = f"has member {member!r}, not 'domain/<name>/x' or 'domain/<name>/y'"
            raise data_error(path, problem, NPZ_FORMAT)
        if name not in names:
            names.append(name)
    return names


def read_npz_arrays(path: Path | str) -> dict[str, np.ndarray]:
    """The arrays of :data:`NPZ_ARRAYS` and of the domains found in the archive at ``path``;
    'x' and 'y' must be there.

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
        domains = _domain_names(list(members), path)
        wanted = [name for name in NPZ_ARRAYS if name in members] + [
            member
            for name in domains
            for member in (f"{DOMAIN_PREFIX}{name}/x", f"{DOMAIN_PREFIX}{name}/y")
            if member in members
        ]
        arrays = {}
        for name in wanted:
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


def _pair(arrays: dict[str, np.ndarray], x_name: str, y_name: str, path: Path) -> Split | None:
    """The validated set of arrays ``x_name``/``y_name``; None when neither is there."""
    if (x_name in arrays) != (y_name in arrays):
        given, missing = (x_name, y_name) if x_name in arrays else (y_name, x_name)
        raise data_error(path, f"has {given!r} without {missing!r}", NPZ_FORMAT)
    if x_name not in arrays:
        return None
    x = check_features(arrays[x_name], path, NPZ_FORMAT, name=x_name)
    y = check_labels(arrays[y_name], len(x), path, NPZ_FORMAT, name=y_name)
    if x_name != "x" and x.shape[1:] != arrays["x"].shape[1:]:
        raise data_error(
            path,
            f"{x_name!r} has examples of shape {x.shape[1:]} but 'x' has {arrays['x'].shape[1:]}",
            NPZ_FORMAT,
        )
    return Split(x, y)


def read_npz_splits(path: Path | str) -> dict[str, Split]:
    """The validated labelled sets of the archive: key ``""`` (the pool), ``"val"``, ``"test"``
    when present, then ``"domain/<name>"`` for each domain in archive order."""
    path = require_file(path, NPZ_FORMAT)
    arrays = read_npz_arrays(path)
    pairs = {"": ("x", "y"), "val": ("x_val", "y_val"), "test": ("x_test", "y_test")}
    for name in _domain_names(list(arrays), path):
        key = f"{DOMAIN_PREFIX}{name}"
        pairs[key] = (f"{key}/x", f"{key}/y")
    splits = {}
    for key, (x_name, y_name) in pairs.items():
        split = _pair(arrays, x_name, y_name, path)
        if split is not None:
            splits[key] = split
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
        """Val and test come from the file's pairs when present, else are carved from x/y;
        the domains from the ``domain/<name>/x|y`` pairs, in archive order.

        The inputs are cast to float32 but not rescaled; the number of classes is the largest
        label over train, val and test plus one, labels being capped at
        :data:`~infobench.data.files.MAX_CLASSES`; a domain's labels must be among them.
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
        num_classes = int(labels.max()) + 1
        domains = {
            key.removeprefix(DOMAIN_PREFIX): split
            for key, split in given.items()
            if key.startswith(DOMAIN_PREFIX)
        }
        for name, split in domains.items():
            # A label no other set has would index past the model's outputs.
            if len(split) and split.y.max() >= num_classes:
                problem = (
                    f"domain {name!r} holds label {split.y.max()}, but the other sets have "
                    f"classes 0..{num_classes - 1}"
                )
                raise data_error(require_file(p.path, NPZ_FORMAT), problem, NPZ_FORMAT)
        return DataBundle(
            name="npz",
            train=train,
            val=val,
            test=test,
            num_classes=num_classes,
            input_shape=tuple(pool.x.shape[1:]),
            domains=domains,
        )
