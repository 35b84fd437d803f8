"""Task ``ib``: known information values, the compression summary, caching and the end-to-end run."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest

from infobench import registry
from infobench.errors import InfobenchError, SpecError
from infobench.results import load_metrics
from infobench.runner import execute, plan
from infobench.spec import validate
from infobench.tasks.base import RunContext
from infobench.tasks.ib.recording import Recording
from infobench.tasks.ib.task import check_estimator_kinds, compression, estimate_layers, x_variable
from infobench.tasks.ib.tishby_data import tishby_pool


def binary_entropy_bits(p: float) -> float:
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def hand_recording(n: int = 4096) -> Recording:
    """The first n inputs; layer1 = 2x - 1 (one-to-one), layer2 = 0 (constant), output = one-hot label."""
    x, y = (a[:n] for a in tishby_pool())
    one_hot = np.eye(2, dtype=np.float32)[y]
    layers = {"layer1": (2 * x - 1)[None], "layer2": np.zeros((1, n, 3), np.float32), "output": one_hot[None]}
    nan = np.array([np.nan])
    return Recording(epochs=np.array([0]), layers=layers, x=np.asarray(x), y=np.asarray(y),
                     part=np.zeros(n, np.int8), train_accuracy=nan, test_accuracy=nan, loss=nan,
                     epoch_seconds=1.0, record_seconds=0.0)


def estimates(rec: Recording, estimator, x_choice: str = "auto") -> pd.DataFrame:
    ctx = RunContext(run=None, plots_dir=None, logger=logging.getLogger("test"))
    kinds = type(estimator).kinds
    estimate_layers(ctx, rec, estimator, x_variable(rec, x_choice, kinds), rec.y[:, None])
    return pd.DataFrame(ctx.rows)


def binning(**params):
    cls = registry.get("mi.estimator", "binning")
    return cls(cls.Params(**params))


@pytest.mark.parametrize("x_choice", ["auto", "inputs", "index"])
def test_a_one_to_one_layer_carries_12_bits_and_a_constant_none(x_choice):
    table = estimates(hand_recording(), binning(n_bins=30, range=(-1.0, 1.0)), x_choice)
    value = table.set_index(["metric", "split"])["value"]
    assert value["mi_xt_bits", "layer1"] == pytest.approx(12.0, abs=1e-9)
    h_y = binary_entropy_bits(2036 / 4096)  # I(T;Y) = H(Y) when T determines X
    assert value["mi_ty_bits", "layer1"] == pytest.approx(h_y, abs=1e-9)
    assert value["mi_xt_bits", "layer2"] == pytest.approx(0.0, abs=1e-12)
    assert value["mi_ty_bits", "layer2"] == pytest.approx(0.0, abs=1e-12)
    # the one-hot label layer: I(X;T) = H(Y) for a deterministic T = Y
    assert value["mi_xt_bits", "output"] == pytest.approx(h_y, abs=1e-9)


def test_x_is_the_exact_input_pattern_for_integer_inputs():
    rec = hand_recording()
    ids = x_variable(rec, "auto", ("discrete", "continuous", "mixed"))
    assert ids.shape == (4096, 1) and ids.dtype == np.int64 and len(np.unique(ids)) == 4096
    assert x_variable(rec, "auto", ("mixed",)).shape == (4096, 1)  # label-only estimators get ids
    continuous = Recording(**{**rec.__dict__, "x": rec.x + 0.5 * np.random.default_rng(0).random(rec.x.shape).astype(np.float32)})
    assert x_variable(continuous, "auto", ("discrete", "continuous", "mixed")).shape == (4096, 12)


def test_fitting_and_compression_are_the_rise_to_and_the_drop_from_the_peak():
    assert compression(np.array([1.0, 3.0, 2.5, 2.0]), np.array([0, 1, 10, 100])) == (2.0, 1.0, 1)
    assert compression(np.array([1.0, 2.0, 3.0]), np.array([0, 5, 9])) == (2.0, 0.0, 9)  # still rising
    assert compression(np.array([3.0, 2.0, 1.0]), np.array([0, 5, 9])) == (0.0, 2.0, 0)  # compression only


def test_estimators_without_label_support_are_refused():
    with pytest.raises(InfobenchError, match="'cont_only' supports only continuous"):
        check_estimator_kinds("cont_only", ("continuous",))
    assert check_estimator_kinds("ok", ("continuous", "mixed")) == ("continuous", "mixed")


def tiny_ib_spec(**scenario) -> dict:
    return {
        "name": "ib-tiny", "task": "ib", "seeds": [0], "threads": 1,
        "dataset": {"name": "tishby12"},
        "model": {"name": "ib_mlp", "activation": "tanh"},
        "train": {"epochs": 4, "lr": 1e-3, "batch_size": 256},
        "scenario": {"n_records": 3, **scenario},
        "methods": [{"name": "binning", "n_bins": 30, "range": [-1.0, 1.0]},
                    {"name": "binning", "n_bins": 10, "range": [-1.0, 1.0]}],
    }


def test_end_to_end_two_estimators_share_one_training(tmp_path, isolated_cache):
    summary = execute(plan(validate(tiny_ib_spec(record_at=[4, 0, 1])), tmp_path))
    assert summary.statuses == {"done": 2}
    assert len(list((isolated_cache / "ib").glob("*.npz"))) == 1  # trained once for both estimators
    metrics = load_metrics([tmp_path / "ib-tiny"])
    mi = metrics[metrics["metric"].isin(["mi_xt_bits", "mi_ty_bits"])]
    layers = ["layer1", "layer2", "layer3", "layer4", "layer5", "output"]
    # one row per (epoch, layer, estimator, quantity) at the epochs asked for
    assert len(mi) == 3 * len(layers) * 2 * 2
    assert sorted(mi["split"].unique()) == layers and sorted(mi["step"].unique()) == [0, 1, 4]
    xt = mi[mi["metric"] == "mi_xt_bits"]
    ty = mi[mi["metric"] == "mi_ty_bits"]
    assert xt["value"].between(0, 12 + 1e-9).all()  # I(X;T) <= H(X) = 12 bits
    assert ty["value"].between(0, binary_entropy_bits(2036 / 4096) + 1e-9).all()  # I(T;Y) <= H(Y)
    # 30 bins over [-1, 1] refine 10 bins: a deterministic T's I(X;T) = H(T) can only grow
    fine = xt[xt["variant"].str.contains("n_bins=30") | ~xt["variant"].str.contains("n_bins")]
    coarse = xt[xt["variant"].str.contains("n_bins=10")]
    key = ["split", "step"]
    joined = fine.set_index(key)["value"].to_frame("fine").join(coarse.set_index(key)["value"].rename("coarse"))
    assert (joined["fine"] >= joined["coarse"] - 1e-9).all()
    assert (metrics.loc[metrics["metric"] == "compression_bits", "value"] >= 0).all()
    plots = {p.name for p in (tmp_path / "ib-tiny" / "plots").glob("*.png")}
    assert "ib_compression.png" in plots
    assert sum(name.startswith("ib_plane_") for name in plots) == 2
    assert sum(name.startswith("ib_mi_epochs_") for name in plots) == 2


def test_bad_specs_name_the_key():
    with pytest.raises(SpecError, match=r"scenario\.n_record"):
        validate(tiny_ib_spec(n_record=3))
    bad = tiny_ib_spec()
    bad["model"]["widths"] = [10, 0]
    with pytest.raises(SpecError, match=r"model\.widths\[1\]"):
        validate(bad)
    with pytest.raises(SpecError, match=r"scenario.record_at: epoch 9 is after the last epoch"):
        validate(tiny_ib_spec(record_at=[0, 9]))
    bad = tiny_ib_spec()
    bad["methods"] = ["binnning"]
    with pytest.raises(SpecError, match="did you mean 'binning'"):
        validate(bad)


def test_noisy_representation_estimators_get_the_representation_in_the_right_place():
    """KDE (Saxe et al.) bounds H(T + Z) - H(Z): log2(n) bits for n well-separated rows, 0 for a constant."""
    kde = registry.get("mi.estimator", "kde")
    rec = hand_recording(512)
    table = estimates(rec, kde(kde.Params(noise_variance=0.01)))
    value = table.set_index(["metric", "split"])["value"]
    assert value["mi_xt_bits", "layer1"] == pytest.approx(9.0, abs=1e-6)
    assert value["mi_xt_bits", "layer2"] == pytest.approx(0.0, abs=1e-9)
    assert value["mi_ty_bits", "layer1"] == pytest.approx(binary_entropy_bits(rec.y.mean()), abs=1e-6)
