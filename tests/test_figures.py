"""Every task's figures (``Task.summarize``) on small constructed results: files written under safe
names in the chosen format, series told apart, legends outside the data, and what each figure
must show (domain borders, a teacher line, per-split reliability panels, dodged MI points)."""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pytest

from infobench import plots
from infobench.tasks.base import RunContext
from infobench.tasks.calibration.probability import OBSERVABLE, ProbabilityEstimationTask
from infobench.tasks.calibration.task import CalibrationTask, pooled_reliability, record_reliability
from infobench.tasks.distill.task import DistillTask
from infobench.tasks.ib import plots as ib_plots
from infobench.tasks.ib.plots import ib_figures
from infobench.tasks.mi.plots import mi_vs_truth
from infobench.tasks.tta.task import TTATask
from tests.test_plots import legend_is_outside

SAFE_NAME = re.compile(r"[a-z0-9_-]+\.(png|pdf|svg)")


@pytest.fixture
def drawn(monkeypatch):
    """The figures saved, by file name (written as usual as well)."""
    figures = {}
    save = plots.save_figure

    def keep(fig, path):
        written = save(fig, path)
        figures[written.name] = fig
        return written

    monkeypatch.setattr(plots, "save_figure", keep)
    monkeypatch.setattr(ib_plots, "save_figure", keep)  # imported by name there
    monkeypatch.setattr(plots, "DPI", 40)  # the pixels are not under test; rendering 300 dpi is slow
    plots.set_format("png")
    yield figures
    plots.set_format("png")


def frame(rows: list[dict]) -> pd.DataFrame:
    """Metric rows as ``load_metrics`` returns them (the columns the figures read)."""
    df = pd.DataFrame(rows)
    df["run_id"] = df["variant"] + "/" + df["seed"].astype(str)
    df["method"] = df["variant"].str.extract(r"^(\w+)", expand=False)
    df["step"] = pd.to_numeric(df["step"]).astype(float)
    return df


def data_axes(fig):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax not in {c for a in fig.axes for c in a.child_axes}]


def series_pairs(ax) -> list[tuple]:
    return [(line.get_color(), line.get_linestyle()) for line in ax.lines if not line.get_label().startswith("_")
            and line.get_gid() is None]


def assert_written(paths, folder, fmt="png"):
    assert paths
    for path in paths:
        assert path.parent == folder and path.is_file(), path
        assert SAFE_NAME.fullmatch(path.name) and path.suffix == f".{fmt}", path.name


# --- tta --------------------------------------------------------------------------------------

TTA_METHODS = ("source", "tent", "eta(woc=True)")
DOMAINS = ("gaussian_noise@5", "contrast@5", "fog@5")


def tta_metrics(rounds=(1, 5)) -> pd.DataFrame:
    """3 methods x 2 seeds on streams of 3 domains of 3 batches each, visited ``rounds`` times."""
    rows = []
    for r in rounds:
        for m, method in enumerate(TTA_METHODS):
            variant = f"{method} [scenario.rounds={r}]"
            for seed in (0, 1):
                for visit in range(r):
                    for d, domain in enumerate(DOMAINS):
                        first = 3 * (visit * len(DOMAINS) + d)
                        rows.append({"variant": variant, "seed": seed, "split": domain, "step": first,
                                     "metric": "domain_start", "value": 64 * first})
                        for b in range(first, first + 3):
                            rows.append({"variant": variant, "seed": seed, "split": "stream", "step": b,
                                         "metric": "error", "value": 0.2 + 0.1 * m + 0.05 * d + 0.01 * seed})
                rows.append({"variant": variant, "seed": seed, "split": "stream", "step": None,
                             "metric": "error", "value": 0.3})
    return frame(rows)


