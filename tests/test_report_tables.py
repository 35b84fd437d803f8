"""report.tables: the methods x domains pivot, bootstrap intervals over seeds, one number format per
table, best marks, the four output formats, and the warning for folders of different inputs."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from test_compare import write_folder
from typer.testing import CliRunner

from infobench.cli import app
from infobench.compare import compare
from infobench.errors import InfobenchError
from infobench.report.tables import (
    RESAMPLES,
    bootstrap_ci,
    decimals_for,
    input_differences,
    pivot,
    render_pivot,
    rich_pivot,
)

# Error per domain and seed. By hand:
#   source gauss .50 .60 .55 -> mean .55, std .05;  fog .40 .42 .44 -> mean .42, std .02
#          per-seed averages .45 .51 .495 -> mean .485, std sqrt(.000975) = .0312
#   tent   gauss .30 .34 .32 -> mean .32, std .02;  fog .45 .47 .43 -> mean .45, std .02
#          per-seed averages .375 .405 .375 -> mean .385, std sqrt(.0003) = .0173
# Best (lower error): gauss tent, fog source, mean tent. "stream" pools the domains.
GAUSS = {"source": (0.50, 0.60, 0.55), "tent": (0.30, 0.34, 0.32)}
FOG = {"source": (0.40, 0.42, 0.44), "tent": (0.45, 0.47, 0.43)}
DOMAINS = ("gauss@5", "fog@5", "stream")


def error_values(gauss=GAUSS, fog=FOG) -> dict:
    return {
        (method, seed): {"error": {"gauss@5": gauss[method][seed], "fog@5": fog[method][seed],
                                   "stream": (gauss[method][seed] + fog[method][seed]) / 2}}
        for method in gauss for seed in range(len(gauss[method]))
    }


@pytest.fixture
def domains(tmp_path):
    return write_folder(tmp_path / "domains", error_values(), splits=DOMAINS)


def cell(table, method, column):
    c = table.cells
    (index,) = np.flatnonzero((c["method"] == method) & (c[table.over] == column))
    return c.iloc[index]


def direct_bootstrap(values, level, seed=0):
    """The interval computed straight with numpy, as the module documents it."""
    values = np.asarray(values, dtype=float)
    idx = np.random.default_rng(seed).integers(0, len(values), size=(RESAMPLES, len(values)))
    alpha = 1 - level / 100
    return tuple(np.quantile(values[idx].mean(axis=1), [alpha / 2, 1 - alpha / 2]))


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("values, decimals", [
    ([0.873, 0.051], 3), ([12.3, 0.5], 1), ([1234.0, 2.0], 0), ([0.0123], 4), ([-0.5, 0.2], 3),
    ([], 2), ([0.0, float("nan")], 2),
])
def test_decimals_keep_three_significant_digits_of_the_largest(values, decimals):
    assert decimals_for(values) == decimals


# --------------------------------------------------------------------------- intervals


def test_bootstrap_interval_of_three_seeds_by_hand():
    # 1 resample in 27 takes the smallest value three times: more than the 2.5 % the lower bound
    # leaves out, so the 95 % bounds are the smallest and the largest seed.
    lo, hi = bootstrap_ci([0.50, 0.60, 0.55], 95)
    assert (lo, hi) == pytest.approx((0.50, 0.60))
    assert bootstrap_ci([0.50, 0.60, 0.55], 50) == pytest.approx(direct_bootstrap([0.50, 0.60, 0.55], 50))


@pytest.mark.parametrize("n", [2, 5, 8])
def test_bootstrap_interval_equals_a_direct_numpy_computation(n):
    values = np.random.default_rng(n).normal(size=n)
    lo, hi = bootstrap_ci(values, 90)
    assert (lo, hi) == pytest.approx(direct_bootstrap(values, 90), rel=1e-12)
    assert lo < values.mean() < hi


def test_bootstrap_of_one_seed_has_no_interval_and_bad_levels_are_refused():
    assert all(np.isnan(bootstrap_ci([0.3], 95)))
    for level in (0, 100, 120, -5):
        with pytest.raises(InfobenchError, match="percentage between 0 and 100"):
            bootstrap_ci([0.1, 0.2], level)


# --------------------------------------------------------------------------- pivot numbers


def test_pivot_over_split_by_hand(domains):
    (table,) = pivot(compare([domains], metrics="error"))
    assert table.columns == ["gauss@5", "fog@5", "mean"]  # stream pools the domains: left out
    assert table.left_out == ["stream"]
    assert cell(table, "source", "gauss@5")["mean"] == pytest.approx(0.55)
    assert cell(table, "source", "gauss@5")["std"] == pytest.approx(0.05)
    assert cell(table, "tent", "fog@5")["mean"] == pytest.approx(0.45)
    src_mean, tent_mean = cell(table, "source", "mean"), cell(table, "tent", "mean")
    assert src_mean["mean"] == pytest.approx(0.485)
    assert src_mean["std"] == pytest.approx(np.sqrt(0.000975))
    assert src_mean["n"] == 3
    assert tent_mean["mean"] == pytest.approx(0.385)
    best = table.cells[table.cells["best"]]
    assert sorted(zip(best["method"], best["split"])) == [("source", "fog@5"), ("tent", "gauss@5"), ("tent", "mean")]


def test_pivot_intervals_match_numpy_on_the_seeds(domains):
    (table,) = pivot(compare([domains], metrics="error", ci=95))
    gauss = cell(table, "source", "gauss@5")
    assert (gauss["ci_lo"], gauss["ci_hi"]) == pytest.approx((0.50, 0.60))  # see the by-hand test
    fog = cell(table, "tent", "fog@5")
    assert (fog["ci_lo"], fog["ci_hi"]) == pytest.approx(direct_bootstrap(FOG["tent"], 95))
    # the mean column resamples the per-seed averages .375 .405 .375
    mean = cell(table, "tent", "mean")
    assert (mean["ci_lo"], mean["ci_hi"]) == pytest.approx(direct_bootstrap([0.375, 0.405, 0.375], 95))
    assert (mean["ci_lo"], mean["ci_hi"]) == pytest.approx((0.375, 0.405))


def test_pooled_splits_stay_when_named(domains):
    (table,) = pivot(compare([domains], metrics="error", split=["gauss@5", "stream"]), keep_pooled=True)
    assert table.columns == ["gauss@5", "stream", "mean"]


def test_pivot_over_seed_and_over_folders(tmp_path, domains):
    (table,) = pivot(compare([domains], metrics="error", split="gauss@5", by="seed"), over="seed")
    assert table.columns == ["0", "1", "2", "mean"]
    assert cell(table, "source", "1")["mean"] == pytest.approx(0.60)
    assert cell(table, "source", "mean")["mean"] == pytest.approx(0.55)
    assert cell(table, "source", "mean")["std"] == pytest.approx(0.05)
    assert cell(table, "source", "mean")["n"] == 3

    better = {m: tuple(v - 0.1 for v in vals) for m, vals in GAUSS.items()}
    other = write_folder(tmp_path / "other", error_values(gauss=better), splits=DOMAINS)
    (table,) = pivot(compare([domains, other], metrics="error", split="gauss@5"), over="source")
    assert table.columns == ["domains", "other", "mean"]
    assert cell(table, "tent", "other")["mean"] == pytest.approx(0.22)
    assert cell(table, "tent", "mean")["mean"] == pytest.approx(0.27)


def test_pivot_over_a_key_that_is_not_a_row_key_is_a_clear_error(domains):
    result = compare([domains], metrics="error")
    with pytest.raises(InfobenchError, match="cannot pivot over 'seed'.*--by seed"):
        pivot(result, over="seed")
    with pytest.raises(InfobenchError, match="cannot pivot over 'source'.*several folders"):
        pivot(result, over="source")


def test_a_seed_missing_a_domain_leaves_the_mean_column_to_the_complete_seeds(tmp_path):
    values = error_values()
    del values[("tent", 2)]["error"]["fog@5"]
    folder = write_folder(tmp_path / "gap", values, splits=DOMAINS)
    (table,) = pivot(compare([folder], metrics="error"))
    assert cell(table, "tent", "fog@5")["n"] == 2
    assert cell(table, "tent", "mean")["n"] == 2
    assert cell(table, "tent", "mean")["mean"] == pytest.approx((0.375 + 0.405) / 2)
    text = render_pivot([table], "md")  # n differs along tent's row: each cell says its own
    assert "| tent | **0.320 ± 0.020 (n=3)** | 0.460 ± 0.014 (n=2) | **0.390 ± 0.021 (n=2)** |" in text


# --------------------------------------------------------------------------- formats


NUMBER = re.compile(r"-?\d+\.\d+")


def test_markdown_pivot_shape_values_and_one_number_format(domains):
    text = render_pivot(pivot(compare([domains], metrics="error")), "md")
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert lines[0] == "| method | n | gauss@5 | fog@5 | mean |"
    assert lines[1] == "|---|---|---|---|---|"
    assert lines[2] == "| source | 3 | 0.550 ± 0.050 | **0.420 ± 0.020** | 0.485 ± 0.031 |"
    assert lines[3] == "| tent | 3 | **0.320 ± 0.020** | 0.450 ± 0.020 | **0.385 ± 0.017** |"
    assert len(lines) == 4 and all(line.count("|") == 6 for line in lines)
    assert {len(x.split(".")[1]) for x in NUMBER.findall("\n".join(lines))} == {3}
    assert "lower error is better" in text and "left out: stream" in text


def test_one_decimals_count_for_the_whole_table(tmp_path):
    # the largest mean (12.5) has 3 significant digits with 1 decimal: every cell gets 1
    values = {("a", s): {"seconds": {"x": 11.5 + s, "y": 0.01 * (s + 1)}} for s in range(3)}
    folder = write_folder(tmp_path / "mixed", values, splits=("x", "y"))
    text = render_pivot(pivot(compare([folder])), "md")
    row = next(line for line in text.splitlines() if line.startswith("| a"))
    assert row == "| a | 3 | 12.5 ± 1.0 | 0.0 ± < 0.1 | 6.3 ± 0.5 |"


def test_intervals_in_markdown_with_n_and_a_small_n_caution(domains):
    text = render_pivot(pivot(compare([domains], metrics="error", ci=95)), "md")
    assert "| source | 3 | 0.550 [0.500, 0.600] | **0.420 [0.400, 0.440]** | 0.485 [0.450, 0.510] |" in text
    assert "95% CI" in text and "10,000 resamples" in text and "fewer than 5 seeds" in text


def test_one_seed_shows_its_value_without_spread_or_interval(tmp_path):
    values = {(m, 0): {"error": {"gauss@5": g[0], "fog@5": f[0]}} for m, g, f in
              zip(GAUSS, GAUSS.values(), FOG.values())}
    folder = write_folder(tmp_path / "single", values, splits=DOMAINS[:2])
    for ci in (None, 95):
        text = render_pivot(pivot(compare([folder], ci=ci)), "md")
        assert "| source | 1 | 0.500 | **0.400** | 0.450 |" in text
        assert "±" not in text.split("_")[0] and "[" not in text.split("_")[0]
        assert "0.000" not in text


def test_latex_pivot_is_booktabs_with_bold_best(domains):
    text = render_pivot(pivot(compare([domains], metrics="error", ci=95)), "latex")
    lines = text.splitlines()
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert rule in lines
    assert r"\begin{tabular}{lrrrr}" in lines
    assert r"method & n & gauss@5 & fog@5 & mean \\" in lines
    assert r"tent & 3 & \textbf{0.320 [0.300, 0.340]} & 0.450 [0.430, 0.470] & \textbf{0.385 [0.375, 0.405]} \\" in lines
    assert lines.index(r"\toprule") < lines.index(r"\midrule") < lines.index(r"\bottomrule")


def test_csv_pivot_is_wide_at_full_precision(domains):
    frame = pd.read_csv(io.StringIO(render_pivot(pivot(compare([domains], metrics="error", ci=95)), "csv")))
    assert list(frame.columns[:6]) == ["metric", "dataset", "model", "method", "variant", "gauss@5"]
    assert {"gauss@5_std", "gauss@5_n", "gauss@5_ci_lo", "fog@5_ci_hi", "mean", "mean_n"} <= set(frame.columns)
    tent = frame[frame["method"] == "tent"].iloc[0]
    assert tent["mean"] == pytest.approx(0.385)
    assert tent["fog@5_ci_lo"] == pytest.approx(direct_bootstrap(FOG["tent"], 95)[0])
    assert tent["gauss@5_n"] == 3


def test_rich_pivot_renders_bold_best(domains):
    (table,) = rich_pivot(pivot(compare([domains], metrics="error")))
    console = Console(record=True, width=200)
    console.print(table)
    assert "0.485 ± 0.031" in console.export_text()
    assert [c.style for c in table.columns[2].cells] == ["", "bold"]


# --------------------------------------------------------------------------- inputs of several folders


CONFIG = {"task": "tta", "dataset": {"name": "digits-c", "severity": 5, "path": "data/a"},
          "scenario": {"batch_size": 64, "order": "continual"}, "data": ["aaaa1111", "bbbb2222"]}


def test_folders_with_different_streams_or_data_are_named(tmp_path):
    a = write_folder(tmp_path / "a", error_values(), splits=DOMAINS, config=CONFIG)
    moved = {**CONFIG, "dataset": {**CONFIG["dataset"], "path": "/elsewhere"}}
    same = write_folder(tmp_path / "same", error_values(), splits=DOMAINS, config=moved)
    assert compare([a, same]).warnings == []  # another place, the same content digests
    other = {**CONFIG, "scenario": {**CONFIG["scenario"], "batch_size": 16}, "data": ["cccc3333"]}
    b = write_folder(tmp_path / "b", error_values(), splits=DOMAINS, config=other)
    (warning,) = compare([a, b]).warnings
    assert "scenario.batch_size (a: 64; b: 16)" in warning
    assert "data (a: aaaa1111+bbbb2222; b: cccc3333)" in warning
    assert "dataset" not in warning and "order" not in warning


def test_input_differences_skip_folders_without_configuration():
    runs = pd.DataFrame({"config": [""], "status": ["done"]})
    assert input_differences({"old": runs, "older": runs}) == []


# --------------------------------------------------------------------------- the command line


def test_cli_pivot_ci_latex_and_the_input_warning(tmp_path, domains):
    other = {**CONFIG, "scenario": {"batch_size": 16}}
    a = write_folder(tmp_path / "a", error_values(), splits=DOMAINS, config=CONFIG)
    b = write_folder(tmp_path / "b", error_values(), splits=DOMAINS, config=other)
    runner = CliRunner()
    result = runner.invoke(app, ["compare", str(domains), "--metric", "error", "--pivot", "split",
                                 "--ci", "95", "--format", "latex"])
    assert result.exit_code == 0, result.output
    assert r"\toprule" in result.stdout and r"\textbf{0.320 [0.300, 0.340]}" in result.stdout
    shown = runner.invoke(app, ["compare", str(a), str(b), "--metric", "error", "--pivot", "split"])
    assert shown.exit_code == 0, shown.output
    assert "warning: the folders differ" in shown.stderr and "scenario.batch_size" in shown.stderr
    assert "0.485 ± 0.031" in shown.stdout
    by_seed = runner.invoke(app, ["compare", str(domains), "-m", "error", "--split", "gauss@5,fog@5",
                                  "--pivot", "seed", "--format", "csv"])
    assert by_seed.exit_code == 0, by_seed.output
    assert list(pd.read_csv(io.StringIO(by_seed.stdout)).columns[:7]) == [
        "metric", "dataset", "model", "method", "variant", "split", "0"]
    bad = runner.invoke(app, ["compare", str(domains), "--pivot", "split", "--baseline", "source"])
    assert bad.exit_code == 2 and "do not combine" in bad.output
