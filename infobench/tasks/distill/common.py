"""Shared pieces of the distillation losses: the base class, divergences from logits, feature taps.

Every divergence here works on logits of shape (b, C) and returns one value per sample, in
nats; ``p`` is always the first argument's softmax. Softmaxes are taken in log space
(``log_softmax``) so logits of any size stay finite.

Device: every loss computes on the device and in the dtype of the logits it is given; a tensor
it creates (constants, masks, class sums) is made there too (``tests/tasks/distill`` runs every
loss on the data-less ``meta`` device, which refuses any CPU tensor mixed in, and in float64).
Nor do the losses read values back to the host (no ``.item()``, no data-dependent shapes such
as boolean-mask indexing or ``bincount``), so a training step never waits for the GPU.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

Mode = Literal["offline", "online"]


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SoftTargetParams(BaseModel):
    """Weights of ``w_ce * CE(student, y) + w_kd * T^2 * D(teacher, student)`` (Hinton et al. 2015)."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(4.0, gt=0, description="Softmax temperature T of both models' distributions.")
    w_ce: float = Field(0.1, ge=0, description="Weight of the cross-entropy with the labels.")
    w_kd: float = Field(0.9, ge=0, description="Weight of the T^2-scaled divergence term.")


class DistillLoss(nn.Module):
    """Base class of distillation losses: ``loss(student_logits, teacher_logits, targets, features)``.

    - ``Params``: pydantic parameters with the paper's defaults.
    - ``modes``: the training modes the loss supports; the first is its own (``offline``: a
      frozen, cached teacher; ``online``: teacher and student trained together).
    - ``uses_teacher``: False for the scratch baseline (the teacher is then only evaluated).
    - ``student_layer`` / ``teacher_layer``: module names whose outputs the loss reads through
      forward hooks (``"features"`` is the input of the model's ``head``, the penultimate
      representation); the task passes them in ``features={"student": ..., "teacher": ...}``.
    - ``setup(student, teacher, num_classes)``: builds the loss's own modules (extra heads,
      critics); their parameters are trained with the student's.
    - ``teacher_loss``: the teacher's objective in online mode (cross-entropy unless a loss says more).
    - ``observe_teacher(logits, labels)``: offline, the frozen teacher's logits on the whole
      training split, once before training (for statistics such as class-mean predictions).
    - ``bilevel``: when True, ``outer_step(student, batch, val_batch, lr)`` runs before every
      student step, with ``batch`` = (x, teacher logits, y) and ``val_batch`` = (x, y) drawn from
      the validation split (losses whose own parameters are learned on validation data).
    """

    Params: ClassVar[type[BaseModel]] = NoParams
    modes: ClassVar[tuple[Mode, ...]] = ("offline", "online")
    uses_teacher: ClassVar[bool] = True
    bilevel: ClassVar[bool] = False
    student_layer: str | None = None
    teacher_layer: str | None = None

    def __init__(self, params: BaseModel | None = None):
        super().__init__()
        self.params = params if params is not None else self.Params()

    def setup(self, student: nn.Module, teacher: nn.Module, num_classes: int) -> None:
        """Build modules that depend on the models (heads, critics). Default: nothing."""

    def observe_teacher(self, teacher_logits: Tensor, targets: Tensor) -> None:
        """See the frozen teacher's training-split logits (n, C) once, offline. Default: nothing."""

    def outer_step(self, student: nn.Module, batch: tuple[Tensor, Tensor, Tensor],
                   val_batch: tuple[Tensor, Tensor], lr: float) -> None:
        """One update of the loss's own parameters on validation data (``bilevel`` losses)."""
        raise NotImplementedError(f"{type(self).__name__} declares bilevel but has no outer_step")

    def forward(
        self,
        student_logits: Tensor,
        teacher_logits: Tensor,
        targets: Tensor,
        features: dict[str, Tensor] | None = None,
    ) -> Tensor:
        """Scalar loss of a batch: logits (b, C), targets (b,) int64."""
        raise NotImplementedError

    def teacher_loss(self, teacher_logits: Tensor, student_logits: Tensor, targets: Tensor) -> Tensor:
        """The teacher's loss in online mode; ``student_logits`` arrive detached."""
        return F.cross_entropy(teacher_logits, targets)


def check_logit_pair(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor | None = None) -> None:
    """Refuse mismatched shapes with a message naming both; logits must be (b, C)."""
    if student_logits.ndim != 2:
        raise ValueError(f"student_logits must have shape (batch, classes), got {tuple(student_logits.shape)}")
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"teacher_logits shape {tuple(teacher_logits.shape)} differs from student_logits "
            f"shape {tuple(student_logits.shape)}"
        )
    if targets is not None and targets.shape != student_logits.shape[:1]:
        raise ValueError(f"targets must have shape ({student_logits.shape[0]},), got {tuple(targets.shape)}")


