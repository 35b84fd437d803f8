"""Vector scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017, Sec. 4.2).

``q = softmax(W z + b)`` with W diagonal: one scale and one offset per class (2C parameters),
fitted by minimising the validation NLL (no regularisation, as in the paper).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from infobench.registry import register
from infobench.tasks.calibration.methods.affine import AffineCalibrator


@register("calibration.method", "vector")
class VectorScaling(AffineCalibrator):
    """Vector scaling: a per-class logit scale and bias fitted by NLL (Guo et al. 2017)."""

    diagonal = True

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        max_iter: int = Field(1000, ge=1, description="L-BFGS iterations (the fit is convex and stops at its gradient tolerance)")
