"""MINE: the Donsker-Varadhan lower bound on MI with a trained critic."""

from __future__ import annotations

from infobench.mi.critic import VariationalBound, off_diagonal_logmeanexp
from infobench.registry import register


@register("mi.estimator", "mine")
class MINE(VariationalBound):
    """MINE / Donsker-Varadhan: E_P f - ln E_{P_X P_Y} e^f, maximised over a critic f; an estimate, not a bound.

    Belghazi et al., "Mutual Information Neural Estimation", ICML 2018, eq. (10):
    I(X; Y) >= sup_f E_{P_XY}[f] - ln E_{P_X (x) P_Y}[exp f]. The population value is a lower
    bound for every f, but its sample version takes the log of a sample mean, which Jensen's
    inequality biases upward (Poole et al., ICML 2019, section 2.2): even on held-out rows its
    expectation can exceed the truth, so ``is_bound`` is False.

    Documented choices: the separable critic, held-out evaluation and early stopping of
    ``infobench.mi.critic``, all off-diagonal pairs of a batch as product-of-marginals samples,
    and the plain DV gradient (without MINE's moving-average correction of the denominator's
    gradient).
    """

    is_bound = False

    def objective(self, scores, xb, yb, critic):
        return scores.diagonal().mean() - off_diagonal_logmeanexp(scores)
