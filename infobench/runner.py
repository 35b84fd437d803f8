"""Plan -> skip runs already finished -> execute -> record.

The driver plans the runs of a spec, skips those whose ``run_id`` is already ``done`` (or
``diverged``, a deterministic outcome) in the results folder, executes the rest through an
executor, and records each as it finishes. Only the driver writes tables, so workers can die
without tearing a file; a run counts once its row is in runs.csv.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import platform
import random
import socket
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from infobench import __version__, registry
from infobench.errors import DataError, DivergedError, InfobenchError
from infobench.executors import Executor, make_executor, threads_per_worker
from infobench.results import (
    FORMAT,
    LOCK_FILE,
    MARKER,
    ResultsFolder,
    atomic_write,
    read_manifest,
    write_json,
)
from infobench.spec import Run, Spec
from infobench.tracking import Tracking, check_sinks

FINISHED = ("done", "diverged")  # statuses that a rerun skips; failed runs are retried


@dataclass
class Plan:
    spec: Spec
    folder: ResultsFolder
    runs: list[Run]
    finished: set[str]  # run ids done (or diverged) with the code of today: skipped
    stale: set[str] = field(default_factory=set)  # done with other code: rerun
    deterministic: bool = False
    device: str = "auto"  # the device name each run resolves (infobench.device), checked at plan time
    log_to: tuple[str, ...] = ()  # tracking sinks (infobench.tracking) the folder is mirrored to

    @property
    def todo(self) -> list[Run]:
        return [r for r in self.runs if r.run_id not in self.finished]


@dataclass
class Summary:
    folder: Path
    planned: int
    skipped: int
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    plots: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # "variant seed s: message" of finished runs
    kept: int = 0  # reruns that failed, whose earlier finished result was kept
    bad_input: int = 0  # runs that failed on the user's input (a bad data file): exit 2
    tracking_problems: list[str] = field(default_factory=list)  # what a sink failed to copy: exit 1
    tracked: list[str] = field(default_factory=list)  # where each sink's copy is, and how to open it

    @property
    def ok(self) -> bool:
        return not any(self.statuses.get(s) for s in ("failed", "diverged"))

    @property
    def exit_code(self) -> int:
        return 2 if self.bad_input else (0 if self.ok and not self.tracking_problems else 1)


def results_folder(spec: Spec, out_root: str | Path) -> ResultsFolder:
    """``<out_root>/<spec.name>``; the name is validated to [a-z0-9_.-] so it cannot escape the root.

    The folder itself may not be a link (``resolve`` would follow it out of the root)."""
    root = Path(out_root)
    if (root / spec.name).is_symlink():
        raise InfobenchError(f"results folder {root / spec.name} is a symbolic link; infobench never writes "
                             "through a link: remove it, or run into another --out")
    folder = (root / spec.name).resolve()
    if folder.parent != root.resolve():
        raise InfobenchError(f"results folder {folder} escapes the results root {root}")
    return ResultsFolder(folder)


def with_data_identity(spec: Spec, runs: list[Run]) -> None:
    """Put the content digests of every data file a run reads into its configuration (so into its
    ``run_id``), and the digest of the code it will run on the run. A missing file stops here,
    before anything runs, with the plug-in's message naming it."""
    from infobench.provenance import checkpoint_digests, code_digest, data_digests

    kind = registry.get("task", spec.task).dataset_kind
    digests: dict[str, list[str]] = {}
    weights: dict[str, dict[str, str]] = {}
    for run in runs:
        key = json.dumps(run.config["dataset"], sort_keys=True)
        if key not in digests:
            digests[key] = data_digests(run.config["dataset"], kind)
        if digests[key]:
            run.config["data"] = digests[key]
        blocks = json.dumps({k: v for k, v in run.config.items() if k not in ("seed", "data")}, sort_keys=True)
        if blocks not in weights:
            weights[blocks] = checkpoint_digests(run.config)
        if weights[blocks]:
            run.config["weights"] = weights[blocks]
        run.code = code_digest(run.config)


