"""Shared fit of affine calibration maps ``q = softmax(W x + b)`` (vector, matrix, Dirichlet).

``x`` is the logit vector (vector and matrix scaling, Guo et al. 2017) or the log of the
softmax probabilities (Dirichlet calibration, Kull et al. 2019). The objective is the mean
validation NLL plus the ODIR penalty of Kull et al. 2019 (Sec. 4, "off-diagonal and intercept
regularisation") plus two terms on the diagonal w_k = W_kk (mean w-bar):

    L(W, b) = mean_i [ logsumexp(W x_i + b) - (W x_i + b)_{y_i} ]
              + lambda / (C (C - 1)) * sum_{j != k} W_jk^2 + mu / C * sum_k b_k^2
              + nu / C * sum_k (w_k - w-bar)^2 + (a / n) * sum_k (w_k - ln w_k)

over n validation samples. Vector scaling is the same map with W diagonal (lambda plays no part).

Penalties by cross-validation, as in Kull et al. (Sec. 5.2): each of lambda, mu, nu left at
``"cv"`` is chosen by stratified K-fold cross-validation of the held-out NLL on the validation
set (K = 5, folds dealt with a fixed seed). Documented choice: Kull et al. search 36 lambdas x 12
mus (their code's unnormalised penalty); infobench ties every "cv" penalty to one value v searched
over {1e2, 1e1, 1, 1e-1, 1e-2} (normalised as above), strongest first, with lambda = v * max(1,
C (C - 1) / 90), at most 25 warm-started fits. On the digits seeds below, tying lambda = mu lost
less than 0.001 mean test NLL against a 7 x 7 (lambda, mu) grid.

Why lambda grows with C: the weight the normalised penalty puts on one off-diagonal entry,
lambda / (C (C - 1)), falls like 1 / C^2, while the NLL's curvature per entry falls like 1 / C
and the entries to fit grow like C^2. The factor keeps that weight on the same grid at every
C >= 10 (1.1, 0.11, ..., 1.1e-4), so the grid found on 10 classes still reaches temperature
scaling at 100. Without it the strongest lambda (per entry 0.01 at 100 classes) left matrix
scaling of 5,000 x 100 calibrated synthetic logits (3 * randn, labels drawn from their softmax)
overfitting, with the cross-validation choosing the edge of the grid: validation accuracy 0.43
-> 0.71, test accuracy 0.43 -> 0.34, test NLL 2.05 -> 2.67, test ECE 0.02 -> 0.21. Kull et al.'s
own tuned settings for CIFAR-100 (their deep-network experiments, unnormalised, per entry) are
0.25-2.5 for matrix scaling, lambda = 2,500-25,000 here; the scaled grid's strongest is 11,000.

The walk down the grid stops once CV_PATIENCE = 2 settings in a row have scored worse than the
best so far: the weakest settings overfit and are the slowest to fit, and once the CV curve has
turned they are not chosen. On 90 synthetic 359 x 10 problems (30 seeds, three calibrators) it
chose the same penalties as the full walk.

Departure 1, the diagonal terms. ODIR leaves the diagonal free, so on a validation set that
per-class rescaling separates (every label scores highest once each class's x is scaled: 13 of
16 digits CNN seeds, 359 samples) the NLL keeps falling as the diagonal grows and the fit runs
off to infinity. nu shrinks the per-class scales towards their mean, so the strongest setting of
the search is temperature scaling (W = w I, b = 0) and the search decides how far to move from
it; the last term is the negative log of a Gamma(1 + a, a) prior on each w_k with mode 1 (the
model's own scale), per sample, the prior temperature scaling puts on 1/T (a = ``prior_strength``
= 1; :func:`~infobench.tasks.calibration.methods.base.scale_penalty`): it keeps every w_k > 0
and finite. ``prior_strength = 0, l2_diag = 0`` is the paper's objective; ``degenerate_reason``
says when that objective (with the chosen lambda, mu) has no minimum (a linear program,
:func:`separable_direction`).

Departure 2, the one-standard-error rule (Hastie, Tibshirani and Friedman, "The Elements of
Statistical Learning", 2009, Sec. 7.10): with a few hundred validation samples and a handful of
errors the CV minimum is noisy and leans to the weakest penalty; by default the strongest
setting whose CV NLL is within one standard error of the minimum is taken (``cv_rule = "min"``
is Kull et al.'s choice).

Measured mean (max) test NLL on digits, 16 CNN seeds (cnn2d width 32, 30 epochs, lr 1e-3) / 6
MLP seeds (100 epochs at lr 1e-2, over-confident): uncalibrated 0.066 (0.074) / 0.198 (0.214),
temperature scaling 0.052 (0.065) / 0.126 (0.135); the former fit (vector scaling unregularised,
lambda = mu = 0.01, no diagonal terms) gave vector 0.58 (1.9) / 5.7 (28), matrix 6.1 (31) / 0.74
(1.05), Dirichlet 10 (60) / 1.3 (4.1); this one gives vector 0.048 (0.058) / 0.132 (0.142),
matrix 0.048 (0.058) / 0.18 (0.29), Dirichlet 0.048 (0.058) / 0.20 (0.30). On some MLP seeds
the cross-validation trusts the 5-10 validation errors (their held-out NLL is low) and picks
weak penalties for matrix and Dirichlet calibration, which the test errors do not reward.

The fit is Newton's method with the exact Hessian (C (C + 1) parameters, or 2 C for vector
scaling) and a backtracking line search from the identity map (W = I, b = 0); the objective is
convex, so it converges in a handful of steps. Beyond 1,500 parameters (38 classes for a full
W) the Hessian costs more than it saves and L-BFGS-B takes over (:func:`_lbfgs`). The
cross-validation walks each fold down the penalty grid, starting every fit from the previous
one. On the 5,000 x 100 logits above the whole fit (cross-validation, final fit, degeneracy
check) of matrix scaling took 114 s before the scaled grid, the stopped walk and the stopping
rule of :func:`_lbfgs`, and takes 6 s; Dirichlet calibration took 30 min (its weakest fits ran
to the 5,000-iteration cap) and takes 26 s, vector scaling 1.3 s. BLAS is held to one
thread during the fit, as its matrices are small and extra threads only contend (on a busy
2-core machine two threads made a 3,000-row fit ten times slower). Not registered: the concrete
calibrators are the files next to this one.
"""

