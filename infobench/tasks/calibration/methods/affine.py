"""Shared fit of affine calibration maps ``q = softmax(W x + b)`` (vector, matrix, Dirichlet).

``x`` is the logit vector (vector and matrix scaling, Guo et al. 2017) or the log of the
softmax probabilities (Dirichlet calibration, Kull et al. 2019). The objective is the mean
validation NLL plus the ODIR penalty of Kull et al. 2019 (Sec. 4, "off-diagonal and intercept
regularisation") plus a pull of the diagonal towards 1:

    L(W, b) = mean_i [ logsumexp(W x_i + b) - (W x_i + b)_{y_i} ]
              + lambda / (C (C - 1)) * sum_{j != k} W_jk^2 + mu / C * sum_k b_k^2
              + (a / n + nu / C) * sum_k (W_kk - ln W_kk)

over n validation samples. Vector scaling is the same map with W diagonal (lambda plays no part).

Penalties by cross-validation, as in Kull et al. (Sec. 5.2): each of lambda, mu, nu left at
``"cv"`` is chosen by stratified K-fold cross-validation of the held-out NLL on the validation
set (K = 5, folds dealt with a fixed seed). Documented choice: Kull et al. search 36 lambdas x 12
mus (their code's unnormalised penalty); infobench ties every "cv" penalty to one value searched
over {1e2, 1e1, 1, 1e-1, 1e-2} (normalised as above). On 16 digits CNN seeds and 6 MLP seeds a
tied (lambda, mu) search scored within 0.001 mean test NLL of a 7 x 7 grid.

Departure 1, the diagonal term. ODIR leaves the diagonal free, so on a validation set that
per-class rescaling separates (every label scores highest once each class's x is scaled: 13 of
16 digits CNN seeds, 359 samples) the NLL keeps falling as the diagonal grows and the fit runs
off to infinity. The last term is the negative log of a Gamma prior on each W_kk with mode 1,
the model's own scale (:func:`~infobench.tasks.calibration.methods.base.scale_penalty`): a fixed
weak part a / n (a = ``prior_strength`` = 1, the prior temperature scaling uses on 1/T) keeps
W_kk > 0 and finite, and a cross-validated part nu / C pulls W towards the identity, so the
strongest setting of the search is close to the uncalibrated model and the search decides how
far to move from it. ``prior_strength = 0, l2_diag = 0`` is the paper's objective;
``degenerate_reason`` says when that objective (with the chosen lambda, mu) has no minimum (a
linear program, :func:`separable_direction`).

Departure 2, the one-standard-error rule (Hastie, Tibshirani and Friedman, "The Elements of
Statistical Learning", 2009, Sec. 7.10): with a few hundred validation samples and a handful of
errors the CV minimum is noisy and leans to the weakest penalty; by default the strongest
setting whose CV NLL is within one standard error of the minimum is taken (``cv_rule = "min"``
is Kull et al.'s choice).

Measured mean (max) test NLL on digits, 16 CNN seeds (cnn2d width 32, 30 epochs) / 6 MLP seeds
(100 epochs at lr 1e-2, over-confident): uncalibrated 0.066 (0.074) / 0.198 (0.214); the former
fit (vector unregularised, lambda = mu = 0.01, no diagonal term, L-BFGS) gave vector 0.58 (1.9) /
5.7 (28), matrix 6.1 (31) / 0.74 (1.05), Dirichlet 10 (60) / 1.3 (4.1); this one gives vector
0.052 (0.064) / 0.198 (0.214), matrix 0.055 (0.062) / 0.25 (0.31), Dirichlet 0.055 (0.069) /
0.25 (0.30). The MLP's 359 validation samples hold 5-10 errors: too few for the 110 weights of
matrix and Dirichlet calibration to beat the uncalibrated model, let alone temperature scaling
(0.126).

The fit is Newton's method with the exact Hessian (C (C + 1) parameters, or 2 C for vector
scaling) and a backtracking line search from the identity map (W = I, b = 0); the objective is
convex, so it converges in a handful of steps. The cross-validation walks each fold down the
penalty grid, starting every fit from the previous one. Not registered: the concrete
calibrators are the files next to this one.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import scipy.linalg
from pydantic import BaseModel, ConfigDict, Field

from infobench.metrics import log_softmax
from infobench.tasks.calibration.methods.base import Calibrator, check_logits, scale_penalty

PENALTY_GRID = tuple(10.0**e for e in range(2, -3, -1))  # strongest first: each fit starts from the last
CV_SEED = 0

Penalty = float | Literal["cv"]


class VectorParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    l2_bias: Penalty = Field("cv", description="mu: weight of the mean squared bias; 'cv': chosen by cross-validation")
    l2_diag: Penalty = Field(
        "cv", description="nu: weight of the pull of each diagonal weight towards 1, mean of W_kk - ln W_kk; 'cv': chosen by cross-validation")
    prior_strength: float = Field(
        1.0, ge=0, description="a of the Gamma(1 + a, a) prior on each diagonal weight, as for temperature; 0: none")
    cv_folds: int = Field(5, ge=2, description="folds of the cross-validation that picks 'cv' penalties")
    cv_rule: Literal["1se", "min"] = Field(
        "1se", description="1se: strongest penalty within one standard error of the best CV NLL; min: the best (Kull et al.)")
    max_iter: int = Field(100, ge=1, description="Newton iterations per fit (converges in ~10)")


class ODIRParams(VectorParams):
    l2_offdiag: Penalty = Field(
        "cv", description="lambda: weight of the mean squared off-diagonal entry of W; 'cv': chosen by cross-validation")


Penalties = tuple[float, float, float]  # (lambda, mu, nu)


class Design:
    """Per-class features ``phi`` of shape (C, D, n): the score of class k for sample i is
    ``theta[k] . phi[k, :, i]``. Matrix maps share ``[x_i, 1]`` across classes (D = C + 1);
    vector scaling gives class k the features ``[x_ik, 1]`` (D = 2)."""

    def __init__(self, x: np.ndarray, diagonal: bool):
        n, c = x.shape
        self.x, self.diagonal = x, diagonal
        if diagonal:
            self.phi = np.stack([x.T, np.ones((c, n))], axis=1)
        else:
            self.shared = np.vstack([x.T, np.ones((1, n))])  # (D, n)
            self.shared_t = np.ascontiguousarray(self.shared.T)
            self.phi = np.broadcast_to(self.shared, (c, c + 1, n))
        self.shape = (c, self.phi.shape[1])

    def subset(self, rows: np.ndarray) -> Design:
        return Design(self.x[rows], self.diagonal)

    def scores(self, theta: np.ndarray) -> np.ndarray:
        """(C, n) class scores for parameters ``theta`` of shape (C, D)."""
        if self.diagonal:
            return theta[:, 0:1] * self.phi[:, 0] + theta[:, 1:2]
        return theta @ self.shared

    def nll_gradient_hessian(self, q: np.ndarray, resid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient (C * D,) and Hessian of the summed NLL from the probabilities ``q`` (C, n) and
        ``resid`` = q - onehot: H[(k, a), (l, b)] = sum_i (q_ik [k = l] - q_ik q_il) phi_kai phi_lbi."""
        c, d = self.shape
        weighted = np.multiply(q[:, None, :], self.phi, order="C")  # (C, D, n): q_k phi_k
        flat = weighted.reshape(c * d, -1)
        hess = -(flat @ flat.T)
        if self.diagonal:
            grad = np.einsum("kn,kan->ka", resid, self.phi)
            blocks = np.matmul(weighted, self.phi.transpose(0, 2, 1))
        else:
            grad = resid @ self.shared_t
            blocks = weighted @ self.shared_t  # (C, D, D): sum_i q_ik phi_i phi_i^T
        square = hess.reshape(c, d, c, d)
        square[np.arange(c), :, np.arange(c), :] += blocks
        return grad.ravel(), hess

    def diagonal_index(self) -> np.ndarray:
        """Flat indices of the W_kk in ``theta.ravel()``."""
        c, d = self.shape
        return np.arange(c) * d + (0 if self.diagonal else np.arange(c))

    def quadratic_weights(self, l2_offdiag: float, l2_bias: float) -> np.ndarray:
        """Per-parameter weights of the ODIR penalty ``sum weight * theta^2``, flat (C * D,)."""
        c, d = self.shape
        weights = np.zeros((c, d))
        weights[:, -1] = l2_bias / c
        if not self.diagonal and c > 1:
            weights[:, :c] = l2_offdiag / (c * (c - 1))
            weights[np.arange(c), np.arange(c)] = 0.0
        return weights.ravel()

    def identity(self) -> np.ndarray:
        theta = np.zeros(self.shape[0] * self.shape[1])
        theta[self.diagonal_index()] = 1.0
        return theta


