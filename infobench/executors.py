"""Where runs execute: in this process, in N loky worker processes (joblib), or on a Dask cluster.

Executors only map a function over runs and hand results back as each finishes; the driver
stays the single writer of the results folder. ``on_error(args, exc)`` turns a run that the
executor itself lost (a Dask task whose workers kept dying) into a result, so one lost run
never stops the sweep.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from infobench.errors import InfobenchError

OnError = Callable[[tuple, BaseException], Any]


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

    def map_unordered(self, fn: Callable[..., Any], items: Iterable[tuple], on_error: OnError | None = None) -> Iterator[Any]:
        for args in items:
            yield fn(*args)


class LokyExecutor:
    """Runs in ``jobs`` loky processes through joblib; results come back as they finish."""

    shows_inner_progress = False

    def __init__(self, jobs: int):
        self.jobs = jobs

    def map_unordered(self, fn: Callable[..., Any], items: Iterable[tuple], on_error: OnError | None = None) -> Iterator[Any]:
        from joblib import Parallel, delayed

        # batch_size=1: runs are coarse; joblib's auto-batching would group quick runs and leave a worker idle
        parallel = Parallel(n_jobs=self.jobs, backend="loky", return_as="generator_unordered", batch_size=1)
        yield from parallel(delayed(fn)(*args) for args in items)


class DaskExecutor:
    """Runs on a Dask distributed cluster: the one at ``scheduler`` (tcp://host:port), or a
    LocalCluster of ``jobs`` single-threaded worker processes when no address is given.

    A worker that dies mid-run loses nothing finished: the scheduler reschedules its task on
    another worker (up to distributed's ``allowed-failures``), and results reach the driver,
    the only writer, as each run completes.
    """

    shows_inner_progress = False
    regather_tries = 3

    def __init__(self, jobs: int, scheduler: str | None = None):
        self.jobs = jobs
        self.scheduler = scheduler

    def map_unordered(self, fn: Callable[..., Any], items: Iterable[tuple], on_error: OnError | None = None) -> Iterator[Any]:
        try:
            from distributed import Client, LocalCluster, as_completed
        except ImportError:
            raise InfobenchError("--executor dask needs the optional dask extra: pip install 'infobench[dask]'") from None
        cluster = None
        if self.scheduler:
            try:
                client = Client(self.scheduler, timeout="10s")
            except OSError as exc:
                raise InfobenchError(f"cannot reach the Dask scheduler at {self.scheduler}: {exc}") from None
        else:
            cluster = LocalCluster(n_workers=self.jobs, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=40)
            client = Client(cluster)
        try:
            futures, args_of = [], {}
            for args in items:
                future = client.submit(fn, *args, pure=False)
                futures.append(future)
                args_of[future.key] = args
            pending, gather_failures = as_completed(futures), {}
            for future in pending:
                try:
                    result = future.result()
                except Exception as exc:
                    # a finished result can die with its worker before the driver gathers it; the
                    # scheduler then recomputes it elsewhere, so wait for it again (a few times)
                    tries = gather_failures[future.key] = gather_failures.get(future.key, 0) + 1
                    if future.status != "error" and tries <= self.regather_tries:
                        pending.add(future)
                        continue
                    if on_error is None:
                        raise
                    yield on_error(args_of[future.key], exc)  # lost for good (KilledWorker): record, go on
                    continue
                yield result
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def make_executor(jobs: int, executor: str = "auto", scheduler: str | None = None):
    """``auto``: serial for one job, loky for several; ``loky``; ``dask`` (LocalCluster or ``scheduler``)."""
    if jobs < 1:
        raise InfobenchError(f"--jobs must be >= 1, got {jobs}")
    if executor == "dask":
        return DaskExecutor(jobs, scheduler)
    if scheduler:
        raise InfobenchError("--scheduler is only used with --executor dask")
    if executor == "loky":
        return LokyExecutor(jobs)
    if executor == "auto":
        return SerialExecutor() if jobs == 1 else LokyExecutor(jobs)
    raise InfobenchError(f"unknown executor {executor!r}; one of auto, loky, dask")
