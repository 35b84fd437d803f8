"""Poole et al.'s I_alpha bound as used by Distiller's MI-alpha: its NWJ and InfoNCE ends and its ceiling."""

from __future__ import annotations

import math

import pytest
import torch

from infobench.models.train import build_model
from infobench.tasks.distill.common import FeatureTap
from infobench.tasks.distill.losses.mi_alpha import MIAlpha, interpolated_bound, log_loo_mean_exp


def scores_matrix(seed: int, b: int = 12) -> torch.Tensor:
    return torch.randn(b, b, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_alpha_zero_is_nwj_computed_by_hand():
    s = scores_matrix(0)
    b = s.shape[0]
    off = ~torch.eye(b, dtype=torch.bool)
    nwj = s.diagonal().mean() - math.exp(-1) * s[off].exp().mean()
    assert float(interpolated_bound(s, 0.0)) == pytest.approx(float(nwj), rel=1e-10)


def test_leave_one_out_mean_matches_the_definition():
    s = scores_matrix(3, b=6) * 20
    b = s.shape[0]
    direct = torch.stack([torch.stack([torch.logsumexp(s[i][torch.arange(b) != j], 0) for j in range(b)])
                          for i in range(b)]) - math.log(b - 1)
    assert torch.allclose(log_loo_mean_exp(s), direct, rtol=0, atol=1e-12)


def test_constant_scores_carry_no_information_at_alpha_one():
    assert float(interpolated_bound(torch.full((8, 8), 3.7, dtype=torch.float64), 1.0)) == pytest.approx(0.0, abs=1e-10)


def confident(b: int, diagonal: float) -> torch.Tensor:
    s = torch.zeros(b, b, dtype=torch.float64)
    return s.fill_diagonal_(diagonal)  # a critic sure of every joint pair


def test_alpha_bounds_saturate_near_log_b_while_nwj_grows_without_limit():
    b = 10
    for alpha in (0.5, 1.0):
        low, high = float(interpolated_bound(confident(b, 12.0), alpha)), float(interpolated_bound(confident(b, 24.0), alpha))
        assert high == pytest.approx(low, abs=1e-3)
        assert high <= 1 + math.log((b - 1) / alpha)  # the leave-one-out estimator's ceiling
    # the InfoNCE end sits at log(b - 1) for a perfect critic
    assert float(interpolated_bound(confident(b, 24.0), 1.0)) == pytest.approx(math.log(b - 1), abs=1e-6)
    assert float(interpolated_bound(confident(b, 24.0), 0.0)) > 20


def test_mi_alpha_reads_both_penultimate_layers_through_hooks():
    student = build_model({"name": "mlp", "width": 8, "depth": 1}, (5,), 3, seed=0)
    teacher = build_model({"name": "mlp", "width": 20, "depth": 2}, (5,), 3, seed=1)
    loss = MIAlpha()
    loss.setup(student, teacher, 3)
    assert loss.project_student.in_features == 8 and loss.project_teacher.in_features == 20
    taps = FeatureTap(student, "features"), FeatureTap(teacher, "features")
    x, y = torch.randn(16, 5, generator=torch.Generator().manual_seed(2)), torch.arange(16) % 3
    s_logits, t_logits = student(x), teacher(x)
    value = loss(s_logits, t_logits, y, {"student": taps[0].pop(), "teacher": taps[1].pop()})
    value.backward()
    assert student.body[0].weight.grad.abs().sum() > 0 and loss.project_teacher.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="features"):
        loss(s_logits, t_logits, y, None)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        FeatureTap(student, "nope")
