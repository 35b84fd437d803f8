"""Where runs execute: in this process, or in N loky worker processes (joblib).

Executors only map a function over runs and hand results back as each finishes; the driver
stays the single writer of the results folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_worker(jobs: int, requested: int | None = None) -> int:
    """Torch/BLAS threads for each of ``jobs`` workers so that jobs x threads <= cores."""
    fair = max(1, available_cores() // max(1, jobs))
    return min(requested, fair) if requested else fair


class SerialExecutor:
    """Runs one after another in this process (progress bars for inner loops are shown)."""

    jobs = 1
    shows_inner_progress = True

    def map_unordered(self, fn: Callable[..., Any], items: Iterable[tuple]) -> Iterator[Any]:
        for args in items:
            yield fn(*args)


class LokyExecutor:
    """Runs in ``jobs`` loky processes through joblib; results come back as they finish."""

    shows_inner_progress = False

    def __init__(self, jobs: int):
        self.jobs = jobs

    def map_unordered(self, fn: Callable[..., Any], items: Iterable[tuple]) -> Iterator[Any]:
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=self.jobs, backend="loky", return_as="generator_unordered")
        yield from parallel(delayed(fn)(*args) for args in items)


def make_executor(jobs: int) -> SerialExecutor | LokyExecutor:
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    return SerialExecutor() if jobs == 1 else LokyExecutor(jobs)
