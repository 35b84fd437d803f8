"""Post-hoc calibrators: ``fit(logits, labels)`` on validation data, then ``transform(logits)``.

Where they compute: on the host, in numpy (float64 for the fits), whatever device the model ran
on. Their inputs are a validation set's logits, (n, C) with n in the hundreds or thousands,
and their fits are exact Newton steps, isotonic regression or binning: work a GPU does no
faster, and a host fit gives the same numbers whether the model ran on the CPU or a GPU.
Logits may come as numpy arrays or as torch tensors on any device (:func:`check_logits`
copies a tensor to the host once); results are numpy arrays. ``ca`` alone runs the model (on
its device) to compute its features; see :mod:`.ca`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from infobench.metrics import as_array, log_softmax, softmax


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Calibrator:
    """Base class. ``transform`` returns probabilities of shape (n, C).

    Calibrators that act on logits override ``calibrated_logits``; the task then computes the
    NLL from those logits rather than from rounded probabilities. Calibrators that only
    produce probabilities (binning, isotonic) derive from :class:`ProbabilityCalibrator`.
    The task evaluates ``calibrated_log_probs``, which serves both kinds.
    """

    Params: ClassVar[type[BaseModel]] = NoParams
    # True for calibrators that also look at the inputs through the model (``ca``): the task
    # then calls ``bind(model)`` first and passes ``x=`` to ``fit`` and ``calibrated_log_probs``.
    uses_inputs: ClassVar[bool] = False
    # True for calibrators whose ``fit`` checks that the paper's objective has a finite optimum
    # on the validation data; ``fit`` then leaves ``degenerate_reason`` empty, or says what made
    # the fit degenerate and what was fitted instead (the task records and shows it).
    reports_degenerate_fit: ClassVar[bool] = False
    degenerate_reason: str = ""

    def __init__(self, params: BaseModel | None = None):
        self.params = params if params is not None else self.Params()

    def fit(self, logits: np.ndarray, labels: np.ndarray) -> Calibrator:
        return self

    def calibrated_logits(self, logits: np.ndarray) -> np.ndarray:
        """Logits whose softmax is the calibrated distribution, shape (n, C)."""
        raise NotImplementedError

    def transform(self, logits: np.ndarray) -> np.ndarray:
        return softmax(self.calibrated_logits(logits))

    def calibrated_log_probs(self, logits: np.ndarray) -> np.ndarray:
        """Log-probabilities of the calibrated distribution, shape (n, C), float64."""
        return log_softmax(self.calibrated_logits(logits))

    def fitted(self) -> dict[str, float]:
        """Scalar fitted parameters worth reporting (e.g. the temperature)."""
        return {}


def scale_penalty(scale: np.ndarray, weight: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Value, gradient and diagonal Hessian of ``weight * sum_c (s_c - ln s_c)`` for positive
    scales s (inverse temperatures): the negative log-density of a Gamma(1 + a, a) prior on each
    s_c, up to a constant, when ``weight`` = a / n for n validation samples (a MAP fit of the summed
    likelihood, divided by n). Its minimum is at s = 1 (the model's own logits); it is convex, so
    it keeps a convex NLL convex, grows linearly as s -> inf (T -> 0) and like -ln s as s -> 0
    (T -> inf), so it bounds the optimum on a separable validation set, whose NLL keeps falling
    as s grows.
    """
    value = weight * float(np.sum(scale - np.log(scale)))
    return value, weight * (1.0 - 1.0 / scale), weight / scale**2


def check_logits(logits, labels=None) -> tuple[np.ndarray, np.ndarray | None]:
    """``(logits, labels)`` as host numpy arrays (a tensor on any device is copied once), after
    validating shapes and finiteness with messages that say what was received."""
    logits = as_array(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (n, classes), got {logits.shape}")
    if not np.isfinite(logits).all():
        raise ValueError("logits contain NaN or inf")
    if labels is not None:
        labels = as_array(labels)
        if labels.shape != (logits.shape[0],):
            raise ValueError(f"labels must have shape ({logits.shape[0]},), got {labels.shape}")
        if labels.min() < 0 or labels.max() >= logits.shape[1]:
            raise ValueError(f"labels must lie in [0, {logits.shape[1]}), got [{labels.min()}, {labels.max()}]")
    return logits, labels


class ProbabilityCalibrator(Calibrator):
    """A calibrator whose output is probabilities only (no logits exist for it).

    Subclasses implement ``transform``. Such maps can give a class probability of exactly 0,
    whose log-likelihood is -inf; ``calibrated_log_probs`` floors every probability at
    ``params.min_prob`` and renormalises before taking the log, so the NLL stays finite and
    is the NLL of the distribution actually evaluated (Brier and ECE use the same floored
    probabilities).
    """

    def calibrated_logits(self, logits: np.ndarray) -> np.ndarray:
        return self.calibrated_log_probs(logits)

    def calibrated_log_probs(self, logits: np.ndarray) -> np.ndarray:
        probs = np.maximum(np.asarray(self.transform(logits), dtype=np.float64), self.params.min_prob)
        return np.log(probs / probs.sum(axis=1, keepdims=True))


def renormalise(scores: np.ndarray) -> np.ndarray:
    """Rows of non-negative one-vs-rest ``scores`` (n, C) divided by their sum; all-zero rows become uniform."""
    total = scores.sum(axis=1, keepdims=True)
    uniform = np.full_like(scores, 1.0 / scores.shape[1])
    return np.divide(scores, total, out=uniform, where=total > 0)
