"""Spec loading: every problem reported with its key path, overrides, grids and run ids."""

from __future__ import annotations

import pytest

from infobench.errors import SpecError
from infobench.spec import apply_overrides, load_spec, parse_yaml, validate


def problems_of(raw) -> list[str]:
    with pytest.raises(SpecError) as info:
        validate(raw, "s.yaml")
    return info.value.problems


def test_valid_spec_expands_seeds_times_methods(tiny_spec):
    spec = validate(tiny_spec)
    runs = spec.runs()
    assert len(runs) == 2 * 2
    assert {(r.method, r.seed) for r in runs} == {("uncalibrated", 0), ("temperature", 0), ("uncalibrated", 1), ("temperature", 1)}
    # defaults are filled in
    assert spec.blocks["train"][0]["optimizer"] == "adam"
    assert spec.blocks["model"][0]["width"] == 32 and "depth" in spec.blocks["model"][0]


def test_every_problem_is_reported_at_once_with_key_paths(tiny_spec):
    tiny_spec["name"] = "Bad Name!"
    tiny_spec["trian"] = {}
    tiny_spec["train"]["epochs"] = "many"
    tiny_spec["model"]["widht"] = 3
    tiny_spec["methods"] = ["uncalibrated", {"name": "temprature"}, {"name": "temperature", "max_iter": -1}]
    problems = problems_of(tiny_spec)
    text = "\n".join(problems)
    assert len(problems) == 6, text
    assert "name: 'Bad Name!'" in text
    assert "trian: unknown key (did you mean 'train'?)" in text
    assert "train.epochs:" in text
    assert "model.widht: unknown key (did you mean 'width'?)" in text
    assert "methods[1].name: unknown calibration method 'temprature' (did you mean 'temperature'?)" in text
    assert "methods[2].max_iter:" in text


def test_unknown_task_and_dataset_suggest_close_names(tiny_spec):
    tiny_spec["task"] = "calibraton"
    tiny_spec["dataset"] = {"name": "digitz"}
    text = "\n".join(problems_of(tiny_spec))
    assert "did you mean 'calibration'" in text
    assert "dataset.name: unknown dataset 'digitz' (did you mean 'digits'" in text


def test_grid_expands_into_one_variant_per_value(tiny_spec):
    tiny_spec["methods"] = [{"name": "temperature", "max_iter": {"grid": [5, 50]}}]
    spec = validate(tiny_spec)
    assert [v.label for v in spec.variants] == ["temperature(max_iter=5)", "temperature(max_iter=50)"]
    assert spec.resolved()["methods"][0]["max_iter"] == {"grid": [5, 50]}
    assert len(spec.runs()) == 4


def test_block_grid_and_model_list_make_settings(tiny_spec):
    tiny_spec["train"]["lr"] = {"grid": [0.1, 0.01]}
    tiny_spec["model"] = [{"name": "mlp"}, {"name": "linear"}]
    spec = validate(tiny_spec)
    assert len(spec.settings) == 4
    runs = spec.runs()
    assert len(runs) == 2 * 4 * 2
    assert {r.model for r in runs} == {"mlp", "linear"}
    assert any("[train.lr=0.1]" in r.variant for r in runs)
    assert len({r.run_id for r in runs}) == len(runs)


def test_run_id_is_stable_and_changes_with_any_parameter(tiny_spec):
    a = validate(tiny_spec).runs()[0].run_id
    assert validate(tiny_spec).runs()[0].run_id == a
    tiny_spec["train"]["epochs"] = 4
    assert validate(tiny_spec).runs()[0].run_id != a


def test_overrides_parse_yaml_scalars_and_reach_methods(tiny_spec):
    data = apply_overrides(tiny_spec, ["train.lr=1e-4", "methods[1].max_iter=7", "seeds=[3]"], "s")
    spec = validate(data)
    assert spec.blocks["train"][0]["lr"] == pytest.approx(1e-4)
    assert spec.variants[1].params["max_iter"] == 7
    assert spec.seeds == [3]


