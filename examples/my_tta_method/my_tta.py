"""InfoMax: SHOT's information-maximisation loss, adapted online at test time as Tent adapts.

An example of a test-time adaptation method kept outside infobench, in one file beside the spec
that uses it. The spec names it by module and class, ``my_tta:InfoMax``; running ``infobench``
from this folder makes the module importable, and its runs record that name. Editing this file
makes its earlier runs stale (their code digest covers it), so the next ``infobench run`` redoes them.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from infobench.tasks.tta.common import EntropyMinimization, EntropyParams


class InfoMaxParams(EntropyParams):
    """Tent's optimizer fields (Adam, lr 1e-3, one step per batch) and the weight of the diversity term."""

    diversity_weight: float = Field(
        1.0, ge=0, description="weight of the diversity term -H(mean prediction) (SHOT-IM: 1; 0 is Tent)"
    )


class InfoMax(EntropyMinimization):
    """Information maximisation (SHOT-IM) on BN affine parameters, online: confident and diverse predictions.

    Liang, Hu, Feng, "Do We Really Need to Access the Source Data? Source Hypothesis Transfer for
    Unsupervised Domain Adaptation", ICML 2020, Eq. 2-3: with p_i = softmax(f(x_i)) and
    p_mean = mean_i p_i over the target samples,

        L_IM = L_ent + L_div,   L_ent = mean_i H(p_i),   L_div = sum_k p_mean,k log p_mean,k = -H(p_mean).

    Minimising L_ent makes each prediction confident; minimising L_div (maximising the entropy
    of the mean prediction) keeps the predictions spread over the classes, which guards against
    the collapse onto a few classes that entropy minimisation alone can drift into. Equal weights,
    as in the paper (``diversity_weight = 1``); ``diversity_weight = 0`` is exactly Tent.

    Departures from the paper, to fit the online test-time protocol of Tent (Wang et al., ICLR
    2021): SHOT adapts every layer but the classifier head, offline, over several epochs of the
    whole target set (SGD, lr 1e-2), and adds a pseudo-label term (beta = 0.3) that SHOT-IM omits.
    Here, as in Tent, only the BatchNorm scale and shift are adapted, BN normalises with the
    test batch's statistics, and each test batch gets one Adam step (lr 1e-3) after its
    prediction is made; p_mean is therefore the mean over the current batch, not the target set.
    With ``woc: true`` the wisdom-of-crowds filter removes samples from the entropy term only;
    the diversity term keeps the whole batch.
    """

    Params = InfoMaxParams

    def loss(self, logits: Tensor, x: Tensor) -> Tensor | None:
        entropy_loss = super().loss(logits, x)  # mean_i H(p_i) over the kept samples; None: none kept
        if entropy_loss is None or self.params.diversity_weight == 0:
            return entropy_loss
        mean_prediction = logits.softmax(1).mean(0)
        diversity = torch.special.entr(mean_prediction).sum()  # H(p_mean), 0 log 0 = 0
        return entropy_loss - self.params.diversity_weight * diversity
