"""Hinton et al.'s knowledge distillation: forward KL between tempered softmaxes."""

from __future__ import annotations

from infobench.registry import register
from infobench.tasks.distill.common import SoftTargetLoss, SoftTargetParams, kl_logits


@register("distill.loss", "kd")
class KD(SoftTargetLoss):
    """Knowledge distillation: w_ce * CE + w_kd * T^2 * KL(p_t || p_s) on tempered softmaxes.

    Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network", NIPS Deep
    Learning Workshop 2015, Sec. 2:
    ``L = w_ce * CE(y, softmax(z_s)) + w_kd * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))``;
    the ``T^2`` keeps the soft-target gradients at the scale of the hard-target ones. Defaults
    T=4, w_ce=0.1, w_kd=0.9 are the CIFAR-100 settings of the CRD benchmark (Tian et al., ICLR
    2020) behind the published resnet32x4 -> resnet8x4 numbers.
    """

    class Params(SoftTargetParams):
        pass

    def divergence(self, student_logits, teacher_logits):
        return kl_logits(teacher_logits, student_logits, self.params.temperature)