from __future__ import annotations

import logging
from typing import ClassVar, Literal

import numpy as np
import scipy.linalg
from pydantic import BaseModel, ConfigDict, Field
from threadpoolctl import threadpool_limits

from infobench.metrics import log_softmax
from infobench.tasks.calibration.methods.base import Calibrator, check_logits, scale_penalty

log = logging.getLogger("infobench.calibration")

PENALTY_GRID = tuple(10.0**e for e in range(2, -3, -1))  # strongest first: each fit starts from the last
CV_SEED = 0
# the cross-validation stops walking down the grid after this many settings worse than the best
CV_PATIENCE = 2
# Newton's exact Hessian has (C (C + 1))^2 entries: beyond ~38 classes (full W) L-BFGS is cheaper
NEWTON_MAX_PARAMS = 1500
# entries of the degeneracy program with free off-diagonal weights beyond which separable_direction
# gives up (HiGHS took ~6 s at 5e5 entries; 359 x 10 logits need 7e4, 5,000 x 100 need 1e8)
MAX_PROGRAM_NONZEROS = 500_000

Penalty = float | Literal["cv"]


class VectorParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    l2_bias: Penalty = Field("cv", description="mu: weight of the mean squared bias; 'cv': chosen by cross-validation")
    l2_diag: Penalty = Field(
        "cv", description="nu: weight of the spread of the diagonal weights around their mean; 'cv': chosen by cross-validation")
    prior_strength: float = Field(
        1.0, ge=0, description="a of the Gamma(1 + a, a) prior on each diagonal weight, as for temperature; 0: none")
    cv_folds: int = Field(5, ge=2, description="folds of the cross-validation that picks 'cv' penalties")
    cv_rule: Literal["1se", "min"] = Field(
        "1se", description="1se: strongest penalty within one standard error of the best CV NLL; min: the best (Kull et al.)")
    max_iter: int = Field(100, ge=1, description="Newton iterations per fit (converges in ~10); L-BFGS, beyond 1,500 parameters, gets 50x")


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

    def nll_gradient(self, resid: np.ndarray) -> np.ndarray:
        """Gradient (C * D,) of the summed NLL, from ``resid`` = q - onehot (C, n)."""
        if self.diagonal:
            return np.einsum("kn,kan->ka", resid, self.phi).ravel()
        return (resid @ self.shared_t).ravel()

    def nll_hessian(self, q: np.ndarray) -> np.ndarray:
        """Hessian of the summed NLL from the probabilities ``q`` (C, n):
        H[(k, a), (l, b)] = sum_i (q_ik [k = l] - q_ik q_il) phi_kai phi_lbi."""
        c, d = self.shape
        weighted = np.multiply(q[:, None, :], self.phi, order="C")  # (C, D, n): q_k phi_k
        flat = weighted.reshape(c * d, -1)
        hess = -(flat @ flat.T)
        if self.diagonal:
            blocks = np.matmul(weighted, self.phi.transpose(0, 2, 1))
        else:
            blocks = weighted @ self.shared_t  # (C, D, D): sum_i q_ik phi_i phi_i^T
        square = hess.reshape(c, d, c, d)
        square[np.arange(c), :, np.arange(c), :] += blocks
        return hess

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


