"""Task ``mi``: closed-form truths of the distributions, a spec end to end, spec checks."""

from __future__ import annotations

import numpy as np
import pytest

from infobench import registry
from infobench.errors import InfobenchError, SpecError
from infobench.mi.ksg import KSG
from infobench.results import load_metrics
from infobench.runner import execute, plan
from infobench.spec import validate
from infobench.tasks.mi import transforms
from infobench.tasks.mi.distributions import StudentT, UniformNoise
from infobench.tasks.mi.plots import mi_vs_truth, mi_vs_truth_points


def make(name: str, **params):
    cls = registry.get("mi.distribution", name)
    return cls(cls.Params(**params))


def test_gaussian_truths_by_hand():
    assert make("mi-gaussian").true_mi() == pytest.approx(-0.5 * np.log(1 - 0.64))
    assert make("mi-gaussian", dim_x=3, dim_y=5).true_mi() == pytest.approx(-1.5 * np.log(1 - 0.64))
    # dense 1+1 is the bivariate case; n_interacting=0 is independence
    assert make("mi-gaussian", structure="dense", correlation=0.5).true_mi() == pytest.approx(-0.5 * np.log(0.75))
    assert make("mi-gaussian", dim_x=2, dim_y=2, n_interacting=0).true_mi() == pytest.approx(0.0, abs=1e-12)


def test_student_t_tends_to_gaussian_and_is_dependent_without_correlation():
    gauss = make("mi-gaussian", dim_x=2, dim_y=2).true_mi()
    assert make("mi-student-t", dim_x=2, dim_y=2, dof=1e6).true_mi() == pytest.approx(gauss, abs=1e-4)
    uncorrelated = [StudentT(StudentT.Params(correlation=0.0, dof=nu)).true_mi() for nu in (1, 2, 5, 30)]
    assert all(a > b > 0 for a, b in zip(uncorrelated, uncorrelated[1:]))  # shared scale: dependence fades with nu


def test_uniform_noise_branches_meet_at_width_one_and_match_ksg():
    assert UniformNoise(UniformNoise.Params(epsilon=0.5)).true_mi() == pytest.approx(0.5)
    assert UniformNoise(UniformNoise.Params(epsilon=0.5 + 1e-9)).true_mi() == pytest.approx(0.5, abs=1e-8)
    for eps in (0.1, 0.75):
        d = UniformNoise(UniformNoise.Params(epsilon=eps))
        x, y = d.sample(8000, np.random.default_rng(0))
        assert KSG().estimate(x, y) == pytest.approx(d.true_mi(), abs=0.05)


def test_mixture_truth_limits_and_ksg_on_labels():
    assert make("mi-mixture", separation=0.0).true_mi() == pytest.approx(0.0, abs=1e-9)
    assert make("mi-mixture", n_components=4, separation=30.0).true_mi() == pytest.approx(np.log(4), abs=1e-9)
    d = make("mi-mixture", dim=3)
    x, labels = d.sample(6000, np.random.default_rng(1))
    assert labels.dtype.kind == "i"
    assert KSG().estimate(x, labels) == pytest.approx(d.true_mi(), abs=0.04)


@pytest.mark.parametrize("name", ["half_cube", "asinh", "normal_cdf", "spiral"])
def test_transforms_are_invertible_and_keep_mi(name):
    d = make("mi-gaussian", dim_x=2, dim_y=2, transform=name)
    x, y = d.sample(3000, np.random.default_rng(2))
    base_x, _ = make("mi-gaussian", dim_x=2, dim_y=2).sample(3000, np.random.default_rng(2))
    assert np.allclose(transforms.apply(name, base_x), x)
    assert len(np.unique(x.round(12), axis=0)) == len(x)  # still one-to-one on the sample
    assert KSG().estimate(x, y) == pytest.approx(d.true_mi(), abs=0.2)


def test_spiral_keeps_the_norm():
    a = np.random.default_rng(3).normal(size=(50, 3))
    assert np.allclose(np.linalg.norm(transforms.spiral(a), axis=1), np.linalg.norm(a, axis=1))


