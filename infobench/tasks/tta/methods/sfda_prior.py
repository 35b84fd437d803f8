"""Entropy minimisation plus a KL penalty pulling the batch-mean prediction towards a class prior."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator
from torch import Tensor

from infobench.errors import InfobenchError
from infobench.models.base import Classifier
from infobench.registry import register
from infobench.tasks.tta.common import (
    EntropyMinimization,
    EntropyParams,
    family_table,
    host_to_model,
)
from infobench.tasks.tta.methods.base import SourceInfo
from infobench.tasks.tta.methods.tent import Tent


def prior_kl(probs: Tensor, prior: Tensor) -> Tensor:
    """KL(mean_i probs_i || prior) in nats: (n, C) probabilities, (C,) prior -> scalar.

    Zero exactly when the batch-mean prediction equals the prior.
    """
    mean = probs.mean(0)
    return (mean * (mean.clamp_min(1e-12).log() - prior.log())).sum()


class SFDAPriorParams(EntropyParams):
    kl_weight: float = Field(1.0, ge=0, description="lambda, the weight of KL(batch-mean prediction || prior)")
    prior: Literal["source", "uniform"] | list[float] = Field(
        "source",
        description="class prior: 'source' (label frequencies of the source training split), 'uniform', "
        "or an explicit list of C positive numbers (normalised)",
    )

    @field_validator("prior")
    @classmethod
    def _positive(cls, v):
        if isinstance(v, list) and (not v or any(not np.isfinite(p) or p <= 0 for p in v)):
            raise ValueError("an explicit prior must be a non-empty list of positive, finite numbers")
        return v


@register("tta.method", "sfda_prior")
class SFDAPrior(EntropyMinimization):
    """Entropy + lambda * KL(batch-mean prediction || class prior) on BN affine parameters (Bateson et al.).

    Bateson, Kervadec, Dolz, Lombaert, Ben Ayed, "Source-free domain adaptation for image
    segmentation", Medical Image Analysis 82 (2022), Sec. 2 (MICCAI 2020: "Source-relaxed
    domain adaptation for image segmentation"): the segmentation loss

        L = sum_pixels H(s_i) + lambda * KL(tau_hat || tau_prior)

    with tau_hat the predicted class proportions of an image. Classification form (this
    file): the pixels of an image become the samples of a test batch,

        L = mean_i H(p_i) + lambda * sum_c tau_c log(tau_c / pi_c),   tau = mean_i p_i,

    with prior pi the source label frequencies (``prior: source``, the default; the method
    then reads the source training labels), uniform, or given. With a uniform prior the KL
    term is log C - H(tau), the diversity term of information maximisation.

    Documented choices: lambda = 1; the source prior is Laplace-smoothed, (n_c + 1) / (n + C),
    so a class absent from the source split keeps a finite KL; the optimisation follows Tent (BN affine parameters, BN
    on test-batch statistics, one Adam step with lr 1e-3 per batch), so the KL term is the
    only difference from ``tent``; the KL term uses the whole batch, the entropy term the
    samples the optional WOC filter keeps (``woc: true``; nothing kept -> no update).

    Family defaults: Tent's (cifar Adam lr 1e-3; imagenet SGD lr 0.00025, momentum 0.9,
    Nesterov; see ``tent``): the anchors have no config for this method, and taking Tent's
    keeps the KL term the only difference from ``tent`` in every family.
    """

    Params = SFDAPriorParams
    needs_source = True
    family_defaults = family_table(Tent.family_defaults)

    def __init__(self, params=None):
        super().__init__(params)
        # Only the 'source' prior reads source data (the task reads the class attribute).
        self.needs_source = self.params.prior == "source"

    def setup(self, model: Classifier, source: SourceInfo) -> None:
        c = source.num_classes
        prior = self.params.prior
        if prior == "source":
            if source.train is None:
                raise InfobenchError("sfda_prior with prior: source needs the source training split, got none")
            counts = np.bincount(source.train.y, minlength=c).astype(np.float64)
            prior_np = (counts + 1.0) / (counts.sum() + c)  # Laplace smoothing keeps absent classes finite
        elif prior == "uniform":
            prior_np = np.full(c, 1.0 / c)
        else:
            if len(prior) != c:
                raise InfobenchError(f"sfda_prior: prior has {len(prior)} entries but the data has {c} classes")
            prior_np = np.asarray(prior, dtype=np.float64) / float(np.sum(prior))
        self.prior = host_to_model(prior_np, model)  # on the model's device, in its dtype
        super().setup(model, source)

    def loss(self, logits: Tensor, x: Tensor) -> Tensor | None:
        ent_loss = super().loss(logits, x)
        if ent_loss is None:
            return None
        return ent_loss + self.params.kl_weight * prior_kl(logits.softmax(1), self.prior)