def test_tta_online_error_marks_domain_borders_per_setting(tmp_path, drawn):
    paths = TTATask().summarize("tta", tta_metrics(), tmp_path)
    assert_written(paths, tmp_path)
    assert sorted(p.name for p in paths) == ["online_error_scenario_rounds_1.png", "online_error_scenario_rounds_5.png"]
    one, five = (drawn[f"online_error_scenario_rounds_{r}.png"] for r in (1, 5))
    for fig, rounds in ((one, 1), (five, 5)):
        (ax,) = data_axes(fig)
        borders = [line.get_xdata()[0] for line in ax.lines if line.get_gid() == "domain_border"]
        assert borders == [3 * k - 0.5 for k in range(1, 3 * rounds)]
        (top,) = ax.child_axes
        assert [t.get_text() for t in top.get_xticklabels()] == list(DOMAINS)  # each name once
        assert [line.get_label() for line in ax.lines if line.get_gid() is None] == list(TTA_METHODS)
        assert ax.get_ylabel().startswith("online error [%]")
        np.testing.assert_allclose(ax.lines[0].get_ydata()[:3], 100 * 0.205)  # source on domain 0, mean of 2 seeds
        assert legend_is_outside(fig)
    # one method, one style, in both figures; no two methods alike
    assert series_pairs(data_axes(one)[0]) == series_pairs(data_axes(five)[0])
    assert len(set(series_pairs(data_axes(one)[0]))) == len(TTA_METHODS)


def test_tta_results_without_domain_starts_still_plot(tmp_path, drawn):
    metrics = tta_metrics(rounds=(1,))
    metrics = metrics[metrics["metric"] != "domain_start"].assign(variant=lambda d: d["variant"].str.replace(r" \[.*", "", regex=True))
    (path,) = TTATask().summarize("tta", metrics, tmp_path)
    assert path.name == "online_error.png"
    (ax,) = data_axes(drawn[path.name])
    assert not [line for line in ax.lines if line.get_gid() == "domain_border"]


# --- distill ----------------------------------------------------------------------------------

def distill_metrics() -> pd.DataFrame:
    """kd and scratch (fixed teacher, 0.90 / 0.92 per seed) and bdkd (an online teacher at 0.5)."""
    rows = []
    for seed, teacher in ((0, 0.90), (1, 0.92)):
        for method in ("scratch", "kd", "bdkd"):
            for epoch in range(1, 5):
                rows.append({"variant": method, "seed": seed, "split": "test", "step": epoch, "metric": "accuracy",
                             "value": 0.5 + 0.1 * epoch})
                if method == "bdkd":
                    rows.append({"variant": method, "seed": seed, "split": "test", "step": epoch,
                                 "metric": "teacher_accuracy", "value": 0.5})
            rows.append({"variant": method, "seed": seed, "split": "test", "step": None, "metric": "teacher_accuracy",
                         "value": 0.5 if method == "bdkd" else teacher})
            rows.append({"variant": method, "seed": seed, "split": "test", "step": None, "metric": "accuracy", "value": 0.8})
    return frame(rows)


def test_distill_curves_have_a_teacher_line_and_a_percent_axis(tmp_path, drawn):
    (path,) = DistillTask().summarize("distill", distill_metrics(), tmp_path)
    assert_written([path], tmp_path)
    assert path.name == "student_accuracy.png"
    fig = drawn[path.name]
    (ax,) = data_axes(fig)
    (teacher,) = [line for line in ax.lines if line.get_gid() == "reference"]
    assert list(teacher.get_ydata()) == pytest.approx([91.0, 91.0])  # the fixed teacher, mean over seeds
    assert teacher.get_label() == "teacher (91.0%)"
    assert ax.get_ylabel() == "student test accuracy [%]" and ax.get_xlabel() == "epoch"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [60, 70, 80, 90])
    assert len(set(series_pairs(ax))) == 3
    assert legend_is_outside(fig)


