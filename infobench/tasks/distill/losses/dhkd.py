"""Dual-head KD: an auxiliary head on the student's features learns the teacher through a binary-KL loss."""

from __future__ import annotations

import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from infobench.registry import register
from infobench.tasks.distill.common import DistillLoss, check_logit_pair


def binary_kl_logits(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """Per-sample sum over classes of KL(Bern(sigmoid(z_t/T)) || Bern(sigmoid(z_s/T))) in nats: (b,)."""
    zt, zs = teacher_logits / temperature, student_logits / temperature
    pt = zt.sigmoid()
    # log sigmoid(z) and log(1 - sigmoid(z)) = log sigmoid(-z), both stable
    kl = pt * (F.logsigmoid(zt) - F.logsigmoid(zs)) + (1 - pt) * (F.logsigmoid(-zt) - F.logsigmoid(-zs))
    return kl.sum(1)


@register("distill.loss", "dhkd")
class DHKD(DistillLoss):
    """Dual-head KD: main head with CE, auxiliary linear head with binary-KL logit loss (T=2), shared backbone.

    Yang, Zong, Huang, Feng and An, "Dual-Head Knowledge Distillation: Enhancing Logits
    Utilization with an Auxiliary Head" (arXiv 2411.08937, 2024), Sec. 4: the student's
    backbone feeds its own head, trained with ``CE(y, softmax(z_s))``, and an auxiliary linear
    head trained with the binary KL of every logit,
    ``T^2 * sum_k KL(Bern(sigma(z_t,k / T)) || Bern(sigma(z_aux,k / T)))``, T = 2; both
    gradients reach the shared backbone, while the main head never sees the logit loss (the
    collapse the paper observes when one head takes both). Predictions use the main head.

    Documented choices: the auxiliary head is linear on ``features`` (the input of the
    model's head), initialised from the seed's torch state, with unit weight.
    """

    student_layer = "features"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        temperature: float = Field(2.0, gt=0, description="Temperature T of the binary-KL logit loss.")
        w_ce: float = Field(1.0, ge=0, description="Weight of the main head's cross-entropy.")
        w_aux: float = Field(1.0, ge=0, description="Weight of the auxiliary head's T^2-scaled binary KL.")

    def setup(self, student, teacher, num_classes):
        head = getattr(student, "head", None)
        if not isinstance(head, nn.Linear):
            raise ValueError(f"dhkd needs a student with a linear 'head'; {type(student).__name__} has none")
        self.aux_head = nn.Linear(head.in_features, num_classes)

    def forward(self, student_logits, teacher_logits, targets, features=None):
        check_logit_pair(student_logits, teacher_logits, targets)
        if not features or "student" not in features:
            raise ValueError("dhkd needs the student's features (features['student']); call setup() and tap 'features'")
        p = self.params
        aux_logits = self.aux_head(features["student"])
        bkl = binary_kl_logits(aux_logits, teacher_logits, p.temperature).mean()
        return p.w_ce * F.cross_entropy(student_logits, targets) + p.w_aux * p.temperature**2 * bkl
