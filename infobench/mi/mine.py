"""MINE: the Donsker-Varadhan lower bound on MI with a trained critic."""

from __future__ import annotations

from infobench.mi.critic import VariationalBound, off_diagonal_logmeanexp
from infobench.registry import register


@register("mi.estimator", "mine")
class MINE(VariationalBound):
    """MINE / Donsker-Varadhan lower bound: E_P f - ln E_{P_X P_Y} e^f, maximised over a critic f.

    Belghazi et al., "Mutual Information Neural Estimation", ICML 2018, eq. (10):
    I(X; Y) >= sup_f E_{P_XY}[f] - ln E_{P_X (x) P_Y}[exp f]. Reported for what it is: a
    lower bound (a biased one on finite samples).

    Documented choices: the separable critic of ``infobench.mi.critic``, all off-diagonal
    pairs of a batch as product-of-marginals samples, and the plain DV gradient (without
    MINE's moving-average correction of the denominator's gradient).
    """

    def objective(self, scores, xb, yb, critic):
        return scores.diagonal().mean() - off_diagonal_logmeanexp(scores)