def plan(spec: Spec, out_root: str | Path = "results", force: bool = False, deterministic: bool = False,
         device: str | None = None, log_to: Sequence[str] = ()) -> Plan:
    """The spec's runs and which of them are finished: ``done`` (or ``diverged``) with the same
    run_id, which covers configuration and data content, and the same code. Runs done with other
    code are ``stale`` and run again, like everything with ``--force``.

    ``device`` (``--device``) overrides the spec's ``device:``; both default to ``auto``. The
    device and the spec's precision are checked here, so a missing GPU stops the sweep before
    any run. The device is not part of a run's identity (CPU and GPU agree within float
    tolerance); it is recorded in the manifest and in each run's log.

    ``log_to`` names tracking sinks (``mlflow``, ``tensorboard``); their libraries are checked here."""
    device = check_device(device or spec.device or "auto", spec.precision)
    sinks = check_sinks(log_to)
    folder = results_folder(spec, out_root)
    folder.check_owned()
    runs = spec.runs()
    with_data_identity(spec, runs)
    rows = {} if force else folder.run_rows()
    code = {run.run_id: run.code for run in runs}
    finished = {rid for rid, row in rows.items() if row.get("status") in FINISHED and row.get("code") == code.get(rid)}
    stale = {rid for rid, row in rows.items() if rid in code and row.get("status") in FINISHED} - finished
    return Plan(spec=spec, folder=folder, runs=runs, finished=finished, stale=stale,
                deterministic=deterministic or spec.deterministic, device=device, log_to=sinks)


def check_device(name: str, precision: str) -> str:
    """``name`` after checking that this machine has it and can run ``precision`` on it."""
    from infobench import device as devices

    devices.check_precision(precision, devices.resolve(devices.check_name(name)))
    return name


