"""The tidy results folder: runs.csv, metrics.csv, spec.yaml, specs/, manifest.json, logs/, plots/.

Every write goes to a temporary file in the same folder, is fsynced, then renamed over the
target, so a killed process leaves either the old or the new file, never a torn row. The
driver process is the only writer. Metrics of a run are written before its ``done`` row in
runs.csv, so a run counts as finished only once both are on disk; metric rows of runs that
are not ``done`` are ignored by readers and purged by the next ``infobench run``. A rerun's
new rows replace its old ones in one rename, so an interrupted ``--force`` loses nothing.

A results folder is infobench's alone: its manifest.json carries a marker, a folder holding
anything else is refused, and nothing is written through a symbolic link inside it.
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
    "run_id", "task", "dataset", "model", "method", "variant", "seed", "setting",
    "params", "config", "code", "threads", "status", "error", "warnings", "seconds",
)
METRIC_COLUMNS = (
    "run_id", "task", "dataset", "model", "method", "variant", "seed",
    "split", "step", "metric", "value",
)
STATUSES = ("done", "failed", "diverged")
RUNS_FILE = "runs.csv"
METRICS_FILE = "metrics.csv"
MANIFEST_FILE = "manifest.json"
MARKER = "infobench-results"  # manifest.json["created_by"]: the folder is infobench's to write
FORMAT = 2  # manifest.json["format"]: 2 = runs.csv holds each run's setting, config and code
LOCK_FILE = ".lock"


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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

    Rows are copied line by line; ``run_id`` is the first column and never quoted (hex), so a
    line's run is the text before its first comma.
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
                    for line in existing:
                        if line.split(",", 1)[0] in run_ids:
                            dropped += 1
                        else:
                            out.write(line)
        out.write(_csv_text(columns, rows, header=not exists))
    return dropped


def rewrite_rows(path: Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """Atomically replace a CSV file with ``rows`` (used to drop rows of unfinished runs)."""
    atomic_write(path, _csv_text(columns, rows, header=True))


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # full precision, round-trips exactly
    return value


def check_complete(path: Path) -> None:
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
                                 "edited; restore it or delete the last line, then run again")


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

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_FILE

    def run_rows(self) -> dict[str, dict[str, str]]:
        """The latest row of each run_id in runs.csv."""
        return {row["run_id"]: row for row in read_rows(self.runs_path, RUN_COLUMNS)}

    def done_ids(self) -> set[str]:
        return {rid for rid, row in self.run_rows().items() if row.get("status") == "done"}

    def record(self, run_row: dict[str, Any], metric_rows: list[dict[str, Any]]) -> None:
        """Write one finished run: its metric rows first (replacing those of an earlier attempt of
        the same run in the same rename), then its row in runs.csv (the commit)."""
        run_id = run_row["run_id"]
        if metric_rows or self.metrics_path.exists():
            replace_run_rows(self.metrics_path, METRIC_COLUMNS, {run_id}, metric_rows)
        previous = read_rows(self.runs_path, RUN_COLUMNS)
        kept = [row for row in previous if row["run_id"] != run_id]
        rewrite_rows(self.runs_path, RUN_COLUMNS, [*kept, run_row])

    def purge(self) -> int:
        """Drop the metric rows of every run not ``done`` (left by an attempt killed between its
        two writes); returns the rows dropped. Rows of finished runs are only ever replaced by
        ``record``, once the new ones are written."""
        if not self.metrics_path.exists():
            return 0
        done = self.done_ids()
        rows = read_rows(self.metrics_path, METRIC_COLUMNS)
        kept = [row for row in rows if row["run_id"] in done]
        if len(kept) != len(rows):
            rewrite_rows(self.metrics_path, METRIC_COLUMNS, kept)
        return len(rows) - len(kept)

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
                raise InfobenchError(f"{self.root}: written by another version of infobench (results format "
                                     f"{manifest.get('format')}, this one writes {FORMAT}); move it away or run into "
                                     "another --out")
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
    """metrics.csv of one or many result folders as one tidy DataFrame with a ``source`` column.

    Only rows of runs recorded ``done`` are returned unless ``only_done`` is False. ``step``
    is a nullable integer: missing for final values. ``variant`` and ``setting`` come from
    runs.csv, so runs of different settings carry different labels (see :func:`load_runs`).
    """
    import pandas as pd

    frames = [m for d in _as_dirs(dirs) if (m := folder_tables(d, only_done=only_done)[1]) is not None]
    if not frames:
        return pd.DataFrame(columns=("source", *METRIC_COLUMNS, "setting"))
    return pd.concat(frames, ignore_index=True)


def folder_tables(folder: str | os.PathLike, metrics: bool = True, only_done: bool = True):
    """One folder's runs (as :func:`load_runs` gives them) and metrics (as :func:`load_metrics`;
    None without metrics.csv or when ``metrics`` is False), each table read once."""
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
    if not metrics or not (d / METRICS_FILE).exists():
        return runs, None
    df = _read_table(d / METRICS_FILE, METRIC_COLUMNS, _METRIC_DTYPES)
    if only_done:
        df = df[df["run_id"].isin(runs.loc[runs["status"] == "done", "run_id"])]
    variant_of = dict(zip(runs["run_id"], runs["variant"]))  # the last row of a run_id wins
    setting_of = dict(zip(runs["run_id"], runs["setting"]))
    df["variant"] = [variant_of.get(r, v) for r, v in zip(df["run_id"], df["variant"])]
    df["setting"] = [setting_of.get(r, "") for r in df["run_id"]]
    df["step"] = df["step"].astype("Int64")
    df.insert(0, "source", d.name)
    return runs, df


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
