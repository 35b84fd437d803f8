"""Plots: valid PNGs written atomically, drawn from the same numbers the metrics report."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from infobench import metrics, plots
from infobench.errors import InfobenchError


def assert_png(path):
    assert path.is_file()
    assert path.read_bytes()[:8] == plots.PNG_SIGNATURE
    # Nothing left behind by the temp-file-then-rename write.
    assert [p.name for p in path.parent.iterdir()] == [path.name]


@pytest.fixture
def predictions():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(400, 4))
    labels = rng.integers(0, 4, size=400)
    return metrics.softmax(logits), labels


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_reliability_diagram_writes_a_png_of_reliability_bins(tmp_path, predictions, binning):
    probs, labels = predictions
    path = tmp_path / "plots" / "reliability.png"
    drawn = plots.reliability_diagram(probs, labels, path, n_bins=10, title="test", binning=binning)
    assert_png(path)
    expected = metrics.reliability_bins(probs, labels, n_bins=10, binning=binning)
    np.testing.assert_array_equal(drawn.counts, expected.counts)
    np.testing.assert_array_equal(drawn.edges, expected.edges)
    np.testing.assert_array_equal(drawn.accuracy, expected.accuracy)
    np.testing.assert_array_equal(drawn.confidence, expected.confidence)


def test_reliability_figure_draws_the_bin_values(predictions):
    probs, labels = predictions
    bins = metrics.reliability_bins(probs, labels, n_bins=15)
    assert (bins.counts == 0).any()  # the case where empty bins must be skipped
    fig = plots.reliability_figure(bins, title="digits")
    top, bottom = fig.axes
    filled = bins.counts > 0
    accuracy_bars, gap_bars = top.containers
    np.testing.assert_allclose(accuracy_bars.datavalues, bins.accuracy[filled])
    np.testing.assert_allclose(gap_bars.datavalues, bins.gaps[filled])
    np.testing.assert_allclose([p.get_x() for p in accuracy_bars], bins.edges[:-1][filled])
    np.testing.assert_allclose(bottom.containers[0].datavalues, bins.counts)
    assert f"ECE = {metrics.ece(probs, labels):.3f}" in top.get_title()
    assert top.get_title().startswith("digits")


def test_reliability_diagram_overwrites_an_existing_file(tmp_path, predictions):
    probs, labels = predictions
    path = tmp_path / "r.png"
    path.write_bytes(b"stale")
    plots.reliability_diagram(probs, labels, path)
    assert_png(path)


def stream_frame():
    rows = []
    for method, offset in (("source", 0.5), ("tent", 0.3)):
        for seed in range(3):
            for step in (1, 2, 4, 8):
                rows.append({"method": method, "seed": seed, "step": step,
                             "value": offset + 0.01 * seed - 0.02 * np.log2(step)})
    return pd.DataFrame(rows)


def test_line_plot_averages_over_seeds(tmp_path):
    df = stream_frame()
    path = tmp_path / "online_error.png"
    stats = plots.line_plot(df, x="step", y="value", hue="method", path=path,
                            title="online error", ylabel="error", logx=True)
    assert_png(path)
    assert list(stats.columns) == ["method", "step", "mean", "std", "n"]
    assert stats["method"].tolist() == ["source"] * 4 + ["tent"] * 4
    expected = df.groupby(["method", "step"])["value"].agg(["mean", "std"]).reset_index()
    np.testing.assert_allclose(stats["mean"], expected["mean"])
    np.testing.assert_allclose(stats["std"], expected["std"])
    assert (stats["n"] == 3).all()


def test_line_figure_draws_means_and_bands():
    stats = plots.line_stats(stream_frame(), "step", "value", "method")
    fig = plots.line_figure(stats, "step", "method")
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines] == ["source", "tent"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), stats.loc[stats["method"] == "source", "mean"])
    assert len(ax.collections) == 2  # one ±std band per method


def test_line_plot_without_hue_and_single_seed(tmp_path):
    df = pd.DataFrame({"epoch": [3, 1, 2], "mi": [0.3, 0.1, 0.2]})
    stats = plots.line_plot(df, x="epoch", y="mi", hue=None, path=tmp_path / "mi.png")
    assert_png(tmp_path / "mi.png")
    assert stats["epoch"].tolist() == [1, 2, 3]
    assert stats["std"].tolist() == [0.0, 0.0, 0.0]


def test_line_plot_errors_name_the_problem(tmp_path):
    df = stream_frame()
    with pytest.raises(InfobenchError, match="no column 'epoch'"):
        plots.line_plot(df, x="epoch", y="value", hue="method", path=tmp_path / "x.png")
    with pytest.raises(InfobenchError, match="log x axis"):
        plots.line_plot(df.assign(step=df["step"] - 1), x="step", y="value", hue="method",
                        path=tmp_path / "x.png", logx=True)
    with pytest.raises(InfobenchError, match="no rows"):
        plots.line_plot(df.assign(value=np.nan), x="step", y="value", hue="method", path=tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


def test_importing_plots_does_not_import_matplotlib():
    code = "import sys, infobench.plots; print('matplotlib' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
