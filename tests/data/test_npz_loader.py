"""The npz loader: splits taken from the file or carved from it, and errors naming the path."""

from __future__ import annotations

import io
import re
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

from infobench import registry
from infobench.data.files import MAX_CLASSES
from infobench.errors import DataError

NPZ = registry.get("dataset", "npz")


def _load(path, **params):
    return NPZ(NPZ.Params(path=path, **params)).load(0)


def _pool(n: int = 30, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 2, 5)), np.arange(n) % classes


def test_pool_only_is_split_stratified(tmp_path):
    x, y = _pool()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    bundle = _load(tmp_path / "d.npz", val_fraction=0.2, test_fraction=0.2)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (18, 6, 6)
    assert np.array_equal(np.bincount(bundle.test.y), [2, 2, 2])
    assert bundle.input_shape == (2, 5) and bundle.num_classes == 3
    assert bundle.train.x.dtype == np.float32 and bundle.train.y.dtype == np.int64
    # Inputs are used as stored (cast, not rescaled).
    assert np.allclose(
        np.sort(np.concatenate([bundle.train.x, bundle.val.x, bundle.test.x]).ravel()),
        np.sort(x.astype(np.float32).ravel()),
    )


def test_given_splits_are_used_and_only_missing_ones_carved(tmp_path):
    x, y = _pool()
    x_test, y_test = np.ones((4, 2, 5)), np.array([0, 1, 2, 4.0])  # whole floats count as labels
    np.savez(tmp_path / "d.npz", x=x, y=y, x_test=x_test, y_test=y_test)
    bundle = _load(tmp_path / "d.npz", val_fraction=0.1, test_fraction=0.5)
    assert np.array_equal(bundle.test.x, x_test) and bundle.test.y.tolist() == [0, 1, 2, 4]
    assert (len(bundle.train), len(bundle.val)) == (27, 3)
    assert bundle.num_classes == 5  # the largest label over every set, plus one


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "absent.npz"
    with pytest.raises(
        DataError, match=re.escape(f"{path}: no such file; expected a .npz archive")
    ):
        _load(path)


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"x": np.zeros((3, 2))}, r"lacks 'x' or 'y' \(arrays found: 'x'\)"),
        ({"x": np.zeros((3, 2)), "y": np.zeros(4)}, r"'y' has shape \(4,\) but there are 3 inputs"),
        ({"x": np.zeros((3, 2)), "y": np.array([0, 1.5, 1])}, "'y' holds non-integer values"),
        ({"x": np.zeros((3, 2)), "y": np.array([0, -1, 1])}, "negative labels"),
        ({"x": np.array([[0.0], [np.nan], [1.0]]), "y": np.zeros(3)}, "'x' contains NaN"),
        ({"x": np.zeros(3), "y": np.zeros(3)}, r"'x' has shape \(3,\), not \(n, \.\.\.features\)"),
        (
            {"x": np.zeros((3, 2)), "y": np.zeros(3), "x_val": np.zeros((2, 2))},
            "has 'x_val' without 'y_val'",
        ),
        (
            {"x": np.array([[1], [None], [2]], dtype=object), "y": np.zeros(3)},
            r"'x' holds Python objects \(dtype object\)",
        ),
        (
            {
                "x": np.zeros((3, 2)),
                "y": np.zeros(3),
                "x_test": np.zeros((2, 3)),
                "y_test": np.zeros(2),
            },
            r"'x_test' has examples of shape \(3,\) but 'x' has \(2,\)",
        ),
    ],
)
def test_malformed_arrays_name_the_path_and_format(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=match) as info:
        _load(path)
    assert str(path) in str(info.value) and "expected a .npz archive" in str(info.value)


def test_files_that_are_not_npz_archives(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"definitely not a zip archive")
    with pytest.raises(DataError, match=re.escape(f"{garbage}: cannot be read as .npz")):
        _load(garbage)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(DataError, match="holds a single .npy array"):
        _load(single)
    truncated = tmp_path / "truncated.npz"
    np.savez(truncated, x=np.zeros((50, 4)), y=np.zeros(50))
    truncated.write_bytes(truncated.read_bytes()[:300])
    with pytest.raises(DataError, match=re.escape(str(truncated))):
        _load(truncated)


