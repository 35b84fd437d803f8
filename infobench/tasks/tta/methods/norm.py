"""Test-time normalisation: BN uses test-batch statistics, optionally mixed with a source prior."""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from infobench.models.base import Classifier
from infobench.registry import register
from infobench.tasks.tta.common import use_mixed_stats
from infobench.tasks.tta.methods.base import SourceInfo, TTAMethod


@register("tta.method", "norm")
class Norm(TTAMethod):
    """BN with test-batch statistics, optionally mixed with source statistics by a prior strength N.

    Schneider, Rusak, Eck, Bringmann, Brendel, Bethge, "Improving robustness against common
    corruptions by covariate shift adaptation", NeurIPS 2020, Eq. 4-5: for a test batch of
    ``n`` samples,

        mu    = N / (N + n) * mu_s      + n / (N + n) * mu_t
        sigma2 = N / (N + n) * sigma2_s + n / (N + n) * sigma2_t

    with source statistics (mu_s, sigma2_s) the BN running averages and (mu_t, sigma2_t) the
    batch's per-channel mean and biased variance. ``N = 0`` (the default) is the "BN" baseline
    of the TTA literature (Nado et al. 2020; Tent's "BN" row): pure test-batch statistics.
    Nothing is learned, so there is no state to reset.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        prior_strength: float = Field(
            0.0, ge=0, description="N of Schneider et al.: pseudo-count of the source statistics (0: test batch only)"
        )

    updates = "bn_stats"

    def setup(self, model: Classifier, source: SourceInfo) -> None:
        self.model = model
        use_mixed_stats(model, "norm", prior=self.params.prior_strength)

    def adapt_and_predict(self, x: Tensor) -> Tensor:
        with torch.inference_mode():
            return self.model(x)

    def reset(self) -> None:
        """Nothing to reset: statistics are recomputed from every batch."""
