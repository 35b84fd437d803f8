"""The tidy results folder: runs.csv, metrics/, metrics.csv, spec.yaml, specs/, manifest.json, logs/, plots/.

Every write goes to a temporary file in the same folder, is fsynced, then renamed over the
target, so a killed process leaves either the old or the new file, never a torn one. The
driver process is the only writer.

Each run's metric rows are one Parquet file, ``metrics/<run_id>.parquet`` (typed, compressed),
written once; recording a run never reads or rewrites another run's rows, so a sweep's write
cost grows with its runs, not with their square. A run's file is written before its ``done``
row in runs.csv (the commit), so a run counts as finished only once both are on disk; files of
runs that are not ``done`` are ignored by readers and removed by the next ``infobench run``. A
rerun's file replaces the old one in one rename, so an interrupted ``--force`` loses nothing.
runs.csv is the index: readers open the files of its ``done`` runs only, and a ``done`` run
whose file is missing is an error, never a run with fewer rows.

metrics.csv is an export of the same rows for those who want CSV (same columns, runs in
runs.csv order). It is written in one rename at the end of every sweep and by
:func:`export_metrics`; a sweep deletes it before it records its first run, so a metrics.csv
present in a folder always holds exactly the rows of metrics/. Readers never read it when
metrics/ exists; folders of results format 2 (metrics.csv only, no metrics/) are read from it.

A results folder is infobench's alone: its manifest.json carries a marker, a folder holding
anything else is refused, and nothing is read or written through a symbolic link inside it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from infobench.errors import InfobenchError

RUN_COLUMNS = (
    "run_id", "task", "dataset", "model", "method", "variant", "seed", "setting",
    "params", "config", "code", "threads", "status", "error", "warnings", "seconds",
)
METRIC_COLUMNS = (
    "run_id", "task", "dataset", "model", "method", "variant", "seed",
    "split", "step", "metric", "value",
)
TEXT_METRIC_COLUMNS = ("run_id", "task", "dataset", "model", "method", "variant", "split", "metric")
STATUSES = ("done", "failed", "diverged")
RUNS_FILE = "runs.csv"
METRICS_DIR = "metrics"  # one <run_id>.parquet per run
METRICS_SUFFIX = ".parquet"
METRICS_FILE = "metrics.csv"  # the CSV export of metrics/ (see the module docstring)
MANIFEST_FILE = "manifest.json"
MARKER = "infobench-results"  # manifest.json["created_by"]: the folder is infobench's to write
# manifest.json["format"]: 2 = runs.csv holds each run's setting, config and code;
# 3 = metric rows in metrics/<run_id>.parquet, metrics.csv an export of them
FORMAT = 3
LOCK_FILE = ".lock"
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")  # a run id names metrics/<run_id>.parquet: no path in it
TEMP_SUFFIX = ".tmp"  # temp files are ".<target name>.<random>.tmp" beside their target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp makes files 0600; results and cache files follow the umask like any other file, so a
# cache or results folder shared by a group stays readable by it
FILE_MODE = 0o666 & ~_umask()


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
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


def _csv_text(columns: Sequence[str], rows: Iterable[dict[str, Any]], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n", extrasaction="raise")
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow({c: _cell(row.get(c)) for c in columns})
    return buffer.getvalue()


def replace_run_rows(path: Path, columns: Sequence[str], run_ids: set[str], rows: Iterable[dict[str, Any]]) -> int:
    """Atomically drop the rows of ``run_ids`` from a table and append ``rows`` (no ids: a plain
    append): one rename, so a reader sees the old rows or the new ones, never neither. Returns
    the number of rows dropped.

    Records are copied as text, never parsed: ``run_id`` is the first column and never quoted
    (hex), so a record's run is the text before its first comma. A quoted cell may hold a line
    break; a record goes on until the quotes seen since its start are even (the csv module
    doubles a quote inside a cell, so the parity holds).
    """
    path = Path(path)
    dropped = 0
    exists = path.exists()
    if exists:
        check_complete(path)
    with _replacing(path, "w") as out:
        if exists:
            with open(path, encoding="utf-8", newline="") as existing:
                if not run_ids:
                    shutil.copyfileobj(existing, out, 1 << 20)
                else:
                    out.write(existing.readline())  # the header
                    dropping, open_quotes = False, False
                    for line in existing:
                        if not open_quotes:  # a record starts here
                            dropping = line.split(",", 1)[0] in run_ids
                            dropped += dropping
                        if not dropping:
                            out.write(line)
                        open_quotes ^= line.count('"') % 2 == 1
        out.write(_csv_text(columns, rows, header=not exists))
    return dropped


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # full precision, round-trips exactly
    return value


def check_complete(path: Path, remedy: str = "restore it or delete the last line, then run again") -> None:
    """Refuse a table whose last row is cut short: infobench ends every row with a newline and
    writes by rename, so a missing final newline means the file was torn or edited by hand
    (a value cut from ``0.846`` to ``0.`` would otherwise be read as a number)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return
        f.seek(-1, os.SEEK_END)
        if f.read(1) != b"\n":
            raise InfobenchError(f"{path}: its last row is cut short (no final newline): the file was torn or "
                                 f"edited; {remedy}")