def test_bad_override_is_reported(tiny_spec):
    with pytest.raises(SpecError, match="expected key.path=value"):
        apply_overrides(tiny_spec, ["train.lr"], "s")
    with pytest.raises(SpecError, match="no such place"):
        apply_overrides(tiny_spec, ["methods[9].lr=1"], "s")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("name: [unclosed", "not valid YAML at line"),
        ("a: 1\na: 2\n", "duplicate key 'a'"),
        ("!!python/object/apply:os.system ['echo hacked']", "not valid YAML"),
        ("- just\n- a list\n", "must be a mapping"),
    ],
)
def test_malformed_yaml_gets_a_clear_message(write_spec, text, expected):
    path = write_spec(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "nope.yaml")


def test_seeds_and_methods_shapes_are_checked(tiny_spec):
    tiny_spec["seeds"] = [0, 0]
    tiny_spec["methods"] = []
    text = "\n".join(problems_of(tiny_spec))
    assert "seeds: repeated seed" in text
    assert "methods: expected a non-empty list" in text


def test_parse_yaml_keeps_numbers_typed():
    assert parse_yaml("lr: 1.0e-3\nn: 3", "s") == {"lr": 0.001, "n": 3}


def test_a_list_of_datasets_makes_one_setting_each(tiny_spec):
    tiny_spec["dataset"] = [{"name": "digits"}, {"name": "digits-c", "corruptions": ["contrast"]}]
    spec = validate(tiny_spec)
    assert {r.dataset for r in spec.runs()} == {"digits", "digits-c"}
    assert len(spec.runs()) == 2 * 2 * 2
    tiny_spec["dataset"] = [{"name": "digits"}, {"name": "digitz"}]
    assert any(p.startswith("dataset[1].name: unknown dataset 'digitz'") for p in problems_of(tiny_spec))


def test_every_shipped_experiment_validates():
    from pathlib import Path

    from infobench.spec import load_spec

    shipped = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.yaml"))
    assert len(shipped) >= 15
    for path in shipped:
        spec = load_spec(path)
        assert len(spec.runs()) >= len(spec.seeds), path


def test_spec_yaml_states_the_family_defaults_the_runs_use_and_plans_the_same_runs_back():
    """eta's class defaults are ImageNet's (SGD, lr 2.5e-4, d_margin 0.05); on a CIFAR-family
    dataset it runs with the anchors' CIFAR values (Adam, 1e-3, 0.4). spec.yaml said the former
    while the runs used the latter, and reading it back planned other runs."""
    import yaml

    def spec(dataset):
        return validate({"name": "x", "task": "tta", "seeds": [0], "dataset": dataset, "model": {"name": "cnn2d"},
                         "train": {"epochs": 1}, "methods": ["eta", {"name": "eta", "lr": 0.01}, "source"]})

    one_family = spec({"name": "digits-c"})
    eta, eta_lr, source = one_family.resolved()["methods"]
    ran = one_family.runs()[0].config["method"]["params"]
    assert {k: eta[k] for k in ("optimizer", "lr", "d_margin")} == {"optimizer": "adam", "lr": 0.001, "d_margin": 0.4}
    assert {k: ran[k] for k in ("optimizer", "lr", "d_margin")} == {k: eta[k] for k in ("optimizer", "lr", "d_margin")}
    assert eta_lr["lr"] == 0.01 and eta_lr["optimizer"] == "adam" and source == {"name": "source"}
    # two families that disagree: the parameter is left to each setting's family on reading back
    two_families = spec([{"name": "digits-c"}, {"name": "imagenet-c", "root": "nowhere"}])
    eta2 = two_families.resolved()["methods"][0]
    assert "optimizer" not in eta2 and "d_margin" not in eta2 and eta2["momentum"] == 0.9
    for made in (one_family, two_families):
        again = validate(yaml.safe_load(yaml.safe_dump(made.resolved(), sort_keys=False)))
        assert [r.run_id for r in again.runs()] == [r.run_id for r in made.runs()]
