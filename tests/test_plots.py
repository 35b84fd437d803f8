"""Plots: the style module (series styles, legends, safe names, formats) and its two shared figures,
written atomically and drawn from the same numbers the metrics report."""

from __future__ import annotations

import re
import struct
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from infobench import metrics, plots
from infobench.errors import InfobenchError

SAFE_NAME = re.compile(r"[a-z0-9_-]+\.(png|pdf|svg)")


@pytest.fixture(autouse=True)
def png_format():
    """Every test starts, and leaves the module, writing PNG."""
    plots.set_format("png")
    yield
    plots.set_format("png")


def assert_png(path):
    assert path.is_file()
    assert path.read_bytes()[:8] == plots.PNG_SIGNATURE
    # Nothing left behind by the temp-file-then-rename write.
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def legend_is_outside(fig) -> bool:
    """Whether the figure's legends lie wholly outside every axes (drawn, in display pixels)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]
    assert legends, "the figure has no legend"
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>":
                continue
            frame = ax.get_window_extent(renderer)
            if box.overlaps(frame):
                return False
    return True


@pytest.fixture
def predictions():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(400, 4))
    labels = rng.integers(0, 4, size=400)
    return metrics.softmax(logits), labels


def test_twenty_series_get_distinct_colour_and_line_style_pairs():
    styles = plots.series_styles(f"method{i}" for i in range(20))
    pairs = [(s.color, s.linestyle) for s in styles.values()]
    assert len(set(pairs)) == 20
    # neighbours differ in both cues, so a grey-scale print still tells them apart
    assert all(a[0] != b[0] and a[1] != b[1] for a, b in zip(pairs, pairs[1:]))
    assert plots.REFERENCE not in {s.color for s in styles.values()}


def test_series_styles_follow_first_appearance_so_a_method_keeps_its_style():
    one = plots.series_styles(["source", "tent", "source", "eta"])
    assert list(one) == ["source", "tent", "eta"]
    assert one["eta"] == plots.series_style(2)
    assert plots.series_styles(["source", "tent", "eta"]) == one


@pytest.mark.parametrize(("text", "expected"), [
    ("ib_plane_binning_range=_-1_1", "ib_plane_binning_range_-1_1"),
    ("binning(range=[-1, 1])", "binning_range_-1_1"),
    ("tent(lr=1e-4) [scenario.rounds=5]", "tent_lr_1e-4_scenario_rounds_5"),
    ("Temperature [loss.name=ce]", "temperature_loss_name_ce"),
    ("===", "figure"),
])
def test_slug_keeps_only_safe_characters(text, expected):
    assert plots.slug(text) == expected
    assert re.fullmatch(r"[a-z0-9_-]+", plots.slug(text))


def test_a_long_name_is_cut_and_told_apart_by_a_hash():
    label = "uncalibrated [model.activation=relu,model.batchnorm=False,model.channels=25,model.depth=None,model.width={}]"
    one, two = plots.slug(label.format(100)), plots.slug(label.format(200))
    assert len(one) == plots.MAX_NAME and one != two and re.fullmatch(r"[a-z0-9_-]+", one)
    assert one.startswith("uncalibrated_model_activation_relu_") and one == plots.slug(label.format(100))


def test_unique_slugs_never_give_two_labels_one_file():
    names = plots.unique_slugs(["l2=0.1", "l2=0_1", "l2=0.1", "L2=0.1"])
    assert names == {"l2=0.1": "l2_0_1", "l2=0_1": "l2_0_1_2", "L2=0.1": "l2_0_1_3"}


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
    assert f"ECE = {100 * metrics.ece(probs, labels):.2f}%" in top.get_title()
    assert fig.get_suptitle() == "digits"
    assert legend_is_outside(fig)


def test_an_under_confident_bin_shows_its_accuracy_bar_whole():
    """A bin holding one correct sample at confidence 0.26 must read as accuracy 1.0: the gap to its
    confidence is drawn as an outline, no filled patch covers the accuracy bar (issue 14)."""
    probs = np.array([[0.26, 0.25, 0.25, 0.24], [0.05, 0.95, 0.0, 0.0]])
    bins = metrics.reliability_bins(probs, np.array([0, 1]), n_bins=10)
    fig = plots.reliability_figure(bins)
    top = fig.axes[0]
    accuracy_bars, gap_bars = top.containers
    (bar,) = [b for b in accuracy_bars if b.get_x() == pytest.approx(0.2)]
    assert bar.get_height() == pytest.approx(1.0)
    (gap,) = [g for g in gap_bars if g.get_x() == pytest.approx(0.2)]
    assert gap.get_y() == pytest.approx(0.26) and gap.get_height() == pytest.approx(0.74)
    # nothing filled lies over any part of the bar: the gap is an unfilled hatched outline
    for patch in top.patches:
        if patch is bar or patch.get_zorder() < bar.get_zorder() or patch.get_facecolor()[3] == 0:
            continue
        overlap_x = min(patch.get_x() + patch.get_width(), bar.get_x() + bar.get_width()) - max(patch.get_x(), bar.get_x())
        overlap_y = min(patch.get_y() + patch.get_height(), 1.0) - max(patch.get_y(), 0.0)
        assert not (overlap_x > 1e-9 and overlap_y > 1e-9), f"a filled patch covers the accuracy bar: {patch}"
    assert gap.get_facecolor()[3] == 0 and gap.get_hatch()


def test_reliability_panels_one_per_split(predictions):
    probs, labels = predictions
    panels = {name: metrics.reliability_bins(probs[i::3], labels[i::3]) for i, name in
              enumerate(["test", "contrast@5", "defocus_blur@5"])}
    fig = plots.reliability_figure(panels, title="temperature")
    tops = fig.axes[::2]
    assert [ax.get_title().split("\n")[0] for ax in tops] == list(panels)
    assert len(fig.axes) == 6  # a count panel under each
    assert legend_is_outside(fig)


def test_reliability_diagram_overwrites_an_existing_file(tmp_path, predictions):
    probs, labels = predictions
    path = tmp_path / "r.png"
    path.write_bytes(b"stale")
    plots.reliability_diagram(probs, labels, path)
    assert_png(path)


def stream_frame(methods=(("source", 0.5), ("tent", 0.3))):
    rows = []
    for method, offset in methods:
        for seed in range(3):
            for step in (1, 2, 4, 8):
                rows.append({"method": method, "seed": seed, "step": step,
                             "value": offset + 0.01 * seed - 0.02 * np.log2(step)})
    return pd.DataFrame(rows)


def test_line_plot_averages_over_seeds(tmp_path):
    df = stream_frame()
    path, stats = plots.line_plot(df, x="step", y="value", hue="method", path=tmp_path / "online_error.png",
                                  title="online error", ylabel="error", logx=True)
    assert path == tmp_path / "online_error.png"
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


def test_twenty_lines_are_distinct_and_their_legend_is_outside_the_data():
    stats = plots.line_stats(stream_frame([(f"method{i}", 0.02 * i) for i in range(20)]), "step", "value", "method")
    fig = plots.line_figure(stats, "step", "method")
    (ax,) = fig.axes
    assert len({(line.get_color(), line.get_linestyle()) for line in ax.lines}) == 20
    assert legend_is_outside(fig)


def test_given_styles_are_kept():
    stats = plots.line_stats(stream_frame(), "step", "value", "method")
    styles = plots.series_styles(["eta", "tent", "source"])
    (ax,) = plots.line_figure(stats, "step", "method", styles=styles).axes
    assert [(line.get_color(), line.get_linestyle()) for line in ax.lines] == [
        (styles["source"].color, styles["source"].linestyle), (styles["tent"].color, styles["tent"].linestyle)]


def test_segments_and_reference_line():
    stats = plots.line_stats(stream_frame(), "step", "value", "method")
    fig = plots.line_figure(stats, "step", "method", segments=[(0, "gaussian_noise@5"), (3, "contrast@5"), (6, "fog@5")],
                            reference=(0.4, "teacher (40.0%)"))
    (ax,) = [a for a in fig.axes if a.get_ylabel()]
    borders = [line.get_xdata()[0] for line in ax.lines if line.get_gid() == "domain_border"]
    assert borders == [2.5, 5.5]
    (teacher,) = [line for line in ax.lines if line.get_gid() == "reference"]
    assert list(teacher.get_ydata()) == [0.4, 0.4] and teacher.get_label() == "teacher (40.0%)"
    (top,) = ax.child_axes
    assert [t.get_text() for t in top.get_xticklabels()] == ["gaussian_noise@5", "contrast@5", "fog@5"]
    np.testing.assert_allclose(top.get_xticks(), [1.0, 4.0, 7.0])  # the middles of batches 0-2, 3-5, 6-8


def test_segments_of_several_rounds_are_named_once():
    fig, (ax,) = plots.new_figure((6, 3))
    starts = [(3 * i, name) for i, name in enumerate(["a", "b", "c"] * 3)]
    assert plots.mark_segments(ax, starts, end=26) == [2.5 + 3 * i for i in range(8)]
    (top,) = ax.child_axes
    assert [t.get_text() for t in top.get_xticklabels()] == ["a", "b", "c"]


def test_line_plot_without_hue_and_single_seed(tmp_path):
    df = pd.DataFrame({"epoch": [3, 1, 2], "mi": [0.3, 0.1, 0.2]})
    _, stats = plots.line_plot(df, x="epoch", y="mi", hue=None, path=tmp_path / "mi.png")
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


SIGNATURES = {"png": plots.PNG_SIGNATURE, "pdf": b"%PDF", "svg": b"<?xml"}


@pytest.mark.parametrize("fmt", plots.FORMATS)
def test_figures_are_written_in_the_chosen_format_under_a_safe_name(tmp_path, fmt):
    plots.set_format(fmt)
    assert plots.figure_format() == fmt
    stats = plots.line_stats(stream_frame(), "step", "value", "method")
    path = plots.save_figure(plots.line_figure(stats, "step", "method"), tmp_path / "online_error_[rounds=5].png")
    assert path == tmp_path / f"online_error_rounds_5.{fmt}"
    assert SAFE_NAME.fullmatch(path.name)
    assert path.read_bytes().startswith(SIGNATURES[fmt])
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    if fmt != "png":  # no creation date inside: the same figure gives the same bytes
        again = plots.save_figure(plots.line_figure(stats, "step", "method"), tmp_path / "again")
        assert again.read_bytes() == path.read_bytes()


def test_a_name_with_dots_keeps_them_as_underscores(tmp_path):
    fig, _ = plots.new_figure((2, 2))
    assert plots.save_figure(fig, tmp_path / "l2=0.001").name == "l2_0_001.png"


def test_png_is_written_at_300_dpi(tmp_path):
    fig, _ = plots.new_figure((2.0, 1.5))
    data = plots.save_figure(fig, tmp_path / "small").read_bytes()
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk follows the signature
    assert (width, height) == (600, 450)
    assert plots.DPI == 300


def test_an_unknown_format_is_refused():
    with pytest.raises(InfobenchError, match="plot format 'jpg' is not one of png, pdf, svg"):
        plots.set_format("jpg")
    assert plots.figure_format() == "png"


def test_importing_plots_does_not_import_matplotlib():
    code = "import sys, infobench.plots; print('matplotlib' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