def test_distill_draws_one_figure_per_student_setting(tmp_path, drawn):
    metrics = distill_metrics()
    both = pd.concat([metrics.assign(variant=metrics["variant"] + f" [model.name={name}]") for name in ("cnn2d", "mlp")])
    both["run_id"] = both["variant"] + "/" + both["seed"].astype(str)
    paths = DistillTask().summarize("distill", both, tmp_path)
    assert sorted(p.name for p in paths) == ["student_accuracy_model_name_cnn2d.png", "student_accuracy_model_name_mlp.png"]
    for fig in drawn.values():
        (ax,) = data_axes(fig)
        assert [line.get_label() for line in ax.lines if line.get_gid() is None] == ["scratch", "kd", "bdkd"]


# --- calibration ------------------------------------------------------------------------------

def calibration_metrics() -> pd.DataFrame:
    """Reliability rows of 2 seeds x 2 splits, as the runs record them; in bin 3 (0.2-0.267) of the
    test split one sample, correct, at confidence 0.26, in seed 0 only."""
    rows = []
    rng = np.random.default_rng(0)
    for seed in (0, 1):
        for split in ("test", "contrast@5"):
            ctx = RunContext(run=None, plots_dir=None, logger=logging.getLogger("test"))
            probs = rng.dirichlet([5, 1, 1, 1], size=60)
            labels = rng.integers(0, 4, size=60)
            probs[probs.max(1) < 0.27] = [0.4, 0.2, 0.2, 0.2]  # nothing else in bin 3
            if split == "test" and seed == 0:
                probs[0], labels[0] = [0.26, 0.25, 0.25, 0.24], 0
            record_reliability(ctx, probs, labels, 15, split)
            rows += [{**row, "variant": "temperature [loss.name=ce]", "seed": seed} for row in ctx.rows]
    return frame(rows)


def test_calibration_draws_per_split_panels_of_pooled_seeds(tmp_path, drawn):
    metrics = calibration_metrics()
    (path,) = CalibrationTask().summarize("calibration", metrics, tmp_path)
    assert_written([path], tmp_path)
    assert path.name == "reliability_temperature_loss_name_ce.png"
    fig = drawn[path.name]
    tops = fig.axes[::2]
    assert [ax.get_title().split("\n")[0] for ax in tops] == ["test", "contrast@5"]
    assert "2 seeds pooled" in fig.get_suptitle()
    test_rows = metrics[metrics["split"] == "test"]
    counts = test_rows[test_rows["metric"] == "reliability_count"].groupby("step")["value"].sum()
    np.testing.assert_array_equal(fig.axes[1].containers[0].datavalues, counts.to_numpy())  # both seeds' samples
    accuracy_bars = tops[0].containers[0]
    (bar,) = [b for b in accuracy_bars if b.get_x() == pytest.approx(3 / 15)]
    assert bar.get_height() == pytest.approx(1.0)  # the one correct sample: accuracy 1, not its confidence
    assert legend_is_outside(fig)


def test_pooled_reliability_is_the_reliability_of_all_samples():
    from infobench.metrics import reliability_bins

    rng = np.random.default_rng(1)
    probs, labels = rng.dirichlet([2, 1, 1], size=80), rng.integers(0, 3, size=80)
    rows = []
    for seed, part in enumerate((slice(0, 30), slice(30, 80))):
        ctx = RunContext(run=None, plots_dir=None, logger=logging.getLogger("test"))
        record_reliability(ctx, probs[part], labels[part], 10, "test")
        rows += [{**row, "run_id": f"r{seed}"} for row in ctx.rows]
    pooled = pooled_reliability(pd.DataFrame(rows))
    whole = reliability_bins(probs, labels, n_bins=10)
    np.testing.assert_array_equal(pooled.counts, whole.counts)
    np.testing.assert_allclose(pooled.accuracy, whole.accuracy)
    np.testing.assert_allclose(pooled.confidence, whole.confidence)
    assert pooled.ece == pytest.approx(whole.ece)