def read_rows(path: Path, columns: Sequence[str] | None = None) -> list[dict[str, str]]:
    """Rows of a CSV written by this module, as dicts of strings ([] when the file is absent).

    A torn, binary or foreign file (one lacking ``columns``) is an ``InfobenchError`` naming it.
    """
    path = Path(path)
    if not path.exists():
        return []
    check_complete(path)
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InfobenchError(f"{path}: not a readable infobench table ({type(exc).__name__}: {exc})") from None
    if columns is not None:
        missing = [c for c in ("run_id", *columns) if c not in header]
        if missing:
            raise InfobenchError(f"{path}: missing columns {sorted(set(missing))}; not written by this version of "
                                 "infobench (move the folder away, or run into another --out)")
    return rows


# ------------------------------------------------------------------ per-run metric files


def _metric_schema():
    """The Arrow schema of a run's metric file: METRIC_COLUMNS, text as strings, ``seed`` and
    ``step`` (null for final values) as int64, ``value`` as float64."""
    import pyarrow as pa

    numeric = {"seed": pa.int64(), "step": pa.int64(), "value": pa.float64()}
    return pa.schema([(c, numeric.get(c, pa.string())) for c in METRIC_COLUMNS])


def metric_table(run_id: str, rows: Sequence[dict[str, Any]]):
    """A run's metric rows as an Arrow table of :func:`_metric_schema` (a missing text cell is
    "", as metrics.csv has always read it); rows of another run or with unknown columns, and
    values of the wrong kind, are an ``InfobenchError``."""
    import pyarrow as pa

    unknown = sorted({key for row in rows for key in row} - set(METRIC_COLUMNS))
    others = sorted({str(row.get("run_id")) for row in rows} - {run_id})
    if unknown or others:
        problem = f"unknown columns {unknown}" if unknown else f"rows of other runs {others[:3]}"
        raise InfobenchError(f"metric rows of run {run_id}: {problem}")
    schema = _metric_schema()
    columns = []
    for field in schema:
        cells = [row.get(field.name) for row in rows]
        if field.name in TEXT_METRIC_COLUMNS:
            cells = ["" if cell is None else str(cell) for cell in cells]
        try:
            columns.append(pa.array(cells, field.type))
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            raise InfobenchError(f"metric rows of run {run_id}: column {field.name} holds values that are "
                                 f"not {field.type} ({type(exc).__name__}: {exc})") from None
    return pa.Table.from_arrays(columns, schema=schema)