def _log_probs(scores: np.ndarray) -> np.ndarray:
    """Log-softmax over classes of (C, n) scores (the class axis first keeps the reductions fast)."""
    top = scores.max(axis=0)
    shifted = scores - top
    return shifted - np.log(np.exp(shifted).sum(axis=0))


def newton_fit(
    design: Design, labels: np.ndarray, penalties: Penalties, prior_strength: float = 0.0,
    max_iter: int = 100, start: np.ndarray | None = None, tol: float = 1e-10,
) -> np.ndarray:
    """Minimise L (module docstring) by damped Newton; returns the flat parameters (C * D,)."""
    c, d = design.shape
    n = labels.shape[0]
    rows = np.arange(n)
    l2_offdiag, l2_bias, l2_diag = penalties
    quad = design.quadratic_weights(l2_offdiag, l2_bias)
    diag = design.diagonal_index()
    diag_weight = prior_strength / n + l2_diag / c  # both terms have the form weight * sum (W_kk - ln W_kk)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        log_q = _log_probs(design.scores(theta.reshape(c, d)))
        value = -np.mean(log_q[labels, rows]) + quad @ theta**2
        if diag_weight > 0:
            value += scale_penalty(theta[diag], diag_weight)[0]
        return value, log_q

    theta = design.identity() if start is None else start.copy()
    value, log_q = objective(theta)
    for _ in range(max_iter):
        q = np.exp(log_q)
        resid = q.copy()
        resid[labels, rows] -= 1.0
        grad, hess = design.nll_gradient_hessian(q, resid)
        grad = grad / n + 2 * quad * theta
        hess /= n
        hess[np.diag_indices_from(hess)] += 2 * quad
        if diag_weight > 0:
            _, diag_grad, diag_hess = scale_penalty(theta[diag], diag_weight)
            grad[diag] += diag_grad
            hess[diag, diag] += diag_hess
        try:
            step = scipy.linalg.cho_solve(scipy.linalg.cho_factor(hess), grad)
        except np.linalg.LinAlgError:  # an unpenalised invariance (a shift shared by every bias)
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        decrement = float(grad @ step)
        if decrement / 2 <= tol:
            break
        scale = 1.0
        while scale > 1e-12:
            candidate = theta - scale * step
            if diag_weight <= 0 or np.all(candidate[diag] > 0):
                new_value, new_log_q = objective(candidate)
                if new_value <= value - 1e-4 * scale * decrement:
                    break
            scale /= 2
        else:
            break  # no descent along the Newton direction: at the optimum to rounding
        theta, value, log_q = candidate, new_value, new_log_q
    return theta


