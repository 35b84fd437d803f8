"""Building models from spec dicts, the supervised training loop, and batched inference.

Everything runs on the device of the model it is given (``model_device``): a split that fits in
memory becomes two tensors on that device once and mini-batches are index gathers from them,
with no DataLoader workers or collation in between; a lazy image array (ImageNet-sized data,
``infobench.data.images``) streams through ``iter_batches`` instead. Forward passes run
under ``infobench.device.autocast()`` (a no-op at fp32). Results come back as host numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from torch import Tensor, nn

from infobench import device as devices
from infobench.data.base import Split
from infobench.data.files import data_path
from infobench.errors import DivergedError, SpecError
from infobench.models.base import Classifier
from infobench.models.checkpoint import ModelCommon, finish_model, split_common
from infobench.progress import track
from infobench.registry import get

LossFn = Callable[[Tensor, Tensor], Tensor]
EpochHook = Callable[[int, nn.Module, dict[str, Any]], None]


class TrainConfig(BaseModel):
    """Hyperparameters of ``train_classifier``."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(30, ge=0, description="Passes over the training split.")
    lr: float = Field(1e-3, gt=0, description="Learning rate (the peak one under a schedule).")
    batch_size: int = Field(128, ge=1, description="Examples per mini-batch.")
    optimizer: Literal["adam", "sgd"] = Field("adam", description="Adam or SGD with momentum.")
    weight_decay: float = Field(0.0, ge=0, description="L2 penalty coefficient of the optimizer.")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum (ignored by Adam).")
    schedule: Literal["none", "cosine", "step"] = Field(
        "none", description="Learning-rate schedule over epochs: constant, cosine decay to 0, or step "
        "decay by `gamma` at each of `milestones` (the CIFAR recipe of CRD/DKD: 150, 180, 210 of 240)."
    )
    milestones: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=list, description="Epochs after which schedule: step multiplies the rate by gamma."
    )
    gamma: float = Field(0.1, gt=0, le=1, description="The factor of each step of schedule: step.")

    @model_validator(mode="after")
    def _milestones_fit(self) -> TrainConfig:
        if self.schedule == "step" and not self.milestones:
            raise ValueError("schedule: step needs milestones (epochs after which the rate drops by gamma)")
        if self.milestones and self.milestones != sorted(set(self.milestones)):
            raise ValueError(f"milestones must increase, got {self.milestones}")
        return self


