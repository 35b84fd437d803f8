"""BD-KD: online distillation whose student loss balances forward and reverse KL per sample."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from infobench.registry import register
from infobench.tasks.distill.common import DistillLoss, check_logit_pair, entropy_logits, kl_logits


@register("distill.loss", "bdkd")
class BDKD(DistillLoss):
    """Online KD mixing forward and reverse KL per sample by the student/teacher entropy gap.

    Amara, Ziaeefard, Nguyen, Hou and Clark, "BD-KD: Balancing the Divergences for Online
    Knowledge Distillation" (arXiv 2212.12965; BMVC 2023): teacher and student are trained
    together; the student's loss is
    ``CE + T^2 * mean_i [(1 - w_i) KL(p_t,i || p_s,i) + w_i KL(p_s,i || p_t,i)]``, the
    reverse (mode-seeking) KL weighted up on samples where the student is less certain than
    the teacher, and the teacher is regularised towards the student by its own reverse KL,
    ``CE(teacher) + teacher_weight * T^2 * mean_i KL(p_t,i || p_s,i)`` (gradient into the teacher).

    Documented choices (the exact weighting could not be established from the paper's text):
    ``w_i = sigmoid(gap_scale * (H(p_s,i) - H(p_t,i)))`` on tempered softmaxes, detached, so
    equal entropies give equal weights; T = 4; unit weights. Online only.
    """

    modes = ("online",)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        temperature: float = Field(4.0, gt=0, description="Softmax temperature T of the divergences.")
        gap_scale: float = Field(1.0, ge=0, description="Slope of the logistic weight on the entropy gap (nats^-1).")
        w_ce: float = Field(1.0, ge=0, description="Weight of the student's cross-entropy.")
        w_kd: float = Field(1.0, ge=0, description="Weight of the student's balanced divergence.")
        teacher_weight: float = Field(1.0, ge=0, description="Weight of the teacher's reverse-KL regulariser.")

    def reverse_weight(self, student_logits, teacher_logits) -> torch.Tensor:
        """w_i in (0, 1): the share of reverse KL of each sample, (b,), without gradient."""
        t = self.params.temperature
        gap = entropy_logits(student_logits.detach(), t) - entropy_logits(teacher_logits.detach(), t)
        return torch.sigmoid(self.params.gap_scale * gap)

    def forward(self, student_logits, teacher_logits, targets, features=None):
        check_logit_pair(student_logits, teacher_logits, targets)
        p = self.params
        w = self.reverse_weight(student_logits, teacher_logits)
        forward_kl = kl_logits(teacher_logits, student_logits, p.temperature)
        reverse_kl = kl_logits(student_logits, teacher_logits, p.temperature)
        divergence = ((1 - w) * forward_kl + w * reverse_kl).mean()
        return p.w_ce * F.cross_entropy(student_logits, targets) + p.w_kd * p.temperature**2 * divergence

    def teacher_loss(self, teacher_logits, student_logits, targets):
        p = self.params
        reverse = kl_logits(teacher_logits, student_logits.detach(), p.temperature).mean()
        return F.cross_entropy(teacher_logits, targets) + p.teacher_weight * p.temperature**2 * reverse
