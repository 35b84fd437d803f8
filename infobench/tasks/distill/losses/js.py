"""Jensen-Shannon distillation: the symmetric, bounded divergence between teacher and student."""

from __future__ import annotations

from infobench.registry import register
from infobench.tasks.distill.common import SoftTargetLoss, SoftTargetParams, js_logits


@register("distill.loss", "js")
class JensenShannon(SoftTargetLoss):
    """Jensen-Shannon: w_ce * CE + w_kd * T^2 * JS(p_t, p_s), with JS <= log 2 per sample.

    Wen, Li, Du and Mou, "f-Divergence Minimization for Sequence-Level Knowledge
    Distillation", ACL 2023, Sec. 3 (JS divergence):
    ``JS(p_t, p_s) = 1/2 KL(p_t || m) + 1/2 KL(p_s || m)``, ``m = (p_t + p_s) / 2``, on
    tempered softmaxes.

    Documented choice: the weights and temperature default to kd's (T=4, w_ce=0.1, w_kd=0.9)
    so that the divergences are compared on equal terms.
    """

    class Params(SoftTargetParams):
        pass

    def divergence(self, student_logits, teacher_logits):
        return js_logits(teacher_logits, student_logits, self.params.temperature)
