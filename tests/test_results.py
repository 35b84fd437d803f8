"""The results folder: atomic writes, commit order, purge of unfinished runs, readers.

The per-run Parquet layout (results format 3) has its own file, test_results_parquet.py."""

from __future__ import annotations

import os

import pytest

from infobench.errors import InfobenchError
from infobench.results import (
    METRIC_COLUMNS,
    RUN_COLUMNS,
    ResultsFolder,
    atomic_write,
    load_metrics,
    load_runs,
    read_rows,
    replace_run_rows,
)


def run_row(run_id: str, status: str = "done", seed: int = 0) -> dict:
    return {"run_id": run_id, "task": "t", "dataset": "d", "model": "m", "method": "a", "variant": "a",
            "seed": seed, "params": "{}", "status": status, "error": "", "seconds": 1.0}


def metric_row(run_id: str, value: float, seed: int = 0) -> dict:
    return {"run_id": run_id, "task": "t", "dataset": "d", "model": "m", "method": "a", "variant": "a",
            "seed": seed, "split": "test", "step": None, "metric": "accuracy", "value": value}


def test_atomic_write_leaves_old_content_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "f.csv"
    atomic_write(target, "old\n")

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.csv"]  # no temp file left behind


def test_append_keeps_header_once_and_floats_exact(tmp_path):
    path = tmp_path / "m.csv"
    replace_run_rows(path, METRIC_COLUMNS, set(), [metric_row("a", 0.1 + 0.2)])
    replace_run_rows(path, METRIC_COLUMNS, set(), [metric_row("b", 1 / 3)])
    rows = read_rows(path)
    assert [r["run_id"] for r in rows] == ["a", "b"]
    assert float(rows[0]["value"]) == 0.1 + 0.2
    assert float(rows[1]["value"]) == 1 / 3
    assert path.read_text().count("run_id") == 1


def test_record_replaces_a_rerun_and_purge_drops_orphans(tmp_path):
    folder = ResultsFolder(tmp_path)
    folder.record(run_row("a", "failed"), [])
    folder.record(run_row("a", "done"), [metric_row("a", 0.5)])
    assert [r["status"] for r in read_rows(folder.runs_path)] == ["done"]
    # metrics of a run whose done row never landed (killed between the two writes)
    folder.write_run_metrics("ghost", [metric_row("ghost", 0.9)])
    assert set(load_metrics([tmp_path])["run_id"]) == {"a"}  # readers ignore it
    assert set(load_metrics([tmp_path], only_done=False)["run_id"]) == {"a", "ghost"}
    assert folder.purge() == 1
    assert sorted(p.name for p in folder.metrics_path.iterdir()) == ["a.parquet"]
    # a rerun of "a" replaces its file in one rename
    folder.record(run_row("a", "done"), [metric_row("a", 0.75)])
    assert list(load_metrics([tmp_path])["value"]) == [0.75]
    # a rerun that ends otherwise commits its row first, then drops the file no reader opens
    folder.record(run_row("a", "diverged"), [])
    assert not folder.metric_file("a").exists()
    assert load_metrics([tmp_path]).empty


def test_a_multi_line_cell_is_replaced_whole(tmp_path):
    path = tmp_path / "runs.csv"
    replace_run_rows(path, RUN_COLUMNS, set(), [{**run_row("a"), "warnings": 'two\nlines, "quoted"'}, run_row("b")])
    replace_run_rows(path, RUN_COLUMNS, {"a"}, [{**run_row("a"), "warnings": "one"}])
    assert [(r["run_id"], r["warnings"]) for r in read_rows(path)] == [("b", ""), ("a", "one")]


def test_load_many_folders_into_one_frame(tmp_path):
    for name, value in (("x", 0.25), ("y", 0.75)):
        folder = ResultsFolder(tmp_path / name)
        folder.record(run_row("r" + name), [metric_row("r" + name, value)])
    df = load_metrics([tmp_path / "x", tmp_path / "y"])
    assert list(df["source"]) == ["x", "y"]
    assert list(df["value"]) == [0.25, 0.75]
    assert df["step"].isna().all()
    runs = load_runs([tmp_path / "x", tmp_path / "y"])
    assert list(runs.columns) == ["source", *RUN_COLUMNS]


def test_non_results_folders_get_clear_errors(tmp_path):
    with pytest.raises(InfobenchError, match="no such results folder"):
        load_metrics([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InfobenchError, match="not an infobench results folder"):
        load_runs([tmp_path / "empty"])
    old = tmp_path / "old"
    old.mkdir()
    (old / "runs.csv").write_text("id,result\n1,2\n")
    with pytest.raises(InfobenchError, match="missing columns"):
        load_runs([old])


def test_torn_or_edited_tables_get_clear_errors(tmp_path):
    folder = ResultsFolder(tmp_path / "x")  # results format 2: the rows in metrics.csv
    folder.root.mkdir()
    metrics_csv = folder.root / "metrics.csv"
    replace_run_rows(folder.runs_path, RUN_COLUMNS, set(), [run_row("a")])
    replace_run_rows(metrics_csv, METRIC_COLUMNS, set(), [metric_row("a", 0.5)])
    assert list(load_metrics([folder.root])["value"]) == [0.5]
    with open(metrics_csv, "a") as f:
        f.write('a,b\n"unterminated\n')
    with pytest.raises(InfobenchError, match="not a readable infobench table"):
        load_metrics([folder.root])
    metrics_csv.write_text("x,y\n1,2\n")
    with pytest.raises(InfobenchError, match="missing columns"):
        load_metrics([folder.root])
