"""scikit-learn's ``mutual_info_regression`` / ``mutual_info_classif`` as a peer estimator (1-D x)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from infobench.mi.base import MIEstimator, check_k, check_pair, is_discrete
from infobench.registry import register


@register("mi.estimator", "sklearn_ksg")
class SklearnKSG(MIEstimator):
    """scikit-learn's KSG (mutual_info_regression; mutual_info_classif for a label), 1-D x and y.

    Pedregosa et al., "Scikit-learn: Machine Learning in Python", JMLR 2011; the estimator is
    Kraskov et al., Phys. Rev. E 69 (2004), algorithm 1 (eq. 8), and Ross, PLoS ONE 2014 for a
    discrete target. sklearn standardises, adds 1e-10 noise and clips negative estimates at 0.
    It has no multivariate estimator: x and y must each have one column.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        k: int = Field(3, ge=1, description="n_neighbors of mutual_info_regression")
        random_state: int = Field(0, ge=0, description="seed of sklearn's tie-breaking noise")

    kinds = ("continuous", "mixed")
    symmetric = True
    max_dims = 1

    def estimate(self, x: np.ndarray, y: np.ndarray) -> float:
        from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

        x, y = check_pair(x, y)
        check_k(len(x), self.params.k)
        self.require_supported(x, y)
        if is_discrete(y):
            fn, target = mutual_info_classif, y[:, 0]
        else:
            fn, target = mutual_info_regression, y[:, 0].astype(np.float64)
        mi = fn(x.astype(np.float64), target, n_neighbors=self.params.k, random_state=self.params.random_state)
        return float(mi[0])