def stratified_folds(labels: np.ndarray, k: int, seed: int = CV_SEED) -> np.ndarray:
    """Fold index in [0, k) of every sample: each class dealt round-robin in a seeded random order."""
    order = np.random.default_rng(seed).permutation(len(labels))
    folds = np.empty(len(labels), dtype=np.int64)
    for cls in np.unique(labels):
        members = order[labels[order] == cls]
        folds[members] = np.arange(len(members)) % k
    return folds


def cross_validated_penalties(
    design: Design, labels: np.ndarray, grid: list[Penalties], params: VectorParams
) -> Penalties:
    """The penalties of ``grid`` (strongest first) chosen by K-fold CV of the held-out NLL."""
    k = min(params.cv_folds, len(labels))
    folds = stratified_folds(labels, k)
    held_out = np.zeros((len(grid), len(labels)))
    c, d = design.shape
    for fold in range(k):
        train, test = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
        part, held = design.subset(train), design.subset(test)
        theta = None
        for j, penalties in enumerate(grid):
            theta = newton_fit(part, labels[train], penalties, params.prior_strength, params.max_iter, start=theta)
            log_q = _log_probs(held.scores(theta.reshape(c, d)))
            held_out[j, test] = -log_q[labels[test], np.arange(len(test))]
    mean = held_out.mean(axis=1)
    best = int(np.argmin(mean))
    if params.cv_rule == "1se":
        standard_error = held_out[best].std(ddof=1) / np.sqrt(len(labels))
        best = int(np.flatnonzero(mean <= mean[best] + standard_error)[0])
    return grid[best]