def read_metric_file(path: Path, run_id: str):
    """One run's metric file as an Arrow table of :func:`_metric_schema`. A torn or foreign file
    (not Parquet, other columns or types, rows of another run) is an ``InfobenchError`` naming it."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path).read()
    except (pa.ArrowException, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else ""
        raise InfobenchError(f"{path}: not a readable Parquet file of metric rows ({type(exc).__name__}: {reason}); "
                             f"it was torn or replaced: {_REDO}") from None
    schema = _metric_schema()
    missing = [c for c in METRIC_COLUMNS if c not in table.column_names]
    if missing:
        raise InfobenchError(f"{path}: missing columns {missing}; not a metric file infobench wrote: {_REDO}")
    table = table.select(list(METRIC_COLUMNS))
    wrong = [f"{f.name} is {table.schema.field(f.name).type}, not {f.type}"
             for f in schema if not table.schema.field(f.name).type.equals(f.type)]
    if wrong:
        raise InfobenchError(f"{path}: {'; '.join(wrong)}; not a metric file infobench wrote: {_REDO}")
    if table.num_rows and pc.all(pc.equal(table["run_id"], run_id), skip_nulls=False).as_py() is not True:
        raise InfobenchError(f"{path}: holds rows of runs other than {run_id}; not the file infobench wrote "
                             f"for that run: {_REDO}")
    return table.replace_schema_metadata(None)  # as infobench writes it, whoever wrote the file


_REDO = "restore it, or run the folder's spec again with --force"


def write_csv_rows(table, out: IO[bytes]) -> None:
    """Append an Arrow table of metric rows to a CSV file, without a header. Cells are quoted
    only when a value needs it, so a file of plain values reads as the csv module writes it.

    The rows go through a buffer: Arrow writes the batches before the one holding a comma or a
    quote and only then refuses it unquoted, and those must not be written twice."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    text = pa.BufferOutputStream()
    try:
        pcsv.write_csv(table, text, pcsv.WriteOptions(include_header=False, quoting_style="none"))
    except pa.ArrowInvalid:  # a value holds a comma, quote or line break: quote the text cells
        text = pa.BufferOutputStream()
        pcsv.write_csv(table, text, pcsv.WriteOptions(include_header=False, quoting_style="needed"))
    out.write(text.getvalue())


