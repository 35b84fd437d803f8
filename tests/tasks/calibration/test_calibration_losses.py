"""Training losses: values by hand, the limits each paper states, and their place in a spec."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from infobench.errors import SpecError
from infobench.spec import validate
from infobench.tasks.calibration.losses.aldr_kl import ALDRKL, ldr_kl
from infobench.tasks.calibration.losses.cape import CaPE, binned_targets
from infobench.tasks.calibration.losses.flsd53 import AdaptiveFocalLoss
from infobench.tasks.calibration.losses.focal import FocalLoss
from infobench.tasks.calibration.losses.label_smoothing import LabelSmoothing


def test_focal_loss_by_hand_and_its_cross_entropy_limit():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # p_y = 3/4 for y = 1
    y = torch.tensor([1])
    fl = FocalLoss()(logits, y, torch.tensor([0]))
    assert float(fl) == pytest.approx(0.25**3 * -math.log(0.75), rel=1e-6)
    z = torch.randn(20, 5, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(20) % 5
    zero = FocalLoss(FocalLoss.Params(gamma=0.0)).batch_loss(z, labels)
    assert float(zero) == pytest.approx(float(F.cross_entropy(z, labels)), rel=1e-6)


def test_flsd53_switches_gamma_at_p_y_of_one_fifth():
    y = torch.tensor([1, 1])
    logits = torch.tensor([[math.log(9.0), 0.0], [0.0, math.log(3.0)]])  # p_y = 0.1 and 0.75
    expected = (0.9**5 * -math.log(0.1) + 0.25**3 * -math.log(0.75)) / 2
    assert float(AdaptiveFocalLoss().batch_loss(logits, y)) == pytest.approx(expected, rel=1e-6)


def test_label_smoothing_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # p = (1/4, 3/4), y = 1, eps = 0.1, C = 2
    expected = -(0.95 * math.log(0.75) + 0.05 * math.log(0.25))
    assert float(LabelSmoothing().batch_loss(logits, torch.tensor([1]))) == pytest.approx(expected, rel=1e-6)


def test_ldr_kl_interpolates_between_mean_and_max_of_the_margins():
    # zero logits: the shifted differences are (c, 0, c) for y = 1 and c = 1
    logits, y = torch.zeros(1, 3), torch.tensor([1])
    lam = torch.tensor([0.5])
    assert float(ldr_kl(logits, y, lam, 1.0)) == pytest.approx(0.5 * math.log((2 * math.exp(2) + 1) / 3), rel=1e-6)
    # lambda -> infinity: the mean 2/3; lambda -> 0: the max 1
    assert float(ldr_kl(logits, y, torch.tensor([1e4]), 1.0)) == pytest.approx(2 / 3, abs=1e-3)
    assert float(ldr_kl(logits, y, torch.tensor([1e-3]), 1.0)) == pytest.approx(1.0, abs=1e-2)


def test_aldr_kl_adapts_each_samples_lambda_by_its_index():
    loss = ALDRKL()
    loss.setup(n_train=4, n_classes=3)
    # sample 2: uniform prediction (KL 0) keeps lambda_0; sample 0: near one-hot -> lambda_0 (1 - 1/alpha)
    logits = torch.tensor([[50.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    loss(logits, torch.tensor([0, 0]), torch.tensor([0, 2]))
    assert loss.lambdas[2] == pytest.approx(1.0)
    assert loss.lambdas[0] == pytest.approx(0.5, abs=1e-6)
    assert loss.lambdas[1] == loss.lambdas[3] == 1.0  # untouched samples keep their value


def test_cape_targets_are_bin_frequencies():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=12)
    labels = rng.integers(0, 3, 12)
    # one bin: every sample's target is the class frequency
    freq = np.bincount(labels, minlength=3) / 12
    np.testing.assert_allclose(binned_targets(probs, labels, 1), np.tile(freq / freq.sum(), (12, 1)))
    # one sample per bin: the targets are the labels themselves
    np.testing.assert_allclose(binned_targets(probs, labels, 12), np.eye(3)[labels])


def test_cape_trains_with_cross_entropy_during_warmup_then_alternates():
    loss = CaPE(CaPE.Params(n_bins=2, warmup_fraction=0.5))
    model = torch.nn.Linear(2, 2)
    x, y = torch.randn(8, 2, generator=torch.Generator().manual_seed(0)), torch.arange(8) % 2
    calls = []
    for epoch in range(1, 7):
        loss.start_epoch(epoch, 6, model, x, y)
        calls.append(loss.targets is not None)
    assert calls == [False, False, False, True, False, True]


def spec_with_loss(loss):
    return {"name": "t", "task": "calibration", "dataset": {"name": "digits"}, "model": {"name": "mlp"},
            "loss": loss, "methods": ["uncalibrated"]}


def test_spec_selects_losses_and_a_grid_makes_one_setting_per_loss():
    spec = validate(spec_with_loss({"name": {"grid": ["ce", "focal", "aldr_kl"]}}))
    assert [s.blocks["loss"]["name"] for s in spec.settings] == ["ce", "focal", "aldr_kl"]
    assert spec.settings[1].blocks["loss"]["params"] == {"gamma": 3.0}  # defaults filled in
    runs = spec.runs()
    assert len({r.run_id for r in runs}) == 3 and "loss.name=focal" in runs[1].variant


def test_spec_refuses_unknown_losses_and_parameters():
    with pytest.raises(SpecError, match="did you mean 'focal'"):
        validate(spec_with_loss({"name": "focl"}))
    with pytest.raises(SpecError, match=r"loss 'focal': params.gama"):
        validate(spec_with_loss({"name": "focal", "params": {"gama": 2}}))
