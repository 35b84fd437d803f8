"""The student's training loop: a loss that sees teacher logits (and tapped features) per batch.

Offline, the frozen teacher's logits and tapped features on the student's training split are
computed once, in eval mode, and gathered per batch. Online, the teacher is trained in the same
loop on the same batches: the student's loss sees the teacher detached, the teacher's loss
(``DistillLoss.teacher_loss``) sees the student detached, and each model has its own optimizer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from infobench.data.base import Split
from infobench.errors import DivergedError
from infobench.models.train import TrainConfig, index_batches, make_optimizer
from infobench.progress import track
from infobench.tasks.distill.common import DistillLoss, FeatureTap

EpochHook = Callable[[int, float], None]  # (epoch, seconds of training in that epoch)


@dataclass
class Teacher:
    """The teacher as the loop sees it: the model, and in online mode its optimizer's config."""

    model: nn.Module
    online_config: TrainConfig | None = None


def _scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig):
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(cfg.epochs, 1))
    return None


def frozen_outputs(teacher: nn.Module, x: Tensor, layer: str | None, batch_size: int = 2048) -> tuple[Tensor, Tensor | None]:
    """Teacher logits (n, C) and, with ``layer``, its tapped activation (n, d), in eval mode."""
    tap = FeatureTap(teacher, layer) if layer else None
    logits, feats = [], []
    teacher.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(x), batch_size):
                logits.append(teacher(x[start : start + batch_size]))
                if tap is not None:
                    feats.append(tap.pop())
    finally:
        if tap is not None:
            tap.remove()
    # clone out of inference mode: these tensors meet autograd in the loss
    out_logits = torch.cat(logits).clone()
    return out_logits, (torch.cat(feats).clone() if tap is not None else None)


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
    ``DivergedError``. ``on_epoch(epoch, seconds)`` runs after each epoch with the seconds spent
    in training steps (evaluation excluded). ``val`` feeds the outer steps of ``bilevel``
    losses (a random validation batch per step). Models are left in eval mode.
    """
    x = torch.from_numpy(np.ascontiguousarray(train.x, dtype=np.float32))
    y = torch.from_numpy(np.ascontiguousarray(train.y, dtype=np.int64))
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
        t_sched = _scheduler(t_opt, teacher.online_config)
    elif loss_fn.uses_teacher:
        t_logits_all, t_feats_all = frozen_outputs(teacher.model, x, loss_fn.teacher_layer)
    else:
        t_logits_all, _ = frozen_outputs(teacher.model, x, None)
    if not online:
        loss_fn.observe_teacher(t_logits_all, y)
    if loss_fn.bilevel:
        if val is None or len(val) < 2:
            raise ValueError(f"{type(loss_fn).__name__} learns on a validation split; the dataset has none (val_fraction > 0)")
        val_x = torch.from_numpy(np.ascontiguousarray(val.x, dtype=np.float32))
        val_y = torch.from_numpy(np.ascontiguousarray(val.y, dtype=np.int64))
        val_draw = torch.Generator().manual_seed(seed + 1)
    trained = nn.ModuleList([student, loss_fn])
    optimizer = make_optimizer(trained, cfg)
    scheduler = _scheduler(optimizer, cfg)
    shuffle = torch.Generator().manual_seed(seed)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            label = "student and online teacher" if online else "student"
            for epoch in track(range(1, cfg.epochs + 1), label, cfg.epochs):
                trained.train()
                if online:
                    teacher.model.train()
                start = time.perf_counter()
                for idx in index_batches(torch.randperm(n, generator=shuffle), cfg.batch_size):
                    xb, yb = x[idx], y[idx]
                    if loss_fn.bilevel:
                        pick = torch.randint(len(val_y), (min(len(idx), len(val_y)),), generator=val_draw)
                        loss_fn.outer_step(student, (xb, t_logits_all[idx], yb), (val_x[pick], val_y[pick]), cfg.lr)
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
                    value = float(loss.detach())
                    if not math.isfinite(value):
                        raise DivergedError(f"distillation loss became {value} at epoch {epoch}")
                    optimizer.zero_grad(set_to_none=True)
                    if online:
                        t_opt.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    if online:
                        t_opt.step()
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
