"""CaPE: calibrated probability estimation (Liu, Sheng, Fernandez-Granda et al., "Deep
Probability Estimation", ICML 2022, Sec. 4, the binning variant).

Training starts with cross-entropy. After ``warmup_fraction`` of the epochs it alternates, one
epoch each, between cross-entropy and a calibration loss whose soft targets are the empirical
frequencies of the model's own predictions: at the start of each calibration epoch the training
set's predicted probabilities are split into ``n_bins`` equal-mass bins and every sample's target
is the frequency of positive labels in its bin,

    t_i = |{j in B(i) : y_j = 1}| / |B(i)|,    L_cal = -mean_i [t_i log q_i + (1 - t_i) log(1 - q_i)].

The weights of the epoch with the lowest validation NLL are kept (the paper's early stopping).
Documented choice (multi-class): the paper is binary; here each class k is binned one-vs-rest on
q_k and t_ik is the frequency of class k in sample i's bin, the targets renormalised over
classes (each row sums to a positive number since a sample's own label is in its bin), and the
calibration loss is the cross-entropy ``-sum_k t_ik log q_ik``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from infobench.registry import register
from infobench.tasks.calibration.losses.base import TrainingLoss, predict


def binned_targets(probs: np.ndarray, labels: np.ndarray, n_bins: int) -> np.ndarray:
    """Soft targets (n, C): per class, the label frequency in each sample's equal-mass bin of probs[:, k]."""
    n, c = probs.shape
    order = np.argsort(probs, axis=0, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(n)[:, None], axis=0)
    bins = np.minimum(ranks * n_bins // n, n_bins - 1)  # equal-mass bins by rank
    ids = (bins + n_bins * np.arange(c)).ravel()
    hits = np.zeros((n, c))
    hits[np.arange(n), labels] = 1.0
    freq = np.bincount(ids, weights=hits.ravel(), minlength=n_bins * c) / np.maximum(
        np.bincount(ids, minlength=n_bins * c), 1)
    targets = freq[ids].reshape(n, c)
    return targets / targets.sum(axis=1, keepdims=True)


@register("calibration.loss", "cape")
class CaPE(TrainingLoss):
    """CaPE: cross-entropy alternating with soft targets from binned own predictions (Liu et al. 2022)."""

    needs_loop = True
    select_best_val = True

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        n_bins: int = Field(15, ge=1, description="equal-mass bins of the predicted probabilities")
        warmup_fraction: float = Field(0.5, ge=0, le=1, description="share of epochs trained with cross-entropy first")

    targets: Tensor | None = None

    def start_epoch(self, epoch: int, epochs: int, model: nn.Module, x: Tensor, y: Tensor) -> None:
        warmup = math.ceil(self.params.warmup_fraction * epochs)
        self.targets = None
        if epoch > warmup and (epoch - warmup) % 2 == 1:
            # the binning (a sort per class, once per calibration epoch) runs on the host
            probs = F.softmax(predict(model, x).cpu().double(), dim=1).numpy()
            soft = binned_targets(probs, y.cpu().numpy(), self.params.n_bins)
            self.targets = torch.from_numpy(soft).float().to(x.device)

    def __call__(self, logits: Tensor, labels: Tensor, indices: Tensor) -> Tensor:
        if self.targets is None:
            return F.cross_entropy(logits, labels)
        targets = self.targets[indices.to(self.targets.device)]
        return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
