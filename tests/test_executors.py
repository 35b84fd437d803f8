"""Executors: prestarted loky workers arrive warm, are reused by the sweep and stopped by close."""

from __future__ import annotations

import os
import sys

import pytest
import yaml

from infobench.executors import LokyExecutor, make_executor, threads_per_worker
from infobench.runner import sweep_outlook


def _worker_state(index: int) -> tuple[int, int, bool]:
    return index, os.getpid(), "torch._dynamo" in sys.modules  # imported only by warm_worker or a first optimiser


def test_prestarted_loky_workers_are_warm_reused_and_stopped_by_close():
    pool = LokyExecutor(2)
    pool.prestart()
    results = list(pool.map_unordered(_worker_state, [(i,) for i in range(6)]))
    assert sorted(index for index, _, _ in results) == list(range(6))
    assert all(warm for _, _, warm in results)
    pids = {pid for _, pid, _ in results}
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids
    pool.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_workers_threads_never_oversubscribe_the_cores(monkeypatch):
    from infobench import executors

    monkeypatch.setattr(executors, "available_cores", lambda: 8)
    for jobs in range(1, 9):
        assert jobs * threads_per_worker(jobs) <= 8
        assert jobs * threads_per_worker(jobs, requested=64) <= 8
    assert threads_per_worker(16) == 1 and threads_per_worker(2, requested=1) == 1
    make_executor(1).close()  # closing what never started is a no-op
    LokyExecutor(2).close()


def test_sweep_outlook_guesses_from_the_file_and_the_results_folder(tmp_path, tiny_spec):
    path = tmp_path / "tiny.yaml"
    assert sweep_outlook(path, [], tmp_path / "results") == "unreadable"
    path.write_text("name: [unclosed")
    assert sweep_outlook(path, [], tmp_path / "results") == "unreadable"
    path.write_text(yaml.safe_dump(tiny_spec))
    assert sweep_outlook(path, [], tmp_path / "results") == "open"
    folder = tmp_path / "results" / tiny_spec["name"]
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text('{"started": "x"}')  # interrupted: still open
    assert sweep_outlook(path, [], tmp_path / "results") == "open"
    (folder / "manifest.json").write_text('{"started": "x", "finished": "y"}')
    assert sweep_outlook(path, [], tmp_path / "results") == "finished"
    assert sweep_outlook(path, ["name=other"], tmp_path / "results") == "open"


def test_prestarted_dask_local_cluster_is_warm_and_closed():
    pytest.importorskip("distributed")
    from infobench.executors import DaskExecutor

    pool = DaskExecutor(1)
    pool.prestart()  # the LocalCluster starts in the background
    results = list(pool.map_unordered(_worker_state, [(i,) for i in range(3)]))
    assert sorted(index for index, _, _ in results) == [0, 1, 2]
    assert all(warm for _, _, warm in results)
    pid = results[0][1]
    assert pid != os.getpid()
    pool.close()  # nothing left to close: map_unordered closed its own cluster
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_prestarted_connection_that_fails_is_reported_when_used():
    pytest.importorskip("distributed")
    from infobench.errors import InfobenchError
    from infobench.executors import DaskExecutor

    pool = DaskExecutor(1, scheduler="tcp://127.0.0.1:1")
    pool.connect_timeout = "1s"
    pool.prestart()
    with pytest.raises(InfobenchError, match="cannot reach the Dask scheduler"):
        list(pool.map_unordered(_worker_state, [(0,)]))
    pool.close()
