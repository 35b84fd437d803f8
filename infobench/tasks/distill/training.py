"""The student's training loop: a loss that sees teacher logits (and tapped features) per batch.

Offline, the frozen teacher's logits and tapped features on the student's training split are
computed once, in eval mode, and gathered per batch. Online, the teacher is trained in the same
loop on the same batches: the student's loss sees the teacher detached, the teacher's loss
(``DistillLoss.teacher_loss``) sees the student detached, and each model has its own optimizer.

Device: everything runs on the student's device (the run's, ``infobench.device.current()``;
the teacher and the loss's own modules are moved there). The training split goes there once
and mini-batches are index gathers from it; the shuffling is drawn on the host, so the batches
are the same on every device. Forward passes and losses run under
``infobench.device.autocast()`` with the run's gradient scaler (both no-ops at fp32); bilevel
outer steps run at full precision, as their second-order gradients would underflow in fp16. The
non-finite-loss check is one host sync per epoch, not per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from infobench import device as devices
from infobench.data.base import Split
from infobench.errors import DivergedError
from infobench.models.train import (
    TrainConfig,
    index_batches,
    make_optimizer,
    make_scheduler,
    model_device,
)
from infobench.progress import track
from infobench.tasks.distill.common import DistillLoss, FeatureTap

EpochHook = Callable[[int, float], None]  # (epoch, seconds of training in that epoch)


@dataclass
class Teacher:
    """The teacher as the loop sees it: the model, and in online mode its optimizer's config."""

    model: nn.Module
    online_config: TrainConfig | None = None


def frozen_outputs(teacher: nn.Module, x: Tensor, layer: str | None, batch_size: int = 2048) -> tuple[Tensor, Tensor | None]:
    """Teacher logits (n, C) and, with ``layer``, its tapped activation (n, d), in eval mode.

    On the device of ``x``, under the run's autocast; stored in float32 whatever the precision.
    """
    tap = FeatureTap(teacher, layer) if layer else None
    logits, feats = [], []
    teacher.eval()
    try:
        with torch.inference_mode(), devices.autocast():
            for start in range(0, len(x), batch_size):
                logits.append(teacher(x[start : start + batch_size]).float())
                if tap is not None:
                    feats.append(tap.pop().float())
    finally:
        if tap is not None:
            tap.remove()
    # clone out of inference mode: these tensors meet autograd in the loss
    out_logits = torch.cat(logits).clone()
    return out_logits, (torch.cat(feats).clone() if tap is not None else None)


def on_device(array: np.ndarray, dtype: np.dtype, where: torch.device) -> Tensor:
    """A host array as a tensor on ``where``, copied once."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=dtype)).to(where)


def train_student(
    student: nn.Module,
    loss_fn: DistillLoss,
    teacher: Teacher,
    train: Split,
    cfg: TrainConfig,
    seed: int,
    on_epoch: EpochHook | None = None,
    val: Split | None = None,
) -> None:
    """Train ``student`` (and the loss's own modules; the teacher too when online) in place.

    ``train.x`` (n, *input_shape) float32, ``train.y`` (n,) int64. A non-finite loss raises
    ``DivergedError`` (checked at the end of each epoch). ``on_epoch(epoch, seconds)`` runs
    after each epoch with the seconds spent in training steps (evaluation excluded; the clock
    is read once the epoch's last step has finished on the device). ``val`` feeds the outer
    steps of ``bilevel`` losses (a random validation batch per step). Runs on the student's
    device, where the teacher and the loss are moved. Models are left in eval mode.
    """
    where = model_device(student)
    teacher.model.to(where)
    loss_fn.to(where)
    x = on_device(train.x, np.float32, where)
    y = on_device(train.y, np.int64, where)
    n = len(y)
    if n < 2:
        raise ValueError(f"the student's training split holds {n} sample(s); at least 2 are needed")
    online = teacher.online_config is not None
    s_tap = FeatureTap(student, loss_fn.student_layer) if loss_fn.student_layer else None
    t_tap = None
    t_logits_all = t_feats_all = None
    if online:
        t_tap = FeatureTap(teacher.model, loss_fn.teacher_layer) if loss_fn.teacher_layer else None
        t_opt = make_optimizer(teacher.model, teacher.online_config)
        t_sched = make_scheduler(t_opt, teacher.online_config)
    elif loss_fn.uses_teacher:
        t_logits_all, t_feats_all = frozen_outputs(teacher.model, x, loss_fn.teacher_layer)
    else:
        t_logits_all, _ = frozen_outputs(teacher.model, x, None)
    if not online:
        loss_fn.observe_teacher(t_logits_all, y)
    if loss_fn.bilevel:
        if val is None or len(val) < 2:
            raise ValueError(f"{type(loss_fn).__name__} learns on a validation split; the dataset has none (val_fraction > 0)")
        val_x = on_device(val.x, np.float32, where)
        val_y = on_device(val.y, np.int64, where)
        val_draw = torch.Generator().manual_seed(seed + 1)
    trained = nn.ModuleList([student, loss_fn])
    optimizer = make_optimizer(trained, cfg)
    scheduler = make_scheduler(optimizer, cfg)
    optimizers = [optimizer, t_opt] if online else [optimizer]
    scaler = devices.grad_scaler()
    shuffle = torch.Generator().manual_seed(seed)  # on the host: the same batches on every device
    try:
        with torch.random.fork_rng(devices=[where] if where.type == "cuda" else []):
            torch.manual_seed(seed)
            label = "student and online teacher" if online else "student"
            for epoch in track(range(1, cfg.epochs + 1), label, cfg.epochs):
                trained.train()
                if online:
                    teacher.model.train()
                start = time.perf_counter()
                finite = torch.ones((), dtype=torch.bool, device=where)
                for idx in index_batches(torch.randperm(n, generator=shuffle).to(where), cfg.batch_size):
                    xb, yb = x[idx], y[idx]
                    if loss_fn.bilevel:
                        pick = torch.randint(len(val_y), (min(len(idx), len(val_y)),), generator=val_draw).to(where)
                        loss_fn.outer_step(student, (xb, t_logits_all[idx], yb), (val_x[pick], val_y[pick]), cfg.lr)
                    with devices.autocast():
                        s_logits = student(xb)
                        features = {}
                        if s_tap is not None:
                            features["student"] = s_tap.pop()
                        if online:
                            t_logits = teacher.model(xb)
                            if t_tap is not None:
                                features["teacher"] = t_tap.pop().detach()
                            loss = loss_fn(s_logits, t_logits.detach(), yb, features)
                            loss = loss + loss_fn.teacher_loss(t_logits, s_logits.detach(), yb)
                        else:
                            if t_feats_all is not None:
                                features["teacher"] = t_feats_all[idx]
                            loss = loss_fn(s_logits, t_logits_all[idx], yb, features)
                    finite &= torch.isfinite(loss.detach())
                    for opt in optimizers:
                        opt.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    for opt in optimizers:
                        scaler.step(opt)
                    scaler.update()
                # reading the flag waits for the epoch's last step: the clock measures the work, not its launch
                if not bool(finite):
                    raise DivergedError(f"distillation loss became non-finite at epoch {epoch}")
                for sched in (scheduler, t_sched if online else None):
                    if sched is not None:
                        sched.step()
                seconds = time.perf_counter() - start
                if on_epoch is not None:
                    on_epoch(epoch, seconds)
    finally:
        for tap in (s_tap, t_tap):
            if tap is not None:
                tap.remove()
    trained.eval()
    teacher.model.eval()

