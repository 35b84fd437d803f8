"""Calibration-aware training losses for the base model, and the loop that trains with them.

A loss is selected in a spec's ``loss`` block (``loss: {name: focal, params: {gamma: 2}}``);
the default ``ce`` trains exactly as every other task does (and shares its cached model), so
post-hoc calibrators and training losses are compared on the same footing. Losses whose value
depends only on the batch (``logits``, ``labels``) go through the core ``train_classifier``;
losses that keep per-sample state (ALDR-KL's temperatures, indexed by the loader's sample
indices) or act between epochs (CaPE's soft targets, best-validation selection) set
``needs_loop`` and are trained by :func:`train_with_loss`, a copy of the core loop's shape that
also hands the loss its sample indices.
"""

from __future__ import annotations

import copy
import math
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn

from infobench.data.base import DataBundle
from infobench.errors import DivergedError


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrainingLoss:
    """Base class. ``batch_loss(logits, labels)`` or ``__call__(logits, labels, indices)``.

    - ``needs_loop``: train with :func:`train_with_loss` (sample indices, epoch hooks).
    - ``select_best_val``: keep the weights of the epoch with the lowest validation NLL.
    """

    Params: ClassVar[type[BaseModel]] = NoParams
    needs_loop: ClassVar[bool] = False
    select_best_val: ClassVar[bool] = False

    def __init__(self, params: BaseModel | None = None):
        self.params = params if params is not None else self.Params()

    def batch_loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Mean loss of a batch: ``logits`` (b, C), ``labels`` (b,) int64 -> scalar."""
        raise NotImplementedError

    def __call__(self, logits: Tensor, labels: Tensor, indices: Tensor) -> Tensor:
        """Mean loss of the batch whose rows are training samples ``indices`` (b,)."""
        return self.batch_loss(logits, labels)

    def setup(self, n_train: int, n_classes: int) -> None:
        """Called once before training (allocate per-sample state)."""

    def start_epoch(self, epoch: int, epochs: int, model: nn.Module, x: Tensor, y: Tensor) -> None:
        """Called before each epoch (1-based) with the whole training split."""


def predict(model: nn.Module, x: Tensor, batch_size: int = 2048) -> Tensor:
    """Logits of ``x`` in eval mode without gradients; the model's mode is restored afterwards."""
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        out = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def train_with_loss(model: nn.Module, data: DataBundle, cfg: Any, seed: int, loss: TrainingLoss) -> list[dict]:
    """Train ``model`` in place on ``data.train`` with ``loss``; returns per-epoch rows.

    Same optimiser, schedule, shuffling and batch rule as ``infobench.models.train.train_classifier``
    (``cfg`` is its ``TrainConfig``). Each row has ``epoch``, ``loss`` and ``val_nll``. With
    ``loss.select_best_val`` the weights of the epoch with the lowest validation NLL are kept.
    """
    from infobench.models.train import index_batches, make_optimizer
    from infobench.progress import track

    x = torch.from_numpy(np.ascontiguousarray(data.train.x, dtype=np.float32))
    y = torch.from_numpy(np.ascontiguousarray(data.train.y, dtype=np.int64))
    val_x = torch.from_numpy(np.ascontiguousarray(data.val.x, dtype=np.float32))
    val_y = torch.from_numpy(np.ascontiguousarray(data.val.y, dtype=np.int64))
    n = len(y)
    if n == 0:
        raise ValueError("cannot train on an empty split")
    loss.setup(n, data.num_classes)
    optimizer = make_optimizer(model, cfg)
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(cfg.epochs, 1))
                 if cfg.schedule == "cosine" else None)
    shuffle = torch.Generator().manual_seed(seed)
    history: list[dict] = []
    best_nll, best_state = math.inf, None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for epoch in track(range(1, cfg.epochs + 1), "train", cfg.epochs):
            loss.start_epoch(epoch, cfg.epochs, model, x, y)
            model.train()
            total, seen = 0.0, 0
            for idx in index_batches(torch.randperm(n, generator=shuffle), cfg.batch_size):
                value = loss(model(x[idx]), y[idx], idx)
                number = float(value.detach())
                if not math.isfinite(number):
                    raise DivergedError(f"{type(loss).__name__} loss became {number} at epoch {epoch}")
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                optimizer.step()
                total += number * len(idx)
                seen += len(idx)
            if scheduler is not None:
                scheduler.step()
            val_nll = float(F.cross_entropy(predict(model, val_x), val_y)) if len(val_y) else math.nan
            history.append({"epoch": epoch, "loss": total / seen, "val_nll": val_nll})
            if loss.select_best_val and val_nll < best_nll:
                best_nll, best_state = val_nll, copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history
