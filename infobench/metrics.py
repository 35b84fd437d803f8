"""Classification metrics shared by every task: accuracy, NLL, Brier, ECE & friends.

Plain numpy on arrays of shape ``(n, C)`` (``n`` samples, ``C`` classes) and integer labels of
shape ``(n,)``. A torch tensor on any device is accepted too (:func:`as_array` copies it to the host
once), without this module ever importing torch. Every metric returns a Python ``float``;
log-based quantities are in nats.

Calibration follows Guo et al. 2017, "On Calibration of Modern Neural Networks" (top-label
confidence ``max_k p_k``, prediction ``argmax_k p_k``, ECE Eq. 3, MCE Eq. 5). Binning lives in
:func:`reliability_bins` alone, so :func:`ece`, :func:`mce` and the reliability diagram in
:mod:`infobench.plots` cannot disagree.

Binning convention (libraries disagree; this one is used everywhere here): equal-width bins are
right-closed, ``(lo, hi]``, the first bin also holds 0, and a confidence of exactly 1.0 falls in
the last bin, as in Guo et al.'s code (``conf > lo and conf <= hi``). torchmetrics 1.9 bins
left-closed, ``[lo, hi)`` (``torch.bucketize(conf, edges, right=True) - 1``), puts 1.0 in an
extra bin of its own, and computes in float32; so values agree exactly only when no confidence
sits on an inner edge or at 1.0, and then to float32 precision. netcal 1.4 (``np.histogramdd``)
bins ``[lo, hi)`` with the last bin closed: 1.0 in the last bin as here, an inner-edge value one
bin higher (``benchmarks/bench_calibration.py`` compares all three).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

import numpy as np

BINNINGS = ("width", "mass")

# Rows of a probability matrix may sum to 1 only up to float32 rounding of a softmax.
_SUM_TOLERANCE = 1e-3


def as_array(values, dtype=None) -> np.ndarray:
    """``values`` as a numpy array on the host.

    A torch tensor (on any device, with or without gradient) is detached and copied to the host
    once; bfloat16, which numpy lacks, is widened to float32 first. Anything else goes through
    ``np.asarray``. Recognised by its methods, so torch is never imported here.
    """
    if hasattr(values, "detach") and hasattr(values, "cpu"):
        values = values.detach().cpu()
        if str(values.dtype) == "torch.bfloat16":
            values = values.float()
        values = values.numpy()
    return np.asarray(values, dtype=dtype)


def _check_scores(scores, name: str) -> np.ndarray:
    return _checked_range(scores, name)[0]


def _checked_range(scores, name: str) -> tuple[np.ndarray, float, float]:
    """``scores`` as a finite float64 (n, C) array, with its smallest and largest entry."""
    arr = as_array(scores)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (n, C), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} holds no samples (shape {arr.shape})")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has no classes (shape {arr.shape})")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    lo, hi = _min_max(arr)  # min and max propagate NaN and expose inf: they check finiteness too
    if not (np.isfinite(lo) and np.isfinite(hi)):
        bad = int(np.sum(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return arr, lo, hi


def _check_probs(probs) -> np.ndarray:
    arr, lo, hi = _checked_range(probs, "probs")
    if lo < -_SUM_TOLERANCE or hi > 1 + _SUM_TOLERANCE:
        raise ValueError(
            f"probs must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]; "
            "pass softmax(logits), not logits"
        )
    sums = _row_sums(arr)
    worst = float(np.max(np.abs(sums - 1.0)))
    if worst > _SUM_TOLERANCE:
        raise ValueError(f"rows of probs must sum to 1, one sums to {sums[np.argmax(np.abs(sums - 1))]:.6g}")
    return arr


def _check_labels(labels, n: int, n_classes: int) -> np.ndarray:
    arr = as_array(labels)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"labels must have shape ({n},) to match the scores, got shape {arr.shape}")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"labels must be integer class indices, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.integer):
        # Float labels are accepted when they hold whole numbers (e.g. read back from a CSV).
        if not np.all(np.isfinite(arr)):
            raise ValueError("labels contain NaN or inf")
        if not np.all(arr == np.round(arr)):
            raise ValueError("labels must be integer class indices, got fractional values")
    arr = arr.astype(np.int64)
    if arr.min() < 0 or arr.max() >= n_classes:
        raise ValueError(
            f"labels must lie in [0, {n_classes}) for {n_classes} classes, "
            f"got values in [{arr.min()}, {arr.max()}]"
        )
    return arr


def _check_pair(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    p = _check_probs(probs)
    return p, _check_labels(labels, p.shape[0], p.shape[1])


def _loaded_torch(arr: np.ndarray):
    """torch, if this process has imported it already (every infobench run has) and ``arr`` can be
    shared with it without a copy; else None.

    Row reductions over (n, C) arrays with few columns are where numpy is slow (a short inner
    loop per row); torch's are vectorised and multithreaded, 2-3x faster on 1M x 10. The
    results are the same numbers (float64 throughout, ties to the lowest index in both; a test
    compares the two paths). torch is never imported here: metrics stays quick to import and
    usable without it.
    """
    torch = sys.modules.get("torch")
    if torch is None or not (arr.flags.c_contiguous and arr.flags.writeable):
        return None  # torch.from_numpy warns on read-only arrays
    return torch


def _min_max(arr: np.ndarray) -> tuple[float, float]:
    torch = _loaded_torch(arr)
    if torch is not None:
        lo, hi = torch.aminmax(torch.from_numpy(arr))  # one pass
        return float(lo), float(hi)
    return float(arr.min()), float(arr.max())


def _row_sums(arr: np.ndarray) -> np.ndarray:
    torch = _loaded_torch(arr)
    if torch is not None:
        # not a numpy BLAS mat-vec here: its idle threads spin for a while and slow torch's next op 2x
        return torch.from_numpy(arr).sum(dim=1).numpy()
    return arr @ np.ones(arr.shape[1])  # a BLAS mat-vec: row sums of a few columns, fast


def top_label(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(argmax_k p_k, max_k p_k)`` of each row of a checked (n, C) float array; a tie in the
    max goes to the lowest class index."""
    torch = _loaded_torch(probs)
    if torch is not None:
        values, indices = torch.from_numpy(probs).max(dim=1)
        return indices.numpy(), values.numpy()
    pred = probs.argmax(axis=1)
    return pred, probs.ravel()[np.arange(probs.shape[0]) * probs.shape[1] + pred]  # flat gather: p[i, pred[i]]


