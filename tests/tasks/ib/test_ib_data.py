"""The 12-bit Shwartz-Ziv & Tishby task: every input once, a symmetric rule, p(y=1) ~ 1/2, 80/20 split."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from infobench.tasks.ib.tishby_data import (
    Tishby12,
    icosahedron_vertices,
    symmetric_score,
    tishby_pool,
)


def test_all_4096_inputs_once_and_labels_balanced():
    x, y = tishby_pool()
    assert x.shape == (4096, 12) and set(np.unique(x)) == {0.0, 1.0}
    assert len({row.tobytes() for row in x}) == 4096
    assert int(y.sum()) == 2036  # p(y=1) = 0.497, the closest to 1/2 a threshold of f reaches
    assert abs(y.mean() - 0.5) < 0.01


def test_points_are_an_icosahedron_on_the_unit_sphere():
    v = icosahedron_vertices()
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0)
    cosines = np.round(v @ v.T, 6)
    # every vertex has 5 neighbours at cos = 1/sqrt(5), 5 at -1/sqrt(5) and one antipode
    for row in cosines:
        values, counts = np.unique(row, return_counts=True)
        assert dict(zip(values.tolist(), counts.tolist())) == {
            round(-1.0, 6): 1, round(-1 / 5**0.5, 6): 5, round(1 / 5**0.5, 6): 5, 1.0: 1}


def _symmetry_permutations():
    """Permutations of the 12 points induced by rotations and reflections of the icosahedron."""
    v = icosahedron_vertices()
    perms = []
    # a 5-fold rotation about vertex 0 and the point reflection x -> -x
    axis = v[0]
    angle = 2 * np.pi / 5
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rotation = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k
    for matrix in (rotation, -np.eye(3)):
        moved = v @ matrix.T
        perm = np.argmin(np.linalg.norm(moved[:, None] - v[None], axis=2), axis=1)
        np.testing.assert_allclose(moved, v[perm], atol=1e-9)
        perms.append(perm)
    return perms


def test_the_rule_is_invariant_under_symmetries_of_the_sphere():
    x, y = tishby_pool()
    for perm in _symmetry_permutations():
        moved = np.empty_like(x)
        moved[:, perm] = x  # bit i moves to the point the rotation maps i to
        np.testing.assert_allclose(symmetric_score(moved), symmetric_score(x), atol=1e-9)
        assert sorted(map(bytes, moved.astype(np.uint8))) == sorted(map(bytes, x.astype(np.uint8)))


def test_score_by_hand():
    v = icosahedron_vertices()
    one = np.zeros((1, 12))
    one[0, 3] = 1
    assert symmetric_score(one)[0] == pytest.approx(1.0)
    pair = np.zeros((1, 12))
    i, j = next((i, j) for i, j in itertools.combinations(range(12), 2) if np.isclose(v[i] @ v[j], -1))
    pair[0, [i, j]] = 1  # two antipodal points cancel
    assert symmetric_score(pair)[0] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"\(n, 12\)"):
        symmetric_score(np.zeros((3, 11)))


def test_split_is_80_20_stratified_disjoint_and_complete():
    bundle = Tishby12().load(seed=5)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (3277, 0, 819)
    rows = np.concatenate([bundle.train.x, bundle.test.x]).astype(np.uint8)
    assert len({r.tobytes() for r in rows}) == 4096
    assert abs(bundle.train.y.mean() - bundle.test.y.mean()) < 0.01
    # the run seed does not move the split
    np.testing.assert_array_equal(Tishby12().load(seed=9).test.x, bundle.test.x)


def test_bad_fractions_are_refused():
    with pytest.raises(ValueError, match="test_fraction \\+ val_fraction"):
        Tishby12.Params(test_fraction=0.6, val_fraction=0.5)
