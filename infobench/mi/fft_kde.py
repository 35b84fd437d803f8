"""FFT-based kernel density estimate of I(X; Y) for 1-D x against a target, fast enough to screen many features."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from infobench.mi.base import MIEstimator, check_pair, is_discrete
from infobench.mi.symbols import rows_to_codes
from infobench.registry import register


def _grid_index(v: np.ndarray, size: int, pad: float) -> tuple[np.ndarray, float]:
    """Nearest grid cell of each value on ``size`` cells spanning [min - pad, max + pad]; the cell width."""
    lo, hi = v.min() - pad, v.max() + pad
    step = (hi - lo) / (size - 1)
    return np.clip(np.rint((v - lo) / step).astype(np.int64), 0, size - 1), step


def _gaussian_filter(size: int, sigma_cells: float) -> np.ndarray:
    half = min(size - 1, int(np.ceil(5 * sigma_cells)))
    offsets = np.arange(-half, half + 1)
    kernel = np.exp(-0.5 * (offsets / max(sigma_cells, 1e-12)) ** 2)
    return kernel / kernel.sum()


def _smooth(counts: np.ndarray, sigmas: list[float]) -> np.ndarray:
    """Convolve a 1-D or 2-D histogram with a separable Gaussian kernel by FFT."""
    from scipy.signal import fftconvolve

    out = counts
    for axis, s in enumerate(sigmas):
        kernel = _gaussian_filter(counts.shape[axis], s)
        shape = [1] * counts.ndim
        shape[axis] = len(kernel)
        out = fftconvolve(out, kernel.reshape(shape), mode="same")
    return np.clip(out, 0.0, None)


def _plug_in(p: np.ndarray) -> float:
    """I from a joint probability table (rows x, columns y) that sums to 1."""
    px, py = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / (px @ py)[nz])).sum())


def scott_bandwidth(v: np.ndarray) -> float:
    """Scott's / Silverman's 1-D rule: 1.06 std n^(-1/5) (the std of a constant column is taken as 1)."""
    std = float(v.std())
    return 1.06 * (std if std > 0 else 1.0) * len(v) ** (-0.2)


@register("mi.estimator", "fft_kde")
class FFTKDE(MIEstimator):
    """FFT-based 2-D Gaussian KDE of (x, y) on a grid, MI by summation; for 1-D x against a target.

    Yang, Lu, Dai & Shen (fastHDMI), "Fast mutual information estimation for
    high-dimensional data screening" (2024): the joint density of a feature and the outcome is
    a Gaussian KDE evaluated on an equally spaced grid by binning the samples and convolving
    with the kernel through the FFT (O(n + G^2 log G)); then
    I = sum_ij p_ij ln(p_ij / (p_i. p_.j)) over the grid cells. For a label y the grid is 1-D:
    I = sum_y p(y) sum_i p(i | y) ln(p(i | y) / p(i)). ``screen(X, y)`` scores every column.

    Documented choices, and how they differ from the fastHDMI package: a Gaussian kernel with
    Silverman's 1-D bandwidth 1.06 std n^(-1/5) per axis (fastHDMI, through KDEpy's ``FFTKDE``,
    uses the Epanechnikov kernel; for two real variables with KDEpy's default fixed bandwidth 1 on
    data scaled by median and interquartile range, for a label with Silverman's rule per class;
    here one bandwidth from the whole sample serves every class). Why: Silverman's rule is
    derived for the Gaussian kernel, and a fixed bandwidth of 1 smooths each distribution shape
    and sample size differently, whereas the rule shrinks with n as a consistent estimate needs.
    Also nearest-cell binning on a ``grid_size`` grid padded by 3 bandwidths (fastHDMI: 300 x 300
    cells, 500 for a label).
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        grid_size: int = Field(512, ge=16, le=8192, description="grid points per axis")
        bandwidth_scale: float = Field(1.0, gt=0, description="multiplies the rule-of-thumb bandwidth")

    kinds = ("continuous", "mixed")
    symmetric = True
    max_dims = 1  # screen() scores many features one by one

    def estimate(self, x: np.ndarray, y: np.ndarray) -> float:
        x, y = check_pair(x, y)
        self.require_supported(x, y)
        return self._mi(x[:, 0].astype(np.float64), y[:, 0])

    def screen(self, features: np.ndarray, target: np.ndarray) -> np.ndarray:
        """I(X_j; target) for every column j of ``features`` (n, p); nats, shape (p,)."""
        features, target = check_pair(features, target)
        return np.array([self._mi(features[:, j].astype(np.float64), target[:, 0]) for j in range(features.shape[1])])

    def _mi(self, x: np.ndarray, y: np.ndarray) -> float:
        g = self.params.grid_size
        hx = scott_bandwidth(x) * self.params.bandwidth_scale
        ix, step_x = _grid_index(x, g, 3 * hx)
        if is_discrete(y):
            codes, count = rows_to_codes(y[:, None])
            table = np.zeros((g, count))
            np.add.at(table, (ix, codes), 1.0)
            smooth = _smooth(table, [hx / step_x, 0.0])
            return _plug_in(smooth / smooth.sum())
        y = y.astype(np.float64)
        hy = scott_bandwidth(y) * self.params.bandwidth_scale
        iy, step_y = _grid_index(y, g, 3 * hy)
        table = np.bincount(ix * g + iy, minlength=g * g).reshape(g, g).astype(np.float64)
        smooth = _smooth(table, [hx / step_x, hy / step_y])
        return _plug_in(smooth / smooth.sum())
