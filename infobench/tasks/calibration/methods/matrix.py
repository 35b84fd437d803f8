"""Matrix scaling with ODIR (Guo et al. ICML 2017, Sec. 4.2; regularised as in Kull et al.,
"Beyond temperature scaling: Obtaining well-calibrated multiclass probabilities with Dirichlet
calibration", NeurIPS 2019, Sec. 4).

``q = softmax(W z + b)`` with a full C x C matrix W on the logits z, fitted by minimising

    mean_i NLL_i + lambda / (C (C - 1)) sum_{j != k} W_jk^2 + mu / C sum_k b_k^2
                 + nu / C sum_k (W_kk - mean_j W_jj)^2 + (a / n) sum_k (W_kk - ln W_kk).

lambda and mu are chosen by cross-validation on the validation set, as Kull et al. do (defaults
``"cv"``; a number fixes them); the NLL term is the mean (not the sum) over samples, so the
penalties' weight does not depend on the size of the validation set. The last two terms (a pull of
the diagonal towards its mean, cross-validated with lambda and mu, and a weak prior on each
diagonal weight) and the one-standard-error rule of the cross-validation depart from the paper;
:mod:`.affine` says how and why, and why the cross-validated lambda grows with the number of
classes C.

Many classes: W has C^2 entries, 10,000 at 100 classes, against a few thousand validation
samples. Unregularised (``l2_offdiag = l2_bias = l2_diag = 0``), the fit overfits, as Guo et al.
found on CIFAR-100 (Sec. 5, Table 1); that is the paper's method, not a fault. With the cross-validated
ODIR penalties it should not: on 5,000 x 100 calibrated synthetic logits it keeps the accuracy
(0.431) and the test NLL of temperature scaling (2.046). The degeneracy check of a fit with
lambda = 0 is skipped above :data:`~.affine.MAX_PROGRAM_NONZEROS` (``fitted()`` then reports
``degeneracy_checked = 0``).
"""

from __future__ import annotations

from infobench.registry import register
from infobench.tasks.calibration.methods.affine import AffineCalibrator, ODIRParams


@register("calibration.method", "matrix")
class MatrixScaling(AffineCalibrator):
    """Matrix scaling on logits with off-diagonal and bias regularisation (Guo 2017; ODIR, Kull 2019)."""

    Params = ODIRParams
