"""Tracking sinks: ``infobench run --log-to mlflow|tensorboard`` mirrors a results folder.

The results folder stays the record; a sink is a copy for the tools researchers already watch.
Each run that finishes is sent as it is recorded (its configuration as parameters, every metric
row with its step, its status and code digest), and at the end of the sweep the sink is brought
level with the folder: runs finished in earlier sweeps, or missed because a write failed, are
sent then, and the sweep's figures after them. Sending is idempotent: a run is known to a sink
by its *attempt* (run id, status, code digest and a digest of its metric file), so running the
same spec again sends nothing twice, and a rerun that changed a result replaces the old copy,
as it replaced the row in the folder.

Where the copies go, unless the user says otherwise: inside the results folder
(``<folder>/mlflow/`` and ``<folder>/tensorboard/``), so a sweep touches nothing outside it.
``MLFLOW_TRACKING_URI``, when set, names the user's own MLflow store instead.

A sink that fails while the sweep runs does not stop it: the failure is reported with the runs
it missed, the exit code is 1, and the next ``run --log-to`` sends them.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from infobench.errors import InfobenchError

# sink name -> (module, class, the package it needs, the pip extra that installs it)
SINKS = {
    "mlflow": ("infobench.tracking.mlflow_sink", "MlflowSink", "mlflow", "mlflow"),
    "tensorboard": ("infobench.tracking.tensorboard_sink", "TensorBoardSink", "tensorboard", "tensorboard"),
}


def check_sinks(names: Sequence[str]) -> tuple[str, ...]:
    """The sink names, checked before anything runs: known, and their library importable."""
    checked = []
    for name in dict.fromkeys(names):
        if name not in SINKS:
            raise InfobenchError(f"--log-to {name!r}: unknown sink; choose from {', '.join(SINKS)}")
        package, extra = SINKS[name][2:]
        try:
            importlib.import_module(package)
        except ImportError as exc:
            raise InfobenchError(f"--log-to {name} needs the {package} package ({exc}): "
                                 f"pip install 'infobench[{extra}]'") from None
        checked.append(name)
    return tuple(checked)


# ----------------------------------------------------------------------- what a sink receives


def attempt_key(row: dict[str, Any], metric_file: Path | None) -> str:
    """What tells one result of a run from another: a rerun with the same outcome has the same key."""
    digest = "-"
    if metric_file is not None and metric_file.is_file():
        digest = hashlib.sha256(metric_file.read_bytes()).hexdigest()[:16]
    return f"{row['run_id']}:{row['status']}:{row.get('code', '')}:{digest}"


def safe_name(text: str) -> str:
    """``text`` in the characters MLflow accepts in a metric or parameter name (``[\\w./ :-]``):
    any other character becomes ``_`` (``gaussian_noise@5`` -> ``gaussian_noise_5``)."""
    return re.sub(r"[^\w./ :-]", "_", text)


def metric_name(split: str, metric: str) -> str:
    """``split/metric`` as both libraries will take it (:func:`safe_name`)."""
    return safe_name(f"{split}/{metric}")


def step_of(step: Any) -> int:
    """A metric row's step as the integer both libraries want; a summary row (no step) is step 0."""
    if step is None or (isinstance(step, float) and math.isnan(step)):
        return 0
    return int(round(float(step)))


def metric_points(table) -> list[tuple[str, int, float]]:
    """(name, step, value) of each metric row of a run's metric file (an Arrow table)."""
    columns = table.select(["split", "metric", "step", "value"]).to_pydict()
    return [(metric_name(split, metric), step_of(step), float(value))
            for split, metric, step, value in zip(columns["split"], columns["metric"], columns["step"],
                                                  columns["value"])]


def run_title(row: dict[str, Any]) -> str:
    return f"{row['variant']} seed {row['seed']}"


class Sink:
    """One place runs are copied to. Subclasses implement the four methods below."""

    name = ""

    def __init__(self, folder, spec_name: str):
        self.folder = folder  # a results.ResultsFolder, locked by the sweep while the sink is open
        self.spec_name = spec_name
        self.where = ""  # how to open the copy, shown at the end of the sweep

    def sent(self) -> set[str]:
        """The attempt keys this sink already holds (for this folder)."""
        raise NotImplementedError

    def send_run(self, row: dict[str, Any], key: str, config: dict[str, Any], points: list[tuple[str, int, float]]) -> None:
        """Copy one run: ``config`` flattened (``model.width``: 32), ``points`` its metric rows."""
        raise NotImplementedError

    def send_figures(self, figures: Sequence[Path], files: Sequence[Path]) -> None:
        """The sweep's figures, and its spec and manifest."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class Tracking:
    """The sinks of one sweep, fed by the runner: ``run_recorded`` after each run is in the folder,
    ``finish`` at the end. Failures are collected in ``problems`` rather than raised."""

    def __init__(self, names: Sequence[str], folder, spec_name: str):
        self.folder = folder
        self.problems: list[str] = []
        self.sinks: list[Sink] = []
        self._sent: dict[str, set[str]] = {}
        self._handled: set[str] = set()  # run ids this sweep sent or tried: finish() leaves them
        quiet_libraries()
        for name in names:
            module_name, class_name = SINKS[name][:2]
            cls = getattr(importlib.import_module(module_name), class_name)
            try:
                sink = cls(folder, spec_name)
                self._sent[name] = sink.sent()
            except Exception as exc:  # noqa: BLE001 -- any library error: the results still count
                self.problems.append(f"{name}: cannot open ({type(exc).__name__}: {exc})")
                continue
            self.sinks.append(sink)

    def run_recorded(self, row: dict[str, Any]) -> None:
        """Send a run just recorded in the folder (its metric file is read back from there)."""
        from infobench.results import flat_config, read_metric_file

        if not self.sinks:
            return
        self._handled.add(row["run_id"])
        metric_file = self.folder.metric_file(row["run_id"]) if row["status"] == "done" else None
        key = attempt_key(row, metric_file)
        waiting = [sink for sink in self.sinks if key not in self._sent[sink.name]]
        if not waiting:
            return
        try:
            points = metric_points(read_metric_file(metric_file, row["run_id"])) if metric_file else []
            config = {"method": row["method"], "seed": row["seed"],
                      **{safe_name(k): v for k, v in flat_config(row.get("config") or "{}").items()}}
        except InfobenchError as exc:
            self.problems.append(f"{run_title(row)}: not sent ({exc})")
            return
        for sink in waiting:
            try:
                sink.send_run(row, key, config, points)
                self._sent[sink.name].add(key)
            except Exception as exc:  # noqa: BLE001
                self.problems.append(f"{sink.name}: {run_title(row)} not sent ({type(exc).__name__}: {exc})")

    def finish(self, figures: Iterable[Path], files: Iterable[Path]) -> None:
        """Bring every sink level with the folder (runs of earlier sweeps, runs a failed write
        missed), then send the figures; close the sinks. A run this sweep already sent (or failed
        to send: its problem is reported, the next sweep retries) is not hashed or sent again."""
        for run_id, row in self.folder.run_rows().items():
            if run_id not in self._handled:
                self.run_recorded(row)
        figures, files = list(figures), [f for f in files if f.is_file()]
        for sink in self.sinks:
            try:
                sink.send_figures(figures, files)
            except Exception as exc:  # noqa: BLE001
                self.problems.append(f"{sink.name}: figures not sent ({type(exc).__name__}: {exc})")
            finally:
                sink.close()


def quiet_libraries() -> None:
    """MLflow and alembic announce every database migration at INFO; a sweep's screen is for runs."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
