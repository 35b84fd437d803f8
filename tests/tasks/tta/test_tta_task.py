"""The tta protocol end to end: a spec runs, predictions come before updates, metrics are tidy."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from tests_support import TTA_DIGITS

from infobench.results import load_metrics
from infobench.runner import execute, plan
from infobench.spec import validate

SPEC = {**TTA_DIGITS, "train": {"epochs": 8, "lr": 3.0e-3, "batch_size": 64},
        "scenario": {"order": "continual", "batch_size": 64, "max_per_domain": 192},
        "methods": ["source", "norm", "tent"]}

@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("tta")
    summary = execute(plan(validate(copy.deepcopy(SPEC)), out))
    assert summary.statuses == {"done": 3}
    return out / "tta-tiny", load_metrics([out / "tta-tiny"])


def final(metrics, method, metric, split="stream"):
    rows = metrics[(metrics["method"] == method) & (metrics["metric"] == metric)
                   & (metrics["split"] == split) & metrics["step"].isna()]
    assert len(rows) == 1, (method, metric, split)
    return float(rows["value"].iloc[0])


def test_source_online_error_is_the_error_before_adaptation(tiny_results):
    _, m = tiny_results
    for split in ("defocus_blur@5", "contrast@5", "stream"):
        assert final(m, "source", "error", split) == final(m, "source", "error_before", split)
    # every method sees the same stream, so the before-adaptation error is shared
    assert final(m, "tent", "error_before") == final(m, "source", "error_before")


def test_norm_and_tent_beat_source_under_severe_corruption(tiny_results):
    _, m = tiny_results
    source = final(m, "source", "error")
    assert final(m, "norm", "error") < source - 0.1
    assert final(m, "tent", "error") < source - 0.1


def test_per_batch_rows_and_run_facts(tiny_results):
    folder, m = tiny_results
    per_batch = m[(m["method"] == "tent") & (m["split"] == "stream") & (m["metric"] == "error") & m["step"].notna()]
    assert sorted(per_batch["step"]) == list(range(6))  # 2 domains x 192 samples / 64
    # the stream's error is the sample-weighted mean of the batch errors (equal batches here)
    assert np.mean(per_batch["value"]) == pytest.approx(final(m, "tent", "error"))
    assert final(m, "tent", "samples", "defocus_blur@5") == 192
    assert final(m, "tent", "kept") == 1.0
    assert final(m, "tent", "needs_source", "run") == 0.0
    assert final(m, "tent", "updates_bn_affine", "run") == 1.0
    assert final(m, "norm", "updates_bn_stats", "run") == 1.0
    assert 0 <= final(m, "tent", "ece") <= 1
    assert (folder / "plots" / "online_error.png").is_file()


def test_prediction_comes_before_the_update_on_the_same_batch(source_model, digits_c):
    """Tent's logits of a batch equal those of the model as it was before seeing that batch."""
    import torch

    from infobench import registry
    from infobench.tasks.tta.methods.base import SourceInfo

    tent = registry.get("tta.method", "tent")()
    tent.setup(copy.deepcopy(source_model), SourceInfo(num_classes=10))
    x = torch.as_tensor(digits_c.domains["contrast@5"].x[:64])
    frozen = copy.deepcopy(tent.model)
    with torch.no_grad():
        expected = frozen(x)
    got = tent.adapt_and_predict(x)
    assert torch.allclose(got, expected, atol=1e-6)
    with torch.no_grad():
        assert not torch.allclose(tent.model(x), expected, atol=1e-6)  # it did update


def test_bad_scenarios_are_refused_with_their_key(tmp_path):
    from infobench.errors import InfobenchError, SpecError

    bad = copy.deepcopy(SPEC) | {"scenario": {"order": "sideways"}}
    with pytest.raises(SpecError, match="scenario.order"):
        validate(bad)
    bad = copy.deepcopy(SPEC) | {"scenario": {"order": "open_set", "outliers": "held_out"}}
    with pytest.raises(SpecError, match="held_out_classes"):
        validate(bad)
    unknown = copy.deepcopy(SPEC) | {"scenario": {"order": "single", "domain": "fog@5"}, "methods": ["source"],
                                     "train": {"epochs": 1}}
    summary = execute(plan(validate(unknown), tmp_path))
    assert summary.statuses == {"failed": 1}
    log = next((tmp_path / "tta-tiny" / "logs").glob("*.log")).read_text()
    assert "'fog@5' is not a domain" in log
    assert InfobenchError


def test_open_set_runs_score_outliers_and_error_only_inliers(tmp_path):
    spec = copy.deepcopy(SPEC) | {"name": "tta-open", "methods": ["source", "norm"]}
    spec["scenario"] = {"order": "open_set", "batch_size": 64, "max_per_domain": 120, "outlier_ratio": 0.25}
    assert execute(plan(validate(spec), tmp_path)).statuses == {"done": 2}
    m = load_metrics([tmp_path / "tta-open"])
    assert final(m, "source", "outliers") == 80  # 2 domains x 120 inliers x 0.25 / 0.75
    assert final(m, "source", "samples") == 320
    for name in ("auroc_msp", "fpr95_msp", "auroc_energy", "fpr95_energy"):
        assert 0 <= final(m, "norm", name) <= 1
    # inlier error of the source model is its error on the same domain samples without outliers
    assert final(m, "source", "error") == final(m, "source", "error_before")


@pytest.mark.parametrize(("reset", "expected"), [("per_domain", 1), ("never", 0)])
def test_reset_per_domain_resets_at_every_domain_change_only(tmp_path, monkeypatch, reset, expected):
    from infobench.tasks.tta.methods.tent import Tent

    calls = []
    original = Tent.reset
    monkeypatch.setattr(Tent, "reset", lambda self: calls.append(1) or original(self))
    spec = copy.deepcopy(SPEC) | {"name": f"tta-reset-{reset}", "methods": ["tent"]}
    spec["scenario"] = {"order": "continual", "batch_size": 64, "max_per_domain": 128, "reset": reset}
    assert execute(plan(validate(spec), tmp_path)).statuses == {"done": 1}
    assert len(calls) == expected  # 2 domains: one change of domain
    m = load_metrics([tmp_path / f"tta-reset-{reset}"])
    assert final(m, "tent", "reset_per_domain", "run") == float(reset == "per_domain")