class Objective:
    """L (module docstring) for one design, labels and setting of the penalties: value, gradient
    and Hessian of the flat parameters theta (C * D,)."""

    def __init__(self, design: Design, labels: np.ndarray, penalties: Penalties, prior_strength: float):
        c = design.shape[0]
        l2_offdiag, l2_bias, l2_diag = penalties
        self.design, self.labels, self.rows = design, labels, np.arange(labels.shape[0])
        self.quad = design.quadratic_weights(l2_offdiag, l2_bias)
        self.diag = design.diagonal_index()
        self.prior_weight = prior_strength / labels.shape[0]
        # nu / C sum_k (W_kk - mean W)^2 = theta[diag] . spread . theta[diag]: shrinks the
        # per-class scales towards their mean, so the strongest setting is temperature scaling
        self.spread = l2_diag / c * (np.eye(c) - 1.0 / c)

    def feasible(self, theta: np.ndarray) -> bool:
        return self.prior_weight <= 0 or bool(np.all(theta[self.diag] > 0))

    def value(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """L(theta) and the (C, n) log-probabilities it needed."""
        log_q = _log_probs(self.design.scores(theta.reshape(self.design.shape)))
        w = theta[self.diag]
        value = -np.mean(log_q[self.labels, self.rows]) + self.quad @ theta**2 + w @ self.spread @ w
        if self.prior_weight > 0:
            value += scale_penalty(w, self.prior_weight)[0]
        return float(value), log_q

    def gradient(self, theta: np.ndarray, log_q: np.ndarray) -> np.ndarray:
        resid = np.exp(log_q)
        resid[self.labels, self.rows] -= 1.0
        grad = self.design.nll_gradient(resid) / len(self.rows) + 2 * self.quad * theta
        grad[self.diag] += 2 * self.spread @ theta[self.diag]
        if self.prior_weight > 0:
            grad[self.diag] += scale_penalty(theta[self.diag], self.prior_weight)[1]
        return grad

    def hessian(self, theta: np.ndarray, log_q: np.ndarray) -> np.ndarray:
        hess = self.design.nll_hessian(np.exp(log_q)) / len(self.rows)
        hess[np.diag_indices_from(hess)] += 2 * self.quad
        hess[np.ix_(self.diag, self.diag)] += 2 * self.spread
        if self.prior_weight > 0:
            hess[self.diag, self.diag] += scale_penalty(theta[self.diag], self.prior_weight)[2]
        return hess


def fit_penalised(
    design: Design, labels: np.ndarray, penalties: Penalties, prior_strength: float = 0.0,
    max_iter: int = 100, start: np.ndarray | None = None, tol: float = 1e-10,
) -> np.ndarray:
    """Minimise L (module docstring) from ``start`` (default the identity map); returns the flat
    parameters (C * D,). Newton's method up to NEWTON_MAX_PARAMS parameters, L-BFGS beyond."""
    objective = Objective(design, labels, penalties, prior_strength)
    theta = design.identity() if start is None else start.copy()
    if theta.size > NEWTON_MAX_PARAMS:
        return _lbfgs(objective, theta, 50 * max_iter, tol)
    value, log_q = objective.value(theta)
    for _ in range(max_iter):
        grad = objective.gradient(theta, log_q)
        hess = objective.hessian(theta, log_q)
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
            if objective.feasible(candidate):
                new_value, new_log_q = objective.value(candidate)
                if new_value <= value - 1e-4 * scale * decrement:
                    break
            scale /= 2
        else:
            break  # no descent along the Newton direction: at the optimum to rounding
        theta, value, log_q = candidate, new_value, new_log_q
    return theta


def _lbfgs(objective: Objective, theta: np.ndarray, max_iter: int, tol: float) -> np.ndarray:
    """L-BFGS-B on L, for maps too large for the exact Hessian (the diagonal kept positive). It
    stops when an iteration lowers L by less than ``tol`` / 10 relative to max(|L|, 1) (``tol``
    bounds Newton's decrement in :func:`fit_penalised`); the former test (projected gradient
    below 1e-9 or a relative decrease below 1e-14) ran every weakly penalised fit at 100 classes
    to its 5,000-iteration cap. Centring and scaling the features, tried as a preconditioner,
    made it slower: the penalties, which dominate the Hessian at the settings chosen, are
    diagonal in the original coordinates, and the bias penalty couples every weight once the
    features are centred."""
    from scipy.optimize import minimize

    def value_and_gradient(flat: np.ndarray) -> tuple[float, np.ndarray]:
        value, log_q = objective.value(flat)
        return value, objective.gradient(flat, log_q)

    bounds = [(None, None)] * theta.size
    if objective.prior_weight > 0:
        for i in objective.diag:
            bounds[i] = (1e-12, None)
    result = minimize(value_and_gradient, theta, jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"maxiter": max_iter, "gtol": 0.0, "ftol": tol / 10})
    return result.x


