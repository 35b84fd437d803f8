"""Distiller's MI-alpha: intermediate-representation distillation through an interpolated MI lower bound."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from infobench.mi.critic import off_diagonal_logmeanexp
from infobench.registry import register
from infobench.tasks.distill.common import DistillLoss, check_logit_pair, feature_dim


def log_loo_mean_exp(scores: Tensor) -> Tensor:
    """``out[i, j] = log mean_{k != j} exp(scores[i, k])`` for a (b, b) matrix, accurate everywhere.

    Off the row maximum, ``sum - exp(s_ij)`` keeps the maximum's term (>= 1 after shifting), so
    no cancellation; at the row maximum the held-out log-sum-exp is computed directly.
    """
    top, where = scores.max(dim=1, keepdim=True)
    shifted = torch.exp(scores - top)
    rest = (shifted.sum(dim=1, keepdim=True) - shifted).clamp(min=torch.finfo(scores.dtype).tiny)
    loo = top + torch.log(rest)
    without_top = torch.logsumexp(scores.scatter(1, where, -math.inf), dim=1, keepdim=True)
    return loo.scatter(1, where, without_top) - math.log(scores.shape[1] - 1)


def interpolated_bound(scores: Tensor, alpha: float, log_baseline: float = 1.0) -> Tensor:
    """Poole et al.'s I_alpha lower bound (nats) from critic scores ``scores[i, j] = f(x_i, y_j)``, (b, b).

    Diagonal pairs are joint samples, off-diagonal ones product-of-marginals samples. The
    baseline of pair (i, j) is ``log(alpha * m_ij + (1 - alpha) * e^log_baseline)`` with ``m_ij``
    the leave-one-out mean of ``exp(scores[i, k])`` over ``k != j``;
    ``I = 1 + mean_{i != j}(scores_ii - b_ij) - mean_{i != j} exp(scores_ij - b_ii)``
    (Poole et al. 2019, Eq. 15-16, the batch estimator of their reference code). alpha = 0
    with ``log_baseline = 1`` is NWJ, alpha = 1 the InfoNCE-like bound, which never exceeds
    ``log(b / alpha)``.
    """
    b = scores.shape[0]
    if scores.ndim != 2 or scores.shape[1] != b or b < 2:
        raise ValueError(f"scores must be a square (b, b) matrix with b >= 2, got shape {tuple(scores.shape)}")
    loo_mean = log_loo_mean_exp(scores)
    log_a = math.log(alpha) if alpha > 0 else -math.inf
    log_1a = math.log(1 - alpha) if alpha < 1 else -math.inf
    baseline = torch.logaddexp(loo_mean + log_a, torch.full_like(loo_mean, log_baseline + log_1a))
    # off-diagonal means by masking, not by indexing with a boolean mask (whose data-dependent
    # size would make the GPU wait for the host)
    diagonal = torch.eye(b, dtype=torch.bool, device=scores.device)
    marg = torch.exp(off_diagonal_logmeanexp(scores - baseline.diagonal()[:, None]))
    joint = (scores.diagonal()[:, None] - baseline).masked_fill(diagonal, 0.0).sum() / (b * (b - 1))
    return 1 + joint - marg


@register("distill.loss", "mi_alpha")
class MIAlpha(DistillLoss):
    """Intermediate distillation maximising a critic-based MI bound (NWJ at alpha=0, InfoNCE at alpha=1).

    He, Chen, Hsu et al., "Distiller: A Systematic Study of Model Distillation Methods in
    Natural Language Processing", SustaiNLP 2021, Sec. 3 (MI-alpha): the student's hidden
    states ``h_s`` are made informative about the teacher's ``h_t`` by maximising Poole et
    al.'s interpolated bound I_alpha ("On Variational Bounds of Mutual Information", ICML 2019,
    Eq. 15) with a learned critic ``f(h_s, h_t)``:
    ``L = w_ce * CE(y, p_s) - w_mi * I_alpha(h_s; h_t)``, the critic trained with the student
    to tighten the bound.

    Documented choices: the representations are the penultimate ones (``features``, the input
    of each model's head); the critic is separable, ``f(s, t) = <g(s), h(t)> / sqrt(d)`` with
    linear ``g``, ``h`` to ``critic_dim`` dimensions; the fixed baseline is ``e`` (so alpha = 0
    is exactly NWJ); alpha = 0.5 by default.
    """

    student_layer = "features"
    teacher_layer = "features"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        alpha: float = Field(0.5, ge=0, le=1, description="Interpolation: 0 = NWJ, 1 = InfoNCE-like bound.")
        critic_dim: int = Field(64, ge=1, description="Width of the separable critic's projections.")
        w_ce: float = Field(1.0, ge=0, description="Weight of the cross-entropy with the labels.")
        w_mi: float = Field(1.0, ge=0, description="Weight of the (negated) MI bound.")

    def setup(self, student, teacher, num_classes):
        shape = getattr(student, "input_shape", None)
        if shape is None:
            raise ValueError("mi_alpha needs models with an 'input_shape' to size its critic")
        d = self.params.critic_dim
        self.project_student = nn.Linear(feature_dim(student, "features", shape), d)
        self.project_teacher = nn.Linear(feature_dim(teacher, "features", shape), d)

    def bound(self, student_features: Tensor, teacher_features: Tensor) -> Tensor:
        """I_alpha(h_s; h_t) of the batch in nats under the critic."""
        g = self.project_student(student_features)
        h = self.project_teacher(teacher_features)
        scores = g @ h.T / math.sqrt(g.shape[1])
        return interpolated_bound(scores, self.params.alpha)

    def forward(self, student_logits, teacher_logits, targets, features=None):
        check_logit_pair(student_logits, teacher_logits, targets)
        if not features or "student" not in features or "teacher" not in features:
            raise ValueError("mi_alpha needs features['student'] and features['teacher'] (tapped 'features' layers)")
        p = self.params
        mi = self.bound(features["student"], features["teacher"].detach())
        return p.w_ce * F.cross_entropy(student_logits, targets) - p.w_mi * mi
