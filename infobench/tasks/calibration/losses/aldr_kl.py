"""ALDR-KL: the adaptive label-distributionally robust loss (Zhu, Ying & Yang, "Label
Distributionally Robust Losses for Multi-class Classification: Consistency, Robustness and
Adaptivity", ICML 2023, Sec. 4).

The LDR-KL loss of a sample with logits z and label y is the worst case over label
distributions p of the margin-shifted logit differences, KL-regularised towards uniform:

    psi_lambda(z, y) = max_{p in simplex} sum_k p_k (c 1[k != y] + z_k - z_y) - lambda KL(p, 1/C)
                     = lambda log( (1/C) sum_k exp((c 1[k != y] + z_k - z_y) / lambda) ).

ALDR-KL gives each training sample i its own lambda_i, adapted with a penalty
(alpha log C / (2 lambda_0)) (lambda_i - lambda_0)^2: with p_i = softmax(z_i / lambda_i) at the
current lambda_i, the closed-form update (as in the authors' implementation) is

    lambda_i <- lambda_0 (1 - KL(p_i, 1/C) / (alpha log C)),

so confidently fitted samples (p_i far from uniform) get a smaller lambda (a harder, max-like
loss) and ambiguous or noisy ones keep lambda near lambda_0 (a softer, mean-like loss). The
stored lambda_i is looked up and updated through the sample indices the loader yields; the loss
is ``psi_{lambda_i}(z_i, y_i) - (alpha log C / (2 lambda_0)) (lambda_i - lambda_0)^2``.
Documented choices: logits are used as they are (the authors' code can also divide them by their
mean absolute value); alpha > 1 keeps every lambda_i >= lambda_0 (1 - 1/alpha) > 0 since
KL(p, 1/C) <= log C; defaults c = 1, lambda_0 = 1, alpha = 2.
"""

from __future__ import annotations

import math

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from infobench.registry import register
from infobench.tasks.calibration.losses.base import TrainingLoss


def ldr_kl(logits: Tensor, labels: Tensor, lam: Tensor, margin: float) -> Tensor:
    """Per-sample LDR-KL loss ``lam log mean_k exp((margin 1[k != y] + z_k - z_y) / lam)``; lam (b,)."""
    z_y = logits.gather(1, labels[:, None])
    shift = margin * torch.ones_like(logits).scatter_(1, labels[:, None], 0.0)
    scaled = (shift + logits - z_y) / lam[:, None]
    return lam * (torch.logsumexp(scaled, dim=1) - math.log(logits.shape[1]))


@register("calibration.loss", "aldr_kl")
class ALDRKL(TrainingLoss):
    """Adaptive label-distributionally robust loss with a per-sample temperature (Zhu et al. 2023)."""

    needs_loop = True

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        margin: float = Field(1.0, ge=0, description="c: margin added to every wrong class's logit difference")
        lambda0: float = Field(1.0, gt=0, description="lambda_0: the reference (largest) temperature")
        alpha: float = Field(2.0, gt=1, description="strength of the pull of lambda_i towards lambda_0")

    lambdas: Tensor

    def setup(self, n_train: int, n_classes: int, device: torch.device | str = "cpu") -> None:
        self.lambdas = torch.full((n_train,), float(self.params.lambda0), device=device)

    def update_lambdas(self, logits: Tensor, indices: Tensor) -> Tensor:
        """The adapted lambda_i of the batch's samples, stored back; (b,)."""
        p = self.params
        n_classes = logits.shape[1]
        indices = indices.to(self.lambdas.device)
        with torch.no_grad():
            log_q = torch.log_softmax(logits / self.lambdas[indices][:, None], dim=1)
            kl = (log_q.exp() * (log_q + math.log(n_classes))).sum(dim=1)
            lam = p.lambda0 * (1.0 - kl / (p.alpha * math.log(n_classes)))
            self.lambdas[indices] = lam
        return lam

    def __call__(self, logits: Tensor, labels: Tensor, indices: Tensor) -> Tensor:
        p = self.params
        lam = self.update_lambdas(logits, indices)
        penalty = p.alpha * math.log(logits.shape[1]) / (2 * p.lambda0) * (lam - p.lambda0) ** 2
        return (ldr_kl(logits, labels, lam, p.margin) - penalty).mean()
