"""Results format 3 (issue 13, item 7): one Parquet file of metric rows per run, written once.

Recording a run never reads or rewrites another run's rows (the cost of a sweep's writes grew
with the square of its size when every run copied the whole metrics.csv); readers take the
files of the runs runs.csv marks done; metrics.csv is an export that never disagrees with them.
"""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from infobench.compare import compare
from infobench.errors import InfobenchError
from infobench.results import (
    FORMAT,
    METRIC_COLUMNS,
    RUN_COLUMNS,
    ResultsFolder,
    export_metrics,
    load_metrics,
    read_rows,
    replace_run_rows,
)


def run_row(run_id: str, status: str = "done", seed: int = 0, variant: str = "a") -> dict:
    return {"run_id": run_id, "task": "t", "dataset": "d", "model": "m", "method": "a", "variant": variant,
            "seed": seed, "setting": "s", "params": "{}", "status": status, "error": "", "seconds": 1.0}


def metric_rows(run_id: str, seed: int = 0, steps: int = 3, value: float = 0.5) -> list[dict]:
    ident = {"run_id": run_id, "task": "t", "dataset": "d", "model": "m", "method": "a", "variant": "a", "seed": seed}
    curve = [{**ident, "split": "test", "step": s, "metric": "loss", "value": value / (s + 1)} for s in range(steps)]
    return [*curve, {**ident, "split": "test", "step": None, "metric": "accuracy", "value": value}]


def recorded(tmp_path, runs: int = 3) -> ResultsFolder:
    folder = ResultsFolder(tmp_path / "f")
    for i in range(runs):
        folder.record(run_row(f"r{i}", seed=i), metric_rows(f"r{i}", seed=i, value=0.1 * (i + 1)))
    return folder


