"""Issue 13 at the spec and run level: family defaults, the filter warning, checkpoints as part
of a run's identity, ``train: none``."""

from __future__ import annotations

import copy

import pytest
import torch
from tests_support import TTA_DIGITS

from infobench.errors import DataError
from infobench.results import load_runs
from infobench.runner import execute, plan
from infobench.spec import validate

TTA = {**TTA_DIGITS, "name": "scale-tta"}


def test_eata_takes_the_cifar_family_defaults_unless_the_spec_sets_them():
    """digits-c is of the CIFAR family: EATA gets the anchors' CIFAR-10-C values (d_margin 0.4,
    fisher_alpha 1, Adam 1e-3) instead of the ImageNet ones its paper's defaults are, which on 10
    classes keep almost no sample; a value the spec sets stays."""
    spec = validate({**copy.deepcopy(TTA), "methods": ["eata", {"name": "eata", "d_margin": 0.1}]})
    default, given = (r.params for r in spec.runs())
    assert default["d_margin"] == 0.4 and default["fisher_alpha"] == 1.0
    assert default["optimizer"] == "adam" and default["lr"] == 1e-3
    assert given["d_margin"] == 0.1 and given["fisher_alpha"] == 1.0
    assert [r.variant for r in spec.runs()] == ["eata", "eata(d_margin=0.1)"]


def test_a_filter_that_keeps_almost_nothing_warns(tmp_path):
    """ETA with an entropy margin no prediction passes keeps 0% of each domain: the run says so
    (in runs.csv and the summary) instead of silently acting as BN adaptation."""
    spec = validate({**copy.deepcopy(TTA), "methods": [{"name": "eta", "entropy_factor": 1e-6}]})
    summary = execute(plan(spec, tmp_path))
    assert summary.statuses == {"done": 1}
    warnings = load_runs(tmp_path / "scale-tta")["warnings"].iloc[0]
    assert "defocus_blur@5: the method's sample filter kept 0.0% of the samples" in warnings
    assert any("kept 0.0%" in w for w in summary.warnings)


def _mlp_checkpoint(path, seed=0):
    from infobench.models.train import build_model

    model = build_model({"name": "mlp", "width": 16, "depth": 1}, (64,), 10, seed=seed)
    torch.save(model.state_dict(), path)


def _checkpoint_spec(path, train="none"):
    return {**copy.deepcopy(TTA), "dataset": {"name": "digits-c", "corruptions": ["contrast"], "severity": 5},
            "model": {"name": "mlp", "width": 16, "depth": 1, "checkpoint": str(path)}, "train": train,
            "methods": ["source"]}


def test_a_checkpoint_is_part_of_the_run_identity(tmp_path):
    ckpt = tmp_path / "weights.pt"
    _mlp_checkpoint(ckpt, seed=0)
    first = plan(validate(_checkpoint_spec(ckpt)), tmp_path / "out")
    assert {len(r.config["weights"]["model"]) for r in first.runs} == {64}  # a sha256
    _mlp_checkpoint(ckpt, seed=1)  # other weights under the same name
    second = plan(validate(_checkpoint_spec(ckpt)), tmp_path / "out")
    assert {r.run_id for r in first.runs}.isdisjoint({r.run_id for r in second.runs})


def test_train_none_scores_the_checkpoint_as_it_is(tmp_path):
    """With ``train: none`` the source model is the checkpoint: its accuracy before adaptation is
    that of the stored weights, whatever the training block would have done."""
    import numpy as np

    from infobench.models.train import build_model, predict_logits
    from infobench.results import load_metrics
    from infobench.tasks.common import load_data

    ckpt = tmp_path / "weights.pt"
    _mlp_checkpoint(ckpt)
    summary = execute(plan(validate(_checkpoint_spec(ckpt)), tmp_path / "out"))
    assert summary.statuses == {"done": 1}
    m = load_metrics(tmp_path / "out" / "scale-tta")
    before = m[(m.metric == "error_before") & (m.split == "contrast@5") & (m.method == "source")]["value"].iloc[0]
    model = build_model({"name": "mlp", "width": 16, "depth": 1}, (64,), 10)
    model.load_state_dict(torch.load(ckpt, weights_only=True))
    data = load_data({"name": "digits-c", "corruptions": ["contrast"], "severity": 5}, 0)
    x = data.domains["contrast@5"]
    expected = float(np.mean(predict_logits(model, x.x).argmax(1) != x.y))
    assert abs(before - expected) < 0.1  # the stream scores a subsample of 128 of the domain
    assert expected > 0.5  # untrained weights: far from what 3 epochs of training would give


def test_a_missing_checkpoint_is_named_at_plan_time(tmp_path):
    with pytest.raises(DataError, match="model.checkpoint: .*nowhere.pt is not a file"):
        plan(validate(_checkpoint_spec(tmp_path / "nowhere.pt")), tmp_path / "out")
