"""compare(): aggregation over seeds, best marks, baseline deltas, paired tests, rendering."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from infobench.compare import compare, render, rich_tables
from infobench.errors import InfobenchError
from infobench.results import METRIC_COLUMNS, RUN_COLUMNS, ResultsFolder, read_rows

# Final test-split values per (method, seed). Hand-computed summaries:
#   source accuracy .80 .82 .84 -> mean .82, std .02;  nll .60 .55 .50 -> mean .55, std .05
#   tent   accuracy .85 .86 .90 -> mean .87, std sqrt(.0007); nll .65 .70 .60 -> mean .65, std .05
V1 = {
    ("source", 0): {"accuracy": 0.80, "nll": 0.60, "mi_xt_bits": 1.0},
    ("source", 1): {"accuracy": 0.82, "nll": 0.55, "mi_xt_bits": 2.0},
    ("source", 2): {"accuracy": 0.84, "nll": 0.50, "mi_xt_bits": 3.0},
    ("tent", 0): {"accuracy": 0.85, "nll": 0.65, "mi_xt_bits": 1.5},
    ("tent", 1): {"accuracy": 0.86, "nll": 0.70, "mi_xt_bits": 2.5},
    ("tent", 2): {"accuracy": 0.90, "nll": 0.60, "mi_xt_bits": 3.5},
}
# The second folder reruns the same configs; only tent's accuracy moved (+.01 +.02 +.01).
V2 = {key: dict(values) for key, values in V1.items()}
for seed, acc in enumerate((0.86, 0.88, 0.91)):
    V2[("tent", seed)]["accuracy"] = acc


def write_folder(root: Path, values: dict, splits=("test",), failed=(), extra_params=None, config=None) -> Path:
    """A results folder written by hand: one done run per (method, seed), plus ``failed`` runs.

    A metric's value is a number (the first split gets it, each next split 1 more) or a dict
    {split: value} (only those splits get the metric). ``config``, a dict, is every run's
    recorded configuration (its method and seed filled in per run)."""
    root.mkdir(parents=True)
    runs, rows = [], []
    entries = [(key, vals, "done") for key, vals in values.items()]
    entries += [(key, vals, "failed") for key, vals in failed]
    for (method, seed), vals, status in entries:
        run_id = f"{method}-{seed}-{status}"
        params = {"lr": 1e-3 if method == "tent" else 0.0, **(extra_params or {})}
        base = {"run_id": run_id, "task": "tta", "dataset": "digits", "model": "cnn",
                "method": method, "variant": method, "seed": seed}
        recorded = "" if config is None else json.dumps(
            {**config, "method": {"name": method, "params": params}, "seed": seed})
        runs.append({**base, "params": json.dumps(params), "config": recorded, "status": status,
                     "error": "boom" if status == "failed" else "", "seconds": 1.0})
        for s_index, split in enumerate(splits):
            for metric, value in vals.items():
                if isinstance(value, dict) and split not in value:
                    continue
                rows.append({**base, "split": split, "step": "", "metric": metric,
                             "value": value[split] if isinstance(value, dict) else value + s_index})
                # A per-step value that must not be mistaken for a final one.
                rows.append({**base, "split": split, "step": 5, "metric": metric, "value": -99.0})
    for name, columns, table in (("runs.csv", RUN_COLUMNS, runs), ("metrics.csv", METRIC_COLUMNS, rows)):
        with open(root / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(table)
    return root


def in_parquet_layout(folder: Path, root: Path) -> Path:
    """The runs of a hand-written folder recorded again by ResultsFolder: one Parquet file per
    run in metrics/ (results format 3) instead of metrics.csv."""
    rows = pd.read_csv(folder / "metrics.csv", dtype=str, keep_default_na=False)
    parquet = ResultsFolder(root / folder.name)
    for run in read_rows(folder / "runs.csv"):
        mine = rows[rows["run_id"] == run["run_id"]].to_dict("records")
        typed = [{**r, "seed": int(r["seed"]), "step": int(r["step"]) if r["step"] else None,
                  "value": float(r["value"])} for r in mine]
        parquet.record(run, typed if run["status"] == "done" else [])
    return parquet.root


@pytest.fixture
def v1(tmp_path):
    return write_folder(tmp_path / "v1", V1, failed=[(("tent", 3), {"accuracy": 0.99, "nll": 0.01})])


@pytest.fixture
def v2(tmp_path):
    return write_folder(tmp_path / "v2", V2)


def row(result, method, metric, **keys):
    s = result.summary
    mask = (s["method"] == method) & (s["metric"] == metric)
    for k, v in keys.items():
        mask &= s[k] == v
    (index,) = np.flatnonzero(mask)
    return s.iloc[index]


def test_mean_std_n_over_seeds_by_hand(v1):
    result = compare([v1])
    assert result.metrics == ["accuracy", "nll", "mi_xt_bits"]
    assert result.keys == ["dataset", "model", "method", "variant", "split"]
    src = row(result, "source", "accuracy")
    assert src["mean"] == pytest.approx(0.82)
    assert src["std"] == pytest.approx(0.02)
    assert src["n"] == 3
    tent = row(result, "tent", "accuracy")
    assert tent["mean"] == pytest.approx(0.87)
    assert tent["std"] == pytest.approx(np.sqrt(0.0007))
    assert row(result, "tent", "nll")["std"] == pytest.approx(0.05)


def test_failed_runs_and_per_step_values_are_excluded(v1):
    result = compare([v1])
    tent = row(result, "tent", "accuracy")
    assert tent["n"] == 3  # the failed seed 3 (0.99) does not count
    assert result.summary["mean"].min() > 0  # the step rows (-99) are not final values


def test_single_seed_has_zero_std(tmp_path):
    folder = write_folder(tmp_path / "one", {("source", 0): {"accuracy": 0.5}})
    s = compare([folder]).summary
    assert s["std"].tolist() == [0.0]
    assert s["n"].tolist() == [1]


def test_best_follows_the_metric_direction(v1):
    result = compare([v1])
    assert bool(row(result, "tent", "accuracy")["best"])  # higher is better
    assert not bool(row(result, "source", "accuracy")["best"])
    assert bool(row(result, "source", "nll")["best"])  # lower is better
    assert not bool(row(result, "tent", "nll")["best"])
    assert not result.summary.loc[result.summary["metric"] == "mi_xt_bits", "best"].any()  # unknown


def test_best_is_marked_within_each_split(tmp_path):
    folder = write_folder(tmp_path / "multi", V1, splits=("test", "gaussian_noise@5"))
    result = compare([folder], metrics=["accuracy"])
    assert "split" in result.keys
    best = result.summary[result.summary["best"]]
    assert sorted(best["split"]) == ["gaussian_noise@5", "test"]
    assert set(best["method"]) == {"tent"}
    shifted = row(result, "tent", "accuracy", split="gaussian_noise@5")
    assert shifted["mean"] == pytest.approx(1.87)


def test_split_and_metric_filters(tmp_path):
    folder = write_folder(tmp_path / "multi", V1, splits=("test", "shift"))
    result = compare([folder], metrics=["nll", "accuracy"], split="shift")
    assert result.metrics == ["nll", "accuracy"]
    assert set(result.summary["split"]) == {"shift"}
    assert set(result.summary["metric"]) == {"nll", "accuracy"}


def test_baseline_delta(v1):
    result = compare([v1], baseline="source")
    assert row(result, "tent", "accuracy")["delta"] == pytest.approx(0.05)
    assert row(result, "tent", "nll")["delta"] == pytest.approx(0.10)
    assert row(result, "source", "accuracy")["delta"] == 0.0
    assert row(result, "source", "accuracy")["is_baseline"]


def test_missing_baseline_is_a_clear_error(v1):
    with pytest.raises(InfobenchError, match="baseline 'sorce' not found.*did you mean 'source'"):
        compare([v1], baseline="sorce")


def test_unknown_metric_suggests_a_close_name(v1):
    with pytest.raises(InfobenchError, match="no metric 'acuracy'.*did you mean 'accuracy'.*available metrics"):
        compare([v1], metrics=["acuracy"])


def test_unknown_split_names_the_available_splits(v1):
    with pytest.raises(InfobenchError, match="no split 'tset'.*did you mean 'test'.*available splits: test"):
        compare([v1], split="tset")


def test_folder_without_metrics_is_a_clear_error(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "runs.csv").write_text(",".join(RUN_COLUMNS) + "\n")
    with pytest.raises(InfobenchError, match="no metrics of finished runs"):
        compare([folder])


def test_group_by_a_run_parameter(tmp_path):
    folder = write_folder(tmp_path / "p", V1, extra_params={"scenario": {"batch_size": 64}})
    result = compare([folder], metrics="accuracy", by=["lr", "scenario.batch_size"])
    assert result.keys[-2:] == ["lr", "scenario.batch_size"]
    assert row(result, "tent", "accuracy")["lr"] == "0.001"
    with pytest.raises(InfobenchError, match="cannot group by 'lrr'.*did you mean 'lr'"):
        compare([folder], by="lrr")


def test_paired_difference_and_t_test_match_scipy(v1, v2):
    from scipy.stats import ttest_rel

    result = compare([v1, v2])
    assert result.keys[0] == "source"
    assert result.sources == ["v1", "v2"]
    paired = result.paired
    tent = paired[(paired["method"] == "tent") & (paired["metric"] == "accuracy")].iloc[0]
    a = [V1[("tent", s)]["accuracy"] for s in range(3)]
    b = [V2[("tent", s)]["accuracy"] for s in range(3)]
    expected = ttest_rel(b, a)
    assert tent["diff"] == pytest.approx(np.mean(np.subtract(b, a)))
    assert tent["diff_std"] == pytest.approx(np.std(np.subtract(b, a), ddof=1))
    assert tent["n"] == 3
    assert tent["mean_a"] == pytest.approx(0.87)
    assert tent["t"] == pytest.approx(expected.statistic)
    assert tent["p"] == pytest.approx(expected.pvalue)
    # Best marks stay within each folder's block.
    best = result.summary[(result.summary["metric"] == "accuracy") & result.summary["best"]]
    assert sorted(best["source"]) == ["v1", "v2"]


def test_paired_p_value_is_nan_for_a_single_seed(tmp_path):
    a = write_folder(tmp_path / "a", {("tent", 0): {"accuracy": 0.5}})
    b = write_folder(tmp_path / "b", {("tent", 0): {"accuracy": 0.7}})
    paired = compare([a, b]).paired
    assert paired["diff"].iloc[0] == pytest.approx(0.2)
    assert np.isnan(paired["p"].iloc[0]) and np.isnan(paired["t"].iloc[0])


def test_folders_without_shared_runs_have_no_paired_table(v1, tmp_path):
    other = write_folder(tmp_path / "other", {("norm", 0): {"accuracy": 0.5}})
    assert compare([v1, other]).paired is None


def test_folders_with_the_same_name_stay_apart(tmp_path):
    a = write_folder(tmp_path / "x" / "run", V1)
    b = write_folder(tmp_path / "y" / "run", V2)
    result = compare([a, b])
    assert result.sources == [str(a), str(b)]
    assert len(result.summary) == 2 * len(compare([a]).summary)


def test_markdown_shows_mean_std_n_and_bold_best(v1):
    text = render(compare([v1], metrics=["accuracy", "nll"]), "md")
    assert "dataset=digits" in text and "model=cnn" in text and "split=test" in text
    assert "| method | n | accuracy | nll |" in text
    assert "| source | 3 | 0.820 ± 0.020 | **0.550 ± 0.050** |" in text
    assert "| tent | 3 | **0.870 ± 0.026** | 0.650 ± 0.050 |" in text


def test_markdown_with_baseline_and_varying_n(v1, tmp_path):
    folder = write_folder(tmp_path / "uneven", {**V1, ("source", 3): {"accuracy": 0.82}})
    text = render(compare([folder], metrics=["accuracy", "nll"], baseline="source"), "md")
    assert "0.820 ± 0.016 (n=4)" in text  # accuracy has four seeds, nll three: n goes in the cells
    assert "**0.870 ± 0.026 (n=3) Δ+0.050**" in text
    assert "baseline 'source'" in text


def test_markdown_includes_the_paired_table(v1, v2):
    text = render(compare([v1, v2], metrics="accuracy"), "md")
    assert "**Paired**" in text
    assert "| tent | accuracy | 0.870 | 0.883 | +0.013 ± 0.006 | 3 |" in text


def test_csv_is_long_and_machine_readable(v1):
    text = render(compare([v1], baseline="source"), "csv")
    frame = pd.read_csv(io.StringIO(text))
    assert list(frame.columns) == [
        "dataset", "model", "method", "variant", "split", "metric",
        "mean", "std", "n", "best", "delta", "is_baseline", "stale",
    ]
    tent = frame[(frame["method"] == "tent") & (frame["metric"] == "accuracy")].iloc[0]
    assert tent["mean"] == pytest.approx(0.87)
    assert tent["std"] == pytest.approx(np.sqrt(0.0007))
    assert tent["n"] == 3
    assert bool(tent["best"])
    assert tent["delta"] == pytest.approx(0.05)


def test_csv_of_the_paired_table(v1, v2):
    result = compare([v1, v2])
    frame = pd.read_csv(io.StringIO(render(result, "csv", table="paired")))
    assert {"mean_a", "mean_b", "diff", "diff_std", "n", "t", "p"} <= set(frame.columns)
    with pytest.raises(InfobenchError, match="one table"):
        render(result, "csv", table="all")


def test_latex_escapes_and_bolds(v1):
    text = render(compare([v1]), "latex")
    assert r"\begin{tabular}{lrrrr}" in text
    assert r"mi\_xt\_bits" in text
    assert r"\textbf{0.870 $\pm$ 0.026}" in text
    assert r"0.820 $\pm$ 0.020" in text
    assert r"\toprule" in text and r"\bottomrule" in text


def test_unknown_format_is_an_error(v1):
    with pytest.raises(InfobenchError, match="unknown format 'mdd'.*did you mean 'md'"):
        render(compare([v1]), "mdd")


def test_rich_tables_render_with_bold_best(v1, v2):
    tables = rich_tables(compare([v1, v2], metrics="accuracy"))
    assert len(tables) == 2
    console = Console(record=True, width=200)
    for table in tables:
        console.print(table)
    text = console.export_text()
    assert "0.870 ± 0.026" in text and "0.883 ± 0.025" in text
    cells = list(tables[0].columns[-1].cells)
    assert any(cell.style == "bold" for cell in cells)


def test_wide_view(v1):
    wide = compare([v1]).wide()
    assert list(wide.columns) == ["accuracy", "nll", "mi_xt_bits"]
    assert wide.loc[("digits", "cnn", "tent", "tent", "test"), "accuracy"] == pytest.approx(0.87)


def test_compare_stays_light(v1, v2):
    # infobench compare must start fast: no torch, no matplotlib, and never scipy.stats.
    code = (
        "import sys; from infobench.compare import compare, render; "
        f"render(compare([{str(v1)!r}, {str(v2)!r}]), 'md'); "
        "print('torch' in sys.modules, 'scipy.stats' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_t_test_equals_scipy_ttest_rel(seed):
    from scipy.stats import ttest_rel

    from infobench.compare import _ttest_rel

    rng = np.random.default_rng(seed)
    a = rng.normal(size=2 + seed * 3)
    b = a + rng.normal(0.3, 1.0, size=a.shape)
    expected = ttest_rel(b, a)
    t, p = _ttest_rel(b, a)
    assert t == pytest.approx(expected.statistic, rel=1e-10)
    assert p == pytest.approx(expected.pvalue, rel=1e-8)


def test_t_test_of_identical_differences():
    from infobench.compare import _ttest_rel

    t, p = _ttest_rel(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 2.0]))
    assert t == np.inf and p == 0.0
    t, p = _ttest_rel(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    assert np.isnan(t) and np.isnan(p)


def relabel_tent(folder: Path, variants: dict[int, str]) -> None:
    """Give tent seeds other variant labels, as a sweep over a tent parameter would."""
    for name in ("runs.csv", "metrics.csv"):
        frame = pd.read_csv(folder / name, dtype=str, keep_default_na=False)
        for seed, variant in variants.items():
            frame.loc[(frame["method"] == "tent") & (frame["seed"] == str(seed)), "variant"] = variant
        frame.to_csv(folder / name, index=False)


def test_baseline_by_variant_label_and_ambiguous_method(tmp_path):
    folder = write_folder(tmp_path / "sweep", V1)
    relabel_tent(folder, {0: "tent(lr=1e-3)", 1: "tent(lr=1e-3)", 2: "tent(lr=1e-4)"})
    with pytest.raises(InfobenchError, match="several variants.*tent\\(lr=1e-3\\), tent\\(lr=1e-4\\)"):
        compare([folder], baseline="tent")
    result = compare([folder], metrics="accuracy", baseline="tent(lr=1e-4)")
    assert row(result, "source", "accuracy")["delta"] == pytest.approx(0.82 - 0.90)
    assert row(result, "tent", "accuracy", variant="tent(lr=1e-3)")["delta"] == pytest.approx(0.855 - 0.90)
    text = render(result, "md")
    assert "| method | variant | n | accuracy |" in text  # variant shown once it carries information


def test_group_by_a_metrics_column(v1):
    result = compare([v1], metrics="accuracy", by="seed")
    assert result.keys[-1] == "seed"
    assert (result.summary["n"] == 1).all()
    assert row(result, "tent", "accuracy", seed="2")["mean"] == pytest.approx(0.90)


def test_a_metric_with_only_per_step_values_is_explained(tmp_path):
    folder = write_folder(tmp_path / "curve", V1)
    frame = pd.read_csv(folder / "metrics.csv", dtype=str, keep_default_na=False)
    extra = frame[frame["step"] != ""].assign(metric="online_error")
    pd.concat([frame, extra]).to_csv(folder / "metrics.csv", index=False)
    with pytest.raises(InfobenchError, match="'online_error'.*only per-step values"):
        compare([folder], metrics="online_error")


def test_the_parquet_layout_compares_exactly_like_the_csv_one(tmp_path, v1, v2):
    a = compare([v1, v2], baseline="source")
    b = compare([in_parquet_layout(v1, tmp_path / "pq"), in_parquet_layout(v2, tmp_path / "pq")], baseline="source")
    pd.testing.assert_frame_equal(a.summary, b.summary)
    pd.testing.assert_frame_equal(a.paired, b.paired)
    assert render(a, "md") == render(b, "md")


def test_each_column_has_one_number_format_from_its_largest_mean(v1):
    # accuracy (largest .87) keeps 3 decimals; mi_xt_bits (largest 2.5) 3 significant digits: 2 decimals
    text = render(compare([v1]), "md")
    assert "| source | 3 | 0.820 ± 0.020 | **0.550 ± 0.050** | 2.00 ± 1.00 |" in text
    assert "| tent | 3 | **0.870 ± 0.026** | 0.650 ± 0.050 | 2.50 ± 1.00 |" in text


def test_paired_single_seed_shows_no_zero_spread(tmp_path):
    a = write_folder(tmp_path / "a", {("tent", 0): {"accuracy": 0.5}})
    b = write_folder(tmp_path / "b", {("tent", 0): {"accuracy": 0.7}})
    text = render(compare([a, b]), "md")
    assert "| tent | accuracy | 0.500 | 0.700 | +0.200 | 1 | – | – |" in text
    assert "0.000" not in text


@pytest.mark.parametrize("seeds, cautioned", [(2, True), (4, True), (5, False)])
def test_p_values_under_five_paired_seeds_carry_a_caution(tmp_path, seeds, cautioned):
    # FEW_PAIRS = 5 is stricter than issue 14's "below 3": 3-4 pairs give a t-test of 2-3 dof
    a = write_folder(tmp_path / "a", {("tent", s): {"accuracy": 0.5 + 0.01 * s} for s in range(seeds)})
    b = write_folder(tmp_path / "b", {("tent", s): {"accuracy": 0.6 + 0.013 * s} for s in range(seeds)})
    text = render(compare([a, b]), "md")
    p_cell = next(line for line in text.splitlines() if line.startswith("| tent |")).split("|")[-2]
    assert p_cell.strip().endswith("*") is cautioned
    assert ("p from fewer than 5 seeds" in text) is cautioned


def test_summary_with_bootstrap_intervals(v1):
    result = compare([v1], metrics=["accuracy"], ci=95)
    tent = row(result, "tent", "accuracy")
    # 1 resample in 27 repeats the smallest seed: the 95 % bounds are the extreme seeds
    assert (tent["ci_lo"], tent["ci_hi"]) == pytest.approx((0.85, 0.90))
    assert list(result.summary.columns[-3:]) == ["stale", "ci_lo", "ci_hi"]
    text = render(result, "md")
    assert "| tent | 3 | **0.870 [0.850, 0.900]** |" in text
    assert "95% CI" in text and "fewer than 5 seeds" in text
    with pytest.raises(InfobenchError, match="percentage between 0 and 100"):
        compare([v1], ci=0.0)