class ResultsFolder:
    """One ``results/<name>/`` folder: where a spec's runs land."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def runs_path(self) -> Path:
        return self.root / RUNS_FILE

    @property
    def metrics_path(self) -> Path:
        """Where the metric rows are: metrics/, one Parquet file per run (results format 3)."""
        return self.root / METRICS_DIR

    @property
    def export_path(self) -> Path:
        """metrics.csv: the CSV export of metrics/ (in a format-2 folder, the metric rows themselves)."""
        return self.root / METRICS_FILE

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_FILE

    def metric_file(self, run_id: str) -> Path:
        """metrics/<run_id>.parquet; a run_id that could not name a file there is refused."""
        if not _RUN_ID.fullmatch(str(run_id)):
            raise InfobenchError(f"run id {run_id!r} cannot name a metric file: expected letters, digits, _ or -")
        return self.metrics_path / f"{run_id}{METRICS_SUFFIX}"

    def has_metrics(self) -> bool:
        """Whether the folder holds metric rows to read: metrics/ (format 3; a link there, to be
        refused) or metrics.csv (format 2)."""
        return self.metrics_path.is_symlink() or self.metrics_path.is_dir() or self.export_path.is_file()

    def run_rows(self) -> dict[str, dict[str, str]]:
        """The latest row of each run_id in runs.csv."""
        return {row["run_id"]: row for row in read_rows(self.runs_path, RUN_COLUMNS)}

    def done_ids(self) -> set[str]:
        return {rid for rid, row in self.run_rows().items() if row.get("status") == "done"}

    def record(self, run_row: dict[str, Any], metric_rows: list[dict[str, Any]]) -> None:
        """Write one run. A ``done`` run: its metric file first (replacing that of an earlier
        attempt in one rename), then its row in runs.csv (the commit). Any other status: its
        row first, then its metric file, now an orphan no reader opens, is removed (``metric_rows``
        of a run that is not done are never read, so they are not written).

        The CSV export is deleted before anything changes (see the module docstring)."""
        run_id = run_row["run_id"]
        if run_row.get("status") == "done":
            self.write_run_metrics(run_id, metric_rows)
            replace_run_rows(self.runs_path, RUN_COLUMNS, {run_id}, [run_row])
        else:
            path = self.metric_file(run_id)
            self._start_changing()
            replace_run_rows(self.runs_path, RUN_COLUMNS, {run_id}, [run_row])
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def write_run_metrics(self, run_id: str, metric_rows: Sequence[dict[str, Any]]) -> Path:
        """Replace metrics/<run_id>.parquet with ``metric_rows`` in one rename (the first of
        ``record``'s two writes; the run counts once its runs.csv row follows). No other run's
        file is read or written."""
        import pyarrow.parquet as pq

        path = self.metric_file(run_id)
        table = metric_table(run_id, metric_rows)
        self._start_changing()
        with _replacing(path, "wb") as out:
            pq.write_table(table, out, compression="zstd")
        return path

    def _start_changing(self) -> None:
        """Before the first change of a sweep: make sure metrics/ is a real folder (never a link)
        and drop the CSV export, which is about to disagree with it. A format-2 folder, whose
        metrics.csv holds the rows themselves, is refused."""
        if self.metrics_path.is_symlink():
            raise InfobenchError(f"{self.metrics_path} is a symbolic link; infobench never writes through a link: "
                                 "remove it, or run into another --out")
        if not self.metrics_path.is_dir():
            if self.export_path.exists():
                raise InfobenchError(f"{self.root}: its metrics.csv holds the metric rows (results format 2); this "
                                     f"infobench writes results format {FORMAT} (metrics/) and does not add to it: "
                                     "run into another --out")
            self.metrics_path.mkdir(parents=True)
        with contextlib.suppress(FileNotFoundError):
            self.export_path.unlink()

    def purge(self) -> int:
        """Remove the metric files of every run not ``done`` (left by an attempt killed between
        its two writes) and the temp files of writers killed mid-write (the caller holds the
        folder lock, so no writer is alive); returns the number of metric files removed. Files of
        finished runs are only ever replaced by ``record``, once the new ones are written."""
        removed = 0
        done = self.done_ids() if self.metrics_path.is_dir() else set()
        for folder in (self.root, self.metrics_path):
            if not folder.is_dir() or folder.is_symlink():
                continue
            with os.scandir(folder) as entries:
                for entry in entries:
                    name = entry.name
                    if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                        os.unlink(entry.path)
                    elif folder == self.metrics_path and name.endswith(METRICS_SUFFIX) \
                            and name[: -len(METRICS_SUFFIX)] not in done:
                        os.unlink(entry.path)
                        removed += 1
        return removed

    def metric_files(self) -> dict[str, Path]:
        """run_id -> its metric file in metrics/ ({} without metrics/). A link there is refused:
        it could show rows infobench never wrote."""
        if self.metrics_path.is_symlink():
            raise InfobenchError(f"{self.metrics_path} is a symbolic link; infobench never reads through a link: "
                                 "remove it")
        if not self.metrics_path.is_dir():
            return {}
        files = {}
        with os.scandir(self.metrics_path) as entries:
            for entry in entries:
                if entry.is_symlink():
                    raise InfobenchError(f"{entry.path} is a symbolic link; infobench never reads through a link: "
                                         "remove it")
                if entry.name.endswith(METRICS_SUFFIX) and not entry.name.startswith("."):
                    files[entry.name[: -len(METRICS_SUFFIX)]] = Path(entry.path)
        return files

    def metric_tables(self, run_ids: Iterable[str], done: set[str]) -> Iterator:
        """The metric tables of ``run_ids`` in their order, each file read when asked for (so an
        export holds one run in memory at a time). A ``done`` run without a file is an error:
        runs.csv says its rows were written."""
        files = self.metric_files()
        for run_id in run_ids:
            if run_id in files:
                yield read_metric_file(files[run_id], run_id)
            elif run_id in done:
                raise InfobenchError(f"{self.metric_file(run_id)}: missing, though runs.csv records run {run_id} "
                                     f"done: the folder was damaged; {_REDO}")

    def export_csv(self) -> Path:
        """Write metrics.csv from metrics/: the rows of the ``done`` runs, runs in runs.csv order,
        in one rename. The runner calls it at the end of every sweep; call it only under the
        folder's lock (``runner.folder_lock``), as a sweep deletes the export when it starts
        changing the folder."""
        if self.export_path.exists() and not self.metrics_path.is_dir():
            return self.export_path  # a format-2 folder: metrics.csv is the data, nothing to export
        done = [row["run_id"] for row in read_rows(self.runs_path, RUN_COLUMNS) if row["status"] == "done"]
        self.metrics_path.mkdir(exist_ok=True)  # a folder with metrics/ is read from it, never from the export
        with _replacing(self.export_path, "wb") as out:
            out.write((",".join(METRIC_COLUMNS) + "\n").encode())
            for table in self.metric_tables(dict.fromkeys(done), set(done)):
                write_csv_rows(table, out)
        return self.export_path

    # ------------------------------------------------------------------ ownership and links

    def links(self) -> list[Path]:
        """Symbolic links at or inside the folder (never followed), which a writer must refuse."""
        if self.root.is_symlink():
            return [self.root]
        if not self.root.exists():
            return []
        found = []
        for here, dirs, files in os.walk(self.root, followlinks=False):
            for name in [*dirs, *files]:
                if os.path.islink(os.path.join(here, name)):
                    found.append(Path(here) / name)
        return found

    def check_owned(self) -> None:
        """Refuse a folder infobench did not make: it must be absent, empty, or carry the marker
        in manifest.json. Links inside it are refused too (they could lead writes elsewhere)."""
        links = self.links()
        if links:
            shown = ", ".join(str(p) for p in links[:5]) + (" ..." if len(links) > 5 else "")
            raise InfobenchError(f"{self.root}: holds symbolic links ({shown}); infobench never writes through a link: "
                                 "remove them, or run into another --out")
        if not self.root.exists():
            return
        if not self.root.is_dir():
            raise InfobenchError(f"{self.root}: exists and is not a folder; choose another --out or spec name")
        entries = sorted(p.name for p in self.root.iterdir() if p.name != LOCK_FILE)
        if not entries:
            return
        manifest = read_manifest(self.root) if self.manifest_path.is_file() else {}
        if manifest.get("created_by") == MARKER:
            if manifest.get("format") != FORMAT:
                readable = " (compare, show and load_metrics still read it)" if manifest.get("format") == 2 else ""
                raise InfobenchError(f"{self.root}: written by another version of infobench (results format "
                                     f"{manifest.get('format')}, this one writes {FORMAT}){readable}; move it away or "
                                     "run into another --out")
            return
        if "infobench" in manifest:
            raise InfobenchError(f"{self.root}: written by an older infobench (before results format {FORMAT}), whose "
                                 "runs lack the configuration that tells settings apart; move it away or run into "
                                 "another --out")
        shown = ", ".join(entries[:8]) + (" ..." if len(entries) > 8 else "")
        raise InfobenchError(f"{self.root}: not a folder infobench made (its manifest.json has no infobench marker) "
                             f"and it holds {shown}; infobench will not overwrite it: choose another --out or spec name")


def is_results_folder(path: Path) -> bool:
    return (Path(path) / RUNS_FILE).is_file()


def read_manifest(folder: Path) -> dict[str, Any]:
    """manifest.json of a results folder as a dict; an unreadable one is an ``InfobenchError``."""
    path = Path(folder) / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InfobenchError(f"{path}: not a readable manifest ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise InfobenchError(f"{path}: not a readable manifest (expected a JSON object, got {type(data).__name__})")
    return data


def _as_dirs(dirs: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """One folder or many: a plain string is one folder, never a sequence of characters."""
    if isinstance(dirs, (str, os.PathLike)):
        return [Path(dirs)]
    return [Path(d) for d in dirs]


def flat_config(config: str | dict | None) -> dict[str, Any]:
    """A run's resolved configuration as dotted key paths: ``train.epochs``, ``dataset.severity``,
    ``method.lr`` (a method's parameters sit under ``method.``). Lists stay lists; the seed and
    the names already in their own columns (task, method name) are left out."""
    if isinstance(config, str):
        try:
            config = json.loads(config) if config else {}
        except ValueError:
            config = {}
    if not isinstance(config, dict):
        return {}
    out: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))
        else:
            out[prefix] = node

    for key, value in config.items():
        if key in ("seed", "task"):
            continue
        if key == "method" and isinstance(value, dict):
            walk(value.get("params", {}), "method")
        else:
            walk(value, key)
    return out


def _shown(key: str, value: Any) -> str:
    if key == "data" and isinstance(value, list):  # content digests: a prefix tells them apart
        return "+".join(str(v)[:8] for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def distinct_variants(runs) -> list[str]:
    """Variant labels that never pool different settings: runs sharing a label but not a
    ``setting`` (their configurations differ in more than the seed, say two ``--set
    train.epochs`` values written into one folder) get the differing key paths appended,
    ``temperature [train.epochs=10]``. Labels that are unambiguous stay as they are."""
    labels = list(runs["variant"].astype(str))
    settings = list(runs["setting"].astype(str))
    configs = [flat_config(c) for c in runs["config"]]
    by_label: dict[str, dict[str, dict]] = {}
    for label, setting, config in zip(labels, settings, configs):
        by_label.setdefault(label, {}).setdefault(setting, config)
    suffix: dict[tuple[str, str], str] = {}
    for label, members in by_label.items():
        if len(members) < 2:
            continue
        keys = sorted({k for c in members.values() for k in c})
        differing = [k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in members.values()}) > 1]
        for setting, config in members.items():
            parts = [f"{k}={_shown(k, config.get(k))}" for k in differing] or [f"setting={setting}"]
            suffix[(label, setting)] = f" [{','.join(parts)}]"
    return [_with_setting(label, suffix.get((label, setting), "")) for label, setting in zip(labels, settings)]


def _with_setting(label: str, suffix: str) -> str:
    """``label`` with the setting keys of ``suffix`` (`` [k=v]``) added to its own bracket, if it
    has one (``tent [train.lr=0.1]`` -> ``tent [train.lr=0.1,train.epochs=3]``): one bracket per
    label, as the spec's own setting labels are written and as plots parse them."""
    if not suffix:
        return label
    if label.endswith("]") and " [" in label:
        return f"{label[:-1]},{suffix[2:]}"
    return label + suffix


def load_runs(dirs: str | os.PathLike | Sequence[str | os.PathLike]):
    """runs.csv of one or many result folders as one DataFrame, with a ``source`` column.

    Each run's configuration is flattened into columns named by key path (``train.epochs``,
    ``method.lr``), and ``variant`` tells apart runs of different settings (see
    :func:`distinct_variants`), so grouping by it never pools two settings as seeds.
    """
    import pandas as pd

    frames = [folder_tables(d, metrics=False)[0] for d in _as_dirs(dirs)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=("source", *RUN_COLUMNS))


def load_metrics(dirs: str | os.PathLike | Sequence[str | os.PathLike], only_done: bool = True):
    """The metric rows of one or many result folders as one tidy DataFrame with a ``source`` column.

    Rows come from metrics/ (one Parquet file per run; metrics.csv in a format-2 folder). Only
    rows of runs recorded ``done`` are returned unless ``only_done`` is False. ``step`` is a
    nullable integer: missing for final values. ``variant`` and ``setting`` come from runs.csv,
    so runs of different settings carry different labels (see :func:`load_runs`).
    """
    import pandas as pd

    frames = [m for d in _as_dirs(dirs) if (m := folder_tables(d, only_done=only_done)[1]) is not None]
    if not frames:
        return pd.DataFrame(columns=("source", *METRIC_COLUMNS, "setting"))
    return pd.concat(frames, ignore_index=True)


def export_metrics(folder: str | os.PathLike) -> Path:
    """Write the metrics.csv export of a results folder from its metrics/ (see
    :meth:`ResultsFolder.export_csv`; hold the folder's lock, ``runner.folder_lock``, around it)."""
    d = Path(folder)
    _check_folder(d)
    results = ResultsFolder(d)
    if results.links():
        raise InfobenchError(f"{d}: holds symbolic links; infobench never writes through a link: remove them")
    return results.export_csv()


def folder_tables(folder: str | os.PathLike, metrics: bool = True, only_done: bool = True):
    """One folder's runs (as :func:`load_runs` gives them) and metrics (as :func:`load_metrics`;
    None without metrics or when ``metrics`` is False), each table read once."""
    import pandas as pd

    d = Path(folder)
    _check_folder(d)
    runs = _read_table(d / RUNS_FILE, RUN_COLUMNS, _RUN_DTYPES)
    runs["variant"] = distinct_variants(runs)
    flats = [flat_config(c) for c in runs["config"]]
    if any(flats):
        flat = pd.DataFrame(flats, index=runs.index)
        runs = pd.concat([runs, flat[[c for c in flat.columns if c not in runs.columns]]], axis=1)
    runs.insert(0, "source", d.name)
    results = ResultsFolder(d)
    if not metrics or not results.has_metrics():
        return runs, None
    done = list(dict.fromkeys(runs.loc[runs["status"] == "done", "run_id"]))
    if results.metrics_path.is_dir() or results.metrics_path.is_symlink():
        df = _read_metric_files(results, runs, done, only_done)
    else:  # results format 2: the rows are in metrics.csv
        df = _read_table(results.export_path, METRIC_COLUMNS, _METRIC_DTYPES)
        if only_done:
            df = df[df["run_id"].isin(done)].reset_index(drop=True)
    # variant and setting of each row from runs.csv (the last row of a run_id wins), looked up
    # once per run rather than once per row
    codes, run_ids = pd.factorize(df["run_id"])
    variant_of = dict(zip(runs["run_id"], runs["variant"]))
    setting_of = dict(zip(runs["run_id"], runs["setting"]))

    def per_row(values: list) -> pd.Series:
        return pd.Series(values, dtype="str").take(codes).reset_index(drop=True)

    df["variant"] = per_row([variant_of.get(r) for r in run_ids]).fillna(df["variant"])  # orphans keep theirs
    df["setting"] = per_row([setting_of.get(r, "") for r in run_ids])
    df["step"] = df["step"].astype("Int64")
    df.insert(0, "source", d.name)
    return runs, df


def _read_metric_files(results: ResultsFolder, runs, done: list[str], only_done: bool):
    """The rows of metrics/ as a DataFrame: the files of the ``done`` runs in runs.csv order (with
    ``only_done`` False, every file: the other runs of runs.csv, then orphans by name). A torn
    export beside them is refused too: it would be read by whoever wants CSV."""
    import pyarrow as pa

    if results.export_path.exists():
        check_complete(results.export_path, remedy="delete it: it is an export of metrics/, written again at the "
                                                    "end of the next sweep or by infobench.results.export_metrics")
    wanted = done
    if not only_done:
        listed = list(dict.fromkeys(runs["run_id"]))
        wanted = [*listed, *sorted(set(results.metric_files()) - set(listed))]
    tables = list(results.metric_tables(wanted, set(done)))
    table = pa.concat_tables(tables) if tables else _metric_schema().empty_table()
    return table.to_pandas()


_RUN_DTYPES = {"run_id": str, "task": str, "dataset": str, "model": str, "method": str, "error": str,
               "variant": str, "setting": str, "config": str, "code": str, "params": str, "warnings": str,
               "status": str}
_NUMERIC_COLUMNS = ("seed", "step", "value", "seconds", "threads")
_METRIC_DTYPES = {"run_id": str, "task": str, "dataset": str, "model": str, "method": str, "variant": str,
                  "split": str, "metric": str}


def _read_table(path: Path, columns: Sequence[str], dtype: dict):
    """One of the two tables as a DataFrame; a torn, foreign or unreadable file is a clear error.

    Text columns read empty cells as "" (no NaN to fill afterwards); the others as missing."""
    import pandas as pd

    check_complete(path)
    try:
        df = pd.read_csv(path, dtype=dtype, keep_default_na=False,
                         na_values={c: ["", "nan", "NaN"] for c in _NUMERIC_COLUMNS})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise InfobenchError(f"{path}: not a readable infobench table ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InfobenchError(f"{path}: missing columns {missing}; written by another version of infobench?")
    if path.name == METRICS_FILE and len(df) and not pd.api.types.is_numeric_dtype(df["value"]):
        raise InfobenchError(f"{path}: the value column holds non-numbers; the file was edited or damaged")
    return df


def _check_folder(d: Path) -> None:
    if not d.exists():
        raise InfobenchError(f"{d}: no such results folder")
    if not is_results_folder(d):
        raise InfobenchError(f"{d}: not an infobench results folder (no {RUNS_FILE})")


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
