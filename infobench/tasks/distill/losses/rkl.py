"""Reverse-KL distillation: the student's distribution is the first argument (mode seeking)."""

from __future__ import annotations

from infobench.registry import register
from infobench.tasks.distill.common import SoftTargetLoss, SoftTargetParams, kl_logits


@register("distill.loss", "rkl")
class ReverseKL(SoftTargetLoss):
    """Reverse KL: w_ce * CE + w_kd * T^2 * KL(p_s || p_t), mode-seeking instead of mean-seeking.

    Wen, Li, Du and Mou, "f-Divergence Minimization for Sequence-Level Knowledge
    Distillation", ACL 2023, Sec. 3 (reverse KL, ``KL(q_student || p_teacher)``); Gu et al.,
    "MiniLLM: Knowledge Distillation of Large Language Models", ICLR 2024, Eq. 1:
    ``L = w_ce * CE + w_kd * T^2 * sum_k p_s,k (log p_s,k - log p_t,k)`` on tempered softmaxes.

    Documented choice: the papers give the divergence, not its mixing with the labels; the
    weights and temperature default to kd's (T=4, w_ce=0.1, w_kd=0.9) so the two differ only in
    the direction of the KL.
    """

    class Params(SoftTargetParams):
        pass

    def divergence(self, student_logits, teacher_logits):
        return kl_logits(student_logits, teacher_logits, self.params.temperature)
