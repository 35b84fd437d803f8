"""Distributions with known mutual information, registered as datasets of the ``mi`` task.

Each samples ``(x, y)`` with ``sample(n, rng)`` and gives the true I(X; Y) in nats with
``true_mi()``. They follow the "Beyond Normal" benchmark (Czyz, Grabowski, Vogt, Beerenwinkel
& Marx, "Beyond Normal: On the Evaluation of Mutual Information Estimators", NeurIPS 2023):
multivariate normal and Student-t with sparse or dense correlation, additive uniform noise,
MI-preserving transforms of them, plus a Gaussian mixture against its label (the
discrete-continuous case). They have no train/test splits, so other tasks cannot load them.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.special import digamma, gammaln

from infobench.data.base import Dataset
from infobench.errors import InfobenchError
from infobench.registry import register
from infobench.tasks.mi import transforms


class DistributionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    transform: transforms.TransformName = Field(
        "none", description="MI-preserving map applied to x and y: none, half_cube, asinh, normal_cdf, spiral"
    )


class MIDistribution(Dataset):
    """Base class: ``sample(n, rng) -> (x (n, dx), y (n, dy) or labels (n,))`` and ``true_mi()`` in nats."""

    Params = DistributionParams
    transform_y: bool = True  # False where y is a label

    def load(self, seed: int):
        raise InfobenchError(
            f"dataset {self.registered_name!r} is a distribution with known mutual information for task 'mi'; "
            "it has no train/test splits"
        )

    def draw(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Samples before the transform."""
        raise NotImplementedError

    def true_mi(self) -> float:
        raise NotImplementedError

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.draw(n, rng)
        name = self.params.transform
        return transforms.apply(name, x), (transforms.apply(name, y) if self.transform_y else y)


class CorrelatedParams(DistributionParams):
    dim: int | None = Field(None, ge=1, le=256, description="sets dim_x = dim_y = dim (a one-key dimension sweep)")
    dim_x: int = Field(1, ge=1, le=256, description="dimension of X")
    dim_y: int = Field(1, ge=1, le=256, description="dimension of Y")
    structure: Literal["sparse", "dense"] = Field(
        "sparse", description="sparse: X_i and Y_i correlated for i < n_interacting; dense: every pair of variables correlated"
    )
    correlation: float = Field(0.8, ge=0.0, lt=1.0, description="correlation of each correlated pair")
    n_interacting: int | None = Field(None, ge=0, description="sparse: correlated pairs (None: min(dim_x, dim_y))")

    @model_validator(mode="after")
    def _check(self):
        if self.dim is not None:
            given = {k: getattr(self, k) for k in ("dim_x", "dim_y") if k in self.model_fields_set}
            if any(v != self.dim for v in given.values()):
                raise ValueError(f"dim={self.dim} contradicts {given}; give either dim or dim_x/dim_y")
            self.dim_x = self.dim_y = self.dim
        if self.n_interacting is not None and self.n_interacting > min(self.dim_x, self.dim_y):
            raise ValueError(f"n_interacting={self.n_interacting} exceeds min(dim_x, dim_y)={min(self.dim_x, self.dim_y)}")
        if self.transform == "spiral" and min(self.dim_x, self.dim_y) < 2:
            raise ValueError("the spiral transform needs dim_x >= 2 and dim_y >= 2")
        return self


def _logdet(a: np.ndarray) -> float:
    sign, value = np.linalg.slogdet(a)
    return float(value)


class Correlated(MIDistribution):
    """Shared parts of the elliptical distributions: the joint correlation matrix and its Gaussian MI."""

    Params = CorrelatedParams

    def covariance(self) -> np.ndarray:
        p = self.params
        d = p.dim_x + p.dim_y
        if p.structure == "dense":
            return (1 - p.correlation) * np.eye(d) + p.correlation * np.ones((d, d))
        cov = np.eye(d)
        pairs = min(p.dim_x, p.dim_y) if p.n_interacting is None else p.n_interacting
        idx = np.arange(pairs)
        cov[idx, p.dim_x + idx] = cov[p.dim_x + idx, idx] = p.correlation
        return cov

    def gaussian_mi(self) -> float:
        """I = (log det S_xx + log det S_yy - log det S) / 2 for a normal with covariance S."""
        cov, dx = self.covariance(), self.params.dim_x
        return 0.5 * (_logdet(cov[:dx, :dx]) + _logdet(cov[dx:, dx:]) - _logdet(cov))

    def normal(self, n: int, rng: np.random.Generator) -> np.ndarray:
        chol = np.linalg.cholesky(self.covariance())
        return rng.standard_normal((n, chol.shape[0])) @ chol.T


@register("mi.distribution", "mi-gaussian")
class Gaussian(Correlated):
    """Multivariate normal (X, Y) with sparse or dense correlation; I = (ln|S_xx| + ln|S_yy| - ln|S|) / 2."""

    def draw(self, n, rng):
        z = self.normal(n, rng)
        return z[:, : self.params.dim_x], z[:, self.params.dim_x :]

    def true_mi(self) -> float:
        return self.gaussian_mi()


class StudentParams(CorrelatedParams):
    dof: float = Field(5.0, gt=0, description="degrees of freedom nu of the multivariate Student-t")