def stratified_folds(labels: np.ndarray, k: int, seed: int = CV_SEED) -> np.ndarray:
    """Fold index in [0, k) of every sample: the samples sorted by class (in a seeded random order
    within each) and dealt round-robin, so every class and every fold is spread evenly."""
    shuffled = np.random.default_rng(seed).permutation(len(labels))
    order = np.lexsort((shuffled, labels))
    folds = np.empty(len(labels), dtype=np.int64)
    folds[order] = np.arange(len(labels)) % k
    return folds


def cross_validated_penalties(
    design: Design, labels: np.ndarray, grid: list[Penalties], params: VectorParams
) -> Penalties:
    """The penalties of ``grid`` (strongest first) chosen by K-fold CV of the held-out NLL.

    Every fold walks down the grid, each fit starting from the fold's previous one; the walk
    stops once CV_PATIENCE settings in a row have scored worse than the best so far (the CV
    curve has turned; the weak end, where a fit overfits and takes longest, is then skipped).
    """
    k = min(params.cv_folds, len(labels))
    folds = stratified_folds(labels, k)
    splits = [(np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)) for fold in range(k)]
    parts = [(design.subset(train), design.subset(test)) for train, test in splits]
    thetas: list[np.ndarray | None] = [None] * k
    c, d = design.shape
    held_out = []
    for penalties in grid:
        losses = np.empty(len(labels))
        for fold, ((train, test), (part, held)) in enumerate(zip(splits, parts)):
            # scoring only needs the held-out NLL to ~1e-6: a looser stop saves a step or two
            thetas[fold] = fit_penalised(part, labels[train], penalties, params.prior_strength, params.max_iter,
                                         start=thetas[fold], tol=1e-7)
            log_q = _log_probs(held.scores(thetas[fold].reshape(c, d)))
            losses[test] = -log_q[labels[test], np.arange(len(test))]
        held_out.append(losses)
        mean = np.mean(held_out, axis=1)
        if len(mean) - 1 - int(np.argmin(mean)) >= CV_PATIENCE:
            break
    best = int(np.argmin(mean))
    if params.cv_rule == "1se":
        standard_error = held_out[best].std(ddof=1) / np.sqrt(len(labels))
        best = int(np.flatnonzero(mean <= mean[best] + standard_error)[0])
    return grid[best]


def penalty_grid(params: VectorParams, diagonal: bool, classes: int) -> list[Penalties]:
    """The (lambda, mu, nu) settings to cross-validate, strongest first: every penalty left at
    'cv' takes each grid value in turn (tied); one setting when none is 'cv'. lambda's values are
    multiplied by max(1, C (C - 1) / 90): the weight per off-diagonal entry, lambda / (C (C - 1)),
    then runs over the same values at every C >= 10 as at 10 classes (module docstring)."""
    chosen = (0.0 if diagonal else params.l2_offdiag, params.l2_bias, params.l2_diag)
    if "cv" not in chosen:
        return [tuple(float(v) for v in chosen)]
    per_entry = (max(1.0, classes * (classes - 1) / 90), 1.0, 1.0)
    return [tuple(v * scale if p == "cv" else float(p) for p, scale in zip(chosen, per_entry)) for v in PENALTY_GRID]


