"""Progress bars for long loops that work in-process and stay quiet in worker processes.

The runner opens one rich ``Progress`` for a sweep and installs it with ``use_progress``;
library code wraps its long loops in ``track(...)``, which adds a transient bar under the
runs bar when one is installed and is a plain iteration otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_current = None  # rich.progress.Progress or None


@contextlib.contextmanager
def use_progress(progress) -> Iterator[None]:
    global _current
    previous, _current = _current, progress
    try:
        yield
    finally:
        _current = previous


def track(iterable: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate ``iterable``, showing a transient bar named ``description`` when a sweep is live."""
    if _current is None:
        yield from iterable
        return
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    task = _current.add_task(f"  {description}", total=total)
    try:
        for item in iterable:
            yield item
            _current.advance(task)
    finally:
        _current.remove_task(task)
