"""The baseline of every distillation table: the student trained on the labels alone."""

from __future__ import annotations

import torch.nn.functional as F

from infobench.registry import register
from infobench.tasks.distill.common import DistillLoss, check_logit_pair


@register("distill.loss", "scratch")
class Scratch(DistillLoss):
    """Student trained from scratch with cross-entropy only (no teacher signal).

    The reference row of every knowledge-distillation table (e.g. Hinton, Vinyals and Dean,
    "Distilling the Knowledge in a Neural Network", NIPS Deep Learning Workshop 2015):
    ``L = CE(softmax(z_s), y)``. The teacher is still evaluated, so agreement and
    KL(teacher || student) are reported for this baseline too.
    """

    uses_teacher = False

    def forward(self, student_logits, teacher_logits, targets, features=None):
        check_logit_pair(student_logits, teacher_logits, targets)
        return F.cross_entropy(student_logits, targets)
