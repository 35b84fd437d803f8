"""Test-time normalisation: BN uses test-batch statistics, optionally mixed with a source prior."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from infobench.registry import register
from infobench.tasks.tta.common import MixedStatsMethod


@register("tta.method", "norm")
class Norm(MixedStatsMethod):
    """BN with test-batch statistics, optionally mixed with source statistics by a prior strength N.

    Schneider, Rusak, Eck, Bringmann, Brendel, Bethge, "Improving robustness against common
    corruptions by covariate shift adaptation", NeurIPS 2020, the prior-corrected statistics: for a test batch of
    ``n`` samples,

        mu    = N / (N + n) * mu_s      + n / (N + n) * mu_t
        sigma2 = N / (N + n) * sigma2_s + n / (N + n) * sigma2_t

    with source statistics (mu_s, sigma2_s) the BN running averages and (mu_t, sigma2_t) the
    batch's per-channel mean and biased variance. ``N = 0`` (the default) is the "BN" baseline
    of the TTA literature (Nado et al. 2020; Tent's "BN" row): pure test-batch statistics.
    Nothing is learned, so there is no state to reset.

    Family defaults: none. The anchors' ``cfgs/cifar10_c/norm_test.yaml`` and
    ``cfgs/imagenet_c/norm_test.yaml`` (mariodoebler/test-time-adaptation) differ only in the
    batch size (200 / 64), which is the scenario's, not the method's.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        prior_strength: float = Field(
            0.0, ge=0, description="N of Schneider et al.: pseudo-count of the source statistics (0: test batch only)"
        )

    def mixing(self) -> dict[str, float]:
        return {"prior": self.params.prior_strength}
