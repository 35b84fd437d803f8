"""Soft-target losses against hand-computed values and the divergences' defining properties."""

from __future__ import annotations

import math

import pytest
import torch

from infobench.tasks.distill.common import js_logits, kl_logits
from infobench.tasks.distill.losses.alpha_div import AlphaDivergence, alpha_divergence
from infobench.tasks.distill.losses.js import JensenShannon
from infobench.tasks.distill.losses.kd import KD
from infobench.tasks.distill.losses.rkl import ReverseKL
from infobench.tasks.distill.losses.scratch import Scratch

T = 4.0
# teacher logits whose T=4 softmax is (1/2, 1/4, 1/4); student logits 0: uniform (1/3, 1/3, 1/3)
TEACHER = (T * torch.log(torch.tensor([[0.5, 0.25, 0.25]], dtype=torch.float64)))
STUDENT = torch.zeros(1, 3, dtype=torch.float64)
LABEL = torch.tensor([0])
KL_T_S = 0.5 * math.log(1.5) + 0.5 * math.log(0.75)  # KL(p_t || p_s) = 0.0588915...
KL_S_T = (math.log(2 / 3) + 2 * math.log(4 / 3)) / 3  # KL(p_s || p_t) = 0.0566330...


def random_logits(seed: int, n: int = 64, c: int = 5, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(n, c, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


def test_kd_is_the_t2_scaled_forward_kl_computed_by_hand():
    pure = KD(KD.Params(w_ce=0.0, w_kd=1.0))
    assert float(pure(STUDENT, TEACHER, LABEL)) == pytest.approx(16 * KL_T_S, rel=1e-12)
    mixed = KD()  # w_ce 0.1, w_kd 0.9, T 4; CE of a uniform student is log 3
    assert float(mixed(STUDENT, TEACHER, LABEL)) == pytest.approx(0.1 * math.log(3) + 0.9 * 16 * KL_T_S, rel=1e-12)


def test_rkl_is_the_t2_scaled_reverse_kl_computed_by_hand():
    pure = ReverseKL(ReverseKL.Params(w_ce=0.0, w_kd=1.0))
    assert float(pure(STUDENT, TEACHER, LABEL)) == pytest.approx(16 * KL_S_T, rel=1e-12)


def test_js_by_hand_symmetric_and_bounded_by_log2():
    p = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    q = torch.full((3,), 1 / 3, dtype=torch.float64)
    m = (p + q) / 2
    by_hand = 0.5 * float((p * (p / m).log()).sum() + (q * (q / m).log()).sum())
    assert float(js_logits(TEACHER, STUDENT, T)[0]) == pytest.approx(by_hand, rel=1e-9)
    a, b = random_logits(0, scale=30.0), random_logits(1, scale=30.0)
    assert torch.allclose(js_logits(a, b), js_logits(b, a))
    assert float(js_logits(a, b).max()) <= math.log(2) + 1e-9


@pytest.mark.parametrize("loss", [KD(), ReverseKL(), JensenShannon(), AlphaDivergence()])
def test_divergence_term_is_zero_when_student_equals_teacher(loss):
    logits = random_logits(2)
    loss.params = loss.params.model_copy(update={"w_ce": 0.0})
    assert float(loss(logits, logits.clone(), torch.zeros(64, dtype=torch.long))) == pytest.approx(0.0, abs=1e-12)


def test_divergences_are_positive_when_distributions_differ():
    s, t = random_logits(3), random_logits(4)
    for values in (kl_logits(t, s), kl_logits(s, t), js_logits(t, s)):
        assert (values > 0).all()


def test_alpha_divergence_approaches_forward_kl_as_alpha_goes_to_1():
    s, t = random_logits(5), random_logits(6)  # ratios stay far below the clip
    forward = kl_logits(t, s)
    gaps = [float((alpha_divergence(s, t, a, clip=1e6)[0] - forward).abs().max()) for a in (0.9, 0.99, 0.9999)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-4
    # and alpha -> 0 gives the reverse KL
    reverse = kl_logits(s, t)
    assert torch.allclose(alpha_divergence(s, t, 1e-5, clip=1e6)[0], reverse, atol=1e-4)


def test_alpha_div_gradient_is_the_divergence_gradient_when_nothing_is_clipped():
    s, t = random_logits(7, n=8), random_logits(8, n=8)
    for alpha in (-1.0, 0.5, 1.0):
        leaf = s.clone().requires_grad_(True)
        value, surrogate = alpha_divergence(leaf, t, alpha, clip=1e6)
        (g_sur,) = torch.autograd.grad(surrogate.sum(), leaf)
        exact = leaf.detach().clone().requires_grad_(True)
        q, p = exact.softmax(1), t.softmax(1)
        if alpha == 1.0:
            d = (p * (p.log() - q.log())).sum(1)
        else:
            d = (q * ((p / q) ** alpha - 1)).sum(1) / (alpha * (alpha - 1))
        (g_exact,) = torch.autograd.grad(d.sum(), exact)
        assert torch.allclose(value, d.detach(), atol=1e-10)
        assert torch.allclose(g_sur, g_exact, atol=1e-8)


def test_alpha_div_takes_the_larger_side_per_sample():
    s, t = random_logits(9), random_logits(10)
    loss = AlphaDivergence()
    low = alpha_divergence(s, t, -1.0, 5.0)[0]
    high = alpha_divergence(s, t, 1.0, 5.0)[0]
    assert torch.allclose(loss.divergence(s, t).detach(), torch.maximum(low, high))
    assert (low > high).any() and (high > low).any()  # both sides get picked on this batch


@pytest.mark.parametrize("alpha", [-1.0, 0.0, 0.5, 1.0])
def test_alpha_div_stays_finite_for_saturated_predictions(alpha):
    # a confident teacher and a student that puts ~e^-200 on the teacher's class
    s = torch.tensor([[200.0, 0.0, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    t = torch.tensor([[0.0, 300.0, 0.0], [0.0, 0.0, 0.0]])
    value, surrogate = alpha_divergence(s, t, alpha, clip=5.0)
    (grad,) = torch.autograd.grad(surrogate.sum(), s)
    assert torch.isfinite(value).all() and torch.isfinite(grad).all()
    assert value[1] == pytest.approx(0.0, abs=1e-7)


def test_scratch_is_the_cross_entropy_and_ignores_the_teacher():
    s, y = random_logits(11), torch.arange(64) % 5
    a = Scratch()(s, random_logits(12), y)
    b = Scratch()(s, random_logits(13), y)
    assert float(a) == float(b) == pytest.approx(float(torch.nn.functional.cross_entropy(s, y)))


def test_mismatched_shapes_are_refused_with_both_shapes_named():
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(4, 5\)"):
        KD()(torch.zeros(4, 5), torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="alpha_min"):
        AlphaDivergence.Params(alpha_min=2.0, alpha_max=1.0)
