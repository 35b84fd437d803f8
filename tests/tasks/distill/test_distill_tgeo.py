"""TGeo's fusion: its two extremes, the teacher's class means, and that the bilevel step learns to trust a teacher less when it is wrong."""

from __future__ import annotations

import pytest
import torch

from infobench.models.train import build_model
from infobench.tasks.distill.common import kl_logits
from infobench.tasks.distill.losses.tgeo import TGeo


def gen(seed):
    return torch.Generator().manual_seed(seed)


def make(num_classes=3, **params):
    student = build_model({"name": "linear"}, (4,), num_classes, seed=0)
    loss = TGeo(TGeo.Params(**params))
    torch.manual_seed(0)
    loss.setup(student, student, num_classes)
    return student, loss


def test_fusion_extremes_are_ce_and_t2_kl():
    _, loss = make()
    s, t, y = torch.randn(6, 3, generator=gen(1)), torch.randn(6, 3, generator=gen(2)), torch.arange(6) % 3
    ce = torch.nn.functional.cross_entropy(s, y)
    assert float(loss.fused(s, t, y, torch.zeros(6))) == pytest.approx(float(ce), rel=1e-6)
    assert float(loss.fused(s, t, y, torch.ones(6))) == pytest.approx(float(16 * kl_logits(t, s, 4.0).mean()), rel=1e-6)
    ratio = loss.ratio(s, t, y)
    assert ratio.shape == (6,) and bool(((ratio > 0) & (ratio < 1)).all())


def test_class_means_are_the_teachers_mean_prediction_per_class():
    _, loss = make(temperature=1.0)
    logits = torch.log(torch.tensor([[0.6, 0.2, 0.2], [0.2, 0.6, 0.2], [0.8, 0.1, 0.1], [0.1, 0.1, 0.8]]))
    loss.observe_teacher(logits, torch.tensor([0, 1, 0, 2]))
    expected = torch.tensor([[0.7, 0.15, 0.15], [0.2, 0.6, 0.2], [0.1, 0.1, 0.8]])
    assert torch.allclose(loss.class_means, expected, atol=1e-6)


def test_outer_steps_lower_the_ratio_for_a_teacher_that_is_always_wrong():
    student, loss = make(meta_lr=1e-2)
    x = torch.randn(64, 4, generator=gen(3))
    y = torch.arange(64) % 3
    wrong_teacher = 5.0 * torch.nn.functional.one_hot((y + 1) % 3, 3).float()
    loss.observe_teacher(wrong_teacher, y)
    val = (torch.randn(64, 4, generator=gen(4)), torch.arange(64) % 3)
    with torch.no_grad():
        student.head.weight.copy_(torch.randn(3, 4, generator=gen(5)))
        x = x + 2.0 * torch.nn.functional.one_hot(y, 4).float()  # inputs that carry the label
        val = (val[0] + 2.0 * torch.nn.functional.one_hot(val[1], 4).float(), val[1])
    with torch.no_grad():
        before = float(loss.ratio(student(x), wrong_teacher, y).mean())
    for _ in range(30):
        loss.outer_step(student, (x, wrong_teacher, y), val, lr=0.5)
    with torch.no_grad():
        after = float(loss.ratio(student(x), wrong_teacher, y).mean())
    assert after < before - 0.1
    assert student.head.weight.grad is None  # the outer step never touches the student
