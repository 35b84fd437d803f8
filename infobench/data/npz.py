"""Users' own arrays from one .npz file, split like the digits unless the file brings its splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from infobench.data.base import DataBundle, Dataset, Split
from infobench.data.files import PathStr, check_features, check_labels, data_error, require_file
from infobench.data.splits import SplitParams, split_stratified
from infobench.registry import register

NPZ_FORMAT = (
    "a .npz archive (numpy.savez) with a numeric array 'x' of shape (n, ...) and integer labels "
    "'y' of shape (n,), optionally the pairs 'x_val'/'y_val' and 'x_test'/'y_test'"
)


def read_npz_arrays(path: Path | str) -> dict[str, np.ndarray]:
    """Every array of the archive at ``path``, read without allowing pickled objects."""
    path = require_file(path, NPZ_FORMAT)
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as err:
        # A bad archive fails in whichever layer breaks first (zip, zlib, .npy header, the
        # refused pickle fallback); to the user all of them mean "not a readable .npz".
        raise data_error(path, f"cannot be read as .npz ({err})", NPZ_FORMAT) from err
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise data_error(path, "holds a single .npy array, not a .npz archive", NPZ_FORMAT)
    with archive:
        try:
            return {name: archive[name] for name in archive.files}
        except Exception as err:
            raise data_error(path, f"has an unreadable array ({err})", NPZ_FORMAT) from err


def read_npz_splits(path: Path | str) -> dict[str, Split]:
    """The validated labelled sets of the archive: key ``""`` (the pool), ``"val"``, ``"test"``."""
    arrays = read_npz_arrays(path)
    if "x" not in arrays or "y" not in arrays:
        found = ", ".join(map(repr, arrays)) or "none"
        raise data_error(path, f"lacks 'x' or 'y' (arrays found: {found})", NPZ_FORMAT)
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

    def load(self, seed: int) -> DataBundle:
        """Val and test come from the file's pairs when present, else are carved from x/y.

        The inputs are cast to float32 but not rescaled; the number of classes is the largest
        label (over all sets) plus one.
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
