"""The unadapted source model: the baseline every TTA method is measured against."""

from __future__ import annotations

import torch
from torch import Tensor

from infobench.models.base import Classifier
from infobench.registry import register
from infobench.tasks.tta.methods.base import NoParams, SourceInfo, TTAMethod


@register("tta.method", "source")
class Source(TTAMethod):
    """No adaptation: the source model in eval mode (BN with its training running statistics).

    The "source" row of every TTA table (e.g. Wang et al., "Tent: Fully Test-Time Adaptation
    by Entropy Minimization", ICLR 2021, Table 2): ``f(x; theta_source)``, nothing updated.
    No parameters, hence no family defaults.
    """

    Params = NoParams
    updates = "nothing"

    def setup(self, model: Classifier, source: SourceInfo) -> None:
        self.model = model.eval()
        self.model.requires_grad_(False)

    def adapt_and_predict(self, x: Tensor) -> Tensor:
        with torch.inference_mode():
            return self.model(x)

    def reset(self) -> None:
        """Nothing to reset: the model never changes."""
