"""Probability estimation with a known truth: psi shapes, labels ~ Bernoulli(p), truth metrics
by hand, and the Spearman rank agreement between observable and true metrics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from infobench.data.base import Split
from infobench.tasks.calibration.probability import (
    PSI,
    latent_event_split,
    rank_agreement,
    truth_metrics,
)


def test_psi_shapes_at_known_points():
    z = np.array([0.0, 0.5, 0.99])
    np.testing.assert_allclose(PSI["uniform"](z), z)
    np.testing.assert_allclose(PSI["sigmoid"](z)[1], 0.5)
    np.testing.assert_allclose(PSI["skewed"](z), z**3)
    np.testing.assert_allclose(PSI["centred"](z), [0.3, 0.5, 0.3 + 0.4 * 0.99])
    np.testing.assert_allclose(PSI["discrete"](z), [0.1, 0.5, 0.9])


def test_event_labels_follow_the_true_probability_and_amplitude_codes_s():
    n = 40000
    split = Split(x=np.ones((n, 1, 4), dtype=np.float32), y=np.arange(n) % 10)
    event, p = latent_event_split(split, 10, "uniform", np.random.default_rng(0))
    assert set(np.unique(event.y)) == {0, 1}
    assert abs(event.y.mean() - p.mean()) < 0.01  # E[y] = E[p]
    # amplitude 0.25 + 0.75 s and z = (c + s) / 10 with p = z: p is recoverable from (x, c)
    s = (event.x[:, 0, 0] - 0.25) / 0.75
    np.testing.assert_allclose((split.y + s) / 10, p, atol=1e-6)


def test_truth_metrics_by_hand():
    out = truth_metrics(np.array([0.5, 0.9]), np.array([0.5, 0.6]))
    assert out["mse_true"] == pytest.approx((0 + 0.09) / 2)
    kl = 0.6 * math.log(0.6 / 0.9) + 0.4 * math.log(0.4 / 0.1)
    assert out["kl_true"] == pytest.approx(kl / 2)
    # p of exactly 0 or 1 contributes only its finite side
    assert truth_metrics(np.array([0.5]), np.array([1.0]))["kl_true"] == pytest.approx(math.log(2))


def long_table(values: dict[str, dict[str, float]], setting: str) -> pd.DataFrame:
    rows = [{"variant": f"{method} [{setting}]", "split": "test", "step": np.nan, "metric": m, "value": v}
            for method, metrics in values.items() for m, v in metrics.items()]
    return pd.DataFrame(rows)


def test_rank_agreement_is_plus_one_for_a_faithful_metric_and_minus_one_for_a_reversed_one():
    truth = [0.01, 0.02, 0.03, 0.04]
    values = {f"m{i}": {"mse_true": t, "brier": 0.2 + t, "ece": 1 - 10 * t} for i, t in enumerate(truth)}
    frames = [long_table(values, "loss.name=ce,scenario.psi=uniform"),
              long_table({k: {**v, "mse_true": v["mse_true"] * 2} for k, v in values.items()},
                         "loss.name=cape,scenario.psi=uniform")]
    table = rank_agreement(pd.concat(frames)).set_index("metric")
    # one setting (psi = uniform) with 8 methods: 4 variants x 2 losses
    assert table.loc["brier", "n_methods"] == 8 and table.loc["brier", "setting"] == "uniform"
    assert table.loc["ece", "spearman"] < 0
    one_loss = rank_agreement(frames[0]).set_index("metric")
    assert one_loss.loc["brier", "spearman"] == pytest.approx(1.0)
    assert one_loss.loc["ece", "spearman"] == pytest.approx(-1.0)


def test_the_shipped_spec_crosses_psi_losses_and_calibrators():
    from pathlib import Path

    from infobench.spec import load_spec

    spec = load_spec(Path(__file__).parents[3] / "experiments" / "probability_estimation.yaml")
    psis = {s.blocks["scenario"]["psi"] for s in spec.settings}
    assert psis == set(PSI)
    assert {s.blocks["loss"]["name"] for s in spec.settings} == {"ce", "focal", "cape"}
    assert len(spec.runs()) == len(spec.seeds) * len(spec.settings) * len(spec.variants)


def test_a_tiny_sweep_reports_truth_and_observable_metrics_and_the_rank_figure(tmp_path):
    from infobench.results import load_metrics
    from infobench.runner import execute, plan
    from infobench.spec import validate

    spec = validate({
        "name": "tiny-pe", "task": "probability_estimation", "seeds": [0],
        "dataset": {"name": "digits"}, "model": {"name": "mlp", "width": 16},
        "train": {"epochs": 2, "lr": 0.01, "batch_size": 64}, "scenario": {"psi": "centred"},
        "methods": ["uncalibrated", "temperature", "histogram"],
    })
    summary = execute(plan(spec, tmp_path))
    metrics = load_metrics([summary.folder])
    final = metrics[metrics["split"] == "test"]
    assert {"mse_true", "kl_true", "ece", "brier", "nll"} <= set(final["metric"])
    mse = final[final["metric"] == "mse_true"]["value"]
    # p lies in [0.3, 0.7]: any prediction in [0, 1] is within 0.7 of it
    assert len(mse) == 3 and (mse >= 0).all() and (mse <= 0.49).all()
    assert any(p.name == "rank_agreement.png" for p in summary.plots)
