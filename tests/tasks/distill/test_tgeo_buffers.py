"""TGeo's outer step measures the student without changing it: BN statistics stay put, the meta-gradient is the look-ahead one."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch.func import functional_call

from infobench.models.train import build_model
from infobench.tasks.distill.losses.tgeo import TGeo


def gen(seed):
    return torch.Generator().manual_seed(seed)


def bn_cnn_setup():
    student = build_model({"name": "cnn2d", "width": 16}, (1, 8, 8), 10, seed=0)
    teacher = build_model({"name": "cnn2d", "width": 16}, (1, 8, 8), 10, seed=1).eval()
    student.train()
    torch.manual_seed(0)
    loss = TGeo()
    loss.setup(student, teacher, 10)
    x, y = torch.randn(16, 1, 8, 8, generator=gen(1)), torch.randint(0, 10, (16,), generator=gen(2))
    val = (torch.randn(16, 1, 8, 8, generator=gen(3)) + 2, torch.randint(0, 10, (16,), generator=gen(4)))
    with torch.no_grad():
        t_logits = teacher(x)
    return student, loss, (x, t_logits, y), val


def meta_grads(loss):
    return [p.grad.clone() for p in loss.fusion.parameters()]


def test_outer_step_leaves_bn_running_stats_and_counter_unchanged():
    student, loss, batch, val = bn_cnn_setup()
    before = {name: b.clone() for name, b in student.named_buffers()}
    assert any(name.endswith("num_batches_tracked") for name in before)
    loss.outer_step(student, batch, val, 0.1)
    for name, buffer in student.named_buffers():
        assert torch.equal(buffer, before[name]), f"{name} changed during the outer step"
    assert int(student.body[0][1].num_batches_tracked) == 0


def test_meta_gradient_with_bn_equals_the_one_through_the_real_buffers():
    """Train-mode BN normalises by batch statistics, so scratch buffers give the same meta-gradient."""
    student, loss, (x, t_logits, y), (vx, vy) = bn_cnn_setup()
    reference = copy.deepcopy(student)
    params = dict(reference.named_parameters())
    buffers = dict(reference.named_buffers())  # the real ones, as the outer step once used
    logits = functional_call(reference, (params, buffers), (x,))
    inner = loss.fused(logits, t_logits, y, loss.ratio(logits, t_logits, y))
    grads = torch.autograd.grad(inner, list(params.values()), create_graph=True)
    virtual = {name: p - 0.1 * g for (name, p), g in zip(params.items(), grads)}
    outer = F.cross_entropy(functional_call(reference, (virtual, buffers), (vx,)), vy)
    expected = torch.autograd.grad(outer, list(loss.fusion.parameters()))
    loss.outer_step(student, (x, t_logits, y), (vx, vy), 0.1)
    for got, want in zip(meta_grads(loss), expected):
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-8)
    assert float(sum(g.abs().sum() for g in expected)) > 0


def test_meta_gradient_matches_a_hand_written_lookahead_on_a_linear_student():
    student = build_model({"name": "linear"}, (4,), 3, seed=0)
    torch.manual_seed(0)
    loss = TGeo()
    loss.setup(student, student, 3)
    x, y = torch.randn(8, 4, generator=gen(5)), torch.arange(8) % 3
    t_logits = torch.randn(8, 3, generator=gen(6))
    vx, vy = torch.randn(8, 4, generator=gen(7)), (torch.arange(8) + 1) % 3
    lr = 0.3
    w = student.head.weight.detach().clone().requires_grad_(True)
    b = student.head.bias.detach().clone().requires_grad_(True)
    logits = x @ w.T + b
    inner = loss.fused(logits, t_logits, y, loss.ratio(logits, t_logits, y))
    gw, gb = torch.autograd.grad(inner, [w, b], create_graph=True)
    outer = F.cross_entropy(vx @ (w - lr * gw).T + (b - lr * gb), vy)
    expected = torch.autograd.grad(outer, list(loss.fusion.parameters()))
    fusion_before = [p.detach().clone() for p in loss.fusion.parameters()]
    loss.outer_step(student, (x, t_logits, y), (vx, vy), lr)
    for got, want in zip(meta_grads(loss), expected):
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-9)
    # Adam's first (bias-corrected) step: -meta_lr * g / (|g| + eps).
    for p, p0, g in zip(loss.fusion.parameters(), fusion_before, expected):
        assert torch.allclose(p.detach() - p0, -1e-3 * g / (g.abs() + 1e-8), rtol=1e-3, atol=1e-9)
