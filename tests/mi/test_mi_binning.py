"""Binning estimator and the exact row-to-symbol map."""

from __future__ import annotations

import numpy as np
import pytest

from infobench.mi.binning import Binning
from infobench.mi.symbols import entropy_of_codes, rows_to_codes

LN2 = np.log(2)


def twelve_bit_inputs() -> np.ndarray:
    return ((np.arange(4096)[:, None] >> np.arange(12)) & 1).astype(np.float32)


def test_one_to_one_map_of_12_bit_inputs_gives_12_bits():
    x = twelve_bit_inputs()
    t = np.tanh(3.0 * (2 * x - 1))  # deterministic, one-to-one, saturating like a tanh layer
    est = Binning(Binning.Params(range=(-1.0, 1.0)))
    assert est.estimate(x, t) / LN2 == pytest.approx(12.0, abs=1e-9)
    # T = X again with integer symbols: H(X) = 12 bits
    assert est.estimate(x.astype(np.int64), x.astype(np.int64)) / LN2 == pytest.approx(12.0, abs=1e-9)


def test_label_of_balanced_bit_carries_one_bit_and_constant_carries_none():
    x = twelve_bit_inputs()
    y = x[:, 0].astype(np.int64)
    est = Binning()
    assert est.estimate(x, y) / LN2 == pytest.approx(1.0, abs=1e-12)
    assert est.estimate(np.zeros((4096, 3)), y) == pytest.approx(0.0, abs=1e-12)


def test_hand_computed_binning_on_six_points():
    # x in two bins {0,0,0 | 1,1,1}; y = (0, 0, 1, 1, 1, 1): H(X)=ln2, H(Y)=H(1/3), H(X,Y)= H(1/3,1/6... )
    x = np.array([[0.0], [0.1], [0.2], [0.9], [0.95], [1.0]])
    y = np.array([0, 0, 1, 1, 1, 1])
    est = Binning(Binning.Params(n_bins=2))
    hx = np.log(2)
    hy = -(1 / 3 * np.log(1 / 3) + 2 / 3 * np.log(2 / 3))
    hxy = -(1 / 3 * np.log(1 / 3) + 1 / 6 * np.log(1 / 6) + 1 / 2 * np.log(1 / 2))
    assert est.estimate(x, y) == pytest.approx(hx + hy - hxy, abs=1e-12)


def test_range_clips_and_scope_layer_shares_edges():
    a = np.array([[-5.0, 0.0], [0.0, 1.0], [5.0, 0.4]])
    clipped, k = Binning(Binning.Params(n_bins=2, range=(-1.0, 1.0))).symbols(a)
    assert k == 2 and clipped[0] != clipped[2]
    per_unit, k_unit = Binning(Binning.Params(n_bins=2)).symbols(a)
    per_layer, k_layer = Binning(Binning.Params(n_bins=2, scope="layer")).symbols(a)
    assert k_unit == 3  # each unit uses both bins of its own range
    assert k_layer == 2  # column 2 lies in [0, 1], inside the upper bin of [-5, 5]


def test_fixed_width_bins_of_saxe_et_al():
    rng = np.random.default_rng(3)
    relu = np.maximum(rng.normal(0, 3, size=(2000, 4)), 0.0)
    y = (relu.sum(axis=1) > 4).astype(np.int64)
    fixed = Binning(Binning.Params(bin_width=0.5))
    # the same bins as n_bins over a range that is a whole number of widths and holds every value
    top = 0.5 * (np.floor(relu.max() / 0.5) + 1)
    ranged = Binning(Binning.Params(n_bins=int(round(top / 0.5)), range=(0.0, top)))
    assert fixed.estimate(relu, y) == pytest.approx(ranged.estimate(relu, y), abs=1e-12)
    # no range to fall out of: shifting by whole widths changes nothing, a wider bin never adds information
    assert fixed.estimate(relu + 2.0, y) == pytest.approx(fixed.estimate(relu, y), abs=1e-12)
    coarse = Binning(Binning.Params(bin_width=1.0)).estimate(relu, relu[:, :1] > 1)
    assert coarse <= fixed.estimate(relu, relu[:, :1] > 1) + 1e-12
    with pytest.raises(ValueError, match="bin_width fixes the bins by itself; drop n_bins, range"):
        Binning.Params(bin_width=0.5, n_bins=10, range=(0.0, 1.0))
    # a run gets its parameters back fully resolved (every field): they must validate again
    resolved = Binning.Params(bin_width=0.5).model_dump()
    assert Binning.Params.model_validate(resolved).bin_width == 0.5


@pytest.mark.parametrize("width", [1, 8, 9, 40])
def test_rows_to_codes_equals_unique_rows(width):
    rng = np.random.default_rng(width)
    a = rng.integers(0, 3, size=(3000, width)).astype(np.uint8)
    codes, count = rows_to_codes(a)
    _, inverse = np.unique(a, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    assert count == inverse.max() + 1
    # the same partition of rows: the pairs (code, inverse) are as many as either alone
    assert len(np.unique(codes * count + inverse)) == count


def test_rows_to_codes_reads_negative_zero_as_zero_and_floats_exactly():
    a = np.array([[0.0, 1.0], [-0.0, 1.0], [0.0, 1.0 + 1e-16], [0.0, np.nextafter(1.0, 2.0)]])
    codes, count = rows_to_codes(a)
    assert codes[0] == codes[1] == codes[2] and codes[3] != codes[0] and count == 2
    assert entropy_of_codes(np.array([0, 0, 1, 1])) == pytest.approx(np.log(2))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        Binning().estimate(np.array([[np.nan], [1.0]]), np.array([0, 1]))
    with pytest.raises(ValueError, match="same number of rows"):
        Binning().estimate(np.zeros((3, 1)), np.zeros((4, 1)))
    with pytest.raises(ValueError, match=r"shape \(n, d\)"):
        Binning().estimate(np.zeros((3, 1, 1)), np.zeros(3))
    with pytest.raises(ValueError, match="low < high"):
        Binning.Params(range=(1.0, -1.0))
