"""Where runs execute: in this process, in N loky worker processes (joblib), or on a Dask cluster.

Executors only map a function over runs and hand results back as each finishes; the driver
stays the single writer of the results folder. ``on_error(args, exc)`` turns a run that the
executor itself lost (a Dask task whose workers kept dying) into a result, so one lost run
never stops the sweep.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from infobench.errors import InfobenchError

OnError = Callable[[tuple, BaseException], Any]


class Executor(Protocol):
    """The narrow interface every executor offers the runner."""

    jobs: int
    shows_inner_progress: bool  # whether runs can draw progress bars in the driver's terminal

    def prestart(self) -> None:
        """Start workers ahead of the first ``map_unordered`` (may return before they are up)."""

    def map_unordered(self, fn: Callable[..., Any], items: Iterable[tuple], on_error: OnError | None = None) -> Iterator[Any]:
        """``fn(*args)`` for each args in ``items``, yielded as each finishes."""

    def close(self) -> None:
        """Stop what ``prestart`` or ``map_unordered`` started; the executor can be used again after."""


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

    def prestart(self) -> None:
        """Nothing to start: runs happen in this process."""

    def close(self) -> None:
        """Nothing to stop."""

    def map_unordered(self, fn: Callable[..., Any], items: Iterable[tuple], on_error: OnError | None = None) -> Iterator[Any]:
        for args in items:
            yield fn(*args)


class LokyExecutor:
    """Runs in ``jobs`` loky processes through joblib; results come back as they finish.

    ``prestart()`` spawns the workers in the background and has each import what every run
    needs (torch, its optimiser machinery, matplotlib), so that this ~2-3 s per worker
    overlaps the driver's spec validation instead of delaying the first runs.
    """

    shows_inner_progress = False

    def __init__(self, jobs: int):
        self.jobs = jobs
        self._warming: threading.Thread | None = None
        self._started = False  # whether worker processes may exist

    def _parallel(self):
        from joblib import Parallel
        from joblib._parallel_backends import LokyBackend

        # one backend configuration for warm-up and sweep: joblib then reuses the same worker processes;
        # batch_size=1: runs are coarse, and auto-batching would group quick runs and leave a worker idle
        backend = LokyBackend(initializer=warm_worker)
        return Parallel(n_jobs=self.jobs, backend=backend, return_as="generator_unordered", batch_size=1)

    def prestart(self) -> None:
        # joblib is imported here, before the thread: two threads importing it at once can see it half-initialised
        from joblib import delayed
        from joblib._parallel_backends import LokyBackend  # noqa: F401
        from joblib.externals.loky import get_reusable_executor  # noqa: F401

        def spawn() -> None:
            with contextlib.suppress(Exception):  # a failed warm-up only costs the time it would have saved
                list(self._parallel()(delayed(int)() for _ in range(self.jobs)))

        self._warming = threading.Thread(target=spawn, name="infobench-warm-workers", daemon=True)
        self._warming.start()
        self._started = True

    def map_unordered(self, fn: Callable[..., Any], items: Iterable[tuple], on_error: OnError | None = None) -> Iterator[Any]:
        from joblib import delayed

        if self._warming is not None:
            self._warming.join()
            self._warming = None
        self._started = True
        yield from self._parallel()(delayed(fn)(*args) for args in items)

    def close(self) -> None:
        """Stop the worker processes now, killing any run or warm-up in flight (Ctrl-C, SIGTERM),
        rather than waiting for them or leaving them to loky's idle timeout."""
        if not self._started:
            return
        _kill_loky_workers()
        if self._warming is not None:  # a warm-up may be creating workers right now: stop those too
            self._warming.join(timeout=30)
            self._warming = None
            _kill_loky_workers()
        self._started = False


def _kill_loky_workers() -> None:
    """Shut joblib's reusable loky executor down with its workers, if one exists (asking joblib for
    it through ``get_reusable_executor`` would start one)."""
    from joblib.externals.loky import reusable_executor

    executor = getattr(reusable_executor, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=True, kill_workers=True)


