"""Image files as a lazy float32 array, decoded only when rows are read.

ImageNet-C's 15 corruptions x 5,000 images at 3 x 224 x 224 are 45 GB as float32: more than a
machine's memory. :class:`ImageFiles` stands in for such an array: it has the array's length,
shape and dtype, and ``x[rows]`` decodes just those rows (with :func:`decode_image`) into a
float32 numpy array. :func:`take` and :func:`concat` subset and join arrays without decoding,
and work the same on numpy arrays (returning numpy), so code that builds streams or splits can
treat both alike. :func:`iter_batches` reads consecutive row ranges as torch tensors on a
device, decoding lazy arrays in DataLoader worker processes ahead of use.

Preprocessing (:class:`Preprocess`) is the one of the ImageNet-C TTA anchors (RobustBench's
``Res256Crop224``: torchvision ``Resize(256)``, ``CenterCrop(224)``, ``ToTensor()``), written
with Pillow so that torchvision is not needed: the image is converted to RGB, its shorter side
resized with Pillow's bilinear filter (torchvision's PIL path; Pillow antialiases when
shrinking), the centre cropped, and the 0..255 values scaled to [0, 1]. Normalisation with the
ImageNet mean and std belongs to the model, as in the anchors.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from infobench.data.files import data_error, unit_float
from infobench.errors import DataError

if TYPE_CHECKING:
    import torch

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
"""Files taken as images (case-insensitive): torchvision ImageFolder's list."""

MAX_PIXELS = 1 << 26
"""Images of more pixels (67 megapixels; ImageNet's largest is under 10) are refused before
they are decoded: a small compressed file can claim a huge canvas (a decompression bomb)."""

ARRAY_LIMIT_BYTES = 16 << 30
"""``numpy.asarray`` of an :class:`ImageFiles` decodes every image at once; beyond 16 GiB it is
refused with a message, rather than running the machine out of memory after minutes of
decoding. Read such arrays by rows or with :func:`iter_batches`."""


@dataclass(frozen=True)
class Preprocess:
    """How one image file becomes float32 (3, size, size) in [0, 1].

    ``resize``: the shorter side is resized to this (the longer one keeps the aspect ratio,
    rounded down as torchvision does) before the centre crop of ``size``; ``None`` resizes it
    to ``size``. A side still shorter than ``size`` is padded with zeros (torchvision's
    ``CenterCrop`` does the same). ``expected``: the layout named in errors.
    """

    size: int
    resize: int | None = None
    expected: str = "an image file Pillow can read"

    def __call__(self, path: str | Path) -> np.ndarray:
        from PIL import Image

        try:
            with warnings.catch_warnings():
                # Pillow warns on large canvases; MAX_PIXELS decides here.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as image:
                    width, height = image.size
                    if width * height > MAX_PIXELS:
                        problem = f"is {width}x{height} pixels, more than {MAX_PIXELS:,}"
                        raise data_error(path, problem, self.expected)
                    image = self._resized(image.convert("RGB"))
                    pixels = np.asarray(self._cropped(image), dtype=np.uint8)
        except DataError:
            raise
        except Exception as err:  # unreadable, truncated, or not an image at all
            raise data_error(path, f"cannot be decoded as an image ({err})", self.expected) from err
        return unit_float(pixels.transpose(2, 0, 1))

    def _resized(self, image: Any) -> Any:
        from PIL import Image

        target = self.resize if self.resize is not None else self.size
        width, height = image.size
        short, long = min(width, height), max(width, height)
        if short == target:
            return image
        new_long = int(target * long / short)  # torchvision's rounding
        new_size = (target, new_long) if width <= height else (new_long, target)
        return image.resize(new_size, Image.BILINEAR)

    def _cropped(self, image: Any) -> Any:
        width, height = image.size
        # torchvision's CenterCrop offsets: round half to even, as Python's round does.
        left = int(round((width - self.size) / 2.0))
        top = int(round((height - self.size) / 2.0))
        # Pillow fills the part of a box outside the image with zeros.
        return image.crop((left, top, left + self.size, top + self.size))


def decode_image(path: str | Path, size: int, resize: int | None = None) -> np.ndarray:
    """One image file as float32 (3, size, size) in [0, 1]; see :class:`Preprocess`."""
    return Preprocess(size, resize)(path)


