"""Core's alpha-BN statistics calibration (You et al. 2021); its class-correlation loss is not implemented."""

from __future__ import annotations

from infobench.registry import register
from infobench.tasks.tta.methods.alpha_bn import AlphaBN


@register("tta.method", "core")
class Core(AlphaBN):
    """Core's alpha-BN calibration only: test_weight * test-batch + (1 - test_weight) * source BN statistics.

    You, Li, Zhao, "Test-time Batch Statistics Calibration for Covariate Shift",
    arXiv:2110.04065 (2021). The paper has two parts:

    1. alpha-BN (Sec. 3.2), implemented here (shared with ``alpha_bn``): every BN layer
       normalises with ``mu = a * mu_t + (1 - a) * mu_s`` and
       ``sigma2 = a * sigma2_t + (1 - a) * sigma2_s``, ``a = test_weight`` weighing the test
       batch's statistics (default 0.1) and (mu_s, sigma2_s) the source running statistics.
    2. Core's online loss, which "performs the pairwise class correlation online
       optimization" on top of alpha-BN. NOT implemented: the loss is given only as an
       equation image in the paper, and the text available to this project (abstract and
       summaries) does not pin down its form, its weight, the parameters it updates or its
       optimizer. Rather than guess, this method is alpha-BN under Core's name; its
       predictions equal ``alpha_bn``'s with the same ``test_weight``. Adding the loss means
       subclassing this class with an optimiser once the equation is known.

    Family defaults: none (alpha-BN's weight is 0.1 in the anchors' CIFAR-10-C and ImageNet-C
    configs alike; see ``alpha_bn``).
    """