def build_model(
    model_cfg: dict[str, Any],
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    seed: int | None = None,
) -> Classifier:
    """Build the registered model ``model_cfg["name"]`` with validated parameters.

    Parameters come either nested, ``{"name": "mlp", "params": {"width": 50}}``, or flat,
    ``{"name": "mlp", "width": 50}``. Invalid parameters raise ``SpecError`` naming each
    field; unknown names raise ``RegistryError``. With ``seed``, the weights are initialised
    from that seed without disturbing torch's global random state.
    """
    cfg = dict(model_cfg)
    if "name" not in cfg:
        raise SpecError("model", ["'name' is required (e.g. name: mlp)"])
    name = cfg.pop("name")
    cfg, common_raw = split_common(cfg)  # checkpoint, normalize, strict: keys every model takes
    if "params" in cfg and len(cfg) > 1:
        raise SpecError(f"model {name!r}", ["give parameters under 'params' or flat, not both"])
    raw_params = cfg.pop("params", None) if "params" in cfg else cfg
    cls = get("model", name)
    try:
        params = cls.Params.model_validate(raw_params or {})
        common = ModelCommon.model_validate(common_raw)
    except ValidationError as exc:
        problems = [
            f"model.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        ]
        raise SpecError(f"model {name!r}", problems) from None
    if common.checkpoint:  # the file the run's identity hashed: relative paths as data paths
        common = common.model_copy(update={"checkpoint": str(data_path(common.checkpoint))})
    if seed is None:
        return finish_model(cls(params, tuple(input_shape), num_classes), common)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(params, tuple(input_shape), num_classes)
    return finish_model(model, common)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer a TrainConfig names, over all of ``model``'s parameters."""
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> Any:
    """The per-epoch learning-rate schedule a TrainConfig names, or None for a constant rate."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(cfg.epochs, 1))
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=cfg.milestones, gamma=cfg.gamma)
    return None


def index_batches(order: Tensor, batch_size: int) -> Iterator[Tensor]:
    """Index chunks of ``order``; a trailing single example is skipped.

    BatchNorm cannot normalise a batch of one in training mode; the skipped example lands
    elsewhere in the next epoch's shuffle, so nothing is left out for good.
    """
    chunks = order.split(batch_size)
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        chunks = chunks[:-1]
    yield from chunks


def train_classifier(
    model: nn.Module,
    train: Split,
    cfg: TrainConfig,
    seed: int,
    *,
    loss_fn: LossFn | None = None,
    val: Split | None = None,
    on_epoch: EpochHook | None = None,
    on_epoch_start: Callable[[int, nn.Module], None] | None = None,
    indexed_loss: bool = False,
) -> list[dict[str, Any]]:
    """Train ``model`` in place by mini-batch gradient descent; return the per-epoch history.

    ``train.x`` is (n, *input_shape) float32, ``train.y`` (n,) int64. ``loss_fn(logits, y)``
    maps (b, C) logits and (b,) labels to a scalar; it defaults to cross-entropy. ``seed``
    fixes the shuffling and any randomness inside the model (dropout), which runs on a
    forked RNG so the caller's global torch state is left as it was.

    Each history row has ``epoch`` (1-based, counting completed epochs), ``loss`` and
    ``train_accuracy`` (means over the epoch's mini-batches, in training mode, so free to
    compute), and ``val_accuracy`` (eval mode) when ``val`` is given. ``on_epoch(epoch,
    model, row)`` runs after each row is built and may add keys to it; ``on_epoch_start(epoch,
    model)`` runs before each epoch. With ``indexed_loss`` the loss is called as
    ``loss_fn(logits, y, idx)``, ``idx`` being the (b,) indices of the batch in ``train`` (for
    losses with per-sample state). A nan or inf loss raises ``DivergedError``. The model is
    left in eval mode.
    """
    loss_fn = loss_fn or F.cross_entropy
    where = model_device(model)
    x = torch.from_numpy(np.ascontiguousarray(train.x, dtype=np.float32)).to(where)
    y = torch.from_numpy(np.ascontiguousarray(train.y, dtype=np.int64)).to(where)
    n = len(y)
    if n == 0:
        raise ValueError("cannot train on an empty split")
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg)
    shuffle = torch.Generator().manual_seed(seed)  # on the host: the same order on every device
    scaler = devices.grad_scaler()
    history: list[dict[str, Any]] = []
    with torch.random.fork_rng(devices=[where] if where.type == "cuda" else []):
        torch.manual_seed(seed)
        for epoch in track(range(1, cfg.epochs + 1), "train", cfg.epochs):
            if on_epoch_start is not None:
                on_epoch_start(epoch, model)
            model.train()
            # sums stay on the device: one host sync per epoch, not one per batch
            loss_sum = torch.zeros((), device=where, dtype=torch.float64)
            correct = torch.zeros((), device=where, dtype=torch.int64)
            seen = 0
            for idx in index_batches(torch.randperm(n, generator=shuffle), cfg.batch_size):
                idx_here = idx.to(where)
                xb, yb = x[idx_here], y[idx_here]
                with devices.autocast():
                    logits = model(xb)
                    loss = loss_fn(logits, yb, idx_here) if indexed_loss else loss_fn(logits, yb)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                loss_sum += loss.detach().double() * len(idx)
                correct += (logits.detach().argmax(1) == yb).sum()
                seen += len(idx)
            mean_loss = float(loss_sum) / seen
            if not math.isfinite(mean_loss):
                raise DivergedError(f"loss became {mean_loss} at epoch {epoch}")
            if scheduler is not None:
                scheduler.step()
            row: dict[str, Any] = {
                "epoch": epoch,
                "loss": mean_loss,
                "train_accuracy": int(correct) / seen,
            }
            if val is not None:
                row["val_accuracy"] = accuracy(model, val)
            if on_epoch is not None:
                on_epoch(epoch, model, row)
            history.append(row)
    model.eval()
    return history


def _batched_eval(
    fn: Callable[[Tensor], Tensor], model: nn.Module, x: np.ndarray, batch_size: int, width: int
) -> np.ndarray:
    """Apply ``fn`` to ``x`` in batches, in eval mode under inference_mode; float32 (n, width).

    The model's train/eval mode is restored afterwards, so hooks called from inside the
    training loop do not switch it.
    """
    was_training = model.training
    model.eval()
    where = model_device(model)
    try:
        outputs = []
        with torch.inference_mode(), devices.autocast():
            for batch in _input_batches(x, batch_size, where):
                outputs.append(fn(batch).float().cpu().numpy())
    finally:
        model.train(was_training)
    if not outputs:
        return np.zeros((0, width), dtype=np.float32)
    return np.concatenate(outputs)


def model_device(model: nn.Module) -> torch.device:
    """The device a model's parameters (or, lacking any, buffers) live on; the CPU for neither."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _input_batches(x: Any, batch_size: int, where: torch.device) -> Iterator[Tensor]:
    """Float32 batches of ``x`` on ``where``: slices of an array in memory, or decoded by the
    loader's workers for a lazy image array."""
    if isinstance(x, np.ndarray):
        for start in range(0, len(x), batch_size):
            yield torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size], dtype=np.float32)).to(where)
        return
    from infobench.data.images import iter_batches

    ranges = [(start, min(start + batch_size, len(x))) for start in range(0, len(x), batch_size)]
    yield from iter_batches(x, ranges, where)


def predict_logits(model: Classifier, x: np.ndarray, batch_size: int = 2048) -> np.ndarray:
    """Logits of ``x`` (n, *input_shape): float32 of shape (n, num_classes), in eval mode."""
    return _batched_eval(model, model, x, batch_size, model.num_classes)


def extract_features(model: Classifier, x: np.ndarray, batch_size: int = 2048) -> np.ndarray:
    """``model.features`` of ``x`` (n, *input_shape): float32 (n, feature_dim), in eval mode."""
    return _batched_eval(model.features, model, x, batch_size, model.feature_dim)


def accuracy(model: Classifier, split: Split, batch_size: int = 2048) -> float:
    """Fraction of ``split`` whose arg-max logit is the label (eval mode)."""
    if len(split) == 0:
        return float("nan")
    logits = predict_logits(model, split.x, batch_size)
    return float((logits.argmax(1) == split.y).mean())