class _Files:
    """A source of rows: image files, each decoded by ``preprocess``."""

    def __init__(self, paths: Sequence[str | Path], preprocess: Preprocess):
        self.paths = np.array([os.fspath(p) for p in paths], dtype=object)
        self.preprocess = preprocess
        self.item_shape = (3, preprocess.size, preprocess.size)

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), *self.item_shape), dtype=np.float32)
        for i, row in enumerate(rows):
            out[i] = self.preprocess(self.paths[row])
        return out


class _InMemory:
    """A source of rows already in memory (noise images added to a stream of files)."""

    def __init__(self, values: np.ndarray):
        self.values = values
        self.item_shape = tuple(values.shape[1:])

    def __len__(self) -> int:
        return len(self.values)

    def read(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.values[rows], dtype=np.float32)


class ImageFiles:
    """A float32 array of shape (n, 3, size, size) whose rows are decoded when read.

    ``ImageFiles(paths, size, resize)`` has one row per file, in the order given. Indexing
    follows numpy: ``x[i]`` is one image (3, size, size); a slice, an integer array or a
    boolean mask gives (k, 3, size, size), decoded now. :func:`take` and :func:`concat` make
    new lazy arrays without decoding; the rows of one may come from several sources (image
    files, or numpy arrays joined by :func:`concat`).
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        size: int,
        resize: int | None = None,
        expected: str = "an image file Pillow can read",
    ):
        files = _Files(paths, Preprocess(size, resize, expected))
        self._init([files], np.zeros(len(files), np.int32), np.arange(len(files)))

    def _init(self, sources: list, source: np.ndarray, row: np.ndarray) -> ImageFiles:
        # source[i], row[i]: where row i of this array is read from.
        self._sources, self._source, self._row = sources, source, row
        self._item_shape = sources[0].item_shape
        return self

    @classmethod
    def _of(cls, sources: list, source: np.ndarray, row: np.ndarray) -> ImageFiles:
        return object.__new__(cls)._init(sources, source, row)

    dtype = np.dtype(np.float32)
    ndim = 4

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self._row), *self._item_shape)

    @property
    def paths(self) -> list[str | None]:
        """The file each row is decoded from (None for rows held in memory)."""
        return [
            self._sources[s].paths[r] if isinstance(self._sources[s], _Files) else None
            for s, r in zip(self._source, self._row, strict=True)
        ]

    @property
    def nbytes(self) -> int:
        """The bytes the decoded array would take."""
        return len(self) * int(np.prod(self._item_shape)) * self.dtype.itemsize

    def __len__(self) -> int:
        return len(self._row)

    def __repr__(self) -> str:
        return f"ImageFiles(shape={self.shape}, from {len(self._sources)} source(s))"

    def _rows(self, key: Any) -> np.ndarray:
        """The row numbers ``key`` selects, as numpy indexing along the first axis would."""
        if isinstance(key, slice):
            return np.arange(len(self))[key]
        index = np.asarray(key)
        if index.ndim == 1 and index.size == 0:
            return np.zeros(0, np.int64)  # numpy takes an empty list (float64) as no rows
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise IndexError(f"a boolean index of shape {index.shape} for {len(self)} rows")
            return np.flatnonzero(index)
        if index.dtype.kind not in "iu" or index.ndim != 1:
            raise IndexError(
                f"ImageFiles takes an int, a slice, or a 1-d int or bool array, not {key!r}"
            )
        return np.arange(len(self))[index]  # numpy's bounds checks and negative indices

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self[np.array([key])][0]
        return self.read(self._rows(key))

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The decoded float32 array of ``rows`` (positions in this array), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), *self._item_shape), dtype=np.float32)
        source, row = self._source[rows], self._row[rows]
        for s in np.unique(source):
            here = source == s
            out[here] = self._sources[s].read(row[here])
        return out

    def take(self, index: Any) -> ImageFiles:
        """The rows ``index`` selects (as ``x[index]`` would), still lazy."""
        rows = self._rows(index)
        return ImageFiles._of(self._sources, self._source[rows], self._row[rows])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if self.nbytes > ARRAY_LIMIT_BYTES:
            raise DataError(
                f"refused to decode all {len(self):,} images at once ({self.nbytes / 2**30:.1f} "
                f"GiB as float32, above {ARRAY_LIMIT_BYTES / 2**30:.0f} GiB); read them by rows "
                "(x[start:stop]) or with infobench.data.images.iter_batches"
            )
        values = self[:]
        return values if dtype is None else values.astype(dtype, copy=False)


Images = Union[np.ndarray, ImageFiles]
"""An image array in memory or on disk: what :func:`take`, :func:`concat` and
:func:`iter_batches` accept."""


def take(x: Images, index: Any) -> Images:
    """``x[index]`` (rows by int array, bool mask or slice): numpy for numpy, lazy for lazy."""
    return x.take(index) if isinstance(x, ImageFiles) else x[index]


def concat(arrays: Sequence[Images]) -> Images:
    """The rows of ``arrays`` one after another; numpy when all are numpy, else lazy.

    Numpy arrays joined to lazy ones become sources of the result (they stay in memory).
    Every array must have the same shape past the first axis.
    """
    arrays = list(arrays)
    if not arrays:
        raise ValueError("concat needs at least one array")
    if not any(isinstance(a, ImageFiles) for a in arrays):
        return np.concatenate(arrays)
    shapes = {tuple(a.shape[1:]) for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"cannot concatenate images of shapes {sorted(shapes)}")
    sources: list = []
    position: dict[int, int] = {}  # id(source) -> its index in sources: shared, never copied
    source_parts, row_parts = [], []
    for a in arrays:
        if isinstance(a, ImageFiles):
            a_sources, a_source, a_row = a._sources, a._source, a._row
        else:
            a_sources, a_source, a_row = (
                [_InMemory(a)],
                np.zeros(len(a), np.int32),
                np.arange(len(a)),
            )
        remap = np.empty(len(a_sources), np.int32)
        for i, src in enumerate(a_sources):
            if id(src) not in position:
                position[id(src)] = len(sources)
                sources.append(src)
            remap[i] = position[id(src)]
        source_parts.append(remap[a_source])
        row_parts.append(a_row)
    return ImageFiles._of(sources, np.concatenate(source_parts), np.concatenate(row_parts))


def default_workers() -> int:
    """DataLoader workers for decoding: one per core of this run's share, at most 8.

    The runner gives each run its share of the cores as torch's thread count (``--jobs N``
    splits them), so N parallel runs together start about as many workers as there are cores."""
    import torch

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores, torch.get_num_threads()))


class _Batches:
    """A map-style dataset whose item ``i`` is the decoded rows of ``ranges[i]``."""

    def __init__(self, x: ImageFiles, ranges: Sequence[tuple[int, int]]):
        self.x, self.ranges = x, list(ranges)

    def __len__(self) -> int:
        return len(self.ranges)

    def __getitem__(self, i: int) -> np.ndarray | DataError:
        start, stop = self.ranges[i]
        try:
            return self.x.read(np.arange(start, stop))
        except DataError as err:
            # Sent back as the batch and raised by iter_batches with its own message: raised
            # here, the DataLoader would prefix the worker's whole traceback to it.
            return err


def iter_batches(
    x: Images,
    ranges: Sequence[tuple[int, int]],
    device: torch.device | str = "cpu",
    num_workers: int | None = None,
) -> Iterator[torch.Tensor]:
    """Float32 tensors of ``x[start:stop]`` on ``device``, one per range, in the order given.

    Numpy arrays are sliced. An :class:`ImageFiles` is decoded by a torch DataLoader, one range
    per item, in ``num_workers`` worker processes (default :func:`default_workers`; 0 decodes
    here), each keeping two ranges decoded ahead; the tensors are pinned when ``device`` is a
    CUDA device, so the copy overlaps the next batch's work. The result does not depend on the
    number of workers.

    Workers are forked on Linux (spawned elsewhere) from an explicit context, so that they start
    inside joblib's loky workers too, whose default context cannot start them.
    """
    import torch

    device = torch.device(device)
    if not isinstance(x, ImageFiles):
        for start, stop in ranges:
            yield torch.from_numpy(np.ascontiguousarray(x[start:stop], dtype=np.float32)).to(device)
        return
    workers = default_workers() if num_workers is None else num_workers
    workers = min(workers, len(ranges))
    pin = device.type == "cuda"
    options: dict[str, Any] = {}
    if workers > 0:
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        options = {
            "multiprocessing_context": multiprocessing.get_context(method),
            "prefetch_factor": 2,
        }
    loader = torch.utils.data.DataLoader(
        _Batches(x, ranges), batch_size=None, shuffle=False, num_workers=workers,
        pin_memory=pin, **options,
    )  # fmt: skip
    for batch in loader:
        if isinstance(batch, DataError):
            raise batch
        yield batch.to(device, non_blocking=pin)
