"""Dirichlet calibration with ODIR (Kull et al., "Beyond temperature scaling: Obtaining
well-calibrated multiclass probabilities with Dirichlet calibration", NeurIPS 2019, Eq. 3-4).

``q = softmax(W ln p + b)`` where ``p = softmax(z)`` is the model's own probability vector:
the maximum-likelihood fit of a Dirichlet-distributed class-conditional model of p. W is a
full C x C matrix regularised with ODIR, exactly as in :mod:`.matrix`:

    mean_i NLL_i + lambda / (C (C - 1)) sum_{j != k} W_jk^2 + mu / C sum_k b_k^2
                 + nu / C sum_k (W_kk - mean_j W_jj)^2 + (a / n) sum_k (W_kk - ln W_kk),

lambda and mu chosen by cross-validation as in the paper (Sec. 5.2); the last two terms and the
one-standard-error rule depart from it (:mod:`.affine`).
"""

from __future__ import annotations

from infobench.registry import register
from infobench.tasks.calibration.methods.affine import AffineCalibrator, ODIRParams


@register("calibration.method", "dirichlet")
class DirichletCalibration(AffineCalibrator):
    """Dirichlet calibration: a linear map of log-probabilities with ODIR (Kull et al. 2019)."""

    Params = ODIRParams
    on_log_probs = True
