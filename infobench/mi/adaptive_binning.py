"""Entropy-based adaptive binning: bin edges at activation quantiles, each row a symbol."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from infobench.mi.base import MIEstimator, is_discrete
from infobench.mi.symbols import PlugInEstimator, rows_to_codes
from infobench.registry import register


def quantile_bins(a: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index of every entry of ``a`` (n, d) with edges at the n_bins-quantiles of all its values,
    so that each bin holds about the same number of activations."""
    edges = np.quantile(a, np.linspace(0, 1, n_bins + 1)[1:-1])
    dtype = np.uint8 if n_bins <= 256 else np.int32
    return np.searchsorted(np.unique(edges), a, side="right").astype(dtype)


@register("mi.estimator", "adaptive_binning")
class AdaptiveBinning(PlugInEstimator, MIEstimator):
    """Entropy-based adaptive binning (30 bins at activation quantiles), plug-in MI of the row symbols.

    Chelombiev, Houghton & O'Donnell, "Adaptive Estimators Show Information Compression in
    Deep Neural Networks", ICLR 2019 (EBAB): instead of equal-width bins, the bin edges are
    placed so that each bin holds the same number of activation values, which maximises the
    entropy of the binned activity and bins unbounded (ReLU) activations as finely as
    saturating ones. Then, as in ``binning``, I(X; T) = H(X) + H(T) - H(X, T) over row symbols.

    Documented choices: the quantiles are taken over all values of the array (the whole
    layer at one epoch), repeated edges (many exact zeros of a ReLU) are merged; integer arrays
    are symbols as they are.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        n_bins: int = Field(30, ge=1, le=65536, description="bins, each with an equal share of the activation values")

    kinds = ("discrete", "continuous", "mixed")
    symmetric = True

    def symbols(self, a: np.ndarray) -> tuple[np.ndarray, int]:
        return rows_to_codes(a if is_discrete(a) else quantile_bins(a, self.params.n_bins))
