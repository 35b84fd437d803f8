"""Tracking sinks (``run --log-to mlflow|tensorboard``): what a sweep sends is read back with
each library's own reader and compared with the results folder, and sending is idempotent,
survives a failed write and catches up on runs recorded without it."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
from tests_support import TTA_DIGITS

from infobench.errors import InfobenchError
from infobench.results import ResultsFolder, read_metric_file
from infobench.runner import execute, plan
from infobench.spec import validate
from infobench.tracking import check_sinks, metric_name, step_of


def tta_spec():
    """Two methods, one seed, two domains: online error rows with steps, and a figure."""
    return validate({**copy.deepcopy(TTA_DIGITS), "name": "tracked", "methods": ["source", "norm"]})


def folder_points(root: Path, split: str = "stream", metric: str = "error") -> dict[str, list[tuple[int, float]]]:
    """run id -> [(step, value)] of one metric in the results folder: what a sink must hold."""
    folder = ResultsFolder(root)
    points = {}
    for run_id in folder.done_ids():
        rows = read_metric_file(folder.metric_file(run_id), run_id).to_pylist()
        points[run_id] = sorted((step_of(r["step"]), r["value"]) for r in rows
                                if r["split"] == split and r["metric"] == metric and r["step"] == r["step"])
    return points


# ------------------------------------------------------------------------------ without them


def test_unknown_sink_and_missing_library_are_named(monkeypatch):
    with pytest.raises(InfobenchError, match="unknown sink.*mlflow, tensorboard"):
        check_sinks(["wandb"])
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if the extra were not installed
    with pytest.raises(InfobenchError, match=r"pip install 'infobench\[mlflow\]'"):
        check_sinks(["mlflow"])


def test_plan_refuses_a_sink_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(InfobenchError, match="tensorboard"):
        plan(tta_spec(), tmp_path, log_to=["tensorboard"])
    assert not (tmp_path / "tracked").exists()


def test_a_sweep_without_sinks_never_imports_them():
    code = ("import sys; import infobench.runner, infobench.cli; "
            "print(sorted(m for m in ('mlflow', 'tensorboard') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_metric_names_and_steps_fit_both_libraries():
    assert metric_name("gaussian_noise@5", "error") == "gaussian_noise_5/error"
    assert metric_name("layer1", "mi_xt_bits") == "layer1/mi_xt_bits"
    assert step_of(float("nan")) == 0 and step_of(None) == 0 and step_of(128.0) == 128


# ------------------------------------------------------------------------------------ mlflow


def mlflow_children(root: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tracked")
    runs = client.search_runs([experiment.experiment_id], "tags.`infobench.kind` = 'run'")
    sweeps = client.search_runs([experiment.experiment_id], "tags.`infobench.kind` = 'sweep'")
    return client, runs, sweeps


def test_mlflow_holds_each_run_with_its_steps_config_and_the_figures(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install 'infobench[mlflow]')")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    summary = execute(plan(tta_spec(), tmp_path, log_to=["mlflow"]))
    assert summary.exit_code == 0 and not summary.tracking_problems
    root = tmp_path / "tracked"
    client, runs, sweeps = mlflow_children(root)
    expected = folder_points(root)
    assert {r.data.tags["infobench.run_id"] for r in runs} == set(expected)
    assert len(sweeps) == 1 and sweeps[0].info.status == "FINISHED"
    for r in runs:
        assert r.info.status == "FINISHED"
        assert r.data.tags["mlflow.parentRunId"] == sweeps[0].info.run_id
        assert r.data.params["model.width"] == "8" and r.data.params["seed"] == "0"
        assert r.info.run_name == f"{r.data.tags['variant']} seed 0"
        history = client.get_metric_history(r.info.run_id, "stream/error")
        got = sorted((m.step, m.value) for m in history if m.step > 0)
        assert got == [p for p in expected[r.data.tags["infobench.run_id"]] if p[0] > 0]
        assert "gaussian_noise_5/error" not in r.data.metrics  # only the domains the spec ran
        assert r.data.metrics["defocus_blur_5/error"] >= 0
    artifacts = {a.path for a in client.list_artifacts(sweeps[0].info.run_id, "plots")}
    assert "plots/online_error.png" in artifacts
    assert {a.path for a in client.list_artifacts(sweeps[0].info.run_id)} >= {"spec.yaml", "manifest.json", "plots"}

    # the same sweep again sends nothing twice
    again = execute(plan(tta_spec(), tmp_path, log_to=["mlflow"]))
    assert again.statuses == {} and not again.tracking_problems
    _, runs_again, _ = mlflow_children(root)
    assert sorted(r.info.run_id for r in runs_again) == sorted(r.info.run_id for r in runs)

    # --force: new results replace the old copies (soft-deleted), as they replace the rows
    execute(plan(tta_spec(), tmp_path, force=True, log_to=["mlflow"]))
    _, runs_forced, sweeps_forced = mlflow_children(root)
    assert len(runs_forced) == 2 and not {r.info.run_id for r in runs_forced} & {r.info.run_id for r in runs}
    assert len(sweeps_forced) == 3


def test_mlflow_catches_up_on_runs_recorded_without_it_and_on_a_failed_send(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install 'infobench[mlflow]')")
    from infobench.tracking.mlflow_sink import MlflowSink

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    spec = tta_spec()
    execute(plan(spec, tmp_path))  # no sink
    assert not (tmp_path / "tracked" / "mlflow").exists()

    real_send = MlflowSink.send_run
    calls = []

    def flaky(self, row, *args):
        calls.append(row["run_id"])
        if len(calls) == 1:
            raise ConnectionError("store went away")
        return real_send(self, row, *args)

    monkeypatch.setattr(MlflowSink, "send_run", flaky)
    summary = execute(plan(spec, tmp_path, log_to=["mlflow"]))
    assert summary.statuses == {}  # nothing reran: the runs were sent from the folder
    assert summary.exit_code == 1 and "store went away" in summary.tracking_problems[0]
    _, runs, _ = mlflow_children(tmp_path / "tracked")
    assert len(runs) == 1

    monkeypatch.setattr(MlflowSink, "send_run", real_send)
    summary = execute(plan(spec, tmp_path, log_to=["mlflow"]))
    assert summary.exit_code == 0 and not summary.tracking_problems
    _, runs, _ = mlflow_children(tmp_path / "tracked")
    assert {r.data.tags["infobench.run_id"] for r in runs} == ResultsFolder(tmp_path / "tracked").done_ids()


def test_mlflow_copy_left_unfinished_by_an_interrupted_send_is_removed(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install 'infobench[mlflow]')")
    from infobench.tracking.mlflow_sink import MlflowSink

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    real_send = MlflowSink.send_run

    def interrupted(self, row, key, config, points):  # dies after the copy is made, before it is complete
        self.client.create_run(self.experiment_id, run_name="torn",
                               tags={**self.tags, "infobench.kind": "run", "infobench.run_id": row["run_id"],
                                     "mlflow.parentRunId": self._sweep()})
        raise KeyboardInterrupt

    monkeypatch.setattr(MlflowSink, "send_run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        execute(plan(tta_spec(), tmp_path, log_to=["mlflow"]))
    monkeypatch.setattr(MlflowSink, "send_run", real_send)
    execute(plan(tta_spec(), tmp_path, log_to=["mlflow"]))
    _, runs, sweeps = mlflow_children(tmp_path / "tracked")
    assert len(runs) == 2 and all(r.info.status == "FINISHED" and r.info.run_name != "torn" for r in runs)
    assert {s.info.status for s in sweeps} == {"KILLED", "FINISHED"}


# ------------------------------------------------------------------------------- tensorboard


def event_runs(logdir: Path) -> dict[str, object]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found = {}
    for path in sorted(p for p in logdir.iterdir() if p.is_dir()):
        accumulator = EventAccumulator(str(path), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
        found[path.name] = accumulator.Reload()
    return found


def test_tensorboard_holds_each_run_and_the_figures(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed (pip install 'infobench[tensorboard]')")
    summary = execute(plan(tta_spec(), tmp_path, log_to=["tensorboard"]))
    assert summary.exit_code == 0 and not summary.tracking_problems
    root = tmp_path / "tracked"
    expected = folder_points(root)
    runs = event_runs(root / "tensorboard")
    assert set(runs) == {"figures"} | {f"{v}_seed0_{rid}" for rid, v in
                                       ((rid, row["variant"]) for rid, row in ResultsFolder(root).run_rows().items())}
    for name, accumulator in runs.items():
        if name == "figures":
            assert "online_error" in accumulator.Tags()["images"]
            image = accumulator.Images("online_error")[0]
            assert image.width > 100 and image.height > 100
            continue
        run_id = name.rsplit("_", 1)[-1]
        got = [(e.step, e.value) for e in accumulator.Scalars("stream/error") if e.step > 0]
        want = [p for p in expected[run_id] if p[0] > 0]
        assert [s for s, _ in got] == [s for s, _ in want]
        assert [v for _, v in got] == pytest.approx([v for _, v in want], abs=1e-6)  # float32 in the file
        text = accumulator.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
        assert '"model.width": 8' in text
        assert len(list((root / "tensorboard" / name).glob("events.out.tfevents.*"))) == 1

    # again: nothing sent twice; --force: each run's directory replaced, never a second event file
    execute(plan(tta_spec(), tmp_path, log_to=["tensorboard"]))
    execute(plan(tta_spec(), tmp_path, force=True, log_to=["tensorboard"]))
    for name in runs:
        assert len(list((root / "tensorboard" / name).glob("events.out.tfevents.*"))) == 1


def test_tensorboard_leftover_of_an_interrupted_write_is_removed(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed (pip install 'infobench[tensorboard]')")
    execute(plan(tta_spec(), tmp_path))
    leftover = tmp_path / "tracked" / "tensorboard" / ".incoming-source_seed0_x"
    leftover.mkdir(parents=True)
    (leftover / "events.out.tfevents.torn").write_bytes(b"\0\1")
    execute(plan(tta_spec(), tmp_path, log_to=["tensorboard"]))
    names = sorted(p.name for p in (tmp_path / "tracked" / "tensorboard").iterdir())
    assert not [n for n in names if n.startswith(".")] and len(names) == 3


def test_cli_log_to(tmp_path, write_spec):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed (pip install 'infobench[tensorboard]')")
    from typer.testing import CliRunner

    from infobench.cli import app

    path = write_spec({**copy.deepcopy(TTA_DIGITS), "name": "tracked"})
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out"), "--log-to", "tensorboard"])
    assert result.exit_code == 0, result.output
    assert "tensorboard --logdir" in result.output
    bad = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out"), "--log-to", "wandb"])
    assert bad.exit_code == 2 and "unknown sink" in bad.output


def test_mlflow_server_that_does_not_answer_is_reported_not_waited_for(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install 'infobench[mlflow]')")
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)  # also undoes what the sink sets
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")  # the test need not wait out the back-off
    summary = execute(plan(tta_spec(), tmp_path, log_to=["mlflow"]))
    assert summary.statuses == {"done": 2}  # the results are recorded all the same
    assert summary.exit_code == 1 and "mlflow: cannot open" in summary.tracking_problems[0]
    assert not (tmp_path / "tracked" / "mlflow").exists()  # the user's store was named: nothing made here


def test_mlflow_takes_configuration_keys_it_would_refuse(tmp_path, monkeypatch):
    """MNIST-1D shift names (``noise@1``) are keys of the configuration; MLflow refuses ``@`` in a
    parameter name, so the whole run would be lost without the renaming."""
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install 'infobench[mlflow]')")
    import json

    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from infobench.tracking import Tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    execute(plan(tta_spec(), tmp_path))
    folder = ResultsFolder(tmp_path / "tracked")
    row = next(r for r in folder.run_rows().values() if r["method"] == "norm")
    row["config"] = json.dumps({"dataset": {"name": "mnist1d", "shifts": {"noise@1": {"iid_noise_scale": 0.05}}}})
    tracking = Tracking(["mlflow"], folder, "tracked")
    tracking.run_recorded(row)
    assert tracking.problems == []
    client = MlflowClient(tracking_uri=f"sqlite:///{folder.root / 'mlflow' / 'mlflow.db'}")
    (copy_,) = client.search_runs([client.get_experiment_by_name("tracked").experiment_id],
                                  "tags.`infobench.kind` = 'run'")
    assert copy_.data.params["dataset.shifts.noise_1.iid_noise_scale"] == "0.05"
    assert copy_.data.params["method"] == "norm"
    with pytest.raises(MlflowException):  # what the renaming avoids
        client.log_param(copy_.info.run_id, "dataset.shifts.noise@1.iid_noise_scale", 0.05)
