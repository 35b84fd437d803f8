"""NWJ: the Nguyen-Wainwright-Jordan (f-divergence) lower bound on MI with a trained critic."""

from __future__ import annotations

import math

from infobench.mi.critic import VariationalBound, off_diagonal_logmeanexp
from infobench.registry import register


@register("mi.estimator", "nwj")
class NWJ(VariationalBound):
    """NWJ lower bound: E_P f - e^-1 E_{P_X P_Y} e^f, maximised over a critic f (unbiased batches).

    Nguyen, Wainwright & Jordan, "Estimating divergence functionals and the likelihood ratio
    by convex risk minimization", IEEE Trans. Inf. Theory 2010; as an MI bound in Poole et al.,
    "On Variational Bounds of Mutual Information", ICML 2019, eq. (13):
    I(X; Y) >= E_{P_XY}[f] - e^{-1} E_{P_X (x) P_Y}[exp f]. Both terms are plain means, so on
    rows the critic was not trained on the estimate is unbiased for the bound: a lower bound in
    expectation (``is_bound``).

    Documented choice: the separable critic, Adam schedule, early stopping and held-out
    evaluation of ``infobench.mi.critic``; all off-diagonal pairs of a batch serve as product samples.
    """

    def objective(self, scores, xb, yb, critic):
        return scores.diagonal().mean() - off_diagonal_logmeanexp(scores).exp() / math.e
