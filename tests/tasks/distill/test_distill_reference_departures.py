"""The documented departures of alpha_div and sinkd from their authors' code, pinned down."""

from __future__ import annotations

import torch

from infobench.tasks.distill.losses.alpha_div import alpha_divergence
from infobench.tasks.distill.losses.sinkd import sinkhorn_plan


def gen(seed):
    return torch.Generator().manual_seed(seed)


def student_grad(student, teacher, alpha, clip):
    leaf = student.clone().requires_grad_(True)
    _, surrogate = alpha_divergence(leaf, teacher, alpha, clip)
    (grad,) = torch.autograd.grad(surrogate.sum(), leaf)
    return grad


def test_alpha_div_clips_the_kl_branch_gradient_continuously_in_alpha():
    # a teacher sure of class 0 and a student that gives it little mass: p/q far above 5
    teacher = torch.tensor([[6.0, 0.0, 0.0, 0.0], [0.0, 5.0, 0.0, 1.0]], dtype=torch.float64)
    student = torch.randn(2, 4, generator=gen(0), dtype=torch.float64) - 3.0 * teacher.softmax(1)
    ratio = teacher.softmax(1) / student.softmax(1)
    assert float(ratio.max()) > 20  # the clip at 5 binds
    at_one = student_grad(student, teacher, 1.0, 5.0)
    near_one = student_grad(student, teacher, 0.998, 5.0)  # the general (clipped) branch
    assert torch.allclose(at_one, near_one, atol=2e-3)
    # the reference's KL branch (unclipped p/q) is the plain KD gradient q - p: a different step
    kd = student.softmax(1) - teacher.softmax(1)
    assert torch.allclose(student_grad(student, teacher, 1.0, 1e9), kd, atol=1e-9)
    assert float((at_one - kd).abs().max()) > 0.1


def reference_style_plan(cost, eps, iterations):
    """Rows then columns of exp(-C/eps) normalised to sum 1, as in the authors' code."""
    plan = torch.exp(-cost / eps)
    for _ in range(iterations):
        plan = plan / plan.sum(1, keepdim=True)
        plan = plan / plan.sum(0, keepdim=True)
    return plan


def test_sinkd_plan_has_mass_one_and_is_the_reference_plan_over_the_batch_size():
    b = 6
    p_s = torch.randn(b, 5, generator=gen(1), dtype=torch.float64).softmax(1)
    p_t = torch.randn(b, 5, generator=gen(2), dtype=torch.float64).softmax(1)
    cost = torch.cdist(p_s, p_t, p=1)  # the reference's L1 cost, to compare plans on equal terms
    plan = sinkhorn_plan(cost, 0.1, 20)
    assert abs(float(plan.sum()) - 1.0) < 1e-12
    assert torch.allclose(plan.sum(0), torch.full((b,), 1.0 / b, dtype=torch.float64), atol=1e-12)
    reference = reference_style_plan(cost, 0.1, 20)
    assert abs(float(reference.sum()) - b) < 1e-9
    assert torch.allclose(b * plan, reference, rtol=1e-9, atol=1e-12)
