"""The runner: skip finished runs, record failures and divergence, resume after a kill, lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from tests_support import toy_spec  # registers the toy task and its method

from infobench.errors import InfobenchError
from infobench.results import load_metrics, read_rows
from infobench.runner import execute, folder_lock, plan
from infobench.spec import validate


def test_failed_and_diverged_runs_are_recorded_and_the_rest_go_on(tmp_path):
    summary = execute(plan(validate(toy_spec()), tmp_path))
    assert summary.statuses == {"done": 2, "failed": 2, "diverged": 4}
    assert not summary.ok
    rows = read_rows(tmp_path / "toy" / "runs.csv")
    failed = [r for r in rows if r["status"] == "failed"]
    assert all(r["error"] == "RuntimeError: the method broke" for r in failed)
    assert "Traceback" in (tmp_path / "toy" / "logs" / f"{failed[0]['run_id']}.log").read_text()
    diverged = {r["error"] for r in rows if r["status"] == "diverged"}
    assert diverged == {"loss became nan at epoch 3", "metric score on test is nan"}
    metrics = load_metrics([tmp_path / "toy"])
    assert sorted(metrics["value"]) == [0.5, 1.5]  # only done runs have metric rows
    # a rerun retries the failed runs only: diverged is a deterministic outcome
    again = plan(validate(toy_spec()), tmp_path)
    assert {r.params["mode"] for r in again.todo} == {"fail"}


def test_rerun_skips_finished_runs_and_force_reruns(tmp_path, tiny_spec):
    spec = validate(tiny_spec)
    first = execute(plan(spec, tmp_path))
    assert first.statuses == {"done": 4} and first.skipped == 0
    folder = tmp_path / "tiny"
    before = (folder / "metrics.csv").read_text()
    second = plan(spec, tmp_path)
    assert second.todo == []
    summary = execute(second)
    assert summary.statuses == {} and summary.skipped == 4
    assert (folder / "metrics.csv").read_text() == before
    forced = execute(plan(spec, tmp_path, force=True))
    assert forced.statuses == {"done": 4}
    after = load_metrics([folder])
    assert len(after) == len(load_metrics([folder]).drop_duplicates())
    assert len(read_rows(folder / "runs.csv")) == 4
    # same spec and seed on the same machine: the same numbers
    assert (folder / "metrics.csv").read_text() == before
    for name in ("spec.yaml", "manifest.json"):
        assert (folder / name).is_file()
    assert len(list((folder / "logs").glob("*.log"))) == 4
    assert len(list((folder / "plots").glob("reliability_*.png"))) == 2  # one per variant, seeds pooled


def test_two_writers_on_one_folder_are_refused(tmp_path, tiny_spec):
    the_plan = plan(validate(tiny_spec), tmp_path)
    with folder_lock(the_plan.folder):
        with pytest.raises(InfobenchError, match="is being written by infobench pid"):
            execute(the_plan)


def test_parallel_jobs_give_the_same_numbers_as_serial(tmp_path, tiny_spec):
    spec = validate(tiny_spec)
    execute(plan(spec, tmp_path / "serial"))
    summary = execute(plan(spec, tmp_path / "parallel"), jobs=2)
    assert summary.statuses == {"done": 4}
    key = ["run_id", "split", "metric"]
    serial = load_metrics([tmp_path / "serial" / "tiny"]).sort_values(key).reset_index(drop=True)
    parallel = load_metrics([tmp_path / "parallel" / "tiny"]).sort_values(key).reset_index(drop=True)
    assert serial["value"].tolist() == parallel["value"].tolist()


def test_a_killed_sweep_completes_on_rerun_without_duplicates(tmp_path, write_spec, tiny_spec):
    tiny_spec["seeds"] = list(range(6))
    path = write_spec(tiny_spec)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "infobench", "run", str(path), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    runs_csv = out / "tiny" / "runs.csv"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if runs_csv.exists() and len(read_rows(runs_csv)) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished_before = len(read_rows(runs_csv))
    assert 3 <= finished_before < 12, "the kill should land mid-sweep"
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), timeout=300)
    assert done.returncode == 0, done.stderr
    rows = read_rows(runs_csv)
    assert len(rows) == 12 and len({r["run_id"] for r in rows}) == 12
    assert {r["status"] for r in rows} == {"done"}
    metrics = load_metrics([out / "tiny"])
    assert not metrics.duplicated(["run_id", "split", "step", "metric"]).any()
    rows_per_run = metrics.groupby(["method", "run_id"]).size()
    assert (rows_per_run.groupby("method").nunique() == 1).all()  # every run has its full set of rows
    assert not list((out / "tiny").glob(".*.tmp"))


def test_parallel_order_keeps_runs_that_share_a_model_apart(tiny_spec):
    from infobench.runner import spread_shared_models

    tiny_spec["seeds"] = [0, 1, 2]
    runs = spread_shared_models(validate(tiny_spec).runs())
    assert [(r.method, r.seed) for r in runs] == [
        ("uncalibrated", 0), ("uncalibrated", 1), ("uncalibrated", 2),
        ("temperature", 0), ("temperature", 1), ("temperature", 2),
    ]