def test_compressed_fortran_and_big_endian_arrays_read_as_stored(tmp_path):
    x = np.asfortranarray(np.arange(60, dtype=">f8").reshape(10, 3, 2))
    y = (np.arange(10) % 2).astype(">i4")
    np.savez_compressed(tmp_path / "d.npz", x=x, y=y, x_test=x[:2].copy(order="C"), y_test=y[:2])
    bundle = _load(tmp_path / "d.npz", val_fraction=0.2, test_fraction=0.0)
    assert np.array_equal(bundle.test.x, x[:2]) and bundle.test.y.tolist() == [0, 1]
    pool = np.concatenate([bundle.train.x, bundle.val.x])
    assert sorted(map(tuple, pool.reshape(10, -1).tolist())) == sorted(
        map(tuple, x.reshape(10, -1).tolist())
    )


def test_label_2_pow_31_is_refused(tmp_path):
    """Issue 12.13: "An npz label of 2**31 makes `num_classes = max + 1` allocate 64 GiB"."""
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((4, 3)), y=np.array([0, 1, 2, 2**31]))
    with pytest.raises(
        DataError, match=f"'y' holds label {2**31}, but labels must be below"
    ) as info:
        _load(path)
    assert str(path) in str(info.value)
    np.savez(path, x=np.zeros((4, 3)), y=np.array([0, 1, 2, MAX_CLASSES - 1.0]))
    assert _load(path, val_fraction=0.0, test_fraction=0.0).num_classes == MAX_CLASSES


def _npy_header(shape, descr: str = "<f8") -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return header.getvalue()


def _archive(path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> None:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, raw in members.items():
            archive.writestr(name, raw)


def _peak_bytes(load) -> tuple[int, str]:
    """Peak traced allocation (numpy's arrays included) of ``load()``, and its DataError."""
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as info:
            load()
        return tracemalloc.get_traced_memory()[1], str(info.value)
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "shape, needs",
    [((2**31,), 2**34), ((4194304, 4194304, 4194304), 8 * 2**66)],
)
def test_a_header_claiming_more_than_the_member_holds_allocates_nothing(tmp_path, shape, needs):
    """Issue 12.13 (npz): a .npy header inside the archive claiming 16 GiB, or a shape whose
    size overflows int64, was allocated (or wrapped to 0) before its 80 bytes were read."""
    path = tmp_path / "d.npz"
    y = np.zeros(4)
    _archive(
        path, {"x.npy": _npy_header(shape) + bytes(80), "y.npy": _npy_header((4,)) + y.tobytes()}
    )
    started = time.perf_counter()
    peak, message = _peak_bytes(lambda: _load(path))
    assert peak < 4 * 2**20 and time.perf_counter() - started < 1.0
    assert f"'x' truncated: shape {shape} needs {needs} bytes of values, found 80" in message
    assert str(path) in message


def _zeros_member(archive: zipfile.ZipFile, name: str, head: bytes, zeros: int) -> None:
    """A deflated member: ``head`` then ``zeros`` zero bytes, streamed so they never sit in memory."""
    with archive.open(zipfile.ZipInfo(name), "w", force_zip64=True) as member:
        member.write(head)
        for _ in range(zeros // 2**20):
            member.write(bytes(2**20))


def test_members_are_read_only_as_far_as_needed(tmp_path):
    """Data past a header's claim is detected without being read; unused members are not read."""
    x, y = np.zeros((4, 3)), np.zeros(4)
    path = tmp_path / "d.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", _npy_header((4, 3)) + x.tobytes())
        archive.writestr("y.npy", _npy_header((4,)) + y.tobytes())
        _zeros_member(archive, "extra.npy", _npy_header((2**23,)), 2**26)  # 64 MiB, unused
    tracemalloc.start()
    try:
        assert _load(path, val_fraction=0.0, test_fraction=0.0).train.x.shape == (4, 3)
        assert tracemalloc.get_traced_memory()[1] < 4 * 2**20
    finally:
        tracemalloc.stop()

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", _npy_header((4, 3)) + x.tobytes())
        _zeros_member(archive, "y.npy", _npy_header((4,)), 2**26)  # 4 labels, then 64 MiB
    peak, message = _peak_bytes(lambda: _load(path))
    assert "'y' has trailing bytes: shape (4,) needs 32 bytes of values, found more" in message
    assert peak < 4 * 2**20
