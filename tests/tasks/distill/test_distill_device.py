"""Distillation losses and the student loop are device-agnostic: they compute where their inputs are.

On the CPU alone, two checks that could fail: every loss runs (forward and backward) on torch's
data-less ``meta`` device, which refuses any tensor a loss makes on the CPU and mixes in (and any
value read back to the host); and every loss keeps float64 inputs in float64 (no hard-coded
float32). With CUDA (``@pytest.mark.gpu``), every loss gives the CPU's numbers on the GPU, and
the student loop trains on the GPU.

Tolerance of the CPU-vs-CUDA parity, float32: rtol 1e-4, atol 1e-5 on losses and gradients. The
GPU sums in other orders, a few float32 ulps (1e-7 relative) per reduction; sinkd's 20 log-domain
Sinkhorn iterations at eps = 0.1 and the 1/eps and T^2 factors amplify that by up to ~100.
TF32 is off, so both sides do float32 arithmetic.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from infobench import device as devices
from infobench import registry
from infobench.data.base import Split
from infobench.models.train import TrainConfig, build_model
from infobench.tasks.distill.losses.mcmi import mcmi_objective
from infobench.tasks.distill.training import Teacher, train_student

registry.load_plugins()
LOSSES = registry.names("distill.loss")
CLASSES, BATCH, INPUT = 5, 12, (1, 10)
CUDA = torch.device("cuda")


pytestmark = pytest.mark.usefixtures("full_float32_on_cuda")  # conftest: TF32 off for parity


def models(seed: int = 0):
    """A student and a teacher (MLPs with a linear head, so every loss can tap 'features')."""
    student = build_model({"name": "mlp", "width": 8, "depth": 1}, INPUT, CLASSES, seed=seed)
    teacher = build_model({"name": "mlp", "width": 16, "depth": 1}, INPUT, CLASSES, seed=seed + 1)
    return student, teacher


def loss_with_modules(name: str):
    """The loss ``name`` with its defaults, set up (its own modules built) from a fixed seed."""
    cls = registry.get("distill.loss", name)
    loss = cls()
    student, teacher = models()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        loss.setup(student, teacher, CLASSES)
    return loss


def batch(dtype=torch.float32, seed: int = 0):
    """Student and teacher logits, labels and tapped features of one batch, on the CPU."""
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(BATCH, CLASSES, generator=g, dtype=dtype) * 2
    t = torch.randn(BATCH, CLASSES, generator=g, dtype=dtype) * 3
    y = torch.randint(CLASSES, (BATCH,), generator=g)
    feats = {"student": torch.randn(BATCH, 8, generator=g, dtype=dtype),
             "teacher": torch.randn(BATCH, 16, generator=g, dtype=dtype)}
    observed = (torch.randn(40, CLASSES, generator=g, dtype=dtype), torch.randint(CLASSES, (40,), generator=g))
    return s, t, y, feats, observed


def run_loss(loss, where: torch.device, dtype=torch.float32):
    """Value of the loss and its gradient w.r.t. the student logits and features, on ``where``."""
    s, t, y, feats, (obs_logits, obs_y) = (
        v.to(where) if isinstance(v, torch.Tensor) else v for v in batch(dtype))
    feats = {k: v.to(where) for k, v in feats.items()}
    loss = loss.to(where, dtype) if dtype != torch.float32 else loss.to(where)
    loss.observe_teacher(obs_logits.to(where), obs_y.to(where))
    s.requires_grad_(True)
    feats["student"].requires_grad_(True)
    value = loss(s, t, y, feats)
    value.backward()
    return value, s.grad, feats["student"].grad


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_computes_on_the_device_of_its_inputs(name):
    # meta tensors hold no data: a CPU tensor made inside the loss and mixed in raises, and so
    # does anything that needs values on the host (bincount, boolean-mask indexing, .item())
    meta = torch.device("meta")
    value, grad, _ = run_loss(loss_with_modules(name), meta)
    assert value.device == meta and value.shape == ()
    assert grad is not None and grad.device == meta


def test_mcmi_teacher_objective_computes_on_the_device_of_its_logits():
    logits = torch.randn(BATCH, CLASSES).to("meta").requires_grad_(True)
    value = mcmi_objective(0.2)(logits, torch.randint(CLASSES, (BATCH,)).to("meta"))
    value.backward()
    assert value.device.type == "meta" and logits.grad.device.type == "meta"


def test_tgeo_outer_step_runs_where_the_loss_was_moved_and_updates_its_live_parameters():
    # an optimizer made in setup() would hold the parameters the move to another device replaced
    loss = loss_with_modules("tgeo").to("meta")
    student = models()[0].to("meta")
    s, t, y, _, (obs_logits, obs_y) = batch()
    loss.observe_teacher(obs_logits.to("meta"), obs_y.to("meta"))
    x = torch.randn(BATCH, *INPUT).to("meta")
    loss.outer_step(student, (x, t.to("meta"), y.to("meta")), (x, y.to("meta")), lr=0.1)
    live = list(loss.fusion.parameters())
    stepped = loss._meta_opt.param_groups[0]["params"]
    assert len(stepped) == len(live) and all(a is b for a, b in zip(stepped, live))


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_keeps_float64_inputs_in_float64(name):
    value, grad, _ = run_loss(loss_with_modules(name), torch.device("cpu"), torch.float64)
    assert value.dtype == torch.float64 and grad.dtype == torch.float64
    assert torch.isfinite(value) and torch.isfinite(grad).all()


@pytest.mark.gpu
@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_gives_the_cpu_numbers_on_cuda(name):
    loss = loss_with_modules(name)
    on_cpu = run_loss(copy.deepcopy(loss), torch.device("cpu"))
    with devices.use(CUDA):
        on_gpu = run_loss(copy.deepcopy(loss), CUDA)
    for cpu_value, gpu_value in zip(on_cpu, on_gpu):
        if cpu_value is None:
            assert gpu_value is None
            continue
        assert gpu_value.device.type == CUDA.type
        torch.testing.assert_close(gpu_value.cpu(), cpu_value, rtol=1e-4, atol=1e-5)


def tiny_split(n: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    x = rng.normal(size=(n, *INPUT)).astype(np.float32) + y[:, None, None].astype(np.float32)
    return Split(x, y.astype(np.int64))


def train_once(name: str, where: torch.device, epochs: int = 2):
    """Student weights after a short SGD run of loss ``name`` on ``where`` (the teacher frozen,
    or trained alongside for online losses)."""
    cls = registry.get("distill.loss", name)
    loss = cls()
    student, teacher = (m.to(where) for m in models())
    cfg = TrainConfig(epochs=epochs, lr=0.05, batch_size=16, optimizer="sgd")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the loss's own modules (heads, critics) start alike on both devices
        loss.setup(student, teacher, CLASSES)
    online = cfg if cls.modes[0] == "online" else None
    seconds: list[float] = []
    train_student(student, loss, Teacher(teacher, online), tiny_split(64, 0), cfg, seed=0,
                  on_epoch=lambda epoch, s: seconds.append(s), val=tiny_split(24, 1))
    assert len(seconds) == epochs
    return student


@pytest.mark.gpu
@pytest.mark.parametrize("name", LOSSES)
def test_the_student_loop_trains_every_loss_on_cuda(name):
    with devices.use(CUDA):
        student = train_once(name, CUDA)
    assert all(p.device.type == CUDA.type and torch.isfinite(p).all() for p in student.parameters())


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["kd", "sinkd", "mi_alpha", "bdkd"])
def test_the_student_loop_gives_the_cpu_weights_on_cuda(name):
    # SGD: its step is proportional to the gradient, so float32 differences stay that small
    # (Adam's first steps are lr * sign(g), which a gradient near 0 can flip)
    cpu_student = train_once(name, torch.device("cpu"))
    with devices.use(CUDA):
        gpu_student = train_once(name, CUDA)
    for (key, a), b in zip(cpu_student.state_dict().items(), gpu_student.state_dict().values()):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-4, atol=1e-5, msg=f"{name}: {key} differs")


def test_feature_tap_dimension_probe_runs_on_the_models_device():
    # feature_dim's zero input is made on the model's device (meta here), not on the CPU
    from infobench.tasks.distill.common import feature_dim

    student = models()[0].to("meta")
    assert feature_dim(student, "features", INPUT) == 8