def test_bad_distribution_settings_are_refused():
    with pytest.raises(ValueError, match="n_interacting"):
        make("mi-gaussian", dim_x=1, dim_y=3, n_interacting=2)
    with pytest.raises(ValueError, match="spiral"):
        make("mi-gaussian", transform="spiral")
    with pytest.raises(InfobenchError, match="task 'mi'"):
        make("mi-gaussian").load(0)


def spec(**changes):
    base = {"name": "mi-test", "task": "mi", "seeds": [0, 1],
            "dataset": {"name": "mi-gaussian", "dim_x": {"grid": [1, 2]}},
            "scenario": {"n": 500}, "methods": ["ksg", "sklearn_ksg", "binning"]}
    return {**base, **changes}


def test_spec_end_to_end_reports_truth_errors_and_skips_unsupported(tmp_path):
    s = validate(spec())
    summary = execute(plan(s, tmp_path))
    assert summary.statuses == {"done": 12}
    m = load_metrics([tmp_path / "mi-test"])
    wide = m.pivot_table(index=["variant", "seed"], columns="metric", values="value")
    done = wide[wide["supported"] == 1]
    assert np.allclose(done["true_mi_bits"], -0.5 * np.log2(1 - 0.64))
    assert np.allclose(done["abs_error_bits"], (done["mi_bits"] - done["true_mi_bits"]).abs())
    assert np.allclose(done["rel_error"], done["abs_error_bits"] / done["true_mi_bits"])
    assert (done["samples"] == 500).all()
    # sklearn has no 2-D estimator: those runs are marked unsupported; on 1-D it equals ksg
    skipped = wide[wide["supported"] == 0].reset_index()
    assert set(skipped["variant"]) == {"sklearn_ksg [dataset.dim_x=2]"} and skipped["mi_bits"].isna().all()
    one_d = wide.xs("ksg [dataset.dim_x=1]")["mi_bits"].to_numpy()
    assert np.allclose(one_d, wide.xs("sklearn_ksg [dataset.dim_x=1]")["mi_bits"].to_numpy(), atol=1e-6)
    assert (tmp_path / "mi-test" / "plots" / "mi_vs_truth.png").is_file()


def test_plot_points_are_seed_means_per_variant_with_their_sample_size(tmp_path):
    s = validate(spec(scenario={"n": {"grid": [200, 400]}}, methods=["ksg"], dataset={"name": "mi-gaussian", "dim_x": 1}))
    execute(plan(s, tmp_path))
    m = load_metrics([tmp_path / "mi-test"])
    points = mi_vs_truth_points(m).set_index("samples")
    assert sorted(points.index) == [200.0, 400.0] and set(points["series"]) == {"ksg"}  # one series over n
    for n in (200, 400):
        rows = m[(m["variant"] == f"ksg [scenario.n={n}]") & (m["metric"] == "mi_bits")]["value"]
        assert points.loc[float(n), "estimate"] == pytest.approx(rows.mean())
        assert points.loc[float(n), "std"] == pytest.approx(rows.std())
    # results written before runs recorded their sample size still plot, in one panel
    old = m[m["metric"] != "samples"]
    assert mi_vs_truth_points(old)["samples"].isna().all()
    assert mi_vs_truth(old, tmp_path / "old.png") is not None


def test_spec_refuses_a_dataset_without_known_mi_and_a_model_block():
    with pytest.raises(SpecError, match="unknown mi distribution 'digits'.*known: mi-gaussian, mi-mixture"):
        validate(spec(dataset={"name": "digits"}))
    # the distributions are the mi task's own: not data sets that other tasks (or `list datasets`) offer
    assert not [n for n in registry.names("dataset") if n.startswith("mi-")]
    assert "mi-gaussian" in registry.names("mi.distribution")
    with pytest.raises(SpecError, match="trains no model"):
        validate(spec(model={"name": "mlp"}))
    with pytest.raises(SpecError, match="did you mean 'ksg'"):
        validate(spec(methods=["ksgg"]))
