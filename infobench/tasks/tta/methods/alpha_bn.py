"""alpha-BN: normalise with a fixed mix of source and test-batch statistics."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from infobench.registry import register
from infobench.tasks.tta.common import MixedStatsMethod


@register("tta.method", "alpha_bn")
class AlphaBN(MixedStatsMethod):
    """BN statistics mixed as test_weight * test batch + (1 - test_weight) * source.

    You, Li, Cai, Wang, "Test-time Batch Statistics Calibration for Covariate Shift",
    arXiv:2110.04065 (2021), Sec. 3.2 (alpha-BN):

        mu    = a * mu_t     + (1 - a) * mu_s
        sigma2 = a * sigma2_t + (1 - a) * sigma2_s

    Published codes write the weight ``alpha`` on opposite sides (on the source in some, on
    the test batch in others); here it is named ``test_weight`` and always weighs the
    test-batch statistics. Documented choice: default ``test_weight = 0.1`` as the issue
    specifies; ``test_weight = 1`` is the ``norm`` method, ``0`` the source model. The test
    variance is the biased batch variance (what training-mode BN uses).

    Family defaults: none. The anchors' ``cfgs/{cifar10_c,imagenet_c}/norm_alpha.yaml``
    (mariodoebler/test-time-adaptation) both set ``BN.ALPHA: 0.1`` (their alpha weighs the
    test batch, as ``test_weight`` here).
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        test_weight: float = Field(
            0.1, ge=0, le=1, description="weight of the test-batch statistics (source gets 1 - test_weight)"
        )

    def mixing(self) -> dict[str, float]:
        return {"test_weight": self.params.test_weight}
