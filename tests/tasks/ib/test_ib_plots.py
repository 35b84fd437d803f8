"""The ib figures draw means over seeds, layers in network order, and the compression per layer."""

from __future__ import annotations

import pandas as pd
import pytest

from infobench.plots import PNG_SIGNATURE
from infobench.tasks.ib.plots import compression_table, ib_figures, layer_order, plane_table


def metrics_frame() -> pd.DataFrame:
    rows = []
    for seed, shift in ((0, 0.0), (1, 1.0)):
        for layer in ("layer2", "output", "layer10"):
            for step in (0, 5):
                rows.append({"variant": "binning", "seed": seed, "split": layer, "step": step,
                             "metric": "mi_xt_bits", "value": 4.0 + step + shift})
                rows.append({"variant": "binning", "seed": seed, "split": layer, "step": step,
                             "metric": "mi_ty_bits", "value": 0.5 + shift / 10})
            rows.append({"variant": "binning", "seed": seed, "split": layer, "step": None,
                         "metric": "compression_bits", "value": 1.0 + 2 * shift})
    return pd.DataFrame(rows)


def test_layers_in_network_order():
    assert layer_order(["output", "layer10", "layer2", "layer1"]) == ["layer1", "layer2", "layer10", "output"]


def test_plane_table_is_the_mean_over_seeds():
    table = plane_table(metrics_frame())
    row = table[(table["layer"] == "layer2") & (table["epoch"] == 5)].iloc[0]
    assert row["xt"] == pytest.approx(9.5) and row["ty"] == pytest.approx(0.55)
    assert len(table) == 3 * 2


def test_compression_table_mean_and_std():
    stats = compression_table(metrics_frame()).set_index("layer")
    assert stats.loc["output", "mean"] == pytest.approx(2.0)
    assert stats.loc["output", "std"] == pytest.approx(2**0.5)  # values 1 and 3, ddof = 1
    assert stats.loc["output", "n"] == 2


def test_every_figure_is_written_as_png(tmp_path):
    paths = ib_figures(metrics_frame(), tmp_path)
    assert sorted(p.name for p in paths) == ["ib_compression.png", "ib_mi_epochs_binning.png", "ib_plane_binning.png"]
    assert all(p.read_bytes().startswith(PNG_SIGNATURE) for p in paths)


def test_compression_variants_keep_the_results_order():
    rows = [{"variant": f"binning [scenario.l2={l2}]", "seed": 0, "split": "layer1", "step": None,
             "metric": "compression_bits", "value": 1.0} for l2 in ("0", "0.0001", "0.001")]
    variants = list(dict.fromkeys(compression_table(pd.DataFrame(rows))["variant"]))
    assert variants == ["binning [scenario.l2=0]", "binning [scenario.l2=0.0001]", "binning [scenario.l2=0.001]"]