def _logsumexp(logits: np.ndarray) -> np.ndarray:
    """Row-wise ``log sum_k exp(z_k)`` of an (n, C) array, shifted by the row max so it never overflows."""
    torch = _loaded_torch(logits)
    if torch is not None:
        return torch.logsumexp(torch.from_numpy(logits), dim=1).numpy()  # the same shift, in torch
    top = logits.max(axis=1, keepdims=True)
    shifted = np.subtract(logits, top)
    np.exp(shifted, out=shifted)
    return top[:, 0] + np.log(shifted.sum(axis=1))


def softmax(logits, axis: int = -1) -> np.ndarray:
    """Softmax of ``logits`` along ``axis``: probabilities, same shape as ``logits``.

    Stable for any finite logits: the max along ``axis`` is subtracted before exponentiating, so
    logits of 1000 give exact one-hot rows instead of NaN. Floating inputs keep their dtype;
    integer inputs are promoted to float64.
    """
    z = as_array(logits)
    if not np.issubdtype(z.dtype, np.floating):
        z = z.astype(np.float64)
    shifted = np.exp(z - z.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def log_softmax(logits) -> np.ndarray:
    """Row-wise log-softmax of (n, C) scores, in float64 (calibrators fit on it), stable for any
    finite input: ``z - logsumexp(z)``."""
    z = as_array(logits, dtype=np.float64)
    return z - _logsumexp(z)[:, None]


def accuracy(probs, labels) -> float:
    """Fraction of samples whose ``argmax_k probs[i, k]`` equals ``labels[i]``, in [0, 1].

    ``probs``: (n, C) probabilities, or any scores with the same argmax (logits work too);
    ``labels``: (n,) integers in [0, C). A tie in the argmax goes to the lowest class index.
    """
    scores = _check_scores(probs, "probs")
    y = _check_labels(labels, scores.shape[0], scores.shape[1])
    return float(np.mean(scores.argmax(axis=1) == y))


def error(probs, labels) -> float:
    """Misclassification rate ``1 - accuracy(probs, labels)``, in [0, 1]; same inputs as :func:`accuracy`."""
    return 1.0 - accuracy(probs, labels)


def nll(logits, labels) -> float:
    """Mean negative log-likelihood of the labels in nats, computed from logits.

    ``logits``: (n, C) unnormalised log-probabilities; ``labels``: (n,) integers in [0, C).
    Uses ``logsumexp(z_i) - z_{i, y_i}``, never ``-log(softmax)``, so it stays finite when a
    softmax probability underflows to 0 (a confidently wrong logit of 1000 gives an NLL of about
    1000, not inf). Range [0, inf).
    """
    z = _check_scores(logits, "logits")
    y = _check_labels(labels, z.shape[0], z.shape[1])
    return float(np.mean(_logsumexp(z) - z[np.arange(z.shape[0]), y]))


def brier(probs, labels) -> float:
    """Multi-class Brier score: mean over samples of ``sum_k (probs[i, k] - onehot(labels[i])_k)^2``.

    ``probs``: (n, C) probabilities; ``labels``: (n,) integers in [0, C). The sum over classes
    (Brier 1950's original definition, not the per-class mean) gives a range of [0, 2]: 0 for a
    confident correct prediction, 2 for a confident wrong one.
    """
    p, y = _check_pair(probs, labels)
    onehot = np.zeros_like(p)
    onehot[np.arange(p.shape[0]), y] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin summary of top-label confidence against accuracy.

    Attributes, for ``B`` bins:
        counts: (B,) int, samples per bin (may be 0).
        confidence: (B,) float, mean top-label confidence per bin; NaN for an empty bin.
        accuracy: (B,) float, fraction correct per bin; NaN for an empty bin.
        edges: (B + 1,) float, bin boundaries in [0, 1] (see :func:`reliability_bins`).
        binning: "width" or "mass".
    """

    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    edges: np.ndarray
    binning: str

    @property
    def n_bins(self) -> int:
        return int(self.counts.shape[0])

    @property
    def gaps(self) -> np.ndarray:
        """(B,) ``|accuracy - confidence|`` per bin; NaN for an empty bin."""
        return np.abs(self.accuracy - self.confidence)

    @property
    def ece(self) -> float:
        """Expected calibration error ``sum_b |B_b| / n * |acc(B_b) - conf(B_b)|`` (Guo et al. Eq. 3)."""
        filled = self.counts > 0
        return float(np.sum(self.counts[filled] / self.counts.sum() * self.gaps[filled]))

    @property
    def mce(self) -> float:
        """Maximum calibration error ``max_b |acc(B_b) - conf(B_b)|`` over non-empty bins (Eq. 5)."""
        return float(np.max(self.gaps[self.counts > 0]))

    @property
    def ace(self) -> float:
        """Average calibration error: the unweighted mean of ``|acc - conf|`` over non-empty bins.

        Neumann et al. 2018, "Relaxed Softmax"; the definition of netcal's ``ACE``.
        """
        return float(np.mean(self.gaps[self.counts > 0]))

    @property
    def debiased_l2(self) -> float:
        """Kumar et al. 2019's debiased L2 calibration error of these bins (see :func:`debiased_l2_ce`)."""
        filled = self.counts > 1
        n_b = self.counts[filled]
        acc = self.accuracy[filled]
        squared = (acc - self.confidence[filled]) ** 2 - acc * (1.0 - acc) / (n_b - 1)
        return float(np.sqrt(max(np.sum(n_b / self.counts.sum() * squared), 0.0)))


def width_bin_index(values, n_bins: int) -> np.ndarray:
    """Index in ``[0, n_bins)`` of the equal-width bin over [0, 1] holding each value (any shape).

    Bins are right-closed, ``(b / n_bins, (b + 1) / n_bins]``, and bin 0 also holds 0, so 1.0
    lands in the last bin and a value on an inner edge in the bin below it (Guo et al.'s code;
    see the module docstring for other libraries). Values a rounding error outside [0, 1] are clipped into the end bins.
    """
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    values = as_array(values, dtype=np.float64)
    # ceil(v * n_bins) - 1 is the bin up to one rounding step; one comparison with the actual
    # edges on each side makes it exact (the same as searchsorted(edges, v, "left") - 1, which
    # is right-closed) at a fraction of a binary search's cost
    index = np.clip(np.ceil(values * n_bins).astype(np.intp) - 1, 0, n_bins - 1)
    index -= (values <= edges[index]) & (index > 0)
    index += (values > edges[index + 1]) & (index < n_bins - 1)
    return index


def reliability_bins(probs, labels, n_bins: int = 15, binning: str = "width") -> ReliabilityBins:
    """Bin samples by top-label confidence and summarise each bin (Guo et al. 2017, Sec. 2).

    ``probs``: (n, C) probabilities; ``labels``: (n,) integers in [0, C); ``n_bins`` >= 1.

    ``binning="width"``: ``n_bins`` equal-width bins over [0, 1], ``edges = linspace(0, 1,
    n_bins + 1)``. Bins are right-closed, ``(edges[b], edges[b + 1]]``, and the first bin also
    holds confidence 0, so a confidence of exactly 1.0 falls in the last bin and a confidence
    on an inner edge falls in the bin below it. This is the convention of Guo et al.'s code
    (``conf > lo and conf <= hi``); torchmetrics differs at the edges (module docstring).

    ``binning="mass"`` (equal-mass, adaptive): samples are sorted by confidence with a stable
    sort and split by rank into ``n_bins`` groups of nearly equal size with ``np.array_split``
    (the first ``n % n_bins`` groups get one extra sample). Ties are not kept together: samples
    with equal confidence may straddle two adjacent bins, in their input order, so every bin
    size is fixed by ``n`` alone. With fewer samples than bins the trailing bins are empty.
    ``edges[0] = 0``, ``edges[-1] = 1`` and ``edges[b + 1]`` is the largest confidence in bin
    ``b`` (the previous edge for an empty bin).
    """
    p, y = _check_pair(probs, labels)
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    if binning not in BINNINGS:
        raise ValueError(f"binning must be one of {BINNINGS}, got {binning!r}")
    pred, conf = top_label(p)
    correct = (pred == y).astype(np.float64)

    if binning == "width":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        index = width_bin_index(conf, n_bins)
    else:
        order = np.argsort(conf, kind="stable")
        index = np.empty(conf.shape[0], dtype=np.int64)
        edges = np.zeros(n_bins + 1)
        for b, members in enumerate(np.array_split(order, n_bins)):
            index[members] = b
            edges[b + 1] = conf[members].max() if members.size else edges[b]
        edges[-1] = 1.0

    counts = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=conf, minlength=n_bins) / counts
        mean_acc = np.bincount(index, weights=correct, minlength=n_bins) / counts
    return ReliabilityBins(
        counts=counts, confidence=mean_conf, accuracy=mean_acc, edges=edges, binning=binning
    )


