"""Claims declared in a spec: validation with key paths, verdicts on hand-made results, claims.csv,
the `claims` command and the end of `run`, and the claims of every shipped experiment."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from infobench.cli import app
from infobench.errors import InfobenchError, SpecError
from infobench.report import claims as claims_mod
from infobench.report.claims import FAILS, HOLDS, INCONCLUSIVE, check, judge, read_claims_csv
from infobench.results import FORMAT, MARKER, ResultsFolder, write_json
from infobench.spec import Claim, load_spec, split_label, validate

cli = CliRunner()
T_2_975 = 4.302652729911275  # Student t quantile, 2 degrees of freedom, 0.975 (scipy.stats.t.ppf)
EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def make_folder(root: Path, values: dict, metric: str = "error", split: str = "stream",
                settings: dict | None = None, seconds: float = 12.5) -> Path:
    """A results folder as infobench writes it: one done run per (variant, seed) with a final
    ``metric`` on ``split`` (and a per-step row that must never be judged). ``settings`` maps a
    variant label to extra configuration blocks (its setting)."""
    root.mkdir(parents=True)
    folder = ResultsFolder(root)
    write_json(folder.manifest_path, {"created_by": MARKER, "format": FORMAT, "seconds": seconds})
    for (variant, seed), value in values.items():
        method = variant.split(" [")[0].split("(")[0]
        blocks = {"task": "tta", "dataset": {"name": "digits-c", "severity": 5}, **(settings or {}).get(variant, {})}
        config = {**blocks, "method": {"name": method, "params": {}}, "seed": seed}
        setting = hashlib.sha256(f"{variant} {json.dumps(blocks, sort_keys=True)}".encode()).hexdigest()[:12]
        run_id = hashlib.sha256(f"{setting} {seed}".encode()).hexdigest()[:12]
        base = {"run_id": run_id, "task": "tta", "dataset": "digits-c", "model": "cnn2d", "method": method,
                "variant": variant, "seed": seed}
        folder.record({**base, "setting": setting, "params": "{}", "config": json.dumps(config), "code": "c",
                       "threads": 1, "status": "done", "error": "", "warnings": "", "seconds": 1.0},
                      [{**base, "split": split, "step": None, "metric": metric, "value": value},
                       {**base, "split": split, "step": 3, "metric": metric, "value": -99.0}])
    return root


def seeds(**series) -> dict:
    """{(variant, seed): value} from variant=[value per seed]."""
    return {(name, s): v for name, vals in series.items() for s, v in enumerate(vals)}


def claim(**fields) -> Claim:
    return Claim(**{"id": "c", "paper": "P 2021", "metric": "error", "split": "stream", **fields})


def only(folder, **fields):
    [j] = judge(folder, [claim(**fields)])
    return j


# ------------------------------------------------------------------------------------ verdicts


def test_a_clear_gap_over_three_seeds_holds_with_the_paired_t_interval_by_hand(tmp_path):
    folder = make_folder(tmp_path / "r", seeds(tent=[0.20, 0.21, 0.19], source=[0.40, 0.42, 0.41]))
    j = only(folder, lower="tent", than="source")
    # differences -0.20, -0.21, -0.22: mean -0.21, sd 0.01, half-width t(2, .975) * 0.01 / sqrt(3)
    half = T_2_975 * 0.01 / math.sqrt(3)
    assert (j.n, j.verdict) == (3, HOLDS)
    assert j.difference == pytest.approx(-0.21)
    assert (j.low, j.high) == (pytest.approx(-0.21 - half), pytest.approx(-0.21 + half))
    assert (j.subject_mean, j.reference_mean) == (pytest.approx(0.20), pytest.approx(0.41))
    assert only(folder, higher="source", than="tent").verdict == HOLDS


def test_a_reversed_gap_fails(tmp_path):
    folder = make_folder(tmp_path / "r", seeds(tent=[0.50, 0.52, 0.49], source=[0.40, 0.42, 0.41]))
    assert only(folder, lower="tent", than="source").verdict == FAILS
    assert only(folder, higher="source", than="tent").verdict == FAILS


def test_noisy_overlapping_values_are_inconclusive(tmp_path):
    folder = make_folder(tmp_path / "r", seeds(tent=[0.30, 0.45, 0.35], source=[0.40, 0.38, 0.41]))
    j = only(folder, lower="tent", than="source")
    assert j.verdict == INCONCLUSIVE and j.low < 0 < j.high


def test_pairing_by_seed_sees_a_gap_that_the_spread_over_seeds_hides(tmp_path):
    # seeds differ a lot (0.1 .. 0.5) but tent is 0.01 below source in every one: paired, it holds
    folder = make_folder(tmp_path / "r", seeds(tent=[0.09, 0.29, 0.49], source=[0.10, 0.30, 0.50]))
    assert only(folder, lower="tent", than="source").verdict == HOLDS


def test_equal_within_a_tolerance(tmp_path):
    folder = make_folder(tmp_path / "r", seeds(temperature=[0.95, 0.96, 0.94], uncalibrated=[0.95, 0.96, 0.94],
                                               vector=[0.90, 0.91, 0.89], matrix=[0.95, 0.97, 0.93]),
                         metric="accuracy", split="test")
    same = only(folder, metric="accuracy", split="test", equal="temperature", to="uncalibrated", tolerance=0.002)
    assert same.verdict == HOLDS and (same.low, same.high) == (0.0, 0.0)
    assert only(folder, metric="accuracy", split="test", equal="vector", to="uncalibrated", tolerance=0.002).verdict == FAILS
    # differences 0, 0.01, -0.01: the interval (+-0.025) reaches past the tolerance on both sides
    assert only(folder, metric="accuracy", split="test", equal="matrix", to="uncalibrated", tolerance=0.002).verdict == INCONCLUSIVE


def test_expect_judges_the_interval_of_the_mean_against_the_published_value(tmp_path):
    folder = make_folder(tmp_path / "r", seeds(cnn1d=[0.93, 0.94, 0.935]), metric="accuracy", split="test")
    j = only(folder, metric="accuracy", split="test", method="cnn1d", expect=0.94, tolerance=0.02)
    half = T_2_975 * 0.005 / math.sqrt(3)  # sd of .93 .94 .935 is .005: the interval .935 +- .0124
    assert j.verdict == HOLDS and j.difference == pytest.approx(-0.005)
    assert (j.low, j.high) == (pytest.approx(-0.005 - half), pytest.approx(-0.005 + half))
    assert only(folder, metric="accuracy", split="test", method="cnn1d", expect=0.80, tolerance=0.02).verdict == FAILS
    # expected 0.955: the interval [.9226, .9474] is neither inside [.935, .975] nor outside it
    assert only(folder, metric="accuracy", split="test", method="cnn1d", expect=0.955, tolerance=0.02).verdict == INCONCLUSIVE


def test_a_number_on_the_other_side(tmp_path):
    folder = make_folder(tmp_path / "r", seeds(binning=[0.3, 0.4, 0.5]), metric="compression_bits", split="layer5")
    j = only(folder, metric="compression_bits", split="layer5", higher="binning", than=0)
    assert j.verdict == HOLDS and j.reference == "0" and j.difference == pytest.approx(0.4)
    assert only(folder, metric="compression_bits", split="layer5", lower="binning", than=0.4).verdict == INCONCLUSIVE


def test_a_single_seed_is_judged_on_its_value_and_says_n_1(tmp_path):
    folder = make_folder(tmp_path / "r", {("tent", 0): 0.2, ("source", 0): 0.4})
    j = only(folder, lower="tent", than="source")
    assert (j.n, j.verdict, j.low, j.high) == (1, HOLDS, pytest.approx(-0.2), pytest.approx(-0.2))
    assert "n=1" in j.row()["test"]
    assert only(folder, lower="source", than="tent").verdict == FAILS  # a point value is never inconclusive
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(claims_mod.rich_table([j], "r"))
    assert "holds (n=1)" in console.export_text()


def test_only_final_values_and_paired_seeds_count(tmp_path):
    # the per-step rows of make_folder are -99: were they read, tent would not be 0.2
    folder = make_folder(tmp_path / "r", {("tent", 0): 0.2, ("tent", 1): 0.2, ("tent", 2): 0.25,
                                          ("source", 0): 0.4, ("source", 1): 0.41})
    j = only(folder, lower="tent", than="source")
    assert j.n == 2 and j.subject_mean == pytest.approx(0.2) and "seeds [2]" in j.note


# ------------------------------------------------------------------------------- names and errors


def test_an_unknown_variant_is_an_error_naming_the_known_ones(tmp_path):
    folder = make_folder(tmp_path / "r", seeds(tent=[0.2], source=[0.4]))
    with pytest.raises(InfobenchError, match=r"than: no variant 'sourse'.*did you mean 'source'.*known variants: tent, source"):
        only(folder, lower="tent", than="sourse")


def test_a_metric_or_split_the_variant_lacks_is_named(tmp_path):
    folder = make_folder(tmp_path / "r", seeds(tent=[0.2], source=[0.4]))
    with pytest.raises(InfobenchError, match=r"no final value of 'error' on split 'test'.*splits with 'error': stream"):
        only(folder, split="test", lower="tent", than="source")
    with pytest.raises(InfobenchError, match=r"no final value of 'ece'.*metrics on that split: error"):
        only(folder, metric="ece", lower="tent", than="source")


def test_settings_are_told_apart_by_full_label_or_where(tmp_path):
    rounds = {f"{m} [scenario.rounds={r}]": {"scenario": {"rounds": r}} for m in ("tent", "source") for r in (1, 5)}
    folder = make_folder(tmp_path / "r", {
        **seeds(**{"tent [scenario.rounds=1]": [0.2, 0.21], "source [scenario.rounds=1]": [0.4, 0.42]}),
        **seeds(**{"tent [scenario.rounds=5]": [0.6, 0.62], "source [scenario.rounds=5]": [0.4, 0.42]})},
        settings=rounds)
    with pytest.raises(InfobenchError, match=r"'tent' names 2 variants .*where:"):
        only(folder, lower="tent", than="source")
    assert only(folder, lower="tent", than="source", where={"scenario.rounds": 1}).verdict == HOLDS
    assert only(folder, lower="tent", than="source", where={"scenario.rounds": 5}).verdict == FAILS
    full = only(folder, lower="tent [scenario.rounds=1]", than="source [scenario.rounds=1]")
    assert full.subject == "tent [scenario.rounds=1]" and full.verdict == HOLDS
    with pytest.raises(InfobenchError, match=r"where: no run has the key path 'scenario.round'"):
        only(folder, lower="tent", than="source", where={"scenario.round": 1})
    with pytest.raises(InfobenchError, match=r"keeps no finished run; the runs have scenario.rounds in 1, 5"):
        only(folder, lower="tent", than="source", where={"scenario.rounds": 3})


def test_a_method_name_picks_its_only_variant(tmp_path):
    # --quick renames rmt to rmt(warmup_samples=3200): a claim naming rmt still finds it
    folder = make_folder(tmp_path / "r", seeds(**{"rmt(warmup_samples=3200)": [0.2], "source": [0.4]}))
    assert only(folder, lower="rmt", than="source").subject == "rmt(warmup_samples=3200)"


# ---------------------------------------------------------------------------------- claims.csv


def test_claims_csv_is_written_in_the_folder_and_reads_back(tmp_path):
    folder = make_folder(tmp_path / "r", seeds(tent=[0.20, 0.21, 0.19], source=[0.40, 0.42, 0.41]))
    judgements = check(folder, claims=[claim(lower="tent", than="source", published={"tent": 0.2, "source": 0.435}),
                                       claim(id="d", higher="tent", than="source")])
    assert [j.verdict for j in judgements] == [HOLDS, FAILS]
    rows = read_claims_csv(folder)
    assert [r["verdict"] for r in rows] == [HOLDS, FAILS]
    assert rows[0]["claim"] == "tent < source" and rows[0]["n"] == "3" and rows[0]["paper"] == "P 2021"
    assert float(rows[0]["difference"]) == pytest.approx(-0.21)
    assert json.loads(rows[0]["published"]) == {"tent": 0.2, "source": 0.435}
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".claims")) == []


def test_claims_csv_is_replaced_atomically(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "r", seeds(tent=[0.2, 0.21], source=[0.4, 0.42]))
    check(folder, claims=[claim(lower="tent", than="source")])
    before = (folder / "claims.csv").read_bytes()

    def killed(src, dst):
        raise KeyboardInterrupt  # the process dies between writing the new file and renaming it

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        check(folder, claims=[claim(lower="source", than="tent")])
    assert (folder / "claims.csv").read_bytes() == before
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_claims_csv_is_never_written_into_a_folder_infobench_did_not_make(tmp_path):
    folder = make_folder(tmp_path / "r", seeds(tent=[0.2], source=[0.4]))
    (folder / "manifest.json").write_text("{}")
    with pytest.raises(InfobenchError, match="not a folder infobench made"):
        check(folder, claims=[claim(lower="tent", than="source")])
    assert not (folder / "claims.csv").exists()


def test_a_link_in_the_folder_is_refused(tmp_path):
    folder = make_folder(tmp_path / "r", seeds(tent=[0.2], source=[0.4]))
    (folder / "claims.csv").symlink_to(tmp_path / "elsewhere.csv")
    with pytest.raises(InfobenchError, match="symbolic link"):
        check(folder, claims=[claim(lower="tent", than="source")])
    assert not (tmp_path / "elsewhere.csv").exists()


# ------------------------------------------------------------------------------ spec validation


def problems_of(raw) -> list[str]:
    with pytest.raises(SpecError) as info:
        validate(raw)
    return info.value.problems


@pytest.fixture
def spec_with_claims(tiny_spec):
    return {**tiny_spec, "seeds": [0, 1], "claims": [
        {"id": "ts-keeps-accuracy", "paper": "Guo et al. 2017", "metric": "accuracy", "split": "test",
         "equal": "temperature", "to": "uncalibrated", "tolerance": 0.002},
        {"id": "ts-cuts-ece", "paper": "Guo et al. 2017", "metric": "ece", "split": "test",
         "lower": "temperature", "than": "uncalibrated"}]}


def test_claims_validate_and_stay_out_of_run_identity(spec_with_claims):
    spec = validate(spec_with_claims)
    assert [c.id for c in spec.claims] == ["ts-keeps-accuracy", "ts-cuts-ece"]
    bare = validate({k: v for k, v in spec_with_claims.items() if k != "claims"})
    assert [r.run_id for r in spec.runs()] == [r.run_id for r in bare.runs()]
    assert spec.resolved()["claims"][1] == spec_with_claims["claims"][1]  # spec.yaml keeps them as written
    assert "claims" not in bare.resolved()


@pytest.mark.parametrize("entry, expected", [
    ({"lower": "temperature"}, "claims[1].than: missing; a lower: claim needs than"),
    ({"lower": "temperature", "than": "uncalibrated", "lower_than": 1}, "claims[1].lower_than: unknown key"),
    ({"equal": "temperature", "to": "uncalibrated"}, "claims[1].tolerance: missing"),
    ({"method": "temperature", "expect": 0.9}, "claims[1].tolerance: missing"),
    ({"lower": "temperature", "than": "uncalibrated", "tolerance": 0.1}, "claims[1].tolerance: not used by a lower: claim"),
    ({"lower": "temperature", "higher": "uncalibrated", "than": "x"}, "claims[1].higher: one claim per entry"),
    ({}, "claims[1]: say what is claimed"),
    ({"lower": "temperatur", "than": "uncalibrated"}, "claims[1].lower: no variant 'temperatur' in this spec (did you mean 'temperature'?)"),
    ({"lower": "temperature", "than": "uncalibrated", "where": {"train.epoch": 3}},
     "claims[1].where.train.epoch: no such key path in the runs' configuration (did you mean 'train.epochs'"),
    ({"equal": "temperature", "to": "uncalibrated", "tolerance": -1}, "claims[1].tolerance: Input should be greater than or equal to 0"),
    ({"id": "ts-keeps-accuracy", "lower": "temperature", "than": "uncalibrated"}, "claims: the same id is used more than once"),
])
def test_malformed_claims_are_named_by_key_path(spec_with_claims, entry, expected):
    base = {"id": "x", "metric": "ece", "split": "test"}
    spec_with_claims["claims"][1] = {**base, **entry}
    assert any(p.startswith(expected) for p in problems_of(spec_with_claims)), problems_of(spec_with_claims)


def test_claims_must_be_a_list_of_mappings(spec_with_claims):
    assert problems_of({**spec_with_claims, "claims": {"id": "x"}})[0].startswith("claims: expected a list")
    assert problems_of({**spec_with_claims, "claims": ["tent"]})[0].startswith("claims[0]: expected a mapping")
    missing = problems_of({**spec_with_claims, "claims": [{"lower": "temperature", "than": "uncalibrated"}]})
    assert {p.split(":")[0] for p in missing} >= {"claims[0].id", "claims[0].metric", "claims[0].split"}


def test_how_claims_are_judged_is_no_part_of_any_runs_code_digest():
    # tasks import the spec module; were it to import report.claims, every edit of how claims are
    # judged would make every finished run stale (its code digest would change)
    from infobench.provenance import closure

    modules = closure({"infobench.tasks.calibration.task", "infobench.tasks.tta.task", "infobench.tasks.ib.task"})
    assert "infobench.spec" in modules
    assert [m for m in modules if m.startswith("infobench.report")] == []


def test_every_shipped_experiment_declares_cited_claims_that_validate_full_and_quick():
    shipped = sorted(EXPERIMENTS.glob("*.yaml"))
    assert len(shipped) >= 21
    for path in shipped:
        spec = load_spec(path)
        assert spec.claims, f"{path.name} declares no claims"
        assert all(c.paper for c in spec.claims), f"{path.name}: a claim without its paper"
        quick = load_spec(path, quick=True)
        assert [c.id for c in quick.claims] == [c.id for c in spec.claims]


# ---------------------------------------------------------------------------------- the CLI


def test_claims_command_prints_verdicts_writes_csv_and_exits_0(tmp_path, monkeypatch):
    from infobench import cli as cli_module

    monkeypatch.setattr(cli_module.console, "width", 200)
    folder = make_folder(tmp_path / "r", seeds(tent=[0.50, 0.52, 0.49], source=[0.40, 0.42, 0.41]))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"claims": [
        {"id": "tent-beats-source", "paper": "Wang et al. 2021", "metric": "error", "split": "stream",
         "lower": "tent", "than": "source"}]}))
    result = cli.invoke(app, ["claims", str(folder), "--spec", str(spec)])
    assert result.exit_code == 0, result.output  # a failing claim is information, not an error
    assert "tent-beats-source" in result.output and "fails" in result.output
    assert read_claims_csv(folder)[0]["verdict"] == FAILS


def test_claims_command_exits_2_on_bad_input(tmp_path):
    folder = make_folder(tmp_path / "r", seeds(tent=[0.2], source=[0.4]))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"claims": [{"id": "a", "metric": "error", "split": "stream",
                                                "lower": "tnet", "than": "source"}]}))
    result = cli.invoke(app, ["claims", str(folder), "--spec", str(spec)])
    assert result.exit_code == 2 and "no variant 'tnet'" in result.output
    assert cli.invoke(app, ["claims", str(folder)]).exit_code == 2  # no spec.yaml there, no --spec
    assert cli.invoke(app, ["claims", str(tmp_path / "nowhere"), "--spec", str(spec)]).exit_code == 2
    spec.write_text(yaml.safe_dump({"claims": [{"id": "a", "metric": "error", "split": "stream", "lower": "tent"}]}))
    malformed = cli.invoke(app, ["claims", str(folder), "--spec", str(spec)])
    assert malformed.exit_code == 2 and "claims[0].than: missing" in malformed.output
    assert not (folder / "claims.csv").exists()


def test_run_ends_with_the_claims_table_and_claims_csv(tmp_path, write_spec, spec_with_claims, monkeypatch):
    from infobench import cli as cli_module

    monkeypatch.setattr(cli_module.console, "width", 200)
    out = tmp_path / "out"
    result = cli.invoke(app, ["run", str(write_spec(spec_with_claims)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "ts-keeps-accuracy" in result.output and "ts-cuts-ece" in result.output
    rows = {r["id"]: r for r in read_claims_csv(out / "tiny")}
    # temperature scaling never changes the arg max: the accuracy is the same in each seed
    assert rows["ts-keeps-accuracy"]["verdict"] == HOLDS and float(rows["ts-keeps-accuracy"]["difference"]) == 0.0
    assert rows["ts-cuts-ece"]["n"] == "2"
    # the folder's spec.yaml carries the claims: `infobench claims DIR` needs nothing else
    again = cli.invoke(app, ["claims", str(out / "tiny")])
    assert again.exit_code == 0 and "ts-keeps-accuracy" in again.output


def test_a_name_may_give_part_of_its_setting(tmp_path):
    label = "kd [model.depth=2,model.name=cnn2d,model.widths=[10,7]]"
    assert split_label(label) == ("kd", {"model.depth": "2", "model.name": "cnn2d", "model.widths": "[10,7]"})
    folder = make_folder(tmp_path / "r", {
        **seeds(**{label: [0.9, 0.91], "scratch [model.depth=2,model.name=cnn2d,model.widths=[10,7]]": [0.8, 0.82]}),
        **seeds(**{"kd [model.depth=1,model.name=mlp,model.widths=[10,7]]": [0.5, 0.52],
                   "scratch [model.depth=1,model.name=mlp,model.widths=[10,7]]": [0.6, 0.61]})},
        metric="accuracy", split="test")
    cnn = only(folder, metric="accuracy", split="test", higher="kd [model.name=cnn2d]", than="scratch [model.name=cnn2d]")
    assert cnn.subject == label and cnn.verdict == HOLDS
    mlp = only(folder, metric="accuracy", split="test", higher="kd [model.name=mlp]", than="scratch [model.name=mlp]")
    assert mlp.verdict == FAILS
    with pytest.raises(InfobenchError, match="no variant 'kd \\[model.name=resnet\\]'"):
        only(folder, metric="accuracy", split="test", higher="kd [model.name=resnet]", than="scratch [model.name=mlp]")


def test_a_setting_bracket_in_a_spec_claim_names_config_key_paths(spec_with_claims):
    spec_with_claims["claims"][1].update(lower="temperature [train.epochs=3]", than="uncalibrated [train.epoch=3]")
    [problem] = problems_of(spec_with_claims)
    assert problem.startswith("claims[1].than: 'train.epoch' in its setting bracket is no key path of the runs' "
                              "configuration (did you mean 'train.epochs'")


# ---------------------------------------------------------------------- the reproduction page


def write_spec_yaml(folder: Path, **spec) -> None:
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))


def test_reproduction_page_from_constructed_folders(tmp_path):
    from infobench.report.reproduction import Entry, page

    folder = make_folder(tmp_path / "tta", seeds(tent=[0.20, 0.21, 0.19], source=[0.40, 0.42, 0.41]), seconds=754.0)
    write_spec_yaml(folder, name="tta", seeds=[0, 1, 2], dataset={"name": "digits-c"}, model={"name": "cnn2d"},
                    train={"epochs": 30})
    declared = [claim(id="tent-beats-source", paper="Wang et al. 2021", lower="tent", than="source",
                      published={"tent": 0.2, "source": 0.435}),
                claim(id="tent-error", paper="Wang et al. 2021", method="tent", expect=0.2, tolerance=0.01)]
    check(folder, claims=declared)
    skipped = Entry(name="tta_cifar10c", claims=[claim(id="rmt-error", paper="Doebler et al. 2023", method="rmt",
                                                       expect=0.17, tolerance=0.01)],
                    skipped="CIFAR-10-C: no such folder")
    text = page([Entry(name="tta_digits_c", claims=declared, folder=folder, rows=read_claims_csv(folder)), skipped],
                quick=False, command="make reproduce", when="2026-01-01 00:00 UTC")
    rows = [line for line in text.splitlines() if line.startswith("| tta")]
    assert rows[0] == ("| tta_digits_c | `tent-beats-source`: tent < source (error @ stream) | Wang et al. 2021 | "
                       "tent 0.2, source 0.435 | 0.2 vs 0.41; Δ -0.2100 [-0.2348, -0.1852]; n=3 | **holds** | "
                       "digits-c, cnn2d, 3 seeds, 30 epochs | 12.6 min |")
    assert "| 0.2 ± 0.01 | 0.2; Δ 0.00000 [-0.02484, 0.02484]; n=3 | inconclusive |" in rows[1]
    assert rows[2].startswith("| tta_cifar10c | `rmt-error`: rmt = 0.17 ± 0.01 (error @ stream) | Doebler et al. 2023 | "
                              "0.17 ± 0.01 | — | not run: its data is absent |")
    assert "- `tta_cifar10c`: not run: its data is absent: CIFAR-10-C: no such folder" in text
    assert "quick" not in text
    quick = page([Entry(name="tta_digits_c", claims=declared, folder=folder, rows=read_claims_csv(folder))],
                 quick=True, command="x", when="w")
    assert "Generated from `--quick` runs, not the full-size experiments" in quick
    assert "| quick: digits-c, cnn2d, 3 seeds, 30 epochs |" in quick


def test_reproduce_without_running_judges_folders_and_skips_absent_data(tmp_path, tiny_spec):
    from infobench.report.reproduction import main

    experiments, out = tmp_path / "experiments", tmp_path / "results"
    experiments.mkdir()
    tiny_spec["claims"] = [{"id": "ts-cuts-ece", "paper": "Guo et al. 2017", "metric": "ece", "split": "test",
                            "lower": "temperature", "than": "uncalibrated"}]
    (experiments / "tiny.yaml").write_text(yaml.safe_dump(tiny_spec))
    absent = {**tiny_spec, "name": "mine", "dataset": {"name": "npz", "path": str(tmp_path / "absent.npz")}}
    (experiments / "mine.yaml").write_text(yaml.safe_dump(absent))
    make_folder(out / "tiny", seeds(temperature=[0.01, 0.02], uncalibrated=[0.10, 0.12]), metric="ece", split="test")
    page_path = tmp_path / "docs" / "reproduction.md"
    assert main(["--no-run", "--experiments", str(experiments), "--out", str(out), "--page", str(page_path)]) == 0
    text = page_path.read_text()
    assert "| tiny | `ts-cuts-ece`: temperature < uncalibrated (ece @ test) | Guo et al. 2017 |" in text
    assert "| mine | `ts-cuts-ece`" in text and "not run: its data is absent" in text and "absent.npz" in text
    assert read_claims_csv(out / "tiny")[0]["verdict"] == HOLDS
    assert not (out / "mine").exists()


def test_reproduce_marks_an_experiment_that_ran_reduced(tmp_path, tiny_spec):
    """A folder run with --set (fewer epochs, one seed) is not the experiment as declared: the
    page says so in its scale column, its notes and its header, naming what differs."""
    from infobench.report.reproduction import main
    from infobench.runner import execute, plan

    experiments, out = tmp_path / "experiments", tmp_path / "results"
    experiments.mkdir()
    tiny_spec["claims"] = [{"id": "ts-keeps-accuracy", "metric": "accuracy", "split": "test",
                            "equal": "temperature", "to": "uncalibrated", "tolerance": 0.002}]
    for name in ("tiny", "full", "cut"):
        (experiments / f"{name}.yaml").write_text(yaml.safe_dump({**tiny_spec, "name": name}))
    execute(plan(load_spec(experiments / "tiny.yaml", ["train.epochs=1"]), out))  # reduced with --set
    execute(plan(load_spec(experiments / "full.yaml"), out))  # as declared
    execute(plan(load_spec(experiments / "cut.yaml"), out))
    runs_csv = out / "cut" / "runs.csv"  # two runs recorded as failed, as a crash in a method leaves them
    runs_csv.write_text(runs_csv.read_text().replace(",done,", ",failed,", 2))
    page_path = tmp_path / "reproduction.md"
    assert main(["--no-run", "--experiments", str(experiments), "--out", str(out), "--page", str(page_path)]) == 0
    text = page_path.read_text()
    row = {name: next(line for line in text.splitlines() if line.startswith(f"| {name} |"))
           for name in ("tiny", "full", "cut")}
    assert "| reduced: digits, mlp, 2 seeds, 1 epochs |" in row["tiny"]
    assert "| digits, mlp, 2 seeds, 3 epochs |" in row["full"]
    assert "- `tiny` ran reduced: train.epochs: ran 1 (the spec: 3)" in text
    assert "Not every experiment ran as declared:** `cut`, `tiny` ran" in text
    assert "2 of 4 runs" in row["cut"] and "- `cut`: 2 of the 4 runs it plans finished" in text


def test_wall_time_of_a_resumed_sweep_says_which_runs_it_covers(tmp_path):
    from infobench.report.reproduction import wall_time

    folder = make_folder(tmp_path / "r", seeds(tent=[0.2], source=[0.4]), seconds=331.3)
    assert wall_time(folder) == "5.5 min"
    write_json(folder / "manifest.json", {"created_by": MARKER, "format": FORMAT, "seconds": 331.3,
                                      "runs": {"planned": 48, "skipped": 3, "done": 45}})
    assert wall_time(folder) == "5.5 min (the last sweep, 45 of 48 runs)"
    write_json(folder / "manifest.json", {"created_by": MARKER, "format": FORMAT, "seconds": 7300.0,
                                      "runs": {"planned": 9, "skipped": 0, "done": 9}})
    assert wall_time(folder) == "2.0 h"


def test_every_claim_that_cannot_be_judged_is_named_at_once(tmp_path):
    folder = make_folder(tmp_path / "r", seeds(tent=[0.2], source=[0.4]))
    with pytest.raises(InfobenchError) as info:
        judge(folder, [claim(id="a", lower="tnet", than="source"), claim(id="b", lower="tent", than="source"),
                       claim(id="c", metric="eror", lower="tent", than="source")])
    assert "claim 'a'" in str(info.value) and "claim 'c'" in str(info.value) and "claim 'b'" not in str(info.value)
    assert not (folder / "claims.csv").exists()


def test_a_label_with_other_parameters_than_the_spec_passes_validation_if_its_method_is_there(spec_with_claims):
    # a --set that changes a method's parameters renames its variant; the spec must still run
    spec_with_claims["claims"][1].update(lower="temperature(max_iter=5)")
    assert validate(spec_with_claims).claims[1].lower == "temperature(max_iter=5)"
    spec_with_claims["claims"][1].update(lower="temperatre(max_iter=5)")
    assert problems_of(spec_with_claims)[0].startswith("claims[1].lower: no variant 'temperatre(max_iter=5)'")


def test_a_claim_on_a_method_the_run_left_out_is_not_run_not_an_error(tmp_path, write_spec, tiny_spec):
    """`--set methods=[...]` narrowing an experiment must not make its spec invalid: claims on the
    methods left out are reported "not run"; a name no method of the task has is still an error."""
    from typer.testing import CliRunner

    from infobench.cli import app
    from infobench.errors import SpecError
    from infobench.report.claims import NOT_RUN, judge
    from infobench.spec import validate

    spec = {**tiny_spec, "seeds": [0], "methods": ["uncalibrated"],
            "claims": [{"id": "ts", "metric": "ece", "split": "test", "lower": "temperature", "than": "uncalibrated"}]}
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(write_spec(spec)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    (judged,) = judge(out / spec["name"], validate(spec).claims)
    assert judged.verdict == NOT_RUN and "temperature" in judged.note
    bad = {**spec, "claims": [{**spec["claims"][0], "lower": "temprature"}]}
    with pytest.raises(SpecError, match="no variant 'temprature'"):
        validate(bad)
