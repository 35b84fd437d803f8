"""alpha-BN: normalise with a fixed mix of source and test-batch statistics."""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from infobench.models.base import Classifier
from infobench.registry import register
from infobench.tasks.tta.common import use_mixed_stats
from infobench.tasks.tta.methods.base import SourceInfo, TTAMethod


@register("tta.method", "alpha_bn")
class AlphaBN(TTAMethod):
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
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        test_weight: float = Field(
            0.1, ge=0, le=1, description="weight of the test-batch statistics (source gets 1 - test_weight)"
        )

    updates = "bn_stats"

    def setup(self, model: Classifier, source: SourceInfo) -> None:
        self.model = model
        use_mixed_stats(model, "alpha_bn", test_weight=self.params.test_weight)

    def adapt_and_predict(self, x: Tensor) -> Tensor:
        with torch.inference_mode():
            return self.model(x)

    def reset(self) -> None:
        """Nothing to reset: statistics are recomputed from every batch."""
