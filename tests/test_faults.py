"""Faults a sweep survives: a dead Dask worker, a full disk, a folder that escapes the root."""

from __future__ import annotations

import errno
import os
import signal

import pytest

from infobench import results as results_module
from infobench.errors import InfobenchError
from infobench.results import load_metrics, read_rows
from infobench.runner import execute, plan
from infobench.spec import validate


def test_a_killed_dask_worker_loses_no_run(tmp_path, tiny_spec):
    distributed = pytest.importorskip("distributed")
    tiny_spec["seeds"] = list(range(4))
    tiny_spec["train"]["epochs"] = 15  # long enough that the kill lands while runs are in flight
    spec = validate(tiny_spec)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=50) as cluster:
        with distributed.Client(cluster) as client:
            pids = list(client.run(os.getpid).values())

            import threading

            def kill_one_worker_once_runs_start():
                runs_csv = tmp_path / "tiny" / "runs.csv"
                for _ in range(600):
                    if runs_csv.exists():
                        break
                    threading.Event().wait(0.05)
                os.kill(pids[0], signal.SIGKILL)

            killer = threading.Thread(target=kill_one_worker_once_runs_start)
            killer.start()
            summary = execute(plan(spec, tmp_path), jobs=2, executor="dask", scheduler=cluster.scheduler_address)
            killer.join()
    assert summary.statuses == {"done": 8}
    rows = read_rows(tmp_path / "tiny" / "runs.csv")
    assert len(rows) == 8 and len({r["run_id"] for r in rows}) == 8
    metrics = load_metrics([tmp_path / "tiny"])
    assert not metrics.duplicated(["run_id", "split", "step", "metric"]).any()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_full_disk_or_read_only_folder_stops_with_a_clear_error_and_keeps_what_was_written(tmp_path, tiny_spec, monkeypatch, code):
    # as root, chmod cannot make a folder read-only, so the failing write is injected
    spec = validate(tiny_spec)
    real_append = results_module.replace_run_rows
    calls = {"n": 0}

    def append_until_full(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(code, os.strerror(code), str(args[0]))
        return real_append(*args, **kwargs)

    monkeypatch.setattr(results_module, "replace_run_rows", append_until_full)
    with pytest.raises(InfobenchError, match=os.strerror(code)):
        execute(plan(spec, tmp_path))
    folder = tmp_path / "tiny"
    assert [r["status"] for r in read_rows(folder / "runs.csv")] == ["done"]
    assert len(load_metrics([folder])) > 0
    assert not list(folder.glob(".*.tmp"))
    monkeypatch.setattr(results_module, "replace_run_rows", real_append)
    assert execute(plan(spec, tmp_path)).statuses == {"done": 3}  # the rest, once there is room


def test_a_results_folder_that_links_outside_the_root_is_refused(tmp_path, tiny_spec):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    root = tmp_path / "results"
    root.mkdir()
    (root / "tiny").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InfobenchError, match="is a symbolic link"):
        plan(validate(tiny_spec), root)


def test_unknown_executor_and_stray_scheduler_are_refused(tmp_path, tiny_spec):
    the_plan = plan(validate(tiny_spec), tmp_path)
    with pytest.raises(InfobenchError, match="only used with --executor dask"):
        execute(the_plan, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(InfobenchError, match="unknown executor"):
        execute(the_plan, executor="spark")


@pytest.mark.parametrize("name", ["../escape", "/etc", "a/b", "..", "."])
def test_experiment_names_cannot_leave_the_results_root(tiny_spec, name):
    from infobench.errors import SpecError

    tiny_spec["name"] = name
    with pytest.raises(SpecError, match="must be 1-100 characters of a-z"):
        validate(tiny_spec)