def separable_direction(design: Design, labels: np.ndarray, l2_offdiag: float, l2_bias: float) -> bool | None:
    """Whether the paper's objective (NLL + ODIR with these lambda and mu, no diagonal terms) has
    no minimum: some direction d in the unpenalised parameters lowers no sample's margin against
    any class and raises at least one (so the NLL falls for ever along d). None: not decided,
    the program would exceed MAX_PROGRAM_NONZEROS.

    A linear program: maximise the summed margins over d in [-1, 1]^m subject to every margin
    (score of the label minus score of class k, along d) >= 0, one sparse row per (sample i,
    class k != y_i). Rows that the others imply are dropped first where the free parameters allow:

    * diagonal only (lambda, mu > 0, the default): a margin d_y u - d_k v >= 0 (u = x_iy,
      v = x_ik) involves two weights, and among the rows of one (label y, class k, sign of u)
      the two with the smallest and largest ratio v / u imply all others: at most 6 C (C - 1)
      rows whatever n (:func:`_binding_rows`).
    * diagonal and biases (mu = 0; Guo et al.'s vector scaling): d_y u - d_k v + b_y - b_k >= 0
      is affine in the point (u, v), so only the vertices of the convex hull of a (y, k) group's
      points bind; :func:`_inside_octagon` drops the points strictly inside the octagon spanned by
      the group's extreme points in 8 directions (most of them; the hull vertices always stay).

    These reduced programs have 2 or 4 entries a row and C or 2 C columns; on 5,000 x 100 logits
    they keep 59,000 and 90,000 of the 495,000 rows and take 0.3 s and 1.5 s (the former dense
    program took 20-34 s and 3.9 GiB with the biases free). With off-diagonal weights free
    (lambda = 0) no such reduction exists: n (C - 1) rows of 2 (C + 1) entries, 1e8 entries for
    5,000 x 100 logits (the former dense program asked for 37 GiB there), and HiGHS took 6-28 s
    already at 5e5-7.5e5 entries (400-600 x 25). Above MAX_PROGRAM_NONZEROS entries that program
    is not built and None is returned.
    """
    import scipy.sparse
    from scipy.optimize import linprog

    c, d = design.shape
    free = (design.quadratic_weights(l2_offdiag, l2_bias) == 0).reshape(c, d)
    n = labels.shape[0]
    others = np.ones((n, c), dtype=bool)
    others[np.arange(n), labels] = False
    sample, competitor = np.nonzero(others)  # one row per (i, k != y_i)
    own = labels[sample]
    scales = np.zeros_like(free)
    scales.flat[design.diagonal_index()] = True
    scales_and_biases = scales.copy()
    scales_and_biases[:, -1] = True
    if np.array_equal(free, scales) or np.array_equal(free, scales_and_biases):
        u, v = design.x[sample, own], design.x[sample, competitor]
        if free[0, -1]:
            keep = ~_inside_octagon(own * c + competitor, u, v)
        else:
            keep = _binding_rows(own, competitor, u, v, c)
        sample, competitor, own = sample[keep], competitor[keep], own[keep]
    else:
        per_class = free.sum(axis=1)
        if int(per_class[own].sum() + per_class[competitor].sum()) > MAX_PROGRAM_NONZEROS:
            return None
    column = np.full((c, d), -1)
    column[free] = np.arange(int(free.sum()))
    rows, cols, values = [], [], []
    for feature in np.flatnonzero(free.any(axis=0)):
        for cls, sign in ((own, 1.0), (competitor, -1.0)):
            hit = np.flatnonzero(free[cls, feature])
            rows.append(hit)
            cols.append(column[cls[hit], feature])
            values.append(sign * design.phi[cls[hit], feature, sample[hit]])
    values = np.concatenate(values)
    scale = np.abs(values).max() if values.size else 0.0
    if scale == 0:
        return False
    margins = scipy.sparse.csr_matrix(
        (values / scale, (np.concatenate(rows), np.concatenate(cols))), shape=(len(sample), int(free.sum())))
    result = linprog(-np.asarray(margins.sum(axis=0)).ravel(), A_ub=-margins, b_ub=np.zeros(margins.shape[0]),
                     bounds=(-1, 1), method="highs")
    return result.status == 0 and -result.fun > 1e-9 * margins.shape[0]


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


