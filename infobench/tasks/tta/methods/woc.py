"""Tent with the wisdom-of-crowds filter (open-set TTA)."""

from __future__ import annotations

from pydantic import Field

from infobench.registry import register
from infobench.tasks.tta.common import EntropyMinimization, EntropyParams, family_table
from infobench.tasks.tta.methods.tent import Tent


class WOCParams(EntropyParams):
    """Tent's optimizer fields with the wisdom-of-crowds filter switched on."""

    woc: bool = Field(True, description="the wisdom-of-crowds filter (always on for this method; false gives tent)")


@register("tta.method", "woc")
class WisdomOfCrowds(EntropyMinimization):
    """Entropy minimisation on samples whose confidence in the original prediction did not fall.

    Lee, Jung, Park, Kim, Hwang, Choo, Kim, Chung, Choi, "Towards Open-Set Test-Time
    Adaptation Utilizing the Wisdom of Crowds in Entropy Minimization", ICCV 2023, Sec. 4:
    with f_o the original (source) model and f_t the adapted one, y_o = argmax f_o(x),

        keep(x) = 1[ p_t(y_o | x) >= p_o(y_o | x) ]
        L = mean_{keep} H(p_t(x))

    minimised over BN affine parameters with Tent's optimizer (Adam, lr 1e-3); an empty
    selection makes no update (never a NaN). The filter is also a parameter of every
    entropy method (``{name: tent, woc: true}``, ``{name: eta, woc: true}``): this method
    is ``tent+woc``, the paper's main configuration. Documented choice: the original model
    normalises with the same test-batch statistics as the adapted one (both are the source
    weights in Tent's configuration), so at the first batch every sample is kept and the
    filter only reacts to what adaptation changed.

    Family defaults: Tent's (cifar Adam lr 1e-3; imagenet SGD lr 0.00025, momentum 0.9,
    Nesterov; see ``tent``). The anchors (mariodoebler/test-time-adaptation) have no config
    for this method; it is Tent with a filter, so it takes Tent's settings in each family and
    stays comparable with ``{name: tent, woc: true}``.
    """

    Params = WOCParams
    family_defaults = family_table(Tent.family_defaults)