def ece(probs, labels, n_bins: int = 15, binning: str = "width") -> float:
    """Top-label expected calibration error in [0, 1] (Guo et al. 2017, Eq. 3).

    ``sum_b |B_b| / n * |acc(B_b) - conf(B_b)|`` over the bins of :func:`reliability_bins`
    (whose docstring states the binning conventions); empty bins contribute nothing.
    ``probs``: (n, C) probabilities; ``labels``: (n,) integers in [0, C).
    """
    return reliability_bins(probs, labels, n_bins, binning).ece


def mce(probs, labels, n_bins: int = 15, binning: str = "width") -> float:
    """Maximum calibration error in [0, 1]: ``max_b |acc(B_b) - conf(B_b)|`` over non-empty bins.

    Same inputs and binning as :func:`ece`.
    """
    return reliability_bins(probs, labels, n_bins, binning).mce


def ace(probs, labels, n_bins: int = 15, binning: str = "width") -> float:
    """Average calibration error in [0, 1]: the mean of ``|acc(B_b) - conf(B_b)|`` over non-empty bins.

    Unlike :func:`ece` the bins are not weighted by their size, so sparse high-gap bins count
    as much as full ones (Neumann et al. 2018; netcal's ``ACE``). Same inputs and binning
    as :func:`ece`.
    """
    return reliability_bins(probs, labels, n_bins, binning).ace


