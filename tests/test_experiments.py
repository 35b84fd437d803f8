"""Every shipped experiment: it validates with and without ``--quick``, its results folder is named
like its file, and its quick version (the spec's own ``quick:`` overrides) runs end to end through
the CLI and still shows the experiment's point, checked per task (issue 12 item 17).

Parametrised by file name, so a new experiment is covered as soon as it is added; a task without
a check below fails the test until one is written. The quick runs share one model cache (the
session's), so experiments with the same source model or recording train it once here; each
quick run alone, cold, is timed in the experiment file's first line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from infobench.cli import app
from infobench.results import load_metrics, load_runs
from infobench.spec import Spec, load_spec

EXPERIMENTS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.yaml"))
REAL_DATA = {"tta_cifar10c", "tta_imagenetc", "distill_cifar100", "calibration_cifar100"}
"""Experiments on the public releases (CIFAR, ImageNet-C) and published checkpoints, which the
repository does not ship: their quick versions run in tests/test_real_experiments.py, on tiny
files written in the releases' layouts."""


def final(metrics: pd.DataFrame, metric: str, split: str | None = "test") -> pd.DataFrame:
    """One final value per run of ``metric`` (on ``split``), with the run's identity columns."""
    rows = metrics[(metrics["metric"] == metric) & metrics["step"].isna()]
    return rows if split is None else rows[rows["split"] == split]


def setting_of(variant: str) -> str:
    """``tent [scenario.order=dirichlet]`` -> ``scenario.order=dirichlet``: the grid setting of a run."""
    return variant.partition(" [")[2].rstrip("]")


# ------------------------------------------------------------------ what each task's quick run must still show


def calibrated_better_than_raw(spec: Spec, metrics: pd.DataFrame, folder: Path) -> None:
    """Every model learned (clean test accuracy well above the 10-class chance), and where both are
    run, temperature scaling lowers the clean-test NLL of the cross-entropy model it is fitted to."""
    accuracy = final(metrics, "accuracy")
    assert (accuracy["value"] > 0.25).all(), accuracy[["variant", "value"]]
    nll = final(metrics, "nll").assign(setting=lambda d: d["variant"].map(setting_of))
    nll = nll[~nll["setting"].str.contains("loss.name=") | nll["setting"].str.contains("loss.name=ce")]
    by_method = nll.pivot_table(index=["setting", "model", "seed"], columns="method", values="value")
    if {"uncalibrated", "temperature"} <= set(by_method.columns):
        assert (by_method["temperature"] < by_method["uncalibrated"]).all(), by_method


def baselines_in_the_papers_order(spec: Spec, metrics: pd.DataFrame, folder: Path) -> None:
    """MNIST-1D: logistic regression < MLP < CNN in test accuracy (Greydanus 2020)."""
    accuracy = final(metrics, "accuracy").groupby("model")["value"].mean()
    assert accuracy["linear"] < accuracy["mlp"] < accuracy["cnn1d"], accuracy


def probabilities_scored_against_the_truth(spec: Spec, metrics: pd.DataFrame, folder: Path) -> None:
    """Every run is scored against the true probabilities (mse_true within [0, 0.25], the squared error
    of probabilities), and the rank-agreement figure is drawn."""
    mse = final(metrics, "mse_true")
    assert set(mse["run_id"]) == set(load_runs([folder])["run_id"])
    assert mse["value"].between(0, 0.25).all(), mse[["variant", "value"]]
    assert (folder / "plots" / "rank_agreement.png").stat().st_size > 0


def teacher_above_its_students(spec: Spec, metrics: pd.DataFrame, folder: Path) -> None:
    """The cached teacher is worth distilling: it beats the student trained from scratch by a margin,
    and every student learned (1.5 times the 10-class chance, which the few-shot ones barely pass)."""
    student = final(metrics, "accuracy")
    assert (student["value"] > 0.15).all(), student[["variant", "value"]]
    teacher = final(metrics, "teacher_accuracy").set_index("run_id")["value"]
    scratch = student[student["method"] == "scratch"].set_index("run_id")["value"]
    assert len(scratch) and (teacher.loc[scratch.index] > scratch + 0.05).all(), (teacher, scratch)


