"""Stream orders: which samples arrive when, and the open-set outlier metrics."""

from __future__ import annotations

import numpy as np
import pytest

from infobench.data.base import DataBundle, Split
from infobench.errors import InfobenchError
from infobench.tasks.tta.streams import build_stream, dirichlet_order
from infobench.tasks.tta.task import outlier_detection


def bundle(shifts=("noise", "blur"), levels=(5,), n=60, classes=3) -> DataBundle:
    """A toy dataset: domain values encode (shift, level) so a sample tells where it came from."""
    y = np.arange(n) % classes
    clean = Split(np.zeros((n, 1, 2, 2), np.float32), y)
    domains = {}
    for s, shift in enumerate(shifts):
        for level in levels:
            domains[f"{shift}@{level}"] = Split(np.full((n, 1, 2, 2), 10 * s + level, np.float32), y.copy())
    return DataBundle("toy", clean, clean, clean, classes, (1, 2, 2), domains)


def rng(seed=0):
    return np.random.default_rng(seed)


def test_continual_visits_domains_in_order_and_batches_never_cross_them():
    s = build_stream(bundle(), "continual", 25, rng())
    assert [seg.name for seg in s.segments] == ["noise@5", "blur@5"]
    assert (s.x[:60] == 5).all() and (s.x[60:] == 15).all()
    batches = s.batches(25)
    assert [(a, b) for a, b, _ in batches] == [(0, 25), (25, 50), (50, 60), (60, 85), (85, 110), (110, 120)]
    assert [new for *_, new in batches] == [True, False, False, True, False, False]


def test_single_takes_one_domain_and_names_unknown_ones():
    s = build_stream(bundle(), "single", 10, rng(), domain="blur@5")
    assert len(s) == 60 and (s.x == 15).all()
    assert build_stream(bundle(), "single", 10, rng()).domain_names == ["noise@5"]
    with pytest.raises(InfobenchError, match="'fog@5' is not a domain.*noise@5, blur@5"):
        build_stream(bundle(), "single", 10, rng(), domain="fog@5")


def test_gradual_goes_up_and_down_in_severity_per_corruption():
    s = build_stream(bundle(levels=(1, 2, 3, 4, 5)), "gradual", 60, rng())
    assert [seg.name for seg in s.segments] == [f"noise@{k}" for k in (1, 2, 3, 4, 5, 4, 3, 2, 1)] + [
        f"blur@{k}" for k in (1, 2, 3, 4, 5, 4, 3, 2, 1)]
    with pytest.raises(InfobenchError, match="lacks \\[1, 2, 3, 4\\]"):
        build_stream(bundle(), "gradual", 60, rng())


def test_mixed_pools_every_domain_into_one_shuffled_segment():
    s = build_stream(bundle(), "mixed", 20, rng())
    assert len(s.segments) == 1 and len(s) == 120
    first_half = s.x[:60, 0, 0, 0]
    assert 5 in first_half and 15 in first_half  # both domains arrive early
    assert sorted(s.domain.tolist()) == [0] * 60 + [1] * 60
    assert ((s.x[:, 0, 0, 0] == 5) == (s.domain == 0)).all()


def distinct_classes_per_batch(y, batch):
    return np.mean([len(np.unique(y[i:i + batch])) for i in range(0, len(y), batch)])


def test_dirichlet_order_is_label_correlated_for_small_delta_only():
    y = np.repeat(np.arange(10), 100)
    small = y[dirichlet_order(y, 0.01, 20, rng(1))]
    large = y[dirichlet_order(y, 100.0, 20, rng(1))]
    assert sorted(small.tolist()) == sorted(y.tolist())  # a permutation
    assert distinct_classes_per_batch(small, 50) < 5  # i.i.d. batches of 50 hold ~10
    assert distinct_classes_per_batch(large, 50) > 9


def test_open_set_mixes_outliers_at_the_ratio():
    data = bundle(classes=3, n=90)
    s = build_stream(data, "open_set", 30, rng(), outlier_ratio=0.25, noise_outliers=True)
    for seg in s.segments:
        y = s.y[seg.start:seg.stop]
        assert np.mean(y < 0) == pytest.approx(0.25)
    held = build_stream(data, "open_set", 30, rng(), outlier_ratio=0.25, held_out_classes=(2,))
    inliers = held.y[held.y >= 0]
    assert set(inliers.tolist()) == {0, 1} and np.mean(held.y < 0) == pytest.approx(0.25)


def test_outlier_detection_on_hand_made_scores():
    confident = np.array([[5.0, 0, 0], [6, 0, 0], [0, 7, 0]])
    flat = np.array([[0.1, 0, 0], [0, 0.2, 0]])
    logits = np.concatenate([confident, flat])
    outlier = np.array([False, False, False, True, True])
    got = outlier_detection(logits, outlier)
    assert got == {"auroc_msp": 1.0, "fpr95_msp": 0.0, "auroc_energy": 1.0, "fpr95_energy": 0.0}
    reversed_ = outlier_detection(logits, ~outlier)
    assert reversed_["auroc_msp"] == 0.0 and reversed_["fpr95_msp"] == 1.0
    with pytest.raises(ValueError, match="both inliers and outliers"):
        outlier_detection(logits, np.zeros(5, dtype=bool))


def test_rounds_repeat_the_sequence_of_domains():
    s = build_stream(bundle(), "continual", 25, rng(), rounds=3)
    assert [seg.name for seg in s.segments] == ["noise@5", "blur@5"] * 3
    assert s.domain_names == ["noise@5", "blur@5"] and len(s) == 360
    assert not np.array_equal(s.y[:60], s.y[120:180])  # each visit is shuffled anew


def test_open_set_with_both_kinds_splits_the_outlier_budget():
    data = bundle(classes=3, n=90)  # 30 samples per class
    s = build_stream(data, "open_set", 30, rng(), outlier_ratio=0.5, noise_outliers=True, held_out_classes=(2,))
    seg = s.segments[0]
    x, y = s.x[seg.start:seg.stop, 0, 0, 0], s.y[seg.start:seg.stop]
    assert (y >= 0).sum() == 60 and (y < 0).sum() == 60  # ratio 0.5 of the domain
    noise = (y < 0) & (x != 5)  # held-out samples keep the domain's value 5, noise does not
    assert noise.sum() == 30
