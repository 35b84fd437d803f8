"""The maximum-CMI teacher objective (Ye et al. 2024): the batch CMI estimate and its sign in the loss."""

from __future__ import annotations

import math

import pytest
import torch

from infobench.tasks.distill.losses.mcmi import MCMIObjective, conditional_mutual_information


def test_cmi_is_zero_when_every_sample_predicts_its_class_mean():
    per_class = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 0, 1, 2, 2, 2, 3, 1])
    assert float(conditional_mutual_information(per_class[y], y)) == pytest.approx(0.0, abs=1e-7)


def test_cmi_by_hand_on_two_samples_of_one_class():
    p = torch.tensor([[0.8, 0.2], [0.4, 0.6]], dtype=torch.float64)
    y = torch.tensor([0, 0])
    # class mean Q = (0.6, 0.4)
    kl1 = 0.8 * math.log(0.8 / 0.6) + 0.2 * math.log(0.2 / 0.4)
    kl2 = 0.4 * math.log(0.4 / 0.6) + 0.6 * math.log(0.6 / 0.4)
    assert float(conditional_mutual_information(p.log(), y)) == pytest.approx((kl1 + kl2) / 2, rel=1e-12)


def test_objective_rewards_cmi():
    logits = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    y = torch.arange(16) % 4
    ce = float(torch.nn.functional.cross_entropy(logits, y))
    cmi = float(conditional_mutual_information(logits, y))
    assert cmi > 0
    assert float(MCMIObjective()(logits, y)) == pytest.approx(ce - 0.2 * cmi, rel=1e-6)
    assert float(MCMIObjective(MCMIObjective.Params(cmi_weight=0.0))(logits, y)) == pytest.approx(ce, rel=1e-6)
