"""Degenerate validation sets (issue 12 item 5, issue 15 item 4): a separable, already calibrated or
over-confident validation set must not wreck the held-out NLL of temperature, vector, matrix or
Dirichlet calibration; the fit says when the paper's objective had no minimum; the affine fits
reach the optimum of their objective in a bounded number of Newton steps (how fast that is in
seconds is benchmarks/bench_calibration.py's business, not a test's)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from infobench.data.base import Split
from infobench.metrics import log_softmax, nll, softmax
from infobench.spec import Run
from infobench.tasks.base import RunContext
from infobench.tasks.calibration.methods import affine
from infobench.tasks.calibration.methods.affine import Design, fit_penalised, separable_direction
from infobench.tasks.calibration.methods.dirichlet import DirichletCalibration
from infobench.tasks.calibration.methods.matrix import MatrixScaling
from infobench.tasks.calibration.methods.temperature import TemperatureScaling
from infobench.tasks.calibration.methods.vector import VectorScaling
from infobench.tasks.calibration.task import fitted_calibrator

AFFINE = [VectorScaling, MatrixScaling, DirichletCalibration]


def confident_sample(n: int, rng: np.random.Generator, classes: int = 10, margin: float = 8.0):
    """Logits with one class ahead by ``margin`` and labels drawn from their own softmax: a
    calibrated model that is right ~99% of the time."""
    predicted = rng.integers(0, classes, n)
    logits = rng.normal(0, 1, (n, classes))
    logits[np.arange(n), predicted] += margin
    return logits, (softmax(logits).cumsum(1) > rng.random((n, 1))).argmax(1)


def validation_and_test(seed: int):
    rng = np.random.default_rng(seed)
    return (*confident_sample(200, rng), *confident_sample(20_000, rng))


def over_confident(seed: int):
    """Logits twice as sharp as the truth (labels drawn at T = 2): 359 validation, 5000 test rows."""
    rng = np.random.default_rng(seed)
    out = []
    for n in (359, 5000):
        logits = rng.normal(0, 4, (n, 10))
        out += [logits, (softmax(logits / 2).cumsum(1) > rng.random((n, 1))).argmax(1)]
    return out


def test_temperature_on_a_separable_validation_set_stays_sane():
    # 200 validation rows all predicted right: the plain NLL falls for ever as T -> 0 and the
    # former fit stopped at T = 0.12, held-out NLL 0.41 against 0.058 uncalibrated
    z_val, y_val, z_test, y_test = validation_and_test(2)
    assert (z_val.argmax(1) == y_val).all()
    plain = TemperatureScaling(TemperatureScaling.Params(prior_strength=0)).fit(z_val, y_val)
    assert plain.temperature < 0.2 and "T -> 0" in plain.degenerate_reason
    cal = TemperatureScaling().fit(z_val, y_val)
    assert "T -> 0" in cal.degenerate_reason and "prior" in cal.degenerate_reason
    assert 0.4 < cal.temperature < 1.0
    assert nll(cal.calibrated_logits(z_test), y_test) < 1.5 * nll(z_test, y_test)


def test_temperature_reports_the_other_degeneracy_and_none_on_ordinary_data():
    z_val, y_val, _, _ = validation_and_test(0)  # two validation errors: a proper minimum
    assert not (z_val.argmax(1) == y_val).all()
    assert TemperatureScaling().fit(z_val, y_val).degenerate_reason == ""
    # every label on its row's smallest logit: the NLL only falls as T -> inf (uniform)
    labels = z_val.argmin(1)
    cal = TemperatureScaling().fit(z_val, labels)
    assert "T -> inf" in cal.degenerate_reason
    assert nll(cal.calibrated_logits(z_val), labels) < nll(z_val, labels)
    assert np.isfinite(cal.temperature) and cal.temperature > 1


@pytest.mark.parametrize("cls", AFFINE)
def test_affine_on_a_separable_validation_set_stays_near_uncalibrated(cls):
    # the former fits (vector unregularised, lambda = mu = 0.01) gave held-out NLL 0.23 / 0.38 /
    # 0.47 here, 4-8 times the uncalibrated 0.058
    z_val, y_val, z_test, y_test = validation_and_test(2)
    cal = cls().fit(z_val, y_val)
    assert "separable" in cal.degenerate_reason
    assert nll(cal.calibrated_log_probs(z_test), y_test) < 1.3 * nll(z_test, y_test)


@pytest.mark.parametrize("cls", AFFINE)
def test_affine_leaves_an_already_calibrated_model_nearly_alone(cls):
    # the former fits gave 0.40 / 0.18 / 3.5 against 0.056
    z_val, y_val, z_test, y_test = validation_and_test(0)
    cal = cls().fit(z_val, y_val)
    assert cal.degenerate_reason == ""
    assert nll(cal.calibrated_log_probs(z_test), y_test) < 1.1 * nll(z_test, y_test)


@pytest.mark.parametrize("cls", AFFINE)
def test_affine_calibrates_an_over_confident_model(cls):
    # uncalibrated 1.65, the true temperature gives 1.35; the former matrix and Dirichlet fits
    # stopped at 1.55 and 1.54
    z_val, y_val, z_test, y_test = over_confident(0)
    cal = cls().fit(z_val, y_val)
    assert nll(cal.calibrated_log_probs(z_test), y_test) < 0.9 * nll(z_test, y_test)


def test_separability_along_the_diagonal_by_hand():
    # two classes, per-class scales d: A (label 0, x = (2, 1)) needs d1 <= 2 d0, B (label 1,
    # x = (1, .5)) needs d1 >= 2 d0: only d1 = 2 d0, where both margins are 0, so no direction
    # helps. C (label 1, x = (1, .6)) gains 0.2 d0 along it: separable, no minimum.
    x = np.array([[2.0, 1.0], [1.0, 0.5], [1.0, 0.6]])
    labels = np.array([0, 1, 1])
    for diagonal in (True, False):  # vector design, and matrix with lambda, mu > 0: the diagonal is free
        assert not separable_direction(Design(x[:2], diagonal), labels[:2], 1.0, 1.0)
        assert separable_direction(Design(x, diagonal), labels, 1.0, 1.0)
    # with the biases free too, A and B separate (d0 = 1, d1 = 0, b1 - b0 = 1.5: margins 0.5, 0.5)
    assert separable_direction(Design(x[:2], True), labels[:2], 0.0, 0.0)


def test_the_constraint_reduction_keeps_the_answer():
    # the diagonal-only program keeps 2 rows per (label, class, sign): compare with all rows
    rng = np.random.default_rng(7)
    answers = []
    for trial in range(16):  # label noise growing from none (separable) to enough to overlap
        x = rng.normal(0, 2, (40, 4))
        labels = (x + rng.normal(0, trial / 40, x.shape)).argmax(1)
        design = Design(x, True)
        answers.append(separable_direction(design, labels, 0.0, 1.0))
        assert answers[-1] == _separable_without_reduction(design, labels, 0.0, 1.0), trial
    assert 3 <= sum(answers) <= 13  # both answers occur


@pytest.mark.parametrize("diagonal, l2_offdiag, l2_bias", [
    (True, 0.0, 0.0),  # vector scaling with free biases: the hull reduction
    (False, 1.0, 0.0),  # matrix, diagonal and biases free: the hull reduction
    (False, 0.0, 1.0),  # matrix, off-diagonal free: the whole sparse program
    (False, 0.0, 0.0),
])
def test_every_sparse_program_gives_the_dense_answer(diagonal, l2_offdiag, l2_bias):
    # rounded logits put points on hull edges and on top of each other
    rng = np.random.default_rng(11)
    answers = []
    for trial in range(16):
        x = np.round(rng.normal(0, 2, (30, 4)), 0 if trial % 2 else 3)
        labels = (x + rng.normal(0, trial / 15, x.shape)).argmax(1)
        design = Design(x, diagonal)
        answers.append(separable_direction(design, labels, l2_offdiag, l2_bias))
        assert answers[-1] == _separable_without_reduction(design, labels, l2_offdiag, l2_bias), trial
    assert 2 <= sum(answers) <= 14  # both answers occur


def test_the_octagon_keeps_every_hull_vertex():
    from scipy.spatial import ConvexHull

    rng = np.random.default_rng(5)
    dropped = 0
    for trial in range(40):
        points = rng.normal(0, 1, (rng.integers(3, 60), 2))
        if trial % 2:
            points = np.round(points * 2) / 2  # duplicates and collinear points
        group = rng.integers(0, 3, len(points))
        inside = affine._inside_octagon(group, points[:, 0], points[:, 1])
        for g in np.unique(group):
            members = np.flatnonzero(group == g)
            if len(np.unique(points[members], axis=0)) >= 3 and np.linalg.matrix_rank(
                    points[members] - points[members].mean(0)) == 2:
                assert not inside[members[ConvexHull(points[members]).vertices]].any(), trial
        dropped += inside.sum()
    assert dropped > 200  # and it drops most of the others


def _separable_without_reduction(design: Design, labels: np.ndarray, l2_offdiag: float, l2_bias: float) -> bool:
    """The program of separable_direction written out densely, one row per (sample, class)."""
    from scipy.optimize import linprog

    c, d = design.shape
    free = np.flatnonzero(design.quadratic_weights(l2_offdiag, l2_bias) == 0)
    rows = []
    for i, y in enumerate(labels):
        for k in range(c):
            if k != y:
                row = np.zeros((c, d))
                row[y] += design.phi[y, :, i]
                row[k] -= design.phi[k, :, i]
                rows.append(row.ravel()[free])
    margins = np.array(rows) / np.abs(rows).max()
    result = linprog(-margins.sum(0), A_ub=-margins, b_ub=np.zeros(len(margins)), bounds=(-1, 1), method="highs")
    return -result.fun > 1e-9 * len(margins)


@pytest.mark.parametrize("diagonal", [True, False])
def test_newton_and_lbfgs_reach_the_same_minimum(diagonal, monkeypatch):
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 3, (400, 5))
    labels = (softmax(logits / 2).cumsum(1) > rng.random((400, 1))).argmax(1)
    design = Design(log_softmax(logits), diagonal)
    newton = fit_penalised(design, labels, (0.5, 0.5, 0.5), prior_strength=1.0)
    monkeypatch.setattr(affine, "NEWTON_MAX_PARAMS", 0)  # the path of maps with > 38 classes
    lbfgs = fit_penalised(design, labels, (0.5, 0.5, 0.5), prior_strength=1.0)
    np.testing.assert_allclose(lbfgs, newton, atol=2e-4)


@pytest.mark.parametrize("cls", AFFINE)
@pytest.mark.parametrize("n", [359, 3000])
def test_a_whole_fit_takes_few_newton_steps(cls, n, monkeypatch):
    # 5 folds x 5 penalties + the final fit; the former L-BFGS fit took up to 1000 iterations
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(0, 3, (n, 10)), rng.integers(0, 10, n)
    steps = []
    hessian = affine.Objective.hessian
    monkeypatch.setattr(affine.Objective, "hessian", lambda self, *a: steps.append(1) or hessian(self, *a))
    cls().fit(logits, labels)
    assert len(steps) <= 26 * 8


def test_the_task_records_and_shows_a_degenerate_fit():
    # a model whose 200 validation predictions are all right: degenerate_fit = 1 and a warning
    z_val, y_val, _, _ = validation_and_test(2)
    model = torch.nn.Linear(10, 10, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(10))
    model.num_classes = 10
    rows = {}
    for method in ("temperature", "vector", "isotonic"):
        run = Run(config={"method": {"name": method, "params": {}}}, variant=method)
        ctx = RunContext(run=run, plots_dir=None, logger=logging.getLogger("test"))
        fitted_calibrator(run, model, Split(x=z_val.astype(np.float32), y=y_val), ctx)
        rows[method] = ([r for r in ctx.rows if r["metric"] == "degenerate_fit"], ctx.warnings)
    for method in ("temperature", "vector"):
        metric, warnings = rows[method]
        assert metric == [{"split": "val", "step": None, "metric": "degenerate_fit", "value": 1.0}]
        assert len(warnings) == 1 and warnings[0].startswith(f"{method}: ")
    assert rows["isotonic"] == ([], [])  # binning calibrators do not check
