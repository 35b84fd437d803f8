"""Calibration-aware training losses for the base model, and the loop that trains with them.

A loss is selected in a spec's ``loss`` block (``loss: {name: focal, params: {gamma: 2}}``);
the default ``ce`` trains exactly as every other task does (and shares its cached model), so
post-hoc calibrators and training losses are compared on the same footing. Losses whose value
depends only on the batch (``logits``, ``labels``) go through the core ``train_classifier``;
losses that keep per-sample state (ALDR-KL's temperatures, indexed by the loader's sample
indices) or act between epochs (CaPE's soft targets, best-validation selection) set
``needs_loop`` and are trained by :func:`train_with_loss`: the core loop with the loss called on
sample indices and hooks between epochs.

Device: a loss computes on the device of the logits it is given; per-sample state (ALDR-KL's
temperatures, CaPE's soft targets) lives on the model's device, allocated by ``setup`` there.
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

    def setup(self, n_train: int, n_classes: int, device: torch.device | str = "cpu") -> None:
        """Called once before training: allocate per-sample state on ``device`` (the model's)."""

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

    The core loop (``infobench.models.train.train_classifier``, ``cfg`` its ``TrainConfig``)
    with the loss called on sample indices, ``loss.start_epoch`` before each epoch, and a
    ``val_nll`` column, on the model's device. With ``loss.select_best_val`` the weights of the
    epoch with the lowest validation NLL are kept.
    """
    from infobench.models.train import model_device, train_classifier

    # the splits go to the model's device once; the epoch hooks see them there
    where = model_device(model)
    x = torch.as_tensor(np.ascontiguousarray(data.train.x, dtype=np.float32), device=where)
    y = torch.as_tensor(np.ascontiguousarray(data.train.y, dtype=np.int64), device=where)
    val_x = torch.as_tensor(np.ascontiguousarray(data.val.x, dtype=np.float32), device=where)
    val_y = torch.as_tensor(np.ascontiguousarray(data.val.y, dtype=np.int64), device=where)
    loss.setup(len(y), data.num_classes, where)
    best: dict[str, Any] = {"nll": math.inf, "state": None}

    def start_epoch(epoch: int, trained: nn.Module) -> None:
        loss.start_epoch(epoch, cfg.epochs, trained, x, y)

    def end_epoch(epoch: int, trained: nn.Module, row: dict) -> None:
        row["val_nll"] = float(F.cross_entropy(predict(trained, val_x), val_y)) if len(val_y) else math.nan
        if loss.select_best_val and row["val_nll"] < best["nll"]:
            best.update(nll=row["val_nll"], state=copy.deepcopy(trained.state_dict()))

    history = train_classifier(model, data.train, cfg, seed, loss_fn=loss, indexed_loss=True,
                               on_epoch_start=start_epoch, on_epoch=end_epoch)
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    model.eval()
    return history