def test_probability_rank_agreement_figure(tmp_path, drawn):
    rows = []
    for psi in ("sigmoid", "discrete"):
        for i, method in enumerate(("uncalibrated", "temperature", "vector", "isotonic")):
            for metric in ("mse_true", *OBSERVABLE):
                rows.append({"variant": f"{method} [scenario.psi={psi}]", "seed": 0, "split": "test", "step": None,
                             "metric": metric, "value": 0.1 * i + (0.01 if metric == "nll" else 0.0)})
    (path,) = ProbabilityEstimationTask().summarize("prob", frame(rows), tmp_path)
    assert_written([path], tmp_path)
    fig = drawn[path.name]
    (ax,) = data_axes(fig)
    colours = {tuple(bar.get_facecolor()) for container in ax.containers for bar in container}
    assert len(colours) == 2  # one per setting
    assert legend_is_outside(fig)


# --- mi ---------------------------------------------------------------------------------------

def test_mi_points_at_one_truth_do_not_overlap(tmp_path, drawn):
    rows = []
    for name in ("est_a", "est_b", "est_c"):
        for truth in (0.5, 3.0):
            variant = f"{name} [dataset.dim={int(truth * 2)}]"
            for metric, value in (("mi_bits", truth), ("true_mi_bits", truth), ("samples", 1000)):
                rows.append({"variant": variant, "seed": 0, "split": "test", "step": None, "metric": metric, "value": value})
    path = mi_vs_truth(frame(rows), tmp_path / "mi_vs_truth.png", title="mi")
    assert_written([path], tmp_path)
    fig = drawn[path.name]
    (ax,) = data_axes(fig)
    # identical estimates at one truth: each estimator at its own x, with its own colour and marker
    points = [c.lines[0] for c in ax.containers if c.get_label().startswith("est")]
    xs = [tuple(np.asarray(line.get_xdata(), float).round(6)) for line in points]
    assert len(xs) == 3 and len({x[0] for x in xs}) == 3
    assert len({(line.get_color(), line.get_marker()) for line in points}) == 3
    np.testing.assert_allclose(np.mean([x[0] for x in xs]), 0.5)  # the cluster is centred on the truth
    assert ax.get_xlabel().startswith("true I(X; Y) [bits]") and ax.get_ylabel() == "estimate [bits]"
    assert legend_is_outside(fig)


# --- ib ---------------------------------------------------------------------------------------

def test_ib_figures_have_safe_names_and_distinct_layers(tmp_path, drawn):
    rows = []
    variant = "binning(range=[-1, 1])"
    for layer in ("layer1", "layer2", "layer3", "output"):
        for step in (0, 10, 100):
            rows.append({"variant": variant, "seed": 0, "split": layer, "step": step, "metric": "mi_xt_bits", "value": 5.0 - step / 100})
            rows.append({"variant": variant, "seed": 0, "split": layer, "step": step, "metric": "mi_ty_bits", "value": 0.5 + step / 200})
        rows.append({"variant": variant, "seed": 0, "split": layer, "step": None, "metric": "compression_bits", "value": 1.0})
    paths = ib_figures(frame(rows), tmp_path)
    assert_written(paths, tmp_path)
    assert sorted(p.name for p in paths) == ["ib_compression.png", "ib_mi_epochs_binning_range_-1_1.png",
                                             "ib_plane_binning_range_-1_1.png"]
    epochs = drawn["ib_mi_epochs_binning_range_-1_1.png"]
    assert len(set(series_pairs(epochs.axes[0]))) == 4
    plane = drawn["ib_plane_binning_range_-1_1.png"]
    assert len({c.get_paths()[0].vertices.tobytes() for c in plane.axes[0].collections if len(c.get_offsets())}) == 4
    for fig in drawn.values():
        assert legend_is_outside(fig)


# --- formats ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["pdf", "svg"])
def test_every_task_writes_the_chosen_format(tmp_path, drawn, fmt):
    plots.set_format(fmt)
    paths = [*TTATask().summarize("tta", tta_metrics(), tmp_path),
             *DistillTask().summarize("distill", distill_metrics(), tmp_path),
             *CalibrationTask().summarize("calibration", calibration_metrics(), tmp_path)]
    assert_written(paths, tmp_path, fmt)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)
