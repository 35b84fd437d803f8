"""Results at real scale (issue 13, item 7): the cost of recording runs and of reading a big folder.

A sweep of 200 runs, each with 5,000 metric rows (4,998 per-batch values and 2 final ones, as a
test-time adaptation run over a corruption stream writes them): one million rows in all.

* write: every run recorded in turn, the old way (its rows appended to one metrics.csv, which
  copies the whole file, plus its runs.csv row) and the new way (``ResultsFolder.record``: its
  own metrics/<run_id>.parquet, plus its runs.csv row), side by side in the same process. The
  target is a flat cost: the 200th write no slower than twice the 1st.
* read: ``load_metrics`` and ``compare`` over the finished folder (target: a few seconds), the
  ``infobench compare`` command (interpreter start included), the metrics.csv export at the
  end of the sweep, and the same reads over the old layout for comparison.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from infobench.compare import compare
from infobench.results import (
    METRIC_COLUMNS,
    RUN_COLUMNS,
    ResultsFolder,
    load_metrics,
    replace_run_rows,
)

RUNS = 200
BATCHES = 4998  # per-batch rows of a run; with its 2 final values, 5,000 rows


def run_row(index: int) -> dict:
    config = {"dataset": {"name": "cifar10-c", "corruptions": ["gaussian_noise"], "severity": 5},
              "model": {"name": "resnet26"}, "method": {"name": "tent", "params": {"lr": 0.001}},
              "scenario": {"batch_size": 64, "stream": "single"}, "data": ["0" * 64]}
    return {"run_id": f"{index:012x}", "task": "tta", "dataset": "cifar10-c", "model": "resnet26",
            "method": "tent", "variant": "tent", "seed": index, "setting": "5e7a1c0ffee0",
            "params": json.dumps({"lr": 0.001}), "config": json.dumps(config), "code": "c0de" * 3,
            "threads": 1, "status": "done", "error": "", "warnings": "", "seconds": 812.5}


def metric_rows(index: int) -> list[dict]:
    rng = np.random.default_rng(index)
    ident = {"run_id": f"{index:012x}", "task": "tta", "dataset": "cifar10-c", "model": "resnet26",
             "method": "tent", "variant": "tent", "seed": index}
    errors = rng.uniform(0.2, 0.6, BATCHES).tolist()
    rows = [{**ident, "split": "gaussian_noise@5", "step": step, "metric": "online_error", "value": value}
            for step, value in enumerate(errors)]
    rows.append({**ident, "split": "gaussian_noise@5", "step": None, "metric": "error", "value": float(np.mean(errors))})
    rows.append({**ident, "split": "gaussian_noise@5", "step": None, "metric": "ece", "value": float(rng.uniform(0, 0.1))})
    return rows


def record_the_old_way(root: Path, run: dict, rows: list[dict]) -> None:
    """What ``ResultsFolder.record`` did in results format 2: the run's rows appended to
    metrics.csv by copying the whole file into a new one, then its runs.csv row. The copy here
    is a plain one; the old code also split every line to drop a rerun's rows, so it was slower
    still and the old column is a lower bound."""
    replace_run_rows(root / "metrics.csv", METRIC_COLUMNS, set(), rows)
    replace_run_rows(root / "runs.csv", RUN_COLUMNS, {run["run_id"]}, [run])


def best_of(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def folder_bytes(paths) -> int:
    return sum(p.stat().st_size for p in paths)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        old, new = Path(tmp) / "old", Path(tmp) / "new"
        old.mkdir()
        folder = ResultsFolder(new)
        old_times, new_times = [], []
        for index in range(RUNS):
            run, rows = run_row(index), metric_rows(index)
            start = time.perf_counter()
            record_the_old_way(old, run, rows)
            old_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            folder.record(run, rows)
            new_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        folder.export_csv()
        export_seconds = time.perf_counter() - start

        rows_total = RUNS * (BATCHES + 2)
        print(f"recording {RUNS} runs of {BATCHES + 2:,} metric rows ({rows_total:,} rows)")
        print(f"{'layout':36s} {'1st write':>10s} {'200th':>10s} {'ratio':>6s} {'all writes':>11s} {'size MB':>8s}")
        old_size = folder_bytes([old / "metrics.csv"])
        new_size = folder_bytes(folder.metrics_path.iterdir())
        for label, times, size in (("old: one metrics.csv, copied per run", old_times, old_size),
                                   ("new: metrics/<run_id>.parquet", new_times, new_size)):
            first, last = np.median(times[:10]), np.median(times[-10:])  # medians of 10: one slow fsync is noise
            print(f"{label:36s} {first:10.4f} {last:10.4f} {last / first:6.1f} {sum(times):11.2f} {size / 1e6:8.1f}")
        ratio = np.median(new_times[-10:]) / np.median(new_times[:10])
        print(f"new per-run write flat in the number of runs: {'yes' if ratio < 2 else 'NO'} "
              f"(200th / 1st = {ratio:.2f}, target < 2)")
        print(f"metrics.csv export at the end of the sweep: {export_seconds:.2f} s "
              f"({folder.export_path.stat().st_size / 1e6:.1f} MB)")

        # the old folder reads as results format 2 (metrics.csv); both hold the same rows
        print(f"\nreading the {rows_total:,}-row folder (best of 3)")
        print(f"{'what':48s} {'old (csv)':>10s} {'new':>10s} {'target':>7s}")
        checks = [
            ("load_metrics", lambda d: load_metrics(d), 5.0),
            ("compare (in process)", lambda d: compare([d]), 5.0),
            ("infobench compare (command, with start-up)", lambda d: subprocess.run(
                [sys.executable, "-m", "infobench", "compare", str(d), "--format", "csv"],
                check=True, capture_output=True), 8.0),
        ]
        assert len(load_metrics(new)) == len(load_metrics(old)) == rows_total
        for what, fn, target in checks:
            before, after = (best_of(lambda d=d, fn=fn: fn(d)) for d in (old, new))
            print(f"{what:48s} {before:10.2f} {after:10.2f} {target:7.1f}")


if __name__ == "__main__":
    main()
