"""Unpickling numeric numpy arrays from untrusted files, without executing anything they name.

A pickle can name any importable callable to run on load. :class:`RestrictedUnpickler`
therefore calls none of numpy's: the few globals a numpy array's pickle names are replaced by
stand-ins that check what the pickle claims (plain numeric dtype, values exactly as many bytes
as the shape needs) before building the array from those bytes, and every other global is
refused. A tampered file fails with a ``DataError``; it can neither run code, nor make numpy
allocate what the file does not hold, nor crash numpy (an object-dtype array whose state holds
too few items does, on unpickling, in numpy 2.4).

Left to Python: a counted opcode (bytes of a given length) makes CPython's unpickler reserve that
length before reading it. That memory is never touched, and such a file fails as truncated.

Used by the CIFAR-10 and CIFAR-100 "python version" loaders (:mod:`infobench.data.cifar`).
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from infobench.data.files import data_error, require_file
from infobench.errors import DataError

# numpy pickles a dtype as dtype(spec, align, copy) followed by this state, the byte order in
# second place; anything else (fields, sub-arrays, flags, an explicit size) is not a plain number.
_DTYPE_STATE_TAIL = (None, None, None, -1, -1, 0)


def _text(value: Any) -> Any:
    # Python 2 pickles (the official files) read with encoding="bytes" give str values as bytes.
    return value.decode("latin-1") if isinstance(value, bytes) else value


class _PickledDtype:
    """Stands for ``numpy.dtype(spec, ...)`` in a pickle; only a plain numeric dtype is built."""

    def __init__(self, spec: Any, align: Any = False, copy: Any = True):
        self.spec, self.byteorder = _text(spec), "="

    def __setstate__(self, state: Any) -> None:
        plain = (
            isinstance(state, tuple)
            and len(state) == 8
            and state[0] == 3
            and _text(state[1]) in ("<", ">", "|", "=")
            and state[2:] == _DTYPE_STATE_TAIL
        )
        if not plain:
            raise DataError(
                f"refused dtype {self.spec!r} with state {state!r}: only plain numeric dtypes "
                "are allowed"
            )
        self.byteorder = _text(state[1])

    def build(self) -> np.dtype:
        try:
            dtype = np.dtype(self.spec) if isinstance(self.spec, str) else None
        except (TypeError, ValueError):
            dtype = None
        if dtype is None or dtype.kind not in "biuf":
            raise DataError(f"refused dtype {self.spec!r}: only plain numeric dtypes are allowed")
        return dtype.newbyteorder(self.byteorder)


def _dtype_of(value: Any) -> np.dtype:
    if not isinstance(value, _PickledDtype):
        raise DataError(f"expected a pickled numpy dtype, got a {type(value).__name__}")
    return value.build()


class _PickledArray:
    """Stands for ``_reconstruct(ndarray, (0,), ...)``; the array is built from its state."""

    def __init__(self) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        # numpy writes (version, shape, dtype, is_fortran, raw bytes); old pickles lack version.
        if isinstance(state, tuple) and len(state) == 5:
            state = state[1:]
        if not (isinstance(state, tuple) and len(state) == 4):
            raise DataError("unexpected numpy array state")
        shape, dtype, fortran_order, values = state
        dtype = _dtype_of(dtype)
        if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
            raise DataError(f"array shape {shape!r} is not a tuple of sizes")
        nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
        if not isinstance(values, bytes) or len(values) != nbytes:
            found = len(values) if isinstance(values, bytes) else type(values).__name__
            raise DataError(f"array of shape {shape} {dtype} needs {nbytes} bytes, found {found}")
        order = "F" if fortran_order else "C"
        self.array = np.frombuffer(values, dtype=dtype).reshape(shape, order=order)


def _reconstruct(subtype: Any, shape: Any, typecode: Any) -> _PickledArray:
    # numpy always pickles an empty (0,) array here and sends shape and data in the state.
    if subtype is not _ndarray or shape != (0,):
        raise DataError(f"refused array reconstruction of shape {shape!r}")
    return _PickledArray()


def _ndarray(*args: Any, **kwargs: Any) -> None:
    # Named by pickles only as _reconstruct's first argument; called, it would allocate any size.
    raise DataError("refused to call numpy.ndarray (it would allocate whatever size is asked)")


def _scalar(dtype: Any, value: Any) -> Any:
    """Stands for numpy's ``scalar(dtype, raw bytes)``: one number of a plain numeric dtype."""
    dtype = _dtype_of(dtype)
    if not isinstance(value, bytes) or len(value) != dtype.itemsize:
        raise DataError(f"a {dtype} scalar needs {dtype.itemsize} bytes")
    return np.frombuffer(value, dtype=dtype)[0]


# numpy 1 pickles (the official files) name numpy.core.multiarray, numpy 2 numpy._core.multiarray.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): _ndarray,
    ("numpy", "dtype"): _PickledDtype,
    **{
        (module, name): stand_in
        for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name, stand_in in (("_reconstruct", _reconstruct), ("scalar", _scalar))
    },
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler of builtin containers and numeric numpy arrays that refuses other globals.

    Arrays come out as :class:`_PickledArray` stand-ins; :func:`unpickled_array` gives the array.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DataError(
                f"refused to load the global {module}.{name} (only numpy arrays are allowed)"
            ) from None


def unpickled_array(value: Any) -> Any:
    """``value``, or the array if it is an array stand-in (None if the pickle gave it no data)."""
    return value.array if isinstance(value, _PickledArray) else value


def load_pickle(path: Path | str, expected: str) -> Any:
    """The object pickled in the file at ``path``, read with :class:`RestrictedUnpickler`.

    Python 2 pickles are read with ``encoding="bytes"`` (their str values come back as bytes).
    Any failure is a ``DataError`` naming ``path`` and ``expected``.
    """
    path = require_file(path, expected)
    with open(path, "rb") as f:
        try:
            return RestrictedUnpickler(f, encoding="bytes").load()
        except Exception as err:
            # A damaged pickle fails in whichever opcode breaks (EOFError, UnpicklingError,
            # ValueError, ...); a refused global is a DataError. All mean "not what was expected".
            raise data_error(path, f"cannot be unpickled ({err})", expected) from err
