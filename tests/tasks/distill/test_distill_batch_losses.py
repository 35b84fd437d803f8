"""SinKD's transport plan, DHKD's binary KL and auxiliary head, BD-KD's entropy-balanced weights."""

from __future__ import annotations

import math

import pytest
import torch

from infobench.models.train import build_model
from infobench.tasks.distill.common import FeatureTap, entropy_logits, kl_logits
from infobench.tasks.distill.losses.bdkd import BDKD
from infobench.tasks.distill.losses.dhkd import DHKD, binary_kl_logits
from infobench.tasks.distill.losses.sinkd import SinKD, sinkhorn_plan


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_sinkhorn_plan_has_uniform_marginals():
    cost = torch.rand(7, 5, generator=gen(0), dtype=torch.float64)
    plan = sinkhorn_plan(cost, eps=0.1, iterations=200)
    assert torch.allclose(plan.sum(0), torch.full((5,), 1 / 5, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(plan.sum(1), torch.full((7,), 1 / 7, dtype=torch.float64), atol=1e-6)
    # with the default 20 iterations the rows are already close
    short = sinkhorn_plan(cost, eps=0.1, iterations=20)
    assert torch.allclose(short.sum(1), torch.full((7,), 1 / 7, dtype=torch.float64), atol=1e-2)


def test_sinkhorn_is_stable_for_tiny_eps_and_recovers_the_assignment():
    # a permutation has zero cost on its matching: the plan concentrates on it
    perm = torch.tensor([2, 0, 3, 1])
    cost = torch.ones(4, 4, dtype=torch.float64)
    cost[torch.arange(4), perm] = 0.0
    plan = sinkhorn_plan(cost * 100, eps=1e-3, iterations=50)
    assert torch.isfinite(plan).all()
    assert torch.equal(plan.argmax(1), perm)
    assert float((plan * cost).sum()) == pytest.approx(0.0, abs=1e-9)


def test_sinkd_distance_is_smaller_for_identical_batches_and_differentiable():
    s = torch.randn(16, 5, generator=gen(1), dtype=torch.float64, requires_grad=True)
    t = torch.randn(16, 5, generator=gen(2), dtype=torch.float64) * 3
    loss = SinKD(SinKD.Params(w_ce=0.0))
    far = loss.distance(s, t)
    (grad,) = torch.autograd.grad(far, s)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert float(loss.distance(t, t)) < float(far.detach())
    # entropic blur shrinks with eps: identical batches cost ~0 once the plan is sharp
    sharp = SinKD(SinKD.Params(w_ce=0.0, eps=1e-4, iterations=500))
    assert float(sharp.distance(t, t)) < 1e-6


def test_binary_kl_by_hand_and_zero_on_equal_logits():
    zs = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    zt = torch.tensor([[2.0 * math.log(3.0), 0.0]], dtype=torch.float64)  # sigmoid(zt / 2) = (3/4, 1/2)
    by_hand = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert float(binary_kl_logits(zs, zt, 2.0)[0]) == pytest.approx(by_hand, rel=1e-12)
    z = torch.randn(4, 3, generator=gen(3))
    assert torch.allclose(binary_kl_logits(z, z, 2.0), torch.zeros(4), atol=1e-7)


def test_dhkd_main_head_sees_only_ce_and_aux_head_only_the_teacher():
    torch.manual_seed(0)
    student = build_model({"name": "mlp", "width": 8, "depth": 1}, (4,), 3, seed=0)
    loss = DHKD()
    loss.setup(student, student, 3)
    tap = FeatureTap(student, "features")
    x, y = torch.randn(6, 4, generator=gen(4)), torch.tensor([0, 1, 2, 0, 1, 2])
    teacher_logits = torch.randn(6, 3, generator=gen(5))
    logits = student(x)
    total = loss(logits, teacher_logits, y, {"student": tap.pop()})
    total.backward()
    ce_only = torch.nn.functional.cross_entropy(student(x), y)
    (g_head,) = torch.autograd.grad(ce_only, student.head.weight)
    assert torch.allclose(student.head.weight.grad, g_head)  # the logit loss never reaches the main head
    assert loss.aux_head.weight.grad.abs().sum() > 0
    tap.remove()


def test_bdkd_weights_follow_the_entropy_gap_and_vanish_at_equality():
    confident = torch.tensor([[6.0, 0.0, 0.0]])
    unsure = torch.tensor([[0.1, 0.0, 0.0]])
    loss = BDKD()
    assert float(loss.reverse_weight(unsure, confident)) > 0.5  # student less certain: reverse KL dominates
    assert float(loss.reverse_weight(confident, unsure)) < 0.5
    assert float(loss.reverse_weight(confident, confident)) == pytest.approx(0.5)
    s, t, y = torch.randn(8, 3, generator=gen(6)), torch.randn(8, 3, generator=gen(7)), torch.arange(8) % 3
    pure = BDKD(BDKD.Params(w_ce=0.0))
    w = pure.reverse_weight(s, t)
    expected = 16 * ((1 - w) * kl_logits(t, s, 4.0) + w * kl_logits(s, t, 4.0)).mean()
    assert float(pure(s, t, y)) == pytest.approx(float(expected), rel=1e-6)
    assert float(pure(t, t, y)) == pytest.approx(0.0, abs=1e-6)
    assert entropy_logits(unsure).item() > entropy_logits(confident).item()


def test_bdkd_teacher_loss_is_ce_plus_its_reverse_kl():
    s, t, y = torch.randn(8, 3, generator=gen(8)), torch.randn(8, 3, generator=gen(9)), torch.arange(8) % 3
    expected = torch.nn.functional.cross_entropy(t, y) + 16 * kl_logits(t, s, 4.0).mean()
    assert float(BDKD().teacher_loss(t, s, y)) == pytest.approx(float(expected), rel=1e-6)
    assert BDKD.modes == ("online",)