def adaptation_beats_the_source(spec: Spec, metrics: pd.DataFrame, folder: Path) -> None:
    """On every stream setting, some adapting method's online error is well below the unadapted source's."""
    error = final(metrics, "error", split="stream").assign(setting=lambda d: d["variant"].map(setting_of))
    for setting, part in error.groupby("setting"):
        source = part.loc[part["method"] == "source", "value"].mean()
        adapted = part.loc[part["method"] != "source", "value"].min()
        assert adapted < source - 0.03, (setting, source, part[["variant", "value"]])


def estimators_near_the_truth_in_low_dimension(spec: Spec, metrics: pd.DataFrame, folder: Path) -> None:
    """Closed-form MI is recorded for every supported run, and at the lowest dimension some estimator
    is within 0.1 bits of it."""
    error = final(metrics, "abs_error_bits").merge(final(metrics, "supported")[["run_id"]], on="run_id")
    assert len(error) and error["value"].notna().all()
    low = error["variant"].str.contains(f"dataset.dim={min(spec.blocks['dataset'], key=lambda d: d['dim'])['dim']}]")
    assert error.loc[low, "value"].min() < 0.1, error.loc[low, ["variant", "value"]]


def a_plane_with_a_fitting_phase(spec: Spec, metrics: pd.DataFrame, folder: Path) -> None:
    """Every run's information plane has points at several epochs for every layer, and in every run
    some layer's I(T;Y) rises by at least half a bit (the fitting phase; a 10-epoch run of the 12-bit
    task rises by 0.02); the planes are drawn."""
    plane = metrics[metrics["metric"].isin(["mi_xt_bits", "mi_ty_bits"]) & metrics["step"].notna()]
    epochs = plane.groupby(["run_id", "split", "metric"])["step"].nunique()
    assert len(epochs) and (epochs >= 5).all(), epochs[epochs < 5]
    ty = plane[plane["metric"] == "mi_ty_bits"].sort_values("step")
    rise = ty.groupby(["run_id", "split"])["value"].agg(lambda v: v.iloc[-1] - v.iloc[0]).groupby("run_id").max()
    assert len(rise) == len(load_runs([folder])) and (rise > 0.5).all(), rise
    planes = list((folder / "plots").glob("ib_plane_*.png"))
    assert planes and all(p.stat().st_size > 0 for p in planes)


MEANINGFUL: dict[str, Callable[[Spec, pd.DataFrame, Path], None]] = {
    "calibration": calibrated_better_than_raw,
    "probability_estimation": probabilities_scored_against_the_truth,
    "distill": teacher_above_its_students,
    "tta": adaptation_beats_the_source,
    "mi": estimators_near_the_truth_in_low_dimension,
    "ib": a_plane_with_a_fitting_phase,
}
EXTRA = {"mnist1d_baselines": baselines_in_the_papers_order}


# ------------------------------------------------------------------ the tests


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_validates_with_and_without_quick_and_is_named_like_its_file(path):
    full, quick = load_spec(path), load_spec(path, quick=True)
    assert full.name == path.stem, "results/<name>/ is named like the experiment's file"
    assert quick.name == f"{path.stem}-quick"
    assert full.quick, "every shipped experiment has a quick: block"
    assert len(quick.runs()) <= len(full.runs())
    for args in (["validate", str(path)], ["validate", str(path), "--quick"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output


def test_every_experiment_is_covered():
    assert len(EXPERIMENTS) >= 17
    assert {load_spec(path).task for path in EXPERIMENTS} <= set(MEANINGFUL)


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in EXPERIMENTS if p.stem not in REAL_DATA], ids=lambda p: p.stem)
def test_quick_version_runs_end_to_end_and_still_shows_its_point(path, tmp_path):
    spec = load_spec(path, quick=True)
    result = CliRunner().invoke(app, ["run", str(path), "--quick", "--out", str(tmp_path), "--threads", "1"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / spec.name
    runs = load_runs([folder])
    assert len(runs) == len(spec.runs()) and set(runs["status"]) == {"done"}, runs[["variant", "status", "error"]]
    metrics = load_metrics([folder])
    finals = metrics[metrics["step"].isna()]
    assert set(runs["run_id"]) <= set(finals["run_id"]), "every run reports at least one final metric"
    MEANINGFUL[spec.task](spec, metrics, folder)
    if path.stem in EXTRA:
        EXTRA[path.stem](spec, metrics, folder)
