"""InfoNCE: the contrastive lower bound on MI (at most ln of the batch size)."""

from __future__ import annotations

import math

from infobench.mi.critic import VariationalBound
from infobench.registry import register


@register("mi.estimator", "infonce")
class InfoNCE(VariationalBound):
    """InfoNCE lower bound: mean_i of f(x_i, y_i) - ln (1/b) sum_j e^f(x_i, y_j); at most ln b.

    van den Oord, Li & Vinyals, "Representation Learning with Contrastive Predictive Coding",
    arXiv 2018; Poole et al., ICML 2019, eq. (12): with b samples per batch,
    I(X; Y) >= E[1/b sum_i ln( e^{f(x_i, y_i)} / (1/b) sum_j e^{f(x_i, y_j)} )] <= ln b.
    The bound holds for the expectation over batches of b independent pairs, so on held-out rows
    the batch average is a lower bound in expectation (``is_bound``); it saturates at
    ln(batch_size) for large MI.

    Documented choice: the separable critic, Adam schedule, early stopping and held-out
    evaluation of ``infobench.mi.critic``; the evaluation batches have ``batch_size`` rows (the
    last may be smaller).
    """

    def objective(self, scores, xb, yb, critic):
        import torch

        return (scores.diagonal() - torch.logsumexp(scores, dim=1)).mean() + math.log(scores.shape[0])