def student_entropy_offset(nu: float, d: int) -> float:
    """Entropy of a d-dimensional standard Student-t minus its (d/2) ln(nu pi) term:
    ln G(nu/2) - ln G((nu+d)/2) + (nu+d)/2 [psi((nu+d)/2) - psi(nu/2)]."""
    return float(gammaln(nu / 2) - gammaln((nu + d) / 2) + (nu + d) / 2 * (digamma((nu + d) / 2) - digamma(nu / 2)))


@register("mi.distribution", "mi-student-t")
class StudentT(Correlated):
    """Multivariate Student-t (X, Y): Gaussian MI of its scale matrix plus a dof correction, > 0 even if uncorrelated.

    Z = G / sqrt(W / nu), G ~ N(0, S), W ~ chi2(nu). Marginals are Student-t with the same nu,
    so with h_nu(d) = ln G(nu/2) - ln G((nu+d)/2) + (nu+d)/2 [psi((nu+d)/2) - psi(nu/2)]
    (Arellano-Valle, Contreras-Reyes & Genton, Scand. J. Stat. 2013):
    I = I_gauss(S) + h_nu(dx) + h_nu(dy) - h_nu(dx + dy).

    Documented choice: the scale matrix S is the correlation matrix of ``mi-gaussian`` with the
    same structure parameters, as in the benchmark's Student-t tasks.
    """

    Params = StudentParams

    def draw(self, n, rng):
        z = self.normal(n, rng) / np.sqrt(rng.chisquare(self.params.dof, size=(n, 1)) / self.params.dof)
        return z[:, : self.params.dim_x], z[:, self.params.dim_x :]

    def true_mi(self) -> float:
        p = self.params
        correction = (student_entropy_offset(p.dof, p.dim_x) + student_entropy_offset(p.dof, p.dim_y)
                      - student_entropy_offset(p.dof, p.dim_x + p.dim_y))
        return self.gaussian_mi() + correction


class UniformNoiseParams(DistributionParams):
    epsilon: float = Field(0.1, gt=0, description="noise N ~ U(-epsilon, epsilon), width w = 2 epsilon")

    @model_validator(mode="after")
    def _check(self):
        if self.transform == "spiral":
            raise ValueError("the spiral transform needs 2 dimensions; this distribution has 1")
        return self


@register("mi.distribution", "mi-uniform-noise")
class UniformNoise(MIDistribution):
    """X ~ U(0, 1), Y = X + N with N ~ U(-eps, eps): I = w/2 - ln w for w = 2 eps <= 1, else 1/(2w).

    h(Y | X) = ln w; Y has a trapezoid density whose entropy is w/2 for w <= 1 and
    ln w + 1/(2w) for w > 1 (scale Y by 1/w), giving the two branches.
    """

    Params = UniformNoiseParams

    def draw(self, n, rng):
        x = rng.uniform(0, 1, size=(n, 1))
        eps = self.params.epsilon
        return x, x + rng.uniform(-eps, eps, size=(n, 1))

    def true_mi(self) -> float:
        w = 2 * self.params.epsilon
        return w / 2 - np.log(w) if w <= 1 else 1 / (2 * w)


class MixtureParams(DistributionParams):
    n_components: int = Field(2, ge=2, le=1000, description="components K, equally likely; the label Y")
    separation: float = Field(2.0, ge=0, description="distance between consecutive means, in standard deviations")
    dim: int = Field(1, ge=1, le=256, description="dimension of X; the means lie on the first axis")

    @model_validator(mode="after")
    def _check(self):
        if self.transform == "spiral" and self.dim < 2:
            raise ValueError("the spiral transform needs dim >= 2")
        return self


@register("mi.distribution", "mi-mixture")
class Mixture(MIDistribution):
    """Gaussian mixture X against its label Y (discrete-continuous): I = H(Y) - E_x H(Y | x), by quadrature.

    Y uniform on K labels, X | Y=k ~ N(k * separation * e_1, I). Only the first coordinate
    carries information, so I(X; Y) equals the 1-D value
    I = sum_k (1/K) int phi(t - mu_k) ln[phi(t - mu_k) / p(t)] dt, integrated on a fine grid.
    The transform applies to x only.

    Documented choice: unit-variance components with means k * separation on the first axis
    (the other coordinates are independent noise), so the truth is a 1-D integral; the
    trapezoid rule on 40001 points over [mu_0 - 12, mu_K-1 + 12] is exact to about 1e-9.
    """

    Params = MixtureParams
    transform_y = False

    def means(self) -> np.ndarray:
        return np.arange(self.params.n_components) * self.params.separation

    def draw(self, n, rng):
        labels = rng.integers(0, self.params.n_components, size=n)
        x = rng.standard_normal((n, self.params.dim))
        x[:, 0] += self.means()[labels]
        return x, labels.astype(np.int64)

    def true_mi(self) -> float:
        mu = self.means()
        t = np.linspace(mu[0] - 12, mu[-1] + 12, 40001)
        log_phi = -0.5 * (t[None, :] - mu[:, None]) ** 2 - 0.5 * np.log(2 * np.pi)  # (K, T)
        log_p = np.logaddexp.reduce(log_phi, axis=0) - np.log(len(mu))
        integrand = (np.exp(log_phi) * (log_phi - log_p)).mean(axis=0)
        return float(np.trapezoid(integrand, t)) if hasattr(np, "trapezoid") else float(np.trapz(integrand, t))
