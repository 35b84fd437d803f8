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
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from infobench import __version__, registry
from infobench.errors import DivergedError, InfobenchError
from infobench.executors import Executor, make_executor, threads_per_worker
from infobench.results import ResultsFolder, atomic_write, write_json
from infobench.spec import Run, Spec

FINISHED = ("done", "diverged")  # statuses that a rerun skips; failed runs are retried


@dataclass
class Plan:
    spec: Spec
    folder: ResultsFolder
    runs: list[Run]
    finished: set[str]

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

    @property
    def ok(self) -> bool:
        return not any(self.statuses.get(s) for s in ("failed", "diverged"))


def results_folder(spec: Spec, out_root: str | Path) -> ResultsFolder:
    """``<out_root>/<spec.name>``; the name is validated to [a-z0-9_.-] so it cannot escape the root."""
    root = Path(out_root)
    folder = (root / spec.name).resolve()
    if folder.parent != root.resolve():
        raise InfobenchError(f"results folder {folder} escapes the results root {root}")
    return ResultsFolder(folder)


def plan(spec: Spec, out_root: str | Path = "results", force: bool = False) -> Plan:
    folder = results_folder(spec, out_root)
    runs = spec.runs()
    finished = set() if force else {
        rid for rid, row in folder.run_rows().items() if row.get("status") in FINISHED
    }
    return Plan(spec=spec, folder=folder, runs=runs, finished=finished)


# ------------------------------------------------------------------------------ one run


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def _run_logger(log_path: Path) -> Iterator[logging.Logger]:
    """Send the ``infobench`` loggers (run, cache, tasks) to logs/<run_id>.log for this run."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, mode="w", encoding="utf-8")
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


def execute_run(run: Run, folder_root: str, threads: int, inner_progress: bool) -> tuple[dict, list[dict]]:
    """Execute one run (in this process or a worker); returns its runs.csv row and metric rows."""
    import torch

    from infobench.progress import use_progress
    from infobench.tasks.base import RunContext

    folder = ResultsFolder(Path(folder_root))
    threads_before = torch.get_num_threads()  # restored after: in-process runs share the interpreter
    torch.set_num_threads(threads)
    seed_everything(run.seed)
    started = time.perf_counter()
    status, error = "done", ""
    with _run_logger(folder.logs / f"{run.run_id}.log") as logger:
        logger.info("run %s: %s seed %s\n%s", run.run_id, run.variant, run.seed, json.dumps(run.config, indent=2))
        ctx = RunContext(run=run, plots_dir=folder.plots, logger=logger)
        try:
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
            logger.error("failed:\n%s", traceback.format_exc())
        seconds = time.perf_counter() - started
        logger.info("status %s after %.2f s", status, seconds)
    torch.set_num_threads(threads_before)
    metric_rows = [{**run_identity(run), **row} for row in ctx.rows] if status == "done" else []
    return run_row(run, status, error, seconds), metric_rows


def run_identity(run: Run) -> dict[str, Any]:
    """The columns that name a run in both tables."""
    return {
        "run_id": run.run_id, "task": run.task, "dataset": run.dataset, "model": run.model,
        "method": run.method, "variant": run.variant, "seed": run.seed,
    }


def run_row(run: Run, status: str, error: str, seconds: float) -> dict[str, Any]:
    """The runs.csv row of a run; the error keeps its first line (the log has the traceback)."""
    return {
        **run_identity(run), "params": json.dumps(run.params, sort_keys=True), "status": status,
        "error": error.splitlines()[0][:500] if error else "", "seconds": round(seconds, 3),
    }


def lost_run(args: tuple, exc: BaseException) -> tuple[dict, list[dict]]:
    """The result of a run the executor lost (its workers kept dying): recorded failed, retried next time."""
    run = args[0]
    return run_row(run, "failed", f"lost by the executor: {type(exc).__name__}: {exc}", 0.0), []


def _finite(value: float) -> bool:
    return value == value and value not in (float("inf"), float("-inf"))


# ------------------------------------------------------------------------------ a sweep


@contextlib.contextmanager
def folder_lock(folder: ResultsFolder) -> Iterator[None]:
    """One writer per results folder: a second ``infobench run`` on it refuses with a clear message."""
    folder.root.mkdir(parents=True, exist_ok=True)
    lock_path = folder.root / ".lock"
    handle = open(lock_path, "a+")
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

    info = {
        "infobench": __version__,
        "git_commit": _git_commit(),
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


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


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
    per_run_threads = threads_per_worker(jobs, threads or spec.threads)
    todo = the_plan.todo
    if jobs > 1:
        todo = spread_shared_models(todo)
    summary = Summary(folder=folder.root, planned=len(the_plan.runs), skipped=len(the_plan.runs) - len(todo))
    if not todo and _finished_cleanly(folder):
        return summary  # nothing to run and the figures of the last sweep are complete: write nothing
    started = time.time()
    with folder_lock(folder):
        # runs about to be (re)done lose any rows an earlier, interrupted attempt left behind
        folder.purge({r.run_id for r in todo})
        atomic_write(folder.root / "spec.yaml", yaml.safe_dump(spec.resolved(), sort_keys=False))
        write_json(folder.root / "manifest.json", manifest(started, per_run_threads, jobs))
        progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
            disable=not todo,
        )
        with progress, use_progress(progress if executor.shows_inner_progress else None):
            bar = progress.add_task(f"{spec.name}: runs", total=len(todo))
            items = ((run, str(folder.root), per_run_threads, executor.shows_inner_progress) for run in todo)
            for row, metric_rows in executor.map_unordered(execute_run, items, on_error=lost_run):
                folder.record(row, metric_rows)
                summary.statuses[row["status"]] = summary.statuses.get(row["status"], 0) + 1
                if row["status"] != "done" and console is not None:
                    progress.console.print(f"{row['variant']} seed {row['seed']}: {row['status']}: {row['error']}", style="yellow", markup=False)
                progress.advance(bar)
        summary.plots = summarize(spec, folder)
        finished = time.time()
        summary.seconds = finished - started
        write_json(folder.root / "manifest.json", manifest(
            started, per_run_threads, jobs, finished=finished,
            runs={"planned": summary.planned, "skipped": summary.skipped, **summary.statuses},
        ))
    return summary


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
        return "finished" in json.loads((folder.root / "manifest.json").read_text())
    except (OSError, ValueError):
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
