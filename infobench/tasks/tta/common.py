"""Pieces shared by TTA methods: entropy, BatchNorm configuration, state snapshots, optimizers,
placement of host data and random draws on the model's device, the anchors' per-family
optimizer settings, and the entropy-minimisation base class that tent, eta, eata, sar and woc
build on.

Signatures here are a contract for every method file; add to them, do not change them.

Devices: the task moves the source model to the run's device before ``setup`` and hands
batches already there; source data (``SourceInfo.train``) stays numpy on the host. Methods
create every tensor on the device, and in the float dtype, of their model or input
(:func:`placement`, :func:`host_to_model`, :func:`host_batches`), and draw random numbers on
the CPU from a seeded generator before moving them (:func:`host_random`), so that a seed gives
the same draws, hence the same adaptation, on every device.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from infobench.errors import InfobenchError
from infobench.models.base import Classifier
from infobench.tasks.tta.methods.base import SourceInfo, TTAMethod


def placement(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device and float dtype of ``model``'s parameters: where its inputs must be."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.device, p.dtype
    raise InfobenchError(f"model {type(model).__name__} has no floating-point parameters")


def host_to_model(array: Any, model: nn.Module) -> Tensor:
    """A host array (numpy or tensor) on ``model``'s device, copied once.

    Floating arrays take the model's float dtype (inputs, a class prior); integer arrays
    become int64 (labels, indices).
    """
    device, dtype = placement(model)
    if not isinstance(array, Tensor):
        array = np.ascontiguousarray(array)
    floating = array.is_floating_point() if isinstance(array, Tensor) else np.issubdtype(array.dtype, np.floating)
    return torch.as_tensor(array, device=device, dtype=dtype if floating else torch.int64)


BATCH_BYTES = 64 << 20
"""Default size of a :func:`host_batches` batch: 64 MiB of float32 rows (at most 2,048 rows)."""


def host_batches(array: Any, model: nn.Module, batch_size: int | None = None,
                 rows: np.ndarray | None = None) -> Iterator[Tensor]:
    """Batches of the rows ``rows`` (default: all, in order) of a host array, on ``model``'s device.

    ``array`` is a numpy array or a lazy image array (``infobench.data.images.ImageFiles``),
    read only a batch at a time, so that a large source split is never decoded or copied to
    the device whole. ``batch_size`` defaults to the rows that fit in :data:`BATCH_BYTES`.
    See :func:`host_to_model` for the dtype.
    """
    if batch_size is None:
        row_bytes = 4 * max(1, int(np.prod(array.shape[1:])))
        batch_size = max(1, min(2048, BATCH_BYTES // row_bytes))
    n = len(array) if rows is None else len(rows)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        chunk = array[start:stop] if rows is None else array[np.asarray(rows[start:stop], dtype=np.int64)]
        yield host_to_model(chunk, model)


def seeded_generator() -> torch.Generator:
    """A CPU generator seeded from torch's global CPU generator, so that ``torch.manual_seed``
    before a method's set-up fixes every draw the method makes with it."""
    return torch.Generator(device="cpu").manual_seed(int(torch.randint(0, 2**31 - 1, (1,), device="cpu")))


def host_random(kind: Literal["uniform", "normal"], shape: tuple[int, ...] | torch.Size,
                generator: torch.Generator | None, like: Tensor) -> Tensor:
    """U[0, 1) or N(0, 1) numbers of ``shape``, drawn on the CPU and moved to ``like``'s device and dtype.

    Drawing on the CPU (from ``generator``, or torch's global CPU generator when None) gives
    the same numbers whatever the device, where a CUDA generator would give others.
    """
    draw = torch.rand if kind == "uniform" else torch.randn
    return draw(tuple(shape), generator=generator, device="cpu").to(device=like.device, dtype=like.dtype)


def entropy(logits: Tensor) -> Tensor:
    """Shannon entropy in nats of ``softmax(logits)`` per row: (n, C) -> (n,).

    Computed from ``log_softmax`` so a confident row gives 0, never NaN.
    """
    log_p = logits.log_softmax(1)
    return -(log_p.exp() * log_p).sum(1)


def bn_modules(model: nn.Module) -> list[_BatchNorm]:
    """Every BatchNorm layer (1-D, 2-D, 3-D) of ``model``, in module order."""
    return [m for m in model.modules() if isinstance(m, _BatchNorm)]


