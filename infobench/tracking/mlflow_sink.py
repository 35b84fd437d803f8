"""``--log-to mlflow``: each run of the folder as an MLflow run, under one experiment per spec.

Store: ``MLFLOW_TRACKING_URI`` when set; otherwise an SQLite store inside the results folder
(``<folder>/mlflow/mlflow.db``, artifacts in ``<folder>/mlflow/artifacts``), which
``mlflow ui --backend-store-uri sqlite:///<folder>/mlflow/mlflow.db`` opens. (MLflow 3 keeps
its plain-file store in maintenance mode and refuses it by default, so the database store it
recommends is the one used.)

Layout: the experiment is named after the spec. Each sweep is a run ``sweep <time>`` holding
the figures, spec and manifest as artifacts; each infobench run is a child of the sweep that
sent it, named ``<variant> seed <seed>``, with the flattened configuration as parameters, every
metric row as ``split/metric`` at its step, and tags for its identity. A run sent again with a
new result replaces (soft-deletes) the copy of its earlier result, as the folder does; a copy
an interrupted sweep left unfinished is deleted when the next sweep opens the store.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infobench.tracking import Sink, run_title

BATCH = 1000  # MLflow's limit on metrics in one log_batch call (params: 100)
PARAM_VALUE_LIMIT = 6000  # characters MLflow keeps of a parameter value (older servers)
FOLDER_TAG, RUN_TAG, ATTEMPT_TAG, KIND_TAG = "infobench.folder", "infobench.run_id", "infobench.attempt", "infobench.kind"
FOLDER_ID_TAG = "infobench.folder_id"  # a digest of the folder's path: searchable whatever characters the path has


class MlflowSink(Sink):
    name = "mlflow"

    def __init__(self, folder, spec_name: str):
        from mlflow.tracking import MlflowClient

        super().__init__(folder, spec_name)
        home = Path(folder.root) / "mlflow"
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        artifacts = None
        if not uri:
            home.mkdir(parents=True, exist_ok=True)
            uri = f"sqlite:///{home / 'mlflow.db'}"
            artifacts = (home / "artifacts").as_uri()
        if uri.startswith(("http://", "https://")):
            # MLflow retries a server that does not answer for minutes by default; a sweep whose
            # server is down should say so, not hang (the runs are sent by the next --log-to)
            for name, value in (("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"), ("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")):
                os.environ.setdefault(name, value)
        self.client = MlflowClient(tracking_uri=uri)
        self.where = f"mlflow: experiment {spec_name!r} in {uri} (mlflow ui --backend-store-uri {uri})"
        experiment = self.client.get_experiment_by_name(spec_name)
        if experiment is None:
            self.experiment_id = self.client.create_experiment(spec_name, artifact_location=artifacts)
        else:
            self.experiment_id = experiment.experiment_id
        self.folder_tag = str(Path(folder.root).resolve())
        self.folder_id = hashlib.sha256(self.folder_tag.encode()).hexdigest()[:16]
        self.tags = {FOLDER_TAG: self.folder_tag, FOLDER_ID_TAG: self.folder_id}
        self._sweep_id: str | None = None
        self._copies: dict[str, list[Any]] = {}  # run id -> its MLflow runs, for replacing
        for copy in self._runs(f"tags.`{KIND_TAG}` = 'run'"):
            if copy.info.status == "RUNNING":  # left by a sweep that was interrupted while sending it
                self.client.delete_run(copy.info.run_id)
            else:
                self._copies.setdefault(copy.data.tags.get(RUN_TAG, ""), []).append(copy)
        for sweep in self._runs(f"tags.`{KIND_TAG}` = 'sweep' and attributes.status = 'RUNNING'"):
            self.client.set_terminated(sweep.info.run_id, "KILLED")

    def _runs(self, condition: str) -> list:
        """This folder's MLflow runs matching ``condition`` (every page of the search)."""
        query = f"tags.`{FOLDER_ID_TAG}` = '{self.folder_id}' and {condition}"
        found, token = [], None
        while True:
            page = self.client.search_runs([self.experiment_id], query, max_results=1000, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                return found

    def sent(self) -> set[str]:
        return {copy.data.tags.get(ATTEMPT_TAG) for copies in self._copies.values() for copy in copies}

    def _sweep(self) -> str:
        """The MLflow run of this sweep, made when it first has something to hold."""
        if self._sweep_id is None:
            sweep = self.client.create_run(self.experiment_id, run_name=f"sweep {time.strftime('%Y-%m-%d %H:%M:%S')}",
                                           tags={**self.tags, KIND_TAG: "sweep"})
            self._sweep_id = sweep.info.run_id
        return self._sweep_id

    def send_run(self, row: dict[str, Any], key: str, config: dict[str, Any],
                 points: list[tuple[str, int, float]]) -> None:
        from mlflow.entities import Metric, Param, RunTag

        tags = {**self.tags, KIND_TAG: "run", RUN_TAG: row["run_id"], "mlflow.parentRunId": self._sweep(),
                "method": row["method"], "variant": row["variant"], "seed": str(row["seed"]), "status": row["status"],
                "code": row.get("code", ""), "dataset": row.get("dataset", ""), "model": row.get("model", "")}
        if row.get("error"):
            tags["error"] = str(row["error"])[:5000]
        copy = self.client.create_run(self.experiment_id, run_name=run_title(row), tags=tags)
        run_id = copy.info.run_id
        now = int(time.time() * 1000)
        params = [Param(k, str(v)[:PARAM_VALUE_LIMIT]) for k, v in config.items()]
        metrics = [Metric(name, value, now, step) for name, step, value in points]
        for i in range(0, len(params), 100):
            self.client.log_batch(run_id, params=params[i:i + 100])
        for i in range(0, len(metrics), BATCH):
            self.client.log_batch(run_id, metrics=metrics[i:i + BATCH])
        # the attempt tag goes last: a copy without it (an interrupted send) is never taken as sent
        self.client.log_batch(run_id, tags=[RunTag(ATTEMPT_TAG, key)])
        self.client.set_terminated(run_id, "FINISHED" if row["status"] == "done" else "FAILED")
        for earlier in self._copies.pop(row["run_id"], []):
            self.client.delete_run(earlier.info.run_id)
        self._copies[row["run_id"]] = [copy]  # what replacing it later needs: its MLflow run id

    def send_figures(self, figures: Sequence[Path], files: Sequence[Path]) -> None:
        if not figures and self._sweep_id is None:
            return  # nothing ran and nothing was drawn: no empty sweep run
        sweep = self._sweep()
        for path in figures:
            self.client.log_artifact(sweep, str(path), "plots")
        for path in files:
            self.client.log_artifact(sweep, str(path))
        self.client.set_terminated(sweep, "FINISHED")