def penalty_grid(params: VectorParams, diagonal: bool) -> list[Penalties]:
    """The (lambda, mu, nu) settings to cross-validate, strongest first: every penalty left at
    'cv' takes each grid value in turn (tied); one setting when none is 'cv'."""
    chosen = (0.0 if diagonal else params.l2_offdiag, params.l2_bias, params.l2_diag)
    if "cv" not in chosen:
        return [tuple(float(v) for v in chosen)]
    return [tuple(v if p == "cv" else float(p) for p in chosen) for v in PENALTY_GRID]


def separable_direction(design: Design, labels: np.ndarray, l2_offdiag: float, l2_bias: float) -> bool:
    """Whether the paper's objective (NLL + ODIR with these lambda and mu, nu = 0) has no minimum: some direction d in the
    unpenalised parameters lowers no sample's margin against any class and raises at least one
    (so the NLL falls for ever along d).

    A linear program: maximise the summed margins over d in [-1, 1]^m subject to every margin
    (score of the label minus score of class k, along d) >= 0. With only the diagonal free, a
    margin involves two weights, d_y x_iy - d_k x_ik >= 0, and among the constraints of one
    (label y, class k, sign of x_iy) the two with the smallest and largest ratio x_ik / x_iy imply
    all others; keeping those leaves at most 6 C (C - 1) rows whatever n.
    """
    from scipy.optimize import linprog

    c, d = design.shape
    free = np.flatnonzero(design.quadratic_weights(l2_offdiag, l2_bias) == 0)
    n = labels.shape[0]
    others = np.ones((n, c), dtype=bool)
    others[np.arange(n), labels] = False
    sample, competitor = np.nonzero(others)  # one row per (i, k != y_i)
    if np.array_equal(free, design.diagonal_index()):
        keep = _binding_rows(labels[sample], competitor, design.x[sample, labels[sample]], design.x[sample, competitor], c)
        sample, competitor = sample[keep], competitor[keep]
    cls, feature = np.divmod(free, d)
    sign = (cls[:, None] == labels[sample]).astype(float) - (cls[:, None] == competitor)
    margins = (design.phi[cls, feature][:, sample] * sign).T  # (rows, free parameters)
    scale = np.abs(margins).max() if margins.size else 0.0
    if scale == 0:
        return False
    margins /= scale
    result = linprog(-margins.sum(axis=0), A_ub=-margins, b_ub=np.zeros(len(margins)), bounds=(-1, 1), method="highs")
    return result.status == 0 and -result.fun > 1e-9 * len(margins)