def kl_logits(p_logits: Tensor, q_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Per-sample KL(p || q) in nats with ``p = softmax(p_logits / T)``, ``q = softmax(q_logits / T)``: (b,)."""
    log_p = F.log_softmax(p_logits / temperature, dim=1)
    log_q = F.log_softmax(q_logits / temperature, dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(1)


def js_logits(p_logits: Tensor, q_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Per-sample Jensen-Shannon divergence in nats, ``(KL(p||m) + KL(q||m)) / 2``, ``m = (p + q) / 2``: (b,)."""
    log_p = F.log_softmax(p_logits / temperature, dim=1)
    log_q = F.log_softmax(q_logits / temperature, dim=1)
    log_m = torch.logsumexp(torch.stack([log_p, log_q]), dim=0) - math.log(2.0)
    return 0.5 * ((log_p.exp() * (log_p - log_m)).sum(1) + (log_q.exp() * (log_q - log_m)).sum(1))


def entropy_logits(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Per-sample Shannon entropy of ``softmax(logits / T)`` in nats: (b,)."""
    log_p = F.log_softmax(logits / temperature, dim=1)
    return -(log_p.exp() * log_p).sum(1)


def class_mean_probs(probs: Tensor, targets: Tensor, num_classes: int) -> Tensor:
    """Row c: the mean of ``probs`` (n, C) over the samples labelled c, (C, C); 0 for an absent class.

    Sums and counts by ``index_add_`` on the device of ``probs``: no ``bincount``, whose output
    size depends on the largest label and so makes the GPU wait for the host.
    """
    sums = probs.new_zeros(num_classes, probs.shape[1]).index_add_(0, targets, probs)
    counts = probs.new_zeros(num_classes).index_add_(0, targets, probs.new_ones(targets.shape[0]))
    return sums / counts.clamp(min=1)[:, None]


class SoftTargetLoss(DistillLoss):
    """``w_ce * CE + w_kd * T^2 * mean_i D(teacher_i, student_i)`` for a per-sample divergence ``D``."""

    Params = SoftTargetParams

    def divergence(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        """Per-sample divergence (b,) of the tempered distributions."""
        raise NotImplementedError

    def forward(self, student_logits, teacher_logits, targets, features=None):
        check_logit_pair(student_logits, teacher_logits, targets)
        p = self.params
        loss = p.w_kd * p.temperature**2 * self.divergence(student_logits, teacher_logits).mean()
        if p.w_ce > 0:
            loss = loss + p.w_ce * F.cross_entropy(student_logits, targets)
        return loss


# ------------------------------------------------------------------------------- feature taps


def _module(model: nn.Module, layer: str) -> tuple[nn.Module, bool]:
    """The module named ``layer`` and whether its *input* is wanted (``"features"``: the head's input)."""
    if layer == "features":
        if not isinstance(getattr(model, "head", None), nn.Module):
            raise ValueError(f"{type(model).__name__} has no 'head' module, so 'features' cannot be tapped")
        return model.head, True
    modules = dict(model.named_modules())
    if layer not in modules or layer == "":
        names = ", ".join(["features"] + [n for n in modules if n])
        raise ValueError(f"{type(model).__name__} has no layer {layer!r}; one of: {names}")
    return modules[layer], False


class FeatureTap:
    """Keeps the latest activation of one layer of ``model`` (flattened to (b, d)) through a forward hook.

    The model itself is not modified; ``remove()`` detaches the hook.
    """

    def __init__(self, model: nn.Module, layer: str):
        module, use_input = _module(model, layer)
        self.layer = layer
        self.value: Tensor | None = None
        if use_input:
            self._handle = module.register_forward_pre_hook(self._keep_input)
        else:
            self._handle = module.register_forward_hook(self._keep_output)

    def _keep_input(self, module, args) -> None:
        self.value = args[0].flatten(1)

    def _keep_output(self, module, args, output) -> None:
        self.value = output.flatten(1)

    def pop(self) -> Tensor:
        if self.value is None:
            raise RuntimeError(f"layer {self.layer!r} produced no activation in the last forward pass")
        value, self.value = self.value, None
        return value

    def remove(self) -> None:
        self._handle.remove()


def feature_dim(model: nn.Module, layer: str, input_shape: tuple[int, ...]) -> int:
    """Width of the tapped activation of ``layer``, found by one forward pass of a zero input."""
    from infobench.models.train import model_device

    tap = FeatureTap(model, layer)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((2, *input_shape), device=model_device(model)))
        return int(tap.pop().shape[1])
    finally:
        tap.remove()
        model.train(was_training)
