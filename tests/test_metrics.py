"""Metrics computed by hand on tiny inputs, and their behaviour at the edges."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from infobench import metrics as M

# Six samples, three classes. Top-label confidence / correct:
#   s0 .9 yes, s1 .6 no, s2 .5 yes, s3 .4 no, s4 .8 yes, s5 .4 no
PROBS = np.array([
    [0.90, 0.05, 0.05],
    [0.60, 0.30, 0.10],
    [0.20, 0.50, 0.30],
    [0.40, 0.35, 0.25],
    [0.10, 0.10, 0.80],
    [0.30, 0.30, 0.40],
])
LABELS = np.array([0, 1, 1, 2, 2, 0])


def test_accuracy_and_error_by_hand():
    assert M.accuracy(PROBS, LABELS) == pytest.approx(3 / 6)
    assert M.error(PROBS, LABELS) == pytest.approx(3 / 6)


def test_accuracy_tie_in_argmax_goes_to_lowest_class():
    probs = np.array([[0.4, 0.4, 0.2], [0.4, 0.4, 0.2]])
    assert M.accuracy(probs, [0, 1]) == 0.5


def test_accuracy_accepts_logits():
    logits = np.log(PROBS) + 3.0
    assert M.accuracy(logits, LABELS) == M.accuracy(PROBS, LABELS)


def test_brier_by_hand_sums_over_classes():
    per_sample = [0.015, 0.86, 0.38, 0.845, 0.06, 0.74]
    assert M.brier(PROBS, LABELS) == pytest.approx(np.mean(per_sample))


def test_brier_range_is_zero_to_two():
    assert M.brier([[1.0, 0.0]], [0]) == 0.0
    assert M.brier([[1.0, 0.0]], [1]) == pytest.approx(2.0)


def test_equal_width_bins_by_hand_with_an_empty_bin():
    # edges 0, 1/3, 2/3, 1: bin 0 is empty; bin 1 holds s1 s2 s3 s5; bin 2 holds s0 s4
    bins = M.reliability_bins(PROBS, LABELS, n_bins=3, binning="width")
    np.testing.assert_allclose(bins.edges, [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_array_equal(bins.counts, [0, 4, 2])
    assert np.isnan(bins.confidence[0]) and np.isnan(bins.accuracy[0])
    np.testing.assert_allclose(bins.confidence[1:], [1.9 / 4, 0.85])
    np.testing.assert_allclose(bins.accuracy[1:], [0.25, 1.0])
    expected_ece = 4 / 6 * 0.225 + 2 / 6 * 0.15
    assert M.ece(PROBS, LABELS, n_bins=3) == pytest.approx(expected_ece)
    assert expected_ece == pytest.approx(0.2)
    assert M.mce(PROBS, LABELS, n_bins=3) == pytest.approx(0.225)


def test_equal_mass_bins_by_hand():
    # Stable sort by confidence: s3 s5 | s2 s1 | s4 s0
    bins = M.reliability_bins(PROBS, LABELS, n_bins=3, binning="mass")
    np.testing.assert_array_equal(bins.counts, [2, 2, 2])
    np.testing.assert_allclose(bins.confidence, [0.4, 0.55, 0.85])
    np.testing.assert_allclose(bins.accuracy, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(bins.edges, [0.0, 0.4, 0.6, 1.0])
    assert M.ece(PROBS, LABELS, n_bins=3, binning="mass") == pytest.approx((0.8 + 0.1 + 0.3) / 6)
    assert M.mce(PROBS, LABELS, n_bins=3, binning="mass") == pytest.approx(0.4)


def test_equal_mass_ties_straddle_bins_in_input_order():
    # Four samples with the same confidence 0.7: the first two go to bin 0, the last two to bin 1.
    probs = np.tile([0.7, 0.3], (4, 1))
    labels = np.array([0, 0, 1, 1])
    mass = M.reliability_bins(probs, labels, n_bins=2, binning="mass")
    np.testing.assert_array_equal(mass.counts, [2, 2])
    np.testing.assert_allclose(mass.accuracy, [1.0, 0.0])
    assert mass.ece == pytest.approx(0.5 * 0.3 + 0.5 * 0.7)
    # Equal-width keeps them together: one bin with accuracy 0.5.
    assert M.ece(probs, labels, n_bins=2) == pytest.approx(0.2)


def test_equal_mass_with_fewer_samples_than_bins_leaves_trailing_bins_empty():
    bins = M.reliability_bins([[0.6, 0.4], [0.9, 0.1]], [0, 1], n_bins=4, binning="mass")
    np.testing.assert_array_equal(bins.counts, [1, 1, 0, 0])
    np.testing.assert_allclose(bins.edges, [0.0, 0.6, 0.9, 0.9, 1.0])
    assert bins.ece == pytest.approx(0.5 * 0.4 + 0.5 * 0.9)


def test_width_bins_are_right_closed_and_one_falls_in_the_last_bin():
    # edges 0, .25, .5, .75, 1: .5 is on an inner edge and goes to the bin below; 1.0 to the last
    probs = [[0.5, 0.5], [0.75, 0.25], [1.0, 0.0]]
    bins = M.reliability_bins(probs, [0, 0, 0], n_bins=4)
    np.testing.assert_array_equal(bins.counts, [0, 1, 1, 1])
    assert bins.confidence[3] == 1.0
    assert M.ece(probs, [0, 0, 0], n_bins=4) == pytest.approx((0.5 + 0.25 + 0.0) / 3)


def test_single_class_present():
    probs = [[0.8, 0.2], [0.6, 0.4], [0.3, 0.7]]
    labels = [0, 0, 0]
    assert M.accuracy(probs, labels) == pytest.approx(2 / 3)
    # bins (1/3, 2/3]: .6 correct; (2/3, 1]: .8 correct, .7 wrong
    assert M.ece(probs, labels, n_bins=3) == pytest.approx(1 / 3 * 0.4 + 2 / 3 * 0.25)
    assert M.brier(probs, labels) == pytest.approx((0.08 + 0.32 + 0.98) / 3)
    one_class = np.ones((4, 1))
    assert M.accuracy(one_class, [0, 0, 0, 0]) == 1.0
    assert M.ece(one_class, [0, 0, 0, 0]) == 0.0
    assert M.nll(np.zeros((4, 1)), [0, 0, 0, 0]) == 0.0


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_ece_of_a_calibrated_predictor_vanishes_as_n_grows(binning):
    # Top-label confidence c and a label that is correct with probability c: calibrated by
    # construction, so ECE is only sampling noise, shrinking like 1/sqrt(n per bin).
    rng = np.random.default_rng(0)
    values = []
    for n in (300, 3_000, 300_000):
        c = rng.uniform(0.5, 1.0, n)
        probs = np.stack([c, 1 - c], axis=1)
        labels = (rng.uniform(size=n) >= c).astype(int)
        values.append(M.ece(probs, labels, n_bins=15, binning=binning))
    assert values[0] > values[2]
    assert values[2] < 0.005


def test_nll_matches_minus_log_softmax_for_moderate_logits():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=3.0, size=(50, 7))
    labels = rng.integers(0, 7, size=50)
    expected = -np.mean(np.log(M.softmax(logits))[np.arange(50), labels])
    assert M.nll(logits, labels) == pytest.approx(expected, rel=1e-12)


def test_nll_stays_finite_for_huge_logits():
    logits = np.array([[1000.0, 0.0], [0.0, 1000.0], [1000.0, 1000.0]])
    value = M.nll(logits, [1, 1, 0])
    assert np.isfinite(value)
    assert value == pytest.approx((1000.0 + 0.0 + np.log(2)) / 3)


def test_softmax_is_stable_and_normalised():
    p = M.softmax(np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]]))
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(p[1], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())
    assert M.softmax(np.zeros((2, 2), dtype=np.float32)).dtype == np.float32


def test_classification_metrics_agree_with_the_single_metrics():
    logits = np.log(PROBS)
    out = M.classification_metrics(logits, LABELS, n_bins=3)
    assert set(out) == {"accuracy", "error", "nll", "brier", "ece", "ece_mass", "mce"}
    assert all(isinstance(v, float) for v in out.values())
    assert out["accuracy"] == pytest.approx(0.5)
    assert out["error"] == pytest.approx(0.5)
    assert out["nll"] == pytest.approx(-np.mean(np.log(PROBS[np.arange(6), LABELS])))
    assert out["brier"] == pytest.approx(M.brier(PROBS, LABELS))
    assert out["ece"] == pytest.approx(0.2)
    assert out["ece_mass"] == pytest.approx(0.2)
    assert out["mce"] == pytest.approx(0.225)


@pytest.mark.parametrize(
    ("probs", "labels", "message"),
    [
        ([[0.5, np.nan]], [0], "non-finite"),
        ([0.5, 0.5], [0], r"shape \(n, C\)"),
        ([[0.5, 0.5]], [0, 1], r"labels must have shape \(1,\)"),
        ([[0.5, 0.5]], [2], r"\[0, 2\)"),
        ([[0.5, 0.5]], [-1], r"\[0, 2\)"),
        ([[0.5, 0.5]], [0.5], "fractional"),
        ([[0.5, 0.5]], [np.nan], "NaN"),
        ([[2.0, -1.0]], [0], r"\[0, 1\]"),
        ([[0.5, 0.6]], [0], "sum to 1"),
        (np.zeros((0, 3)), np.zeros(0, dtype=int), "no samples"),
    ],
)
def test_invalid_inputs_raise_clear_errors(probs, labels, message):
    with pytest.raises(ValueError, match=message):
        M.ece(probs, labels)


def test_nan_logits_rejected_by_nll():
    with pytest.raises(ValueError, match="non-finite"):
        M.nll([[np.nan, 0.0]], [0])


def test_whole_number_float_labels_are_accepted():
    assert M.accuracy(PROBS, LABELS.astype(float)) == M.accuracy(PROBS, LABELS)


@pytest.mark.parametrize(("n_bins", "binning"), [(0, "width"), (2.5, "width"), (True, "width"), (3, "quantile")])
def test_invalid_binning_arguments(n_bins, binning):
    with pytest.raises(ValueError, match="n_bins|binning"):
        M.reliability_bins(PROBS, LABELS, n_bins=n_bins, binning=binning)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("accuracy", True), ("test_acc", True), ("auroc", True), ("agreement", True),
        ("top1_accuracy", True), ("error", False), ("online_error", False), ("nll", False),
        ("brier", False), ("ece", False), ("ece_mass", False), ("mce", False), ("kl", False),
        ("kl_bits", False), ("loss", False), ("seconds", False), ("mi_xt_bits", None),
        ("something", None),
    ],
)
def test_metric_direction(name, expected):
    assert M.higher_is_better(name) is expected


def test_module_does_not_import_torch():
    code = "import sys, infobench.metrics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- calibration variants (issue 5): ACE, classwise ECE, debiased L2, AUROC of correctness ---


def test_ace_averages_non_empty_bins_without_weights():
    # width, 3 bins: bin 0 empty, gaps 0.225 (4 samples) and 0.15 (2 samples) -> (0.225 + 0.15) / 2
    assert M.ace(PROBS, LABELS, n_bins=3) == pytest.approx(0.1875)
    # mass, 3 bins: gaps 0.4, 0.05, 0.15
    assert M.ace(PROBS, LABELS, n_bins=3, binning="mass") == pytest.approx(0.2)
    # ECE weights the same gaps by bin size, so it differs when bin sizes differ
    assert M.ece(PROBS, LABELS, n_bins=3) == pytest.approx(0.2)


def test_classwise_ece_by_hand():
    # class 0 column .9 .6 .2 .4 .1 .3, hits s0 s5: bins (0,1/3] |.6-1|, (1/3,2/3] |1.0-0|, (2/3,1] |.9-1|
    # class 1 column .05 .3 .5 .35 .1 .3, hits s1 s2: |.75-1| + |.85-1|
    # class 2 column .05 .1 .3 .25 .8 .4, hits s3 s4: |.7-1| + |.4-0| + |.8-1|
    expected = ((0.4 + 1.0 + 0.1) + (0.25 + 0.15) + (0.3 + 0.4 + 0.2)) / (6 * 3)
    assert M.classwise_ece(PROBS, LABELS, n_bins=3) == pytest.approx(expected)
    assert expected == pytest.approx(2.8 / 18)


def test_classwise_ece_with_confidence_one_and_a_single_class_present():
    # 1.0 and 0.0 go to the end bins: class 0 column 1, .5 | class 1 column 0, .5; all labels 0
    probs = [[1.0, 0.0], [0.5, 0.5]]
    # class 0: bin (.5-edge) holds .5 with hit 1 -> .5; last bin holds 1.0 with hit 1 -> 0
    # class 1 (absent): first bin holds 0.0 -> 0; bin of .5 -> .5
    assert M.classwise_ece(probs, [0, 0], n_bins=2) == pytest.approx((0.5 + 0.5) / (2 * 2))
    # a perfect one-hot predictor is perfectly calibrated classwise
    assert M.classwise_ece(np.eye(3), [0, 1, 2]) == 0.0


def test_debiased_l2_subtracts_the_sampling_variance():
    # one bin of 4 samples at confidence .9, half correct: plug-in (0.5 - 0.9)^2 = 0.16,
    # variance correction 0.5 * 0.5 / 3
    probs = np.tile([0.9, 0.1], (4, 1))
    labels = [0, 0, 1, 1]
    value = M.debiased_l2_ce(probs, labels, n_bins=1)
    assert value == pytest.approx(np.sqrt(0.16 - 0.25 / 3))
    assert value < np.sqrt(0.16)


def test_debiased_l2_is_clipped_at_zero_and_ignores_singleton_bins():
    # PROBS in 3 mass bins of 2: 0.16 + (0.0025 - 0.25) + 0.0225 < 0 -> 0
    assert M.debiased_l2_ce(PROBS, LABELS, n_bins=3) == 0.0
    # one sample per bin: no bin has two samples, nothing can be estimated
    assert M.debiased_l2_ce(PROBS, LABELS, n_bins=6) == 0.0


def test_auroc_of_correctness_by_hand_with_ties():
    # correct confidences .9 .8 .5, wrong .6 .4 .4: .5 loses only to .6 -> 8 of 9 pairs
    assert M.auroc_correctness(PROBS, LABELS) == pytest.approx(8 / 9)
    # correct .7 .9, wrong .7 .6: the tie .7/.7 counts one half -> 3.5 of 4 pairs
    probs = [[0.7, 0.3], [0.7, 0.3], [0.6, 0.4], [0.9, 0.1]]
    assert M.auroc_correctness(probs, [0, 1, 1, 0]) == pytest.approx(0.875)


def test_auroc_agrees_with_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    probs = M.softmax(rng.normal(size=(500, 4)) * 2)
    labels = rng.integers(0, 4, 500)
    probs = np.round(probs, 2)  # many ties
    probs /= probs.sum(1, keepdims=True)
    correct = probs.argmax(1) == labels
    assert M.auroc_correctness(probs, labels) == pytest.approx(roc_auc_score(correct, probs.max(1)), abs=1e-12)


def test_auroc_undefined_when_all_predictions_agree_in_correctness():
    with pytest.raises(ValueError, match="all of the 3 predictions are correct"):
        M.auroc_correctness(np.eye(3), [0, 1, 2])
    with pytest.raises(ValueError, match="none of the 3"):
        M.auroc_correctness(np.eye(3), [1, 2, 0])


def test_calibration_metrics_extend_classification_metrics():
    logits = np.log(PROBS)
    out = M.calibration_metrics(logits, LABELS, n_bins=3)
    assert {k: out[k] for k in M.classification_metrics(logits, LABELS, n_bins=3)} == pytest.approx(
        M.classification_metrics(logits, LABELS, n_bins=3))
    assert out["ace"] == pytest.approx(0.1875)
    assert out["ece_classwise"] == pytest.approx(2.8 / 18)
    assert out["auroc_correct"] == pytest.approx(8 / 9)
    assert "auroc_correct" not in M.calibration_metrics(np.log(np.eye(3) * 0.97 + 0.01), [0, 1, 2])
    for name in ("ace", "ece_classwise", "ce_l2_debiased"):
        assert M.higher_is_better(name) is False
    assert M.higher_is_better("auroc_correct") is True


def test_new_metrics_refuse_bad_input_with_names():
    with pytest.raises(ValueError, match="probs must have shape"):
        M.classwise_ece(np.zeros(3), [0, 0, 0])
    with pytest.raises(ValueError, match="labels must lie in"):
        M.ace(PROBS, [0, 1, 2, 3, 0, 0])
    with pytest.raises(ValueError, match="non-finite"):
        M.auroc_correctness([[np.nan, 1.0]], [0])
    with pytest.raises(ValueError, match="n_bins"):
        M.classwise_ece(PROBS, LABELS, n_bins=0)


def test_width_bin_index_equals_a_right_closed_binary_search():
    rng = np.random.default_rng(7)
    for n_bins in (1, 3, 10, 15, 97):
        edges = np.linspace(0, 1, n_bins + 1)
        values = np.concatenate([rng.uniform(size=5000), edges, np.nextafter(edges, 2), np.nextafter(edges, -1)])
        values = np.clip(values, 0, 1)
        expected = np.clip(np.searchsorted(edges, values, side="left") - 1, 0, n_bins - 1)
        np.testing.assert_array_equal(M.width_bin_index(values, n_bins), expected)


def test_torch_and_numpy_paths_give_the_same_numbers(monkeypatch):
    """Row reductions run in torch when it is loaded; without it numpy must agree, ties included."""
    import torch  # noqa: F401  (loaded: the torch path is taken)

    rng = np.random.default_rng(5)
    logits = np.round(rng.normal(0, 2, size=(3000, 7)), 1)  # rounding makes many ties in the argmax
    probs = M.softmax(logits)
    labels = rng.integers(0, 7, size=3000)
    readonly = probs.copy()
    readonly.flags.writeable = False

    def every_metric():
        return [M.ece(probs, labels), M.mce(probs, labels), M.ace(probs, labels, binning="mass"),
                M.nll(logits, labels), M.ece(readonly, labels), M.ece(probs.T.copy().T, labels),
                *M.top_label(probs)[0][:50].tolist()]

    def rejects_nan():
        for bad in (np.where(np.arange(7) == 3, np.nan, probs), np.where(np.arange(7) == 3, np.inf, probs)):
            with pytest.raises(ValueError, match="non-finite"):
                M.ece(bad, labels)
        with pytest.raises(ValueError, match="sum to 1"):
            M.ece(probs * 0.99, labels)

    with_torch = every_metric()
    rejects_nan()
    monkeypatch.setattr(M, "_loaded_torch", lambda arr: None)
    numpy_only = every_metric()
    rejects_nan()
    assert with_torch[6:] == numpy_only[6:]  # identical predictions: ties go to the lowest index in both
    np.testing.assert_allclose(with_torch[:6], numpy_only[:6], rtol=1e-12, atol=1e-15)
