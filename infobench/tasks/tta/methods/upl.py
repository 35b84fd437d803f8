"""UPL-SFDA, classification form: perturbed head copies, confident-mean pseudo-labels, mean-entropy term."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from infobench.models.base import Classifier
from infobench.registry import register
from infobench.tasks.tta.common import entropy, host_random, restore, seeded_generator, snapshot
from infobench.tasks.tta.methods.base import SourceInfo, TTAMethod
from infobench.tasks.tta.methods.trainable import train_all_parameters


def confident_pseudo_labels(mean_probs: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """Pseudo-labels ``argmax`` of the heads' mean prediction (n, C), and the mask of rows whose
    top mean probability exceeds ``threshold`` (UPL's reliable samples)."""
    conf, labels = mean_probs.max(1)
    return labels, conf > threshold


@register("tta.method", "upl")
class UPL(TTAMethod):
    """K perturbed copies of the head; pseudo-labels from their confident mean; twice-forward CE + mean entropy.

    Wu, Wang, Zhong, Wang, Liao, Zhang, Zhang, Wang, "UPL-SFDA: Uncertainty-aware Pseudo Label
    Guided Source-Free Domain Adaptation for Medical Image Segmentation", IEEE TMI 2023
    (Sec. III). Target-domain growing: the source head h is duplicated K = 4 times, h_1..h_K,
    each seeing a differently perturbed input. Twice-forward-pass supervision: a first,
    no-gradient forward gives the mean prediction and pseudo-labels

        p_bar(x) = 1/K sum_k softmax(h_k(g(x)_k)),   y_hat = argmax p_bar,
        reliable  = { x : max_c p_bar(x)_c > omega },   omega = 0.9

    and a second forward (new perturbations, with gradients) is trained on

        L = 1/K sum_k CE(h_k(g(x)_k), y_hat) over reliable x  +  lambda * mean_x H(p_bar(x))

    updating the encoder g and all heads with Adam (lr 1e-5; betas 0.9/0.999 for the
    encoder and 0.5/0.999 for the heads, as the reference code). The prediction is p_bar of
    the first forward pass (logits log p_bar), made before the update.

    Documented choices (classification form): the segmentation Dice term becomes a
    cross-entropy over the reliable samples, and the entropy is in nats per sample (the code's
    log2 and 1/C only rescale lambda, kept at 1). The reference 2-D code perturbs head k by
    rotating its input by k * 90 degrees (and rotating the mask back); rotation is not
    label-preserving for classification (a 6 becomes a 9), so each head copy k >= 1 here sees
    the shared features multiplied by uniform noise 1 + U(-r, r), r = 0.3 (the feature-noise
    perturbation of Ouali et al.'s cross-consistency training), and head 1 sees them clean.
    BN layers use test-batch statistics.

    Family defaults: none; the anchors (mariodoebler/test-time-adaptation) have no config for
    this method, so the reference code's settings hold everywhere.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        heads: int = Field(4, ge=1, description="K, the number of perturbed copies of the head")
        threshold: float = Field(0.9, ge=0, lt=1, description="omega: a mean prediction above this is a reliable pseudo-label")
        entropy_weight: float = Field(1.0, ge=0, description="lambda, weight of the mean-prediction entropy")
        feature_noise: float = Field(0.3, ge=0, lt=1, description="r of the multiplicative feature noise 1 + U(-r, r)")
        lr: float = Field(1e-5, gt=0, description="Adam learning rate (the reference code's setting)")
        head_beta1: float = Field(0.5, ge=0, lt=1, description="Adam beta1 of the head copies (encoder: 0.9)")

    updates = "all"

    def setup(self, model: Classifier, source: SourceInfo) -> None:
        p = self.params
        self.model = model
        encoder = [q for name, q in model.named_parameters() if not name.startswith("head.")]
        train_all_parameters(model, "upl")
        self.heads = nn.ModuleList(copy.deepcopy(model.head) for _ in range(p.heads))
        self.heads.requires_grad_(True)
        self.optimizer = torch.optim.Adam([
            {"params": encoder, "betas": (0.9, 0.999)},
            {"params": list(self.heads.parameters()), "betas": (p.head_beta1, 0.999)},
        ], lr=p.lr)
        self.generator = seeded_generator()
        self._initial = (snapshot(model, self.optimizer), snapshot(self.heads))

    def head_logits(self, feats: Tensor) -> Tensor:
        """(K, n, C) logits of the head copies, copy k >= 1 on noise-perturbed features."""
        r = self.params.feature_noise
        outs = [self.heads[0](feats)]
        for head in self.heads[1:]:
            noise = 1.0 + r * (2.0 * host_random("uniform", feats.shape, self.generator, feats) - 1.0)
            outs.append(head(feats * noise))
        return torch.stack(outs)

    def adapt_and_predict(self, x: Tensor) -> Tensor:
        p = self.params
        with torch.no_grad():
            first = self.head_logits(self.model.features(x)).softmax(2).mean(0)
        labels, reliable = confident_pseudo_labels(first, p.threshold)
        logits = self.head_logits(self.model.features(x))
        mean_probs = logits.softmax(2).mean(0)
        loss = p.entropy_weight * entropy(mean_probs.clamp_min(1e-12).log()).mean()
        if reliable.any():
            k, n, c = logits.shape
            sup = F.cross_entropy(logits[:, reliable].reshape(-1, c), labels[reliable].repeat(k))
            loss = loss + sup
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.batch_stats = {"kept": float(reliable.float().mean())}
        return first.clamp_min(1e-12).log()

    def reset(self) -> None:
        model_state, heads_state = self._initial
        restore(model_state, self.model, self.optimizer)
        restore(heads_state, self.heads)