def require_bn(model: nn.Module, method: str) -> list[_BatchNorm]:
    """The BatchNorm layers of ``model``; an ``InfobenchError`` naming ``method`` if there are none."""
    layers = bn_modules(model)
    if not layers:
        raise InfobenchError(
            f"TTA method {method!r} adapts BatchNorm layers, but model {type(model).__name__} has none "
            "(use a model with batchnorm: true, e.g. cnn2d or cnn1d)"
        )
    return layers


def use_batch_stats(model: nn.Module, method: str = "tent") -> list[nn.Parameter]:
    """Tent's configuration (Wang et al. 2021, Sec. 3): BN normalises with the test batch's statistics.

    The model goes to eval mode, except its BN layers, which go to training mode with
    ``track_running_stats = False`` and their running buffers dropped, so each batch is
    normalised by its own mean and (biased) variance. Only the BN affine parameters (scale
    gamma, shift beta) require gradients; they are returned. Raises when the model has no BN.
    """
    layers = require_bn(model, method)
    model.eval()
    model.requires_grad_(False)
    params: list[nn.Parameter] = []
    for bn in layers:
        bn.train()
        bn.track_running_stats = False
        bn.running_mean = None
        bn.running_var = None
        if bn.affine:
            bn.weight.requires_grad_(True)
            bn.bias.requires_grad_(True)
            params += [bn.weight, bn.bias]
    return params


class MixedBatchNorm(nn.Module):
    """A BN layer normalising with ``w * test-batch stats + (1 - w) * source (running) stats``.

    ``w`` is ``test_weight`` when given, else ``n / (n + prior)`` for a batch of ``n`` samples
    (Schneider et al. 2020, prior strength ``N = prior``). Means and variances are
    mixed separately; the test variance is the biased one (what training-mode BN uses), so
    ``w = 1`` is exactly test-batch normalisation and ``w = 0`` the source model.
    """

    def __init__(self, bn: _BatchNorm, test_weight: float | None = None, prior: float | None = None):
        super().__init__()
        if (test_weight is None) == (prior is None):
            raise ValueError("give exactly one of test_weight and prior")
        if bn.running_mean is None or bn.running_var is None:
            raise ValueError("MixedBatchNorm needs a BN layer with source running statistics")
        self.bn = bn
        self.test_weight = test_weight
        self.prior = prior
        # scratch space for the batch statistics of the no-gradient path
        self.register_buffer("_batch_mean", torch.zeros_like(bn.running_mean), persistent=False)
        self.register_buffer("_batch_var", torch.ones_like(bn.running_var), persistent=False)

    def weight_for(self, n: int) -> float:
        """The weight of the test-batch statistics for a batch of ``n`` samples."""
        if self.test_weight is not None:
            return self.test_weight
        return n / (n + self.prior)

    def forward(self, x: Tensor) -> Tensor:
        bn = self.bn
        w = self.weight_for(x.shape[0])
        if w == 1.0:
            return F.batch_norm(x, None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
        if torch.is_grad_enabled() and (x.requires_grad or (bn.weight is not None and bn.weight.requires_grad)):
            # a loss may differentiate through the batch statistics: keep them in the graph
            # (batch_norm's eval mode is not differentiable in its statistics)
            var_t, mean_t = torch.var_mean(x, dim=[0, *range(2, x.dim())], unbiased=False)
            shape = (1, -1) + (1,) * (x.dim() - 2)
            mean = torch.lerp(bn.running_mean, mean_t, w).view(shape)
            var = torch.lerp(bn.running_var, var_t, w).view(shape)
            out = (x - mean) * torch.rsqrt(var + bn.eps)
            if bn.weight is not None:
                out = out * bn.weight.view(shape) + bn.bias.view(shape)
            return out
        # about 4x faster than var_mean on CPU: training-mode batch_norm with momentum 1 writes
        # the batch mean and unbiased variance into the scratch buffers in one fused pass
        F.batch_norm(x, self._batch_mean, self._batch_var, None, None, True, 1.0, bn.eps)
        count = x.numel() // x.shape[1]
        mean = torch.lerp(bn.running_mean, self._batch_mean, w)
        var = torch.lerp(bn.running_var, self._batch_var * ((count - 1) / count), w)
        return F.batch_norm(x, mean, var, bn.weight, bn.bias, False, 0.0, bn.eps)


def use_mixed_stats(
    model: nn.Module, method: str, test_weight: float | None = None, prior: float | None = None
) -> list[MixedBatchNorm]:
    """Replace every BN layer of ``model`` (in place) by a :class:`MixedBatchNorm` around it.

    The model goes to eval mode and nothing requires gradients; returns the new layers.
    """
    require_bn(model, method)
    model.eval()
    model.requires_grad_(False)
    replaced: list[MixedBatchNorm] = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _BatchNorm):
                mixed = MixedBatchNorm(child, test_weight=test_weight, prior=prior)
                setattr(parent, name, mixed)
                replaced.append(mixed)
    return replaced


