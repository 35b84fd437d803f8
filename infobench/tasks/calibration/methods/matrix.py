"""Matrix scaling with ODIR (Guo et al. ICML 2017, Sec. 4.2; regularised as in Kull et al.,
"Beyond temperature scaling: Obtaining well-calibrated multiclass probabilities with Dirichlet
calibration", NeurIPS 2019, Sec. 4).

``q = softmax(W z + b)`` with a full C x C matrix W on the logits z, fitted by minimising

    mean_i NLL_i + lambda / (C (C - 1)) sum_{j != k} W_jk^2 + mu / C sum_k b_k^2.

Documented choice: Kull et al. pick lambda and mu by cross-validation; the defaults here,
lambda = mu = 0.01, are a fixed middle of their grid, and the NLL term is the mean (not the sum)
over samples, so the penalty's weight does not depend on the size of the validation set.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from infobench.registry import register
from infobench.tasks.calibration.methods.affine import AffineCalibrator


class ODIRParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    l2_offdiag: float = Field(0.01, ge=0, description="lambda: weight of the mean squared off-diagonal entry of W")
    l2_bias: float = Field(0.01, ge=0, description="mu: weight of the mean squared bias")
    max_iter: int = Field(1000, ge=1, description="L-BFGS iterations")


@register("calibration.method", "matrix")
class MatrixScaling(AffineCalibrator):
    """Matrix scaling on logits with off-diagonal and bias regularisation (Guo 2017; ODIR, Kull 2019)."""

    Params = ODIRParams