def _binding_rows(own: np.ndarray, competitor: np.ndarray, u: np.ndarray, v: np.ndarray, classes: int) -> np.ndarray:
    """Indices of the diagonal-only margin rows u d_own - v d_competitor >= 0 that no other row
    implies: per (own, competitor, sign of u) those with the smallest and largest v / u (for
    u = 0, the row reads -v d_competitor >= 0, and one row of each sign of v is kept)."""
    sign = np.sign(u)
    ratio = np.where(sign != 0, v / np.where(sign != 0, u, 1.0), np.sign(v))
    group = (own * classes + competitor) * 3 + (sign + 1).astype(np.int64)
    order = np.lexsort((ratio, group))
    boundary = group[order][1:] != group[order][:-1]
    first, last = np.r_[True, boundary], np.r_[boundary, True]
    return order[first | last]


class AffineCalibrator(Calibrator):
    """Base of calibrators ``softmax(W x + b)``; subclasses set ``diagonal`` and ``on_log_probs``."""

    diagonal: ClassVar[bool] = False
    on_log_probs: ClassVar[bool] = False  # x = log softmax(logits) (Dirichlet) instead of logits
    reports_degenerate_fit = True
    Params = ODIRParams

    weight: np.ndarray
    bias: np.ndarray
    penalties: Penalties

    def _inputs(self, logits: np.ndarray) -> np.ndarray:
        z = np.asarray(logits, dtype=np.float64)
        return log_softmax(z) if self.on_log_probs else z

    def fit(self, logits: np.ndarray, labels: np.ndarray) -> AffineCalibrator:
        check_logits(logits, labels)
        params = self.params
        labels = np.asarray(labels)
        design = Design(self._inputs(logits), self.diagonal)
        grid = penalty_grid(params, self.diagonal)
        if len(grid) > 1 and len(labels) < 2:
            raise ValueError("choosing penalties by cross-validation ('cv') needs at least 2 validation samples")
        self.penalties = grid[0] if len(grid) == 1 else cross_validated_penalties(design, labels, grid, params)
        theta = newton_fit(design, labels, self.penalties, params.prior_strength, params.max_iter).reshape(design.shape)
        c = design.shape[0]
        self.weight = np.diag(theta[:, 0]) if self.diagonal else theta[:, :c]
        self.bias = theta[:, -1].copy()
        l2_offdiag, l2_bias, l2_diag = self.penalties
        self.degenerate_reason = ""
        if separable_direction(design, labels, l2_offdiag, l2_bias):
            how = (f"the diagonal terms (nu = {l2_diag:g}, prior strength {params.prior_strength:g}) keep it finite"
                   if l2_diag > 0 or params.prior_strength > 0 else "with no diagonal term the weights are where Newton's method stopped")
            self.degenerate_reason = (
                f"the validation set is separable along weights that lambda = {l2_offdiag:g}, mu = {l2_bias:g} "
                f"leave free, so the paper's objective has no minimum; {how}")
        return self

    def calibrated_logits(self, logits: np.ndarray) -> np.ndarray:
        check_logits(logits)
        if logits.shape[1] != self.bias.shape[0]:
            raise ValueError(f"logits have {logits.shape[1]} classes, the calibrator was fitted on {self.bias.shape[0]}")
        return self._inputs(logits) @ self.weight.T + self.bias

    def fitted(self) -> dict[str, float]:
        c = self.bias.shape[0]
        off = self.weight[~np.eye(c, dtype=bool)]
        l2_offdiag, l2_bias, l2_diag = self.penalties
        values = {
            "weight_diag_mean": float(np.mean(np.diag(self.weight))),
            "weight_offdiag_rms": float(np.sqrt(np.mean(off**2))) if off.size else 0.0,
            "bias_rms": float(np.sqrt(np.mean(self.bias**2))),
            "l2_bias": l2_bias,
            "l2_diag": l2_diag,
        }
        if not self.diagonal:
            values["l2_offdiag"] = l2_offdiag
        return values