def _inside_octagon(group: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Mask of the points (u, v) strictly inside the polygon whose corners are their group's
    extreme points in the directions 0, 45, ..., 315 degrees. The corners are points of the
    group taken counter-clockwise, so such a point is a convex combination of other points of
    its group (its row is implied) and every vertex of the group's hull stays outside the mask.
    A point is inside when it lies strictly left of every edge of non-zero length."""
    order = np.argsort(group, kind="stable")
    new_group = np.r_[True, group[order][1:] != group[order][:-1]]
    index = np.cumsum(new_group) - 1  # group number of each sorted point
    starts = np.flatnonzero(new_group)
    su, sv = u[order], v[order]
    corners = []
    for angle in np.arange(8) * np.pi / 4:
        reach = su * np.cos(angle) + sv * np.sin(angle)
        at_top = np.flatnonzero(reach == np.maximum.reduceat(reach, starts)[index])
        corners.append(at_top[np.r_[True, index[at_top][1:] != index[at_top][:-1]]])  # first per group
    inside = np.ones(len(su), dtype=bool)
    for a, b in zip(corners, corners[1:] + corners[:1]):
        au, av = su[a][index], sv[a][index]
        eu, ev = su[b][index] - au, sv[b][index] - av
        inside &= ((eu == 0) & (ev == 0)) | (eu * (sv - av) - ev * (su - au) > 0)
    inside[np.concatenate(corners)] = False  # the corners themselves (all edges may be empty)
    mask = np.empty_like(inside)
    mask[order] = inside
    return mask


class AffineCalibrator(Calibrator):
    """Base of calibrators ``softmax(W x + b)``; subclasses set ``diagonal`` and ``on_log_probs``."""

    diagonal: ClassVar[bool] = False
    on_log_probs: ClassVar[bool] = False  # x = log softmax(logits) (Dirichlet) instead of logits
    reports_degenerate_fit = True
    Params = ODIRParams

    weight: np.ndarray
    bias: np.ndarray
    penalties: Penalties
    degeneracy_checked = True  # False when separable_direction skipped a program too large to solve

    def _inputs(self, logits: np.ndarray) -> np.ndarray:
        z = np.asarray(logits, dtype=np.float64)
        return log_softmax(z) if self.on_log_probs else z

    def fit(self, logits: np.ndarray, labels: np.ndarray) -> AffineCalibrator:
        logits, labels = check_logits(logits, labels)
        params = self.params
        labels = np.asarray(labels)
        design = Design(self._inputs(logits), self.diagonal)
        grid = penalty_grid(params, self.diagonal, logits.shape[1])
        if len(grid) > 1 and len(labels) < 2:
            raise ValueError("choosing penalties by cross-validation ('cv') needs at least 2 validation samples")
        with threadpool_limits(1, user_api="blas"):  # small matrices: more BLAS threads only contend
            if len(grid) > 1:
                self.penalties = cross_validated_penalties(design, labels, grid, params)
            else:
                self.penalties = grid[0]
            theta = fit_penalised(design, labels, self.penalties, params.prior_strength, params.max_iter)
        theta = theta.reshape(design.shape)
        c = design.shape[0]
        self.weight = np.diag(theta[:, 0]) if self.diagonal else theta[:, :c]
        self.bias = theta[:, -1].copy()
        l2_offdiag, l2_bias, l2_diag = self.penalties
        self.degenerate_reason = ""
        separable = separable_direction(design, labels, l2_offdiag, l2_bias)
        self.degeneracy_checked = separable is not None
        if separable is None:
            log.warning("%s: the check for a validation set without a finite optimum was skipped (lambda = 0 "
                        "leaves the %d off-diagonal weights free; the program exceeds %d entries)",
                        type(self).__name__, c * (c - 1), MAX_PROGRAM_NONZEROS)
        if separable:
            how = (f"the Gamma prior on the diagonal (prior_strength = {params.prior_strength:g}) keeps the fit finite"
                   if params.prior_strength > 0 else "with prior_strength = 0 the weights are where the optimiser stopped")
            self.degenerate_reason = (
                f"the validation set is separable along weights that lambda = {l2_offdiag:g}, mu = {l2_bias:g} "
                f"leave free, so the paper's objective has no minimum; {how}")
        return self

    def calibrated_logits(self, logits: np.ndarray) -> np.ndarray:
        logits, _ = check_logits(logits)
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
        if not self.degeneracy_checked:
            values["degeneracy_checked"] = 0.0  # degenerate_fit = 0 then means "not known"
        return values