def as_records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain dicts, missing steps as None, for an exact comparison with what was written."""
    frame = frame[list(METRIC_COLUMNS)].astype(object)
    return [{k: (None if k == "step" and pd.isna(v) else v) for k, v in row.items()}
            for row in frame.to_dict("records")]


def test_recording_a_run_leaves_every_other_runs_file_untouched(tmp_path):
    folder = recorded(tmp_path, runs=3)
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.metrics_path.iterdir()}
    assert sorted(before) == ["r0.parquet", "r1.parquet", "r2.parquet"]
    folder.record(run_row("r3", seed=3), metric_rows("r3", seed=3))
    folder.record(run_row("r2", seed=2), metric_rows("r2", seed=2, value=0.9))  # a rerun of r2
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.metrics_path.iterdir()}
    assert after["r0.parquet"] == before["r0.parquet"] and after["r1.parquet"] == before["r1.parquet"]
    assert after["r2.parquet"][0] != before["r2.parquet"][0]  # replaced by a rename, not rewritten in place
    assert not (folder.root / "metrics.csv").exists()  # no table of every run's rows is rewritten per run


def test_load_metrics_gives_back_exactly_the_rows_written_and_the_export_agrees(tmp_path):
    folder = ResultsFolder(tmp_path / "f")
    written = []
    for i, value in enumerate((0.1 + 0.2, 1 / 3, float("inf"), -0.0)):
        rows = metric_rows(f"r{i}", seed=i, steps=1500, value=value)
        rows[-1]["split"] = 'odd, "quoted" split'  # a cell the CSV export has to quote, past its first batch
        folder.record(run_row(f"r{i}", seed=i), rows)
        written += rows
    folder.record(run_row("failed", status="failed"), [])
    frame = load_metrics(folder.root)
    assert as_records(frame) == written  # in runs.csv order, floats exact, steps nullable integers
    assert str(frame["step"].dtype) == "Int64" and frame["seed"].dtype == "int64"
    assert set(frame["setting"]) == {"s"}

    export_metrics(folder.root)
    exported = pd.read_csv(folder.export_path, keep_default_na=False, na_values={"step": [""], "value": ["nan"]})
    assert list(exported.columns) == list(METRIC_COLUMNS)
    assert exported["value"].tolist() == frame["value"].tolist()
    assert exported["split"].tolist() == frame["split"].tolist()
    assert exported["step"].isna().tolist() == frame["step"].isna().tolist()
    assert load_metrics(folder.root).equals(frame)  # readers still read metrics/, not the export

    folder.record(run_row("r9", seed=9), metric_rows("r9", seed=9))
    assert not folder.export_path.exists()  # the export went stale: removed before the change


def test_a_torn_or_foreign_metric_file_is_refused_with_its_name(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = recorded(tmp_path, runs=2)
    path = folder.metric_file("r1")
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # torn
    with pytest.raises(InfobenchError, match=r"r1\.parquet: not a readable Parquet file"):
        load_metrics(folder.root)
    with pytest.raises(InfobenchError, match="not a readable Parquet file"):
        compare([folder.root])

    pq.write_table(pa.table({"a": [1]}), path)  # someone else's Parquet
    with pytest.raises(InfobenchError, match=r"r1\.parquet: missing columns"):
        load_metrics(folder.root)
    table = pq.read_table(pa.BufferReader(good))
    pq.write_table(table.set_column(8, "step", table["step"].cast(pa.float64())), path)
    with pytest.raises(InfobenchError, match="step is double, not int64"):
        load_metrics(folder.root)
    pq.write_table(pq.read_table(folder.metric_file("r0")), path)  # r0's rows under r1's name
    with pytest.raises(InfobenchError, match="holds rows of runs other than r1"):
        load_metrics(folder.root)
    path.unlink()  # runs.csv says r1 is done: its rows cannot silently vanish
    with pytest.raises(InfobenchError, match=r"r1\.parquet: missing, though runs.csv records run r1 done"):
        load_metrics(folder.root)


def test_a_link_in_metrics_is_refused_and_never_written_through(tmp_path):
    folder = recorded(tmp_path, runs=2)
    outside = tmp_path / "outside.parquet"
    folder.metric_file("r1").rename(outside)
    folder.metric_file("r1").symlink_to(outside)
    with pytest.raises(InfobenchError, match=r"r1\.parquet is a symbolic link"):
        load_metrics(folder.root)
    with pytest.raises(InfobenchError, match="symbolic link"):
        folder.check_owned()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other = ResultsFolder(tmp_path / "g")
    other.root.mkdir()
    other.metrics_path.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(InfobenchError, match="metrics is a symbolic link"):
        other.record(run_row("x"), metric_rows("x"))
    assert not any(elsewhere.iterdir()) and not other.runs_path.exists()


def test_a_rerun_interrupted_before_its_rename_keeps_the_earlier_rows(tmp_path, monkeypatch):
    folder = recorded(tmp_path, runs=2)
    before = load_metrics(folder.root)
    runs_before = folder.runs_path.read_bytes()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        folder.record(run_row("r1", seed=1), metric_rows("r1", seed=1, value=0.99))
    monkeypatch.undo()
    assert load_metrics(folder.root).equals(before)
    assert folder.runs_path.read_bytes() == runs_before
    assert not [p for p in folder.metrics_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_purge_removes_orphans_and_the_temp_files_of_killed_writers(tmp_path):
    folder = recorded(tmp_path, runs=2)
    folder.write_run_metrics("ghost", metric_rows("ghost"))  # killed before its runs.csv row
    (folder.metrics_path / ".r5.parquet.abc123.tmp").write_bytes(b"half a file")
    (folder.root / ".metrics.csv.xyz.tmp").write_bytes(b"half an export")
    assert folder.purge() == 1
    assert sorted(p.name for p in folder.metrics_path.iterdir()) == ["r0.parquet", "r1.parquet"]
    assert not list(folder.root.glob(".*.tmp"))
    assert set(load_metrics(folder.root, only_done=False)["run_id"]) == {"r0", "r1"}


def test_the_export_is_atomic_follows_the_umask_and_a_torn_one_is_refused(tmp_path, monkeypatch):
    folder = recorded(tmp_path, runs=2)
    empty = ResultsFolder(tmp_path / "empty")
    empty.record(run_row("x", status="failed"), [])
    assert export_metrics(empty.root).read_text() == ",".join(METRIC_COLUMNS) + "\n"

    path = export_metrics(folder.root)
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    assert folder.metric_file("r0").stat().st_mode & 0o777 == 0o666 & ~mask
    text = path.read_text()
    assert len(text.splitlines()) == 1 + 2 * 4

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    folder.record(run_row("r2", seed=2), metric_rows("r2", seed=2))
    assert not path.exists()
    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        export_metrics(folder.root)
    monkeypatch.undo()
    assert not path.exists() and not list(folder.root.glob(".*.tmp"))  # never half-written

    export_metrics(folder.root)
    path.write_text(path.read_text()[:-3])
    with pytest.raises(InfobenchError, match="cut short.*an export of metrics/"):
        load_metrics(folder.root)


def test_a_format_2_folder_is_read_but_not_written(tmp_path):
    old = ResultsFolder(tmp_path / "old")
    old.root.mkdir()
    replace_run_rows(old.runs_path, RUN_COLUMNS, set(), [run_row("a"), run_row("b", status="failed")])
    replace_run_rows(old.root / "metrics.csv", METRIC_COLUMNS, set(), [*metric_rows("a"), *metric_rows("b")])
    old.manifest_path.write_text(json.dumps({"created_by": "infobench-results", "format": 2}))
    assert as_records(load_metrics(old.root)) == metric_rows("a")
    assert set(compare([old.root]).summary["metric"]) == {"accuracy"}
    assert FORMAT == 3
    with pytest.raises(InfobenchError, match="results format 2, this one writes 3.*still read"):
        old.check_owned()
    with pytest.raises(InfobenchError, match="results format 2"):
        old.record(run_row("c"), metric_rows("c"))
    assert [r["run_id"] for r in read_rows(old.runs_path)] == ["a", "b"]
    assert export_metrics(old.root).read_text().count("\n") == 1 + 2 * 4  # left as it is


def test_metric_rows_that_cannot_be_stored_are_refused_before_anything_is_written(tmp_path):
    folder = ResultsFolder(tmp_path / "f")
    with pytest.raises(InfobenchError, match="rows of other runs"):
        folder.record(run_row("a"), metric_rows("b"))
    with pytest.raises(InfobenchError, match=r"column value holds values that are not double"):
        folder.record(run_row("a"), [{**metric_rows("a")[0], "value": "high"}])
    with pytest.raises(InfobenchError, match="cannot name a metric file"):
        folder.record(run_row("../a"), [])
    assert not folder.runs_path.exists()


def test_infobench_export_writes_the_csv_again_under_the_folder_lock(tmp_path, tiny_spec):
    """A sweep removes metrics.csv while it changes the folder; `infobench export` restores it from
    the Parquet files, and refuses a folder infobench does not own."""
    from typer.testing import CliRunner

    from infobench.cli import app
    from infobench.runner import execute, plan
    from infobench.spec import validate

    summary = execute(plan(validate(tiny_spec), tmp_path))
    folder = ResultsFolder(summary.folder)
    expected = folder.export_path.read_bytes()  # written at the end of the sweep
    assert expected.count(b"\n") > 10
    folder.export_path.unlink()
    result = CliRunner().invoke(app, ["export", str(folder.root)])
    assert result.exit_code == 0, result.output
    assert folder.export_path.read_bytes() == expected
    stranger = tmp_path / "not-results"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    result = CliRunner().invoke(app, ["export", str(stranger)])
    assert result.exit_code == 2 and not (stranger / "metrics.csv").exists()