def classwise_ece(probs, labels, n_bins: int = 15) -> float:
    """Classwise ECE in [0, 1] (Kull et al. 2019, "Beyond temperature scaling", Sec. 3 / Eq. 4).

    For each class k, every sample's ``probs[:, k]`` (not only the top label) is put in the
    equal-width bins of :func:`width_bin_index` (right-closed; 0 in the first bin, 1.0 in the
    last) and ``ECE_k = sum_b |B_kb| / n * |mean(labels == k) - mean(probs[:, k])|`` over the
    bin; the result is ``mean_k ECE_k``. A class absent from ``labels`` still counts: its
    accuracy in every bin is 0, so its ECE is its mean predicted probability.
    ``probs``: (n, C) probabilities; ``labels``: (n,) integers in [0, C).
    """
    p, y = _check_pair(probs, labels)
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    n, n_classes = p.shape
    # one bin id per (sample, class): class k owns ids [k * n_bins, (k + 1) * n_bins)
    ids = (width_bin_index(p, n_bins) + n_bins * np.arange(n_classes)).ravel()
    size = n_bins * n_classes
    hits = np.zeros_like(p)
    hits[np.arange(n), y] = 1.0
    conf_sum = np.bincount(ids, weights=p.ravel(), minlength=size)
    hit_sum = np.bincount(ids, weights=hits.ravel(), minlength=size)
    # |sum_conf - sum_hits| / n equals |B| / n * |mean_conf - mean_acc|, and is 0 for empty bins
    return float(np.abs(conf_sum - hit_sum).sum() / (n * n_classes))


