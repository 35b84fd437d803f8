"""TGeo: a per-sample fusion ratio between the label and the teacher, predicted from trilateral geometry."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn
from torch.func import functional_call

from infobench.registry import register
from infobench.tasks.distill.common import (
    DistillLoss,
    check_logit_pair,
    class_mean_probs,
    kl_logits,
)


@register("distill.loss", "tgeo")
class TGeo(DistillLoss):
    """Per-sample KD/CE fusion ratio from student-teacher-label geometry, learned bilevel on validation.

    Hu, Wu, Li, Ma, Chen, Yan, Wang and Liu, "Less or More From Teacher: Exploiting
    Trilateral Geometry For Knowledge Distillation", ICLR 2024 (Sec. 3): each sample's loss is
    ``(1 - a_i) * CE(y_i, p_s,i) + a_i * T^2 * KL(p_t,i || p_s,i)``, the ratio
    ``a_i = sigmoid(g([p_s,i - p_t,i, p_s,i - y_i, p_t,i - y_i, p_t,i - pbar_t,y_i]))`` produced
    by a small network ``g`` from the intra-sample trilateral geometry (the three edges of the
    student/teacher/ground-truth triangle) and the inter-sample relation (the teacher's
    class-mean prediction ``pbar_t,y``). ``g`` is learned bilevel: before each student step, a
    virtual SGD step of the student on the fused training loss is taken, and ``g`` is updated
    to lower the cross-entropy of that virtually-updated student on a validation batch.

    Documented choices (the paper's exact inputs and schedule are not fully specified): the
    edges are the probability vectors' differences (tempered, T = 4) with the one-hot label;
    the class means come from the frozen teacher over the whole training split (offline only);
    ``g`` is an MLP with one hidden layer of 64 ReLU units trained by Adam (lr 1e-3); the
    virtual step uses the student's learning rate; one outer step per student step. The
    look-ahead forwards run on copies of the student's buffers, so the outer step leaves the
    student's BN running statistics (and their batch counter) as they were: the statistics the
    student is evaluated with never see a validation batch.
    """

    modes = ("offline",)
    bilevel = True

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        temperature: float = Field(4.0, gt=0, description="Softmax temperature of the KD term and the geometry.")
        hidden: int = Field(64, ge=1, description="Hidden units of the fusion network.")
        meta_lr: float = Field(1e-3, gt=0, description="Adam learning rate of the fusion network (outer step).")

    def setup(self, student, teacher, num_classes):
        self.fusion = nn.Sequential(nn.Linear(4 * num_classes, self.params.hidden), nn.ReLU(),
                                    nn.Linear(self.params.hidden, 1))
        self.register_buffer("class_means", torch.full((num_classes, num_classes), 1.0 / num_classes))
        self._meta_opt: torch.optim.Optimizer | None = None  # made at the first outer step, once on the device

    def observe_teacher(self, teacher_logits, targets):
        """pbar_t,c: the teacher's mean tempered prediction over the training samples of class c."""
        probs = F.softmax(teacher_logits / self.params.temperature, dim=1)
        self.class_means = class_mean_probs(probs, targets, self.class_means.shape[0]).to(self.class_means.dtype)

    def ratio(self, student_logits: Tensor, teacher_logits: Tensor, targets: Tensor) -> Tensor:
        """a_i in (0, 1) for each sample, (b,); gradients reach only the fusion network."""
        t = self.params.temperature
        p_s = F.softmax(student_logits.detach() / t, dim=1)
        p_t = F.softmax(teacher_logits.detach() / t, dim=1)
        y = torch.zeros_like(p_s).scatter_(1, targets[:, None], 1.0)  # one-hot, without one_hot's host-side range check
        geometry = torch.cat([p_s - p_t, p_s - y, p_t - y, p_t - self.class_means[targets]], dim=1)
        return torch.sigmoid(self.fusion(geometry)).squeeze(1)

    def fused(self, student_logits, teacher_logits, targets, ratio) -> Tensor:
        t = self.params.temperature
        ce = F.cross_entropy(student_logits, targets, reduction="none")
        kd = t**2 * kl_logits(teacher_logits, student_logits, t)
        return ((1 - ratio) * ce + ratio * kd).mean()

    def outer_step(self, student, batch, val_batch, lr):
        x, teacher_logits, y = batch
        params = dict(student.named_parameters())
        # Copies, so that the look-ahead and validation forwards (train mode) update scratch BN
        # statistics: the real running statistics must see training batches only, never the
        # validation batch. Train-mode BN normalises by batch statistics, so the meta-gradient is
        # the same as with the real buffers.
        buffers = {name: buffer.clone() for name, buffer in student.named_buffers()}
        logits = functional_call(student, (params, buffers), (x,))
        inner = self.fused(logits, teacher_logits, y, self.ratio(logits, teacher_logits, y))
        grads = torch.autograd.grad(inner, list(params.values()), create_graph=True)
        virtual = {name: p - lr * g for (name, p), g in zip(params.items(), grads)}
        val_x, val_y = val_batch
        outer = F.cross_entropy(functional_call(student, (virtual, buffers), (val_x,)), val_y)
        if self._meta_opt is None:
            # not in setup: moving the loss to another device may replace the fusion
            # network's parameters, and an optimizer made earlier would update the old ones
            self._meta_opt = torch.optim.Adam(self.fusion.parameters(), lr=self.params.meta_lr)
        self._meta_opt.zero_grad(set_to_none=True)
        meta_params = list(self.fusion.parameters())
        for p, g in zip(meta_params, torch.autograd.grad(outer, meta_params)):
            p.grad = g
        self._meta_opt.step()

    def forward(self, student_logits, teacher_logits, targets, features=None):
        check_logit_pair(student_logits, teacher_logits, targets)
        with torch.no_grad():
            ratio = self.ratio(student_logits, teacher_logits, targets)
        return self.fused(student_logits, teacher_logits, targets, ratio)
