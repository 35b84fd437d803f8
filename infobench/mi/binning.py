"""Equal-width binning of each unit, each row a symbol, plug-in MI of the symbols."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from infobench.mi.base import MIEstimator, is_discrete
from infobench.mi.symbols import PlugInEstimator, rows_to_codes
from infobench.registry import register


def bin_indices(a: np.ndarray, edges_lo: np.ndarray, edges_hi: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index in [0, n_bins) of each entry of ``a`` (n, d) for equal-width bins on [lo, hi] per column."""
    width = np.where(edges_hi > edges_lo, edges_hi - edges_lo, 1.0)
    idx = np.floor((a - edges_lo) / width * n_bins)
    dtype = np.uint8 if n_bins <= 256 else np.int32
    return np.clip(idx, 0, n_bins - 1).astype(dtype)


@register("mi.estimator", "binning")
class Binning(PlugInEstimator, MIEstimator):
    """Equal-width binning (30 bins per unit), each row a symbol: plug-in MI of the symbols.

    Shwartz-Ziv & Tishby, "Opening the Black Box of Deep Neural Networks via Information",
    arXiv 2017. Each real-valued column is cut into ``n_bins`` equal-width bins, over
    ``range`` (the original's [-1, 1] for tanh layers) or over the observed range; a row of
    bin indices is one symbol T; I(X; T) = H(X) + H(T) - H(X, T) with plug-in entropies
    H = -sum_t p(t) log p(t) over the empirical symbol frequencies.

    ``bin_width`` instead bins every unit with fixed-width bins anchored at 0,
    ``floor(a / bin_width)``, with no range at all: the binning of Saxe et al., "On the
    Information Bottleneck Theory of Deep Learning" (ICLR 2018), for unbounded (relu) units,
    where a range fixed in advance either clips large activations or wastes its bins.

    Documented choice: integer or boolean arrays are taken as symbols as they are (a label, a
    discrete input); only float arrays are binned. Rows become symbols through their bytes
    (see ``infobench.mi.symbols``), not ``np.unique(axis=0)``.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        n_bins: int = Field(30, ge=1, le=65536, description="equal-width bins per unit")
        range: tuple[float, float] | None = Field(
            None, description="bin range of every unit ([-1, 1] for tanh); None: the observed range"
        )
        scope: Literal["unit", "layer"] = Field(
            "unit", description="observed range per unit, or one range over the whole array"
        )
        bin_width: float | None = Field(
            None, gt=0, description="fixed-width bins floor(a / bin_width), no range (Saxe et al. for relu); "
            "replaces n_bins, range and scope"
        )

        @model_validator(mode="after")
        def _range_ordered(self):
            if self.range is not None and not self.range[0] < self.range[1]:
                raise ValueError(f"range must be (low, high) with low < high, got {self.range}")
            # compared with the defaults, not with the fields given: resolved params (every field) come back here
            defaults = {name: field.default for name, field in type(self).model_fields.items()}
            clash = [name for name in ("n_bins", "range", "scope") if getattr(self, name) != defaults[name]]
            if self.bin_width is not None and clash:
                raise ValueError(f"bin_width fixes the bins by itself; drop {', '.join(clash)}")
            return self

    kinds = ("discrete", "continuous", "mixed")
    symmetric = True

    def symbols(self, a: np.ndarray) -> tuple[np.ndarray, int]:
        """Integer codes of the rows of ``a`` (n, d) after binning its float columns."""
        if is_discrete(a):
            return rows_to_codes(a)
        p = self.params
        if p.bin_width is not None:
            return rows_to_codes(np.floor(a / p.bin_width).astype(np.int64))
        if p.range is not None:
            lo, hi = np.full(a.shape[1], p.range[0]), np.full(a.shape[1], p.range[1])
        elif p.scope == "unit":
            lo, hi = a.min(axis=0), a.max(axis=0)
        else:
            lo, hi = np.full(a.shape[1], a.min()), np.full(a.shape[1], a.max())
        return rows_to_codes(bin_indices(a, lo, hi, p.n_bins))