def debiased_l2_ce(probs, labels, n_bins: int = 15, binning: str = "mass") -> float:
    """Debiased top-label L2 calibration error (Kumar, Liang & Ma 2019, "Verified Uncertainty
    Calibration", NeurIPS, Sec. 5 and their ``calibration`` package's ``debias=True``).

    The plug-in estimate ``sum_b |B_b| / n * (acc_b - conf_b)^2`` is biased upwards by the
    sampling noise of ``acc_b``; each bin's term is corrected by subtracting that noise's
    variance, ``acc_b (1 - acc_b) / (|B_b| - 1)``, and the result is
    ``sqrt(max(sum_b |B_b| / n * [(acc_b - conf_b)^2 - acc_b (1 - acc_b) / (|B_b| - 1)], 0))``.
    Bins with fewer than two samples contribute 0 (as in the reference code). The default
    binning is equal-mass, as in the paper; see :func:`reliability_bins` for both conventions.
    Range [0, 1]; it can be 0 for a miscalibrated predictor on few samples.
    """
    return reliability_bins(probs, labels, n_bins, binning).debiased_l2


def auroc_correctness(probs, labels) -> float:
    """Area under the ROC curve of top-label confidence as a detector of correct predictions.

    The probability that a random correct prediction has a higher confidence than a random
    wrong one, ties counting one half (Mann-Whitney U with mid-ranks): 1 when confidence
    separates right from wrong perfectly, 0.5 when it carries no information. ``probs``: (n, C)
    probabilities (or logits: only the order within each column type matters, but confidences
    are taken as ``max_k probs``); ``labels``: (n,) integers in [0, C). Raises ``ValueError``
    when all predictions are correct or all wrong, where the AUROC is undefined.
    """
    p, y = _check_pair(probs, labels)
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == y
    n_pos = int(correct.sum())
    n_neg = correct.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"AUROC of correctness is undefined: {'all' if n_neg == 0 else 'none'} of the "
            f"{correct.shape[0]} predictions are correct"
        )
    return float((_midranks(conf)[correct].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values`` (n,), tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts_group = np.empty(ordered.shape[0], dtype=bool)
    starts_group[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts_group[1:])
    starts = np.flatnonzero(starts_group)
    ends = np.append(starts[1:], ordered.shape[0])
    ranks = np.empty(ordered.shape[0])
    ranks[order] = ((starts + 1 + ends) / 2.0)[np.cumsum(starts_group) - 1]
    return ranks


def classification_metrics(logits, labels, n_bins: int = 15) -> dict[str, float]:
    """The standard metric set of a classifier, from logits.

    ``logits``: (n, C); ``labels``: (n,) integers in [0, C). Returns floats keyed
    ``accuracy``, ``error``, ``nll`` (nats), ``brier`` (sum over classes, [0, 2]), ``ece`` and
    ``mce`` (equal-width bins) and ``ece_mass`` (equal-mass bins), each with ``n_bins`` bins.
    """
    z = _check_scores(logits, "logits")
    y = _check_labels(labels, z.shape[0], z.shape[1])
    probs = softmax(z, axis=1)
    acc = accuracy(z, y)
    width = reliability_bins(probs, y, n_bins, "width")
    return {
        "accuracy": acc,
        "error": 1.0 - acc,
        "nll": nll(z, y),
        "brier": brier(probs, y),
        "ece": width.ece,
        "ece_mass": reliability_bins(probs, y, n_bins, "mass").ece,
        "mce": width.mce,
    }


def calibration_metrics(logits, labels, n_bins: int = 15) -> dict[str, float]:
    """:func:`classification_metrics` plus the calibration variants reviewers ask for.

    Adds ``ace`` (equal-width bins), ``ece_classwise``, ``ce_l2_debiased`` (equal-mass bins)
    and ``auroc_correct`` (left out when every prediction is right or every one wrong, where
    it is undefined). ``logits`` may be log-probabilities (rows of ``exp`` summing to 1), which
    is how probability-only calibrators report. Kept apart from ``classification_metrics`` so
    other tasks' tables keep their columns.
    """
    z = _check_scores(logits, "logits")
    y = _check_labels(labels, z.shape[0], z.shape[1])
    probs = softmax(z, axis=1)
    out = classification_metrics(z, y, n_bins)
    out["ace"] = reliability_bins(probs, y, n_bins, "width").ace
    out["ece_classwise"] = classwise_ece(probs, y, n_bins)
    out["ce_l2_debiased"] = reliability_bins(probs, y, n_bins, "mass").debiased_l2
    correct = probs.argmax(axis=1) == y
    if 0 < correct.sum() < correct.shape[0]:
        out["auroc_correct"] = auroc_correctness(probs, y)
    return out


# Direction of a metric, judged from the words of its name (split on _ - . @ / and spaces), so
# that "online_error", "test_acc" and "kl_bits" are recognised. Words starting with a prefix in
# the *_PREFIXES tuples count too ("ece15", "kld").
_HIGHER_WORDS = frozenset({
    "accuracy", "acc", "auroc", "auc", "aupr", "auprc", "agreement", "f1", "precision", "recall",
})
_HIGHER_PREFIXES = ("auroc", "accuracy")
_LOWER_WORDS = frozenset({
    "error", "err", "nll", "brier", "mce", "loss", "seconds", "time", "mse", "rmse", "mae",
    "ace", "ce",
})
_LOWER_PREFIXES = ("ece", "kl")
_WORD_SPLIT = re.compile(r"[_\-.@/\s]+")


def higher_is_better(metric_name: str) -> bool | None:
    """Whether a larger value of ``metric_name`` is better: True, False, or None when unknown.

    Higher is better for accuracy, auroc/auc, agreement, f1, precision, recall and names
    containing them as a word (``test_acc``, ``top1_accuracy``); lower for error, nll, brier,
    ece*, mce, ace, ce (a calibration or cross-entropy error), kl*, loss, seconds/time and
    squared/absolute errors. Names mixing both kinds of
    word, and names with neither (``mi_xt_bits``, whose direction depends on the study), give
    None so that nothing is marked best.
    """
    words = [w for w in _WORD_SPLIT.split(str(metric_name).lower()) if w]
    higher = any(w in _HIGHER_WORDS or w.startswith(_HIGHER_PREFIXES) for w in words)
    lower = any(w in _LOWER_WORDS or w.startswith(_LOWER_PREFIXES) for w in words)
    if higher == lower:
        return None
    return higher