def end_with_parent(poll_seconds: float = 1.0) -> None:
    """End this worker process when the driver that started it is gone.

    A worker whose driver was killed (SIGKILL, a crash) is adopted by another process; loky's
    own idle timeout would keep it alive, holding memory and cores, for minutes. A daemon thread
    watching the parent ends it within ``poll_seconds``."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="infobench-parent-watch", daemon=True).start()


def warm_worker() -> None:
    """Worker initializer: end with the driver, and import once what every run imports, before the
    first run arrives."""
    end_with_parent()
    import matplotlib.backends.backend_agg  # noqa: F401  (figures of every task)
    import torch

    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # the first optimiser imports torch._dynamo (~1 s)
    import infobench.runner  # noqa: F401


class DaskExecutor:
    """Runs on a Dask distributed cluster: the one at ``scheduler`` (tcp://host:port), or a
    LocalCluster of ``jobs`` single-threaded worker processes when no address is given.

    A worker that dies mid-run loses nothing finished: the scheduler reschedules its task on
    another worker (up to distributed's ``allowed-failures``), and results reach the driver,
    the only writer, as each run completes.
    """

    shows_inner_progress = False
    regather_tries = 3
    connect_timeout = "10s"  # how long to wait for a scheduler given by address

    def __init__(self, jobs: int, scheduler: str | None = None):
        self.jobs = jobs
        self.scheduler = scheduler
        self._connecting: threading.Thread | None = None
        self._connection: tuple | BaseException | None = None

    def _connect(self) -> tuple:
        """(client, cluster or None), with every worker warmed up (``warm_worker``)."""
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise InfobenchError("--executor dask needs the optional dask extra: pip install 'infobench[dask]'") from None
        cluster = None
        if self.scheduler:
            try:
                client = Client(self.scheduler, timeout=self.connect_timeout)
            except OSError as exc:
                raise InfobenchError(f"cannot reach the Dask scheduler at {self.scheduler}: {exc}") from None
        else:
            cluster = LocalCluster(n_workers=self.jobs, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=40)
            client = Client(cluster)
        client.run(warm_worker)  # workers that join later (a restart) import on their first run instead
        return client, cluster

    def prestart(self) -> None:
        """Connect (or start the LocalCluster) in the background while the driver validates specs."""
        def connect() -> None:
            try:
                self._connection = self._connect()
            except BaseException as exc:  # re-raised in the driver by map_unordered
                self._connection = exc

        self._connecting = threading.Thread(target=connect, name="infobench-dask-connect", daemon=True)
        self._connecting.start()

    def _take_connection(self) -> tuple | BaseException | None:
        """The prestarted connection (or its error), waiting for it; None if none was started."""
        if self._connecting is None:
            return None
        self._connecting.join()
        self._connecting, connection, self._connection = None, self._connection, None
        return connection

    def close(self) -> None:
        """Close a prestarted connection that no sweep used (``map_unordered`` closes its own)."""
        connection = self._take_connection()
        if isinstance(connection, tuple):
            self._disconnect(*connection)

    @staticmethod
    def _disconnect(client, cluster) -> None:
        client.close()
        if cluster is not None:
            cluster.close()

    def map_unordered(self, fn: Callable[..., Any], items: Iterable[tuple], on_error: OnError | None = None) -> Iterator[Any]:
        connection = self._take_connection()
        if isinstance(connection, BaseException):
            raise connection
        client, cluster = connection or self._connect()
        from distributed import as_completed

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
            self._disconnect(client, cluster)


_SCHEDULER = re.compile(r"((tcp|tls|ucx|ws|wss|inproc)://)?[A-Za-z0-9._\-]+(:[0-9]{1,5})?|(tcp|tls)://\[[0-9a-fA-F:]+\](:[0-9]{1,5})?")


def check_scheduler(address: str | None) -> None:
    """Refuse a Dask scheduler address that is not ``[protocol://]host[:port]`` before anything runs."""
    if address is not None and not _SCHEDULER.fullmatch(address):
        raise InfobenchError(f"--scheduler {address!r}: not a scheduler address; expected tcp://host:port")


def make_executor(jobs: int, executor: str = "auto", scheduler: str | None = None):
    """``auto``: serial for one job, loky for several; ``loky``; ``dask`` (LocalCluster or ``scheduler``)."""
    if jobs < 1:
        raise InfobenchError(f"--jobs must be >= 1, got {jobs}")
    check_scheduler(scheduler)
    if executor == "dask":
        return DaskExecutor(jobs, scheduler)
    if scheduler:
        raise InfobenchError("--scheduler is only used with --executor dask")
    if executor == "loky":
        return LokyExecutor(jobs)
    if executor == "auto":
        return SerialExecutor() if jobs == 1 else LokyExecutor(jobs)
    raise InfobenchError(f"unknown executor {executor!r}; one of auto, loky, dask")
