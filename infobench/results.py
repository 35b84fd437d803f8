"""The tidy results folder: runs.csv, metrics.csv, spec.yaml, manifest.json, logs/, plots/.

Every write goes to a temporary file in the same folder, is fsynced, then renamed over the
target, so a killed process leaves either the old or the new file, never a torn row. The
driver process is the only writer. Metrics of a run are written before its ``done`` row in
runs.csv, so a run counts as finished only once both are on disk; metric rows of runs that
are not ``done`` are ignored by readers and purged by the next ``infobench run``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from infobench.errors import InfobenchError

RUN_COLUMNS = (
    "run_id", "task", "dataset", "model", "method", "variant", "seed",
    "params", "status", "error", "seconds",
)
METRIC_COLUMNS = (
    "run_id", "task", "dataset", "model", "method", "variant", "seed",
    "split", "step", "metric", "value",
)
STATUSES = ("done", "failed", "diverged")
RUNS_FILE = "runs.csv"
METRICS_FILE = "metrics.csv"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def _replacing(path: Path, mode: str) -> Iterator[IO]:
    """Yield a temp file beside ``path``; on success fsync it and rename it over ``path``.

    On any failure (an exception, Ctrl-C) the temp file is removed and ``path`` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"newline": "", "encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write(path: Path, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` atomically (temp file in the same folder, fsync, rename)."""
    with _replacing(Path(path), "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def atomic_append_rows(path: Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """Append CSV rows atomically: copy the file, append, fsync, rename over the original."""
    path = Path(path)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n", extrasaction="raise")
    if not path.exists():
        writer.writeheader()
    for row in rows:
        writer.writerow({c: _cell(row.get(c)) for c in columns})
    with _replacing(path, "w") as out:
        if path.exists():
            with open(path, encoding="utf-8", newline="") as existing:
                shutil.copyfileobj(existing, out, 1 << 20)
        out.write(buffer.getvalue())


def rewrite_rows(path: Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """Atomically replace a CSV file with ``rows`` (used to drop rows of unfinished runs)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _cell(row.get(c)) for c in columns})
    atomic_write(path, buffer.getvalue())


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # full precision, round-trips exactly
    return value


def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV written by this module, as dicts of strings ([] when the file is absent)."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


class ResultsFolder:
    """One ``results/<name>/`` folder: where a spec's runs land."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def runs_path(self) -> Path:
        return self.root / RUNS_FILE

    @property
    def metrics_path(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    def run_rows(self) -> dict[str, dict[str, str]]:
        """The latest row of each run_id in runs.csv."""
        return {row["run_id"]: row for row in read_rows(self.runs_path)}

    def done_ids(self) -> set[str]:
        return {rid for rid, row in self.run_rows().items() if row.get("status") == "done"}

    def record(self, run_row: dict[str, Any], metric_rows: list[dict[str, Any]]) -> None:
        """Write one finished run: its metric rows first, then its row in runs.csv (the commit)."""
        if metric_rows:
            atomic_append_rows(self.metrics_path, METRIC_COLUMNS, metric_rows)
        previous = read_rows(self.runs_path)
        kept = [row for row in previous if row["run_id"] != run_row["run_id"]]
        rewrite_rows(self.runs_path, RUN_COLUMNS, [*kept, run_row])

    def purge(self, run_ids: set[str]) -> int:
        """Drop the metric rows of ``run_ids`` and of every run not ``done``; returns rows dropped."""
        if not self.metrics_path.exists():
            return 0
        done = self.done_ids() - set(run_ids)
        rows = read_rows(self.metrics_path)
        kept = [row for row in rows if row["run_id"] in done]
        if len(kept) != len(rows):
            rewrite_rows(self.metrics_path, METRIC_COLUMNS, kept)
        return len(rows) - len(kept)


def is_results_folder(path: Path) -> bool:
    return (Path(path) / RUNS_FILE).is_file()


def load_runs(dirs: Sequence[str | Path]):
    """runs.csv of one or many result folders as one DataFrame, with a ``source`` column."""
    import pandas as pd

    frames = []
    for d in dirs:
        d = Path(d)
        _check_folder(d)
        df = _read_table(d / RUNS_FILE, RUN_COLUMNS, {"run_id": str, "error": str, "variant": str})
        df.insert(0, "source", d.name)
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=("source", *RUN_COLUMNS))


def load_metrics(dirs: Sequence[str | Path], only_done: bool = True):
    """metrics.csv of one or many result folders as one tidy DataFrame with a ``source`` column.

    Only rows of runs recorded ``done`` are returned unless ``only_done`` is False. ``step``
    is a nullable integer: missing for final values.
    """
    import pandas as pd

    frames = []
    for d in dirs:
        d = Path(d)
        _check_folder(d)
        runs = _read_table(d / RUNS_FILE, RUN_COLUMNS, {"run_id": str})
        if not (d / METRICS_FILE).exists():
            continue
        df = _read_table(d / METRICS_FILE, METRIC_COLUMNS, {"run_id": str, "variant": str, "split": str, "metric": str})
        if only_done:
            df = df[df["run_id"].isin(runs.loc[runs["status"] == "done", "run_id"])]
        df["step"] = df["step"].astype("Int64")
        df.insert(0, "source", d.name)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=("source", *METRIC_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def _read_table(path: Path, columns: Sequence[str], dtype: dict):
    """One of the two tables as a DataFrame; a torn, foreign or unreadable file is a clear error."""
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=dtype)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise InfobenchError(f"{path}: not a readable infobench table ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InfobenchError(f"{path}: missing columns {missing}; written by another version of infobench?")
    if path.name == METRICS_FILE and not pd.api.types.is_numeric_dtype(df["value"]):
        raise InfobenchError(f"{path}: the value column holds non-numbers; the file was edited or damaged")
    return df


def _check_folder(d: Path) -> None:
    if not d.exists():
        raise InfobenchError(f"{d}: no such results folder")
    if not is_results_folder(d):
        raise InfobenchError(f"{d}: not an infobench results folder (no {RUNS_FILE})")


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