class MixedStatsMethod(TTAMethod):
    """Base of methods that only re-estimate BN statistics (norm, alpha_bn): nothing is learned.

    Subclasses return the :class:`MixedBatchNorm` weighting from :meth:`mixing`
    (``{"test_weight": w}`` or ``{"prior": N}``); prediction is one forward pass under
    ``inference_mode``, and there is no state to reset.
    """

    updates = "bn_stats"

    def mixing(self) -> dict[str, float]:
        raise NotImplementedError

    def setup(self, model: Classifier, source: SourceInfo) -> None:
        self.model = model
        use_mixed_stats(model, getattr(type(self), "registered_name", type(self).__name__), **self.mixing())

    def adapt_and_predict(self, x: Tensor) -> Tensor:
        with torch.inference_mode():
            return self.model(x)

    def reset(self) -> None:
        """Nothing to reset: statistics are recomputed from every batch."""


class OptimizerChoice(BaseModel):
    """The optimizer of a gradient-based TTA method (defaults: Tent's Adam, lr 1e-3)."""

    model_config = ConfigDict(extra="forbid")

    optimizer: Literal["adam", "sgd"] = Field("adam", description="Adam (beta 0.9, 0.999) or SGD with momentum")
    lr: float = Field(1e-3, gt=0, description="learning rate of the adaptation step")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum (ignored by Adam)")
    nesterov: bool = Field(
        False, description="SGD with Nesterov momentum (ignored by Adam; the anchors' ImageNet-C configs use it)"
    )

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self):
        if self.optimizer == "sgd" and self.nesterov and self.momentum == 0:
            raise ValueError("nesterov: true needs momentum > 0")
        return self


class OptimizerParams(OptimizerChoice):
    """Optimizer fields shared by entropy-minimisation TTA methods: the optimizer, steps, episodic."""

    steps: int = Field(1, ge=1, description="gradient steps per test batch")
    episodic: bool = Field(False, description="reset to the source state before every batch")


def make_optimizer(params: list[nn.Parameter], p: OptimizerChoice) -> torch.optim.Optimizer:
    """Adam or SGD over ``params`` as ``p`` says."""
    if not params:
        raise InfobenchError("the TTA method found no parameters to adapt")
    if p.optimizer == "adam":
        return torch.optim.Adam(params, lr=p.lr, betas=(0.9, 0.999))
    return torch.optim.SGD(params, lr=p.lr, momentum=p.momentum, nesterov=p.nesterov)


# The optimizer settings of the anchors' configs, per benchmark family (TTAMethod.family_defaults):
# mariodoebler/test-time-adaptation, classification/cfgs/cifar10_c/{tent,eta,eata,deyo,rmt}.yaml
# set OPTIM.METHOD Adam, LR 1e-3, BETA 0.9 (batch 200); cfgs/imagenet_c/{tent,eta,eata,deyo}.yaml
# set SGD, LR 0.00025 (batch 64), with conf.py's OPTIM.MOMENTUM 0.9 and OPTIM.NESTEROV True,
# which methods/base.py's setup_optimizer passes to torch.optim.SGD. Methods with other values
# (sar's SAM, rmt's lr) build their tables from these.
ANCHOR_OPTIMIZER: dict[str, dict[str, Any]] = {
    "cifar": {"optimizer": "adam", "lr": 1e-3},
    "imagenet": {"optimizer": "sgd", "lr": 2.5e-4, "momentum": 0.9, "nesterov": True},
}


