"""Tent: entropy minimisation on BN affine parameters, BN with test-batch statistics."""

from __future__ import annotations

from infobench.registry import register
from infobench.tasks.tta.common import (
    ANCHOR_OPTIMIZER,
    EntropyMinimization,
    EntropyParams,
    family_table,
)


@register("tta.method", "tent")
class Tent(EntropyMinimization):
    """Entropy minimisation of the predictions on BN affine parameters (Adam, lr 1e-3).

    Wang, Shelhamer, Liu, Olshausen, Darrell, "Tent: Fully Test-Time Adaptation by Entropy
    Minimization", ICLR 2021, the entropy objective:

        L(x) = mean_i H(y_i),  H(y) = - sum_c p(y_c) log p(y_c),

    minimised over the BN scale and shift (gamma, beta) only, with BN normalising by the test
    batch's statistics; one Adam step (lr 1e-3, betas 0.9/0.999, the paper's CIFAR setting)
    per batch, online, with the prediction made from the same forward pass before the step.
    With ``woc: true`` the wisdom-of-crowds filter is applied (the ``tent+woc`` of Lee et al.
    2023). Documented choice: with ``steps > 1`` the returned prediction is the first forward
    pass's (before any update on the batch), where the reference code returns the last.

    Family defaults (``family_defaults``, from mariodoebler/test-time-adaptation,
    ``cfgs/cifar10_c/tent.yaml`` and ``cfgs/imagenet_c/tent.yaml`` with ``conf.py``): cifar
    Adam lr 1e-3 (the paper's CIFAR setting, = the defaults); imagenet SGD lr 0.00025,
    momentum 0.9, Nesterov (the paper's ImageNet setting, batch 64).
    """

    Params = EntropyParams
    family_defaults = family_table(ANCHOR_OPTIMIZER)
