"""EATA: ETA plus a Fisher-weighted anti-forgetting penalty computed on source samples."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from infobench.errors import InfobenchError
from infobench.models.base import Classifier
from infobench.registry import register
from infobench.tasks.tta.common import family_table, host_batches
from infobench.tasks.tta.methods.base import SourceInfo
from infobench.tasks.tta.methods.eta import ETA, ETAParams


class EATAParams(ETAParams):
    """ETA's fields plus the anti-forgetting regulariser."""

    fisher_alpha: float = Field(2000.0, ge=0, description="beta: strength of the Fisher penalty")
    fisher_size: int = Field(2000, ge=1, description="source samples the diagonal Fisher is estimated on")
    fisher_batch_size: int = Field(64, ge=1, description="batch size of the Fisher estimate")


@register("tta.method", "eata")
class EATA(ETA):
    """ETA plus the anti-forgetting Fisher penalty from source samples (Niu et al., ICML 2022).

    Niu, Wu, Zhang, Chen, Zheng, Zhao, Tan, "Efficient Test-Time Model Adaptation without
    Forgetting", ICML 2022, anti-forgetting regulariser: with theta_0 the source BN affine parameters,

        R(theta) = sum_i w(theta_i) (theta_i - theta_0,i)^2,
        w(theta_i) = 1/Q sum_q (d/d theta_i  CE(f(x_q), argmax f(x_q)))^2      (diagonal Fisher)
        L = L_ETA + beta * R,   beta = 2000

    The Fisher is estimated once at set-up on ``fisher_size`` samples of the source training
    split, labelled by the model's own predictions (no labels are read, as in the paper),
    with BN normalising by each Fisher batch's statistics, gradients squared per batch and
    averaged over batches (the authors' code). Needs source data. The defaults are the
    paper's ImageNet-C setting (ETA's, with beta = 2000 on 2000 source samples).

    Family defaults (mariodoebler/test-time-adaptation, ``cfgs/cifar10_c/eata.yaml`` and
    ``cfgs/imagenet_c/eata.yaml``, with ``conf.py``): ETA's (cifar Adam lr 1e-3, d_margin 0.4;
    imagenet SGD lr 0.00025, momentum 0.9, Nesterov, d_margin 0.05), plus beta
    (``EATA.FISHER_ALPHA``) 1 on cifar and 2000 on imagenet, 2000 source samples in both
    (``SOURCE.NUM_SAMPLES``), and Fisher batches of the test batch size, which the anchors'
    source loader uses (``TEST.BATCH_SIZE``: 200 on cifar, 64 on imagenet).
    """

    Params = EATAParams
    needs_source = True
    family_defaults = family_table(
        ETA.family_defaults,
        cifar={"fisher_alpha": 1.0, "fisher_size": 2000, "fisher_batch_size": 200},
        imagenet={"fisher_alpha": 2000.0, "fisher_size": 2000, "fisher_batch_size": 64},
    )

    def setup(self, model: Classifier, source: SourceInfo) -> None:
        if source.train is None or len(source.train) == 0:
            raise ValueError("eata needs source samples for its Fisher estimate; SourceInfo.train is empty")
        super().setup(model, source)
        self.anchor = [p.detach().clone() for p in self.adapted]
        self.fisher = self.estimate_fisher(source.train.x)

    def estimate_fisher(self, x_source) -> list[Tensor]:
        """Diagonal Fisher of the adapted parameters on ``fisher_size`` random rows of the host array ``x_source``."""
        n = min(self.params.fisher_size, len(x_source))
        idx = torch.randperm(len(x_source), device="cpu")[:n].numpy()
        fisher = [torch.zeros_like(p) for p in self.adapted]
        batches = 0
        # the chosen rows are read, and go to the model's device, a batch at a time
        for xb in host_batches(x_source, self.model, self.params.fisher_batch_size, rows=idx):
            if len(xb) < 2:
                continue  # a batch of one sample has no batch statistics to normalise with
            logits = self.model(xb)
            loss = F.cross_entropy(logits, logits.argmax(1))
            grads = torch.autograd.grad(loss, self.adapted)
            for f, g in zip(fisher, grads):
                f += g.pow(2)
            batches += 1
        if batches == 0:
            raise InfobenchError(f"eata: the Fisher estimate needs at least 2 source samples, got {n}")
        return [f / batches for f in fisher]

    def regulariser(self) -> Tensor | None:
        if self.params.fisher_alpha == 0:
            return None
        penalty = sum((f * (p - a).pow(2)).sum() for f, p, a in zip(self.fisher, self.adapted, self.anchor))
        return self.params.fisher_alpha * penalty