def family_table(base: dict[str, dict[str, Any]], **per_family: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A ``family_defaults`` table: fresh copies of ``base``'s entries updated with ``per_family[family]``."""
    return {family: {**values, **per_family.get(family, {})} for family, values in base.items()}


def snapshot(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
    """Deep copies of the model's (and optimizer's) state, for :func:`restore`."""
    return {
        "model": copy.deepcopy(model.state_dict()),
        "optimizer": None if optimizer is None else copy.deepcopy(optimizer.state_dict()),
    }


def restore(state: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
    """Load a :func:`snapshot` back into ``model`` (and ``optimizer``)."""
    model.load_state_dict(state["model"])
    if optimizer is not None and state["optimizer"] is not None:
        optimizer.load_state_dict(state["optimizer"])


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with no parameter requiring gradients (its mode is kept)."""
    clone = copy.deepcopy(model)
    clone.requires_grad_(False)
    return clone


def woc_mask(original_logits: Tensor, adapted_logits: Tensor) -> Tensor:
    """The wisdom-of-crowds selection (Lee et al., ICCV 2023, Sec. 4): (n,) booleans.

    With ``y_o = argmax p_original``, a sample is kept when ``p_adapted(y_o) >= p_original(y_o)``:
    the adapted model's confidence in the original model's prediction did not fall.
    """
    p_orig = original_logits.softmax(1)
    y_orig = p_orig.argmax(1, keepdim=True)
    p_now = adapted_logits.detach().softmax(1)
    return p_now.gather(1, y_orig)[:, 0] >= p_orig.gather(1, y_orig)[:, 0]


class EntropyParams(OptimizerParams):
    """Fields of entropy-minimisation methods: the optimizer, plus the optional WOC filter."""

    woc: bool = Field(
        False,
        description="also apply the wisdom-of-crowds filter (Lee et al. 2023): keep a sample only if the "
        "adapted model's probability of the original model's class did not fall",
    )


class EntropyMinimization(TTAMethod):
    """Base of methods minimising a (filtered, weighted) prediction entropy on BN affine parameters.

    One step on a batch ``x``: logits = model(x) (BN with test-batch statistics); per-sample
    entropies H; weights ``w = self.sample_weights(logits, H, x)`` (0 drops a sample); with
    ``woc`` the weights of samples failing :func:`woc_mask` become 0; the loss is
    ``mean over kept samples of w * H`` plus ``self.regulariser()``. No sample kept -> no
    update (and no NaN). The logits returned are those of the first forward pass, i.e. the
    prediction made before this batch changes the model. ``batch_stats["kept"]`` is the kept
    fraction of the batch.

    Subclasses override :meth:`sample_weights` (filters and weights), :meth:`regulariser`
    (extra loss terms) and :meth:`reset_extra` (state beyond the model and optimizer).
    """

    Params = EntropyParams
    updates = "bn_affine"

    def setup(self, model: Classifier, source: SourceInfo) -> None:
        self.model = model
        self.num_classes = source.num_classes
        self.adapted = use_batch_stats(model, self._name())
        self.optimizer = make_optimizer(self.adapted, self.params)
        self.original = frozen_copy(model) if self.params.woc else None
        self._initial = snapshot(model, self.optimizer)
        self.reset_extra()

    def _name(self) -> str:
        return getattr(type(self), "registered_name", type(self).__name__.lower())

    def sample_weights(self, logits: Tensor, ent: Tensor, x: Tensor) -> Tensor:
        """Per-sample weights (n,) >= 0 of the entropy loss; 0 removes a sample. Base: all ones."""
        return torch.ones_like(ent)

    def regulariser(self) -> Tensor | None:
        """An extra loss term added to the entropy loss (EATA's Fisher penalty); None: nothing."""
        return None

    def reset_extra(self) -> None:
        """Reset state kept beside the model and optimizer (moving averages)."""

    def selection(self, logits: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """Entropies (n,) and detached weights (n,) after the method's filters and WOC."""
        ent = entropy(logits)
        weights = self.sample_weights(logits, ent, x).detach()
        if self.original is not None:
            with torch.no_grad():
                keep = woc_mask(self.original(x), logits)
            weights = weights * keep
        return ent, weights

    def loss(self, logits: Tensor, x: Tensor) -> Tensor | None:
        """The loss of one step, or None when no sample is kept; sets ``batch_stats``."""
        ent, weights = self.selection(logits, x)
        n_kept = int(torch.count_nonzero(weights))
        self.batch_stats = {"kept": n_kept / max(len(ent), 1)}
        if n_kept == 0:
            return None
        # dropped samples weigh 0, so this is the mean over kept samples without a gather
        loss = (ent * weights).sum() / n_kept
        extra = self.regulariser()
        return loss if extra is None else loss + extra

    def adapt_and_predict(self, x: Tensor) -> Tensor:
        if self.params.episodic:
            self.reset()
        first: Tensor | None = None
        for _ in range(self.params.steps):
            logits = self.model(x)
            if first is None:
                first = logits.detach()
            loss = self.loss(logits, x)
            if loss is None:
                continue
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return first

    def reset(self) -> None:
        restore(self._initial, self.model, self.optimizer)
        self.reset_extra()