# ------------------------------------------------------------------------------ one run


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _open_log(log_path: Path):
    """logs/<run_id>.log opened for writing without following a link planted at its name (a link
    there is removed, never written through)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if log_path.is_symlink():
        log_path.unlink()
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666)
    return open(fd, "w", encoding="utf-8")


@contextlib.contextmanager
def _run_logger(log_path: Path) -> Iterator[logging.Logger]:
    """Send the ``infobench`` loggers (run, cache, tasks) to logs/<run_id>.log for this run."""
    stream = _open_log(log_path)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    base = logging.getLogger("infobench")
    base.setLevel(logging.INFO)
    base.propagate = False  # the log file is the place for run chatter, not the terminal
    base.addHandler(handler)
    try:
        yield logging.getLogger("infobench.run")
    finally:
        base.removeHandler(handler)
        handler.close()
        stream.close()


def _check_data_unchanged(run: Run) -> None:
    """The data files read now are the ones the run was planned with (a file rewritten during a
    sweep would otherwise be scored under the old file's run_id)."""
    from infobench.provenance import checkpoint_digests, data_digests

    if "data" in run.config:
        now = data_digests(run.config["dataset"], registry.get("task", run.task).dataset_kind)
        if now != run.config["data"]:
            raise DataError(f"the data files of dataset {run.config['dataset']['name']!r} changed after the sweep "
                            "was planned; run again to plan with their new content")
    if "weights" in run.config:
        planned = run.config["weights"]
        now = checkpoint_digests({k: v for k, v in run.config.items() if k != "weights"})
        if now != planned:
            changed = sorted(k for k in planned if now.get(k) != planned[k])
            raise DataError(f"the checkpoint of {', '.join(changed)} changed after the sweep was planned; "
                            "run again to plan with its new content")


@contextlib.contextmanager
def _deterministic_torch(on: bool) -> Iterator[None]:
    """torch's deterministic algorithms for the block when ``on`` (restored after)."""
    import torch

    before = torch.are_deterministic_algorithms_enabled()
    if on:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def execute_run(run: Run, folder_root: str, threads: int, inner_progress: bool,
                deterministic: bool = False, device: str = "cpu", gpu_slots: str = "") -> tuple[dict, list[dict]]:
    """Execute one run (in this process or a worker); returns its runs.csv row and metric rows.

    The run computes on ``device`` (a name, resolved here, in the process that runs it) at the
    precision of its configuration. With ``gpu_slots`` (a folder; sweeps with ``--jobs N`` on
    CUDA), each worker process first claims a GPU of its own there (``device.claim_gpu``).

    The row's private ``_input_error`` says whether a failure came from the user's input (a bad
    data file): the driver turns that into exit code 2 and never writes the key.
    """
    import torch

    from infobench import device as devices
    from infobench.progress import use_progress
    from infobench.tasks.base import RunContext

    folder = ResultsFolder(Path(folder_root))
    if gpu_slots and device in ("auto", "cuda"):
        devices.claim_gpu(Path(gpu_slots))
    where = devices.resolve(device)
    precision = run.config.get("precision", "fp32")
    threads_before = torch.get_num_threads()  # restored after: in-process runs share the interpreter
    torch.set_num_threads(threads)
    seed_everything(run.seed)
    started = time.perf_counter()
    status, error, input_error = "done", "", False
    from threadpoolctl import threadpool_limits

    # numpy/scipy BLAS gets the run's threads too: left alone, small BLAS calls of parallel runs
    # oversubscribe the cores, and a thread count that varies changes the order of reductions
    with _run_logger(folder.logs / f"{run.run_id}.log") as logger, _deterministic_torch(deterministic), \
            threadpool_limits(threads), devices.use(where, precision):
        logger.info("run %s: %s seed %s, %d thread(s)%s on %s at %s\n%s", run.run_id, run.variant, run.seed, threads,
                    ", deterministic" if deterministic else "", devices.describe(where), precision,
                    json.dumps(run.config, indent=2))
        ctx = RunContext(run=run, plots_dir=folder.plots, logger=logger)
        try:
            _check_data_unchanged(run)
            task = registry.get("task", run.task)()
            if not inner_progress:
                with use_progress(None):
                    task.run(run, ctx)
            else:
                task.run(run, ctx)
            for row in ctx.rows:
                if not _finite(row["value"]):
                    raise DivergedError(f"metric {row['metric']} on {row['split']} is {row['value']}")
        except DivergedError as exc:
            status, error = "diverged", str(exc)
            logger.warning("diverged: %s", exc)
        except Exception as exc:  # a failing run is recorded and the sweep goes on
            status, error = "failed", f"{type(exc).__name__}: {exc}"
            input_error = isinstance(exc, InfobenchError)
            logger.error("failed:\n%s", traceback.format_exc())
        seconds = time.perf_counter() - started
        logger.info("status %s after %.2f s", status, seconds)
    torch.set_num_threads(threads_before)
    metric_rows = [{**run_identity(run), **row} for row in ctx.rows] if status == "done" else []
    row = run_row(run, status, error, seconds, threads=threads, warnings=ctx.warnings)
    row["_input_error"] = input_error
    return row, metric_rows


def run_identity(run: Run) -> dict[str, Any]:
    """The columns that name a run in both tables."""
    return {
        "run_id": run.run_id, "task": run.task, "dataset": run.dataset, "model": run.model,
        "method": run.method, "variant": run.variant, "seed": run.seed,
    }


def run_row(run: Run, status: str, error: str, seconds: float, threads: int | str = "",
            warnings: list[str] | None = None) -> dict[str, Any]:
    """The runs.csv row of a run: who it is, its whole configuration (the seed aside, which has its
    column) and the digest of its code; the error keeps its first line (the log has the traceback)."""
    config = {k: v for k, v in run.config.items() if k != "seed"}
    return {
        **run_identity(run), "setting": run.setting_id, "params": json.dumps(run.params, sort_keys=True),
        "config": json.dumps(config, sort_keys=True, separators=(",", ":"), default=str), "code": run.code,
        "threads": threads, "status": status, "error": error.splitlines()[0][:500] if error else "",
        "warnings": " | ".join(w.replace("\n", " ") for w in warnings or [])[:2000], "seconds": round(seconds, 3),
    }


def lost_run(args: tuple, exc: BaseException) -> tuple[dict, list[dict]]:
    """The result of a run the executor lost (its workers kept dying): recorded failed, retried next time."""
    run = args[0]
    return run_row(run, "failed", f"lost by the executor: {type(exc).__name__}: {exc}", 0.0, threads=args[2]), []


def _finite(value: float) -> bool:
    return value == value and value not in (float("inf"), float("-inf"))


# ------------------------------------------------------------------------------ a sweep


@contextlib.contextmanager
def folder_lock(folder: ResultsFolder) -> Iterator[None]:
    """One writer per results folder: a second ``infobench run`` on it refuses with a clear message."""
    folder.root.mkdir(parents=True, exist_ok=True)
    lock_path = folder.root / LOCK_FILE
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError:
        if lock_path.is_symlink():
            raise InfobenchError(f"{lock_path} is a symbolic link; infobench never writes through a link: remove it") from None
        raise
    handle = open(fd, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise InfobenchError(f"{folder.root} is being written by {holder}; wait for it to finish") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"infobench pid {os.getpid()} on {socket.gethostname()}")
    handle.flush()
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def manifest(started: float, threads: int, jobs: int, finished: float | None = None, **extra: Any) -> dict:
    import numpy

    from infobench.provenance import git_state

    info = {
        "created_by": MARKER,
        "format": FORMAT,
        "infobench": __version__,
        **git_state(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": _torch_version(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "threads_per_run": threads,
        "jobs": jobs,
        "command": " ".join(sys.argv),
        "started": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
    }
    if finished is not None:
        info["finished"] = datetime.fromtimestamp(finished, timezone.utc).isoformat(timespec="seconds")
        info["seconds"] = round(finished - started, 3)
    info.update(extra)
    return info


def _torch_version() -> str:
    import torch

    return torch.__version__


def execute(the_plan: Plan, jobs: int = 1, threads: int | None = None, console=None,
            executor: str | Executor = "auto", scheduler: str | None = None) -> Summary:
    """Run the plan's unfinished runs and record each as it finishes; returns a summary.

    ``executor`` is a name (see ``make_executor``, which takes ``jobs``) or an executor already
    made (and perhaps prestarted); then its own ``jobs`` count.

    A results folder that cannot be written (disk full, read-only) stops the sweep with an
    ``InfobenchError``; what was already recorded stays intact because every write is atomic.
    """
    if isinstance(executor, str):
        with contextlib.closing(make_executor(jobs, executor, scheduler)) as made:
            return execute(the_plan, jobs, threads, console, made)
    try:
        return _execute(the_plan, threads, console, executor)
    except OSError as exc:
        where = exc.filename or the_plan.folder.root
        raise InfobenchError(f"cannot write results in {the_plan.folder.root}: {exc.strerror or exc} ({where}); "
                             "runs recorded before this are intact") from None


def _execute(the_plan: Plan, threads: int | None, console, executor: Executor) -> Summary:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from infobench.progress import use_progress

    spec, folder = the_plan.spec, the_plan.folder
    jobs = executor.jobs  # the executor's count, never a second one that could disagree with it
    deterministic = the_plan.deterministic
    todo = the_plan.todo
    # as many runs at a time as there are runs to do: fewer runs than workers share the cores out;
    # deterministic: one thread per run, so reductions add in one order whatever --jobs is
    busy = max(1, min(jobs, len(todo)))
    per_run_threads = 1 if deterministic else threads_per_worker(busy, threads or spec.threads)
    if jobs > 1:
        todo = spread_shared_models(todo)
    summary = Summary(folder=folder.root, planned=len(the_plan.runs), skipped=len(the_plan.runs) - len(todo))
    if not todo and _finished_cleanly(folder) and not the_plan.log_to:
        return summary  # nothing to run and the figures of the last sweep are complete: write nothing
    started = time.time()
    with folder_lock(folder):
        folder.check_owned()  # again under the lock: the folder may have changed since planning
        hardware = device_facts(the_plan.device)
        write_json(folder.manifest_path, manifest(started, per_run_threads, jobs, deterministic=deterministic,
                                                  **hardware))
        folder.purge()  # rows an interrupted attempt left without their done row
        write_spec_version(folder, spec)
        previous = folder.run_rows()
        tracking = Tracking(the_plan.log_to, folder, spec.name) if the_plan.log_to else None
        progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
            disable=not todo,
        )
        with progress, use_progress(progress if executor.shows_inner_progress else None):
            bar = progress.add_task(f"{spec.name}: runs", total=len(todo))
            gpu_slots = gpu_slots_folder(the_plan.device, jobs)
            items = ((run, str(folder.root), per_run_threads, executor.shows_inner_progress, deterministic,
                      the_plan.device, gpu_slots) for run in todo)
            for row, metric_rows in executor.map_unordered(execute_run, items, on_error=lost_run):
                summary.bad_input += bool(row.pop("_input_error", False))
                status = row["status"]
                summary.statuses[status] = summary.statuses.get(status, 0) + 1
                earlier = previous.get(row["run_id"], {}).get("status")
                note = ""
                if status == "failed" and earlier == "done":
                    summary.kept += 1  # a failed rerun never costs the result it was meant to refresh
                    note = " (the earlier finished result is kept)"
                else:
                    folder.record(row, metric_rows)
                    if tracking:
                        tracking.run_recorded(row)
                if status != "done" and console is not None:
                    progress.console.print(f"{row['variant']} seed {row['seed']}: {status}: {row['error']}{note}",
                                           style="yellow", markup=False, highlight=False)
                if row.get("warnings"):
                    summary.warnings.append(f"{row['variant']} seed {row['seed']}: {row['warnings']}")
                progress.advance(bar)
        folder.export_csv()  # metrics.csv: the CSV export of the per-run Parquet files, in one rename
        summary.plots = summarize(spec, folder)
        if tracking:
            tracking.finish(summary.plots, [folder.root / "spec.yaml", folder.manifest_path])
            summary.tracking_problems = tracking.problems
            summary.tracked = [sink.where for sink in tracking.sinks]
        finished = time.time()
        summary.seconds = finished - started
        write_json(folder.manifest_path, manifest(
            started, per_run_threads, jobs, finished=finished, deterministic=deterministic, **hardware,
            runs={"planned": summary.planned, "skipped": summary.skipped, **summary.statuses},
        ))
    return summary


def device_facts(name: str) -> dict[str, Any]:
    """What the manifest records of where the sweep computed: the device asked for, what it
    resolved to (with the GPU's name) and, on CUDA, the GPUs the machine has."""
    import torch

    from infobench import device as devices

    facts: dict[str, Any] = {"device_requested": name, "device": devices.describe(devices.resolve(name))}
    if torch.cuda.is_available():
        facts["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        facts["cuda"] = torch.version.cuda
    return facts


def gpu_slots_folder(device: str, jobs: int) -> str:
    """A folder where parallel workers claim one GPU each, when there are several to share out
    (``--jobs N`` with ``device`` auto or cuda); "" otherwise (every run takes the one device)."""
    import torch

    if jobs < 2 or device not in ("auto", "cuda") or not torch.cuda.is_available() or torch.cuda.device_count() < 2:
        return ""
    from infobench.cache import cache_root

    return str(cache_root() / "gpu-slots")


def write_spec_version(folder: ResultsFolder, spec: Spec) -> None:
    """spec.yaml is the spec of the latest sweep; specs/<digest>.yaml keeps every version of the
    spec that ever wrote into the folder (two ``--set`` values, two files)."""
    import hashlib

    text = yaml.safe_dump(spec.resolved(), sort_keys=False)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    version = folder.root / "specs" / f"{digest}.yaml"
    if not version.exists():
        atomic_write(version, text)
    atomic_write(folder.root / "spec.yaml", text)


def spread_shared_models(runs: list[Run]) -> list[Run]:
    """Order runs so that neighbours differ in seed and setting.

    Runs of one seed and setting share a cached trained model; started side by side, one
    worker would train it while the others wait on its lock. Variant-major order keeps the
    runs that start together on different models (stable: spec order within a variant).
    """
    first_seen: dict[str, int] = {}
    for run in runs:
        first_seen.setdefault(run.variant, len(first_seen))
    return sorted(runs, key=lambda run: first_seen[run.variant])


def sweep_outlook(spec_path: str | Path, overrides: list[str], out_root: str | Path) -> str:
    """A cheap guess, before validation, of what ``run`` will do with a spec: ``unreadable``
    (validation will stop at once), ``finished`` (its results folder records a finished sweep)
    or ``open``. It only decides whether to start workers early; a wrong guess costs seconds,
    never results."""
    from infobench.spec import apply_overrides, read_spec_file, valid_name

    try:
        raw = apply_overrides(read_spec_file(spec_path), overrides, str(spec_path))
    except InfobenchError:
        return "unreadable"
    name = raw.get("name") if isinstance(raw, dict) else None
    if valid_name(name) and _finished_cleanly(ResultsFolder(Path(out_root) / name)):
        return "finished"
    return "open"


def _finished_cleanly(folder: ResultsFolder) -> bool:
    """Whether the last sweep on ``folder`` got to its end (its manifest has a finish time)."""
    try:
        return "finished" in read_manifest(folder.root)
    except InfobenchError:
        return False


def summarize(spec: Spec, folder: ResultsFolder) -> list[Path]:
    """Let the task draw its figures over every finished run of the folder."""
    from infobench.results import load_metrics

    if not folder.metrics_path.exists():
        return []
    metrics = load_metrics([folder.root])
    if metrics.empty:
        return []
    task = registry.get("task", spec.task)()
    return task.summarize(spec.name, metrics, folder.plots)
