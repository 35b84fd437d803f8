"""A results table never lies: the regressions of issue 12, one test (or a few) per numbered item.

Each test states the promise it checks; they run on the tiny calibration spec (about a second a
run) or on the data-free toy task of ``test_runner``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from infobench import provenance
from infobench.cli import app
from infobench.compare import compare, render
from infobench.errors import InfobenchError, SpecError
from infobench.results import load_metrics, load_runs, read_rows
from infobench.runner import execute, plan
from infobench.spec import load_spec, parse_yaml, validate

cli = CliRunner()


def run_cli(*args: str):
    return cli.invoke(app, [*args])


def write(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def metric_values(folder: Path, metric: str = "nll") -> dict[str, float]:
    frame = load_metrics(folder)
    frame = frame[(frame["metric"] == metric) & (frame["split"] == "test") & frame["step"].isna()]
    return dict(zip(frame["run_id"], frame["value"]))


# ------------------------------------------------------------------ 1. settings are never pooled


def test_two_settings_in_one_folder_are_never_averaged_as_seeds(tmp_path, tiny_spec):
    execute(plan(validate(tiny_spec), tmp_path))
    tiny_spec["train"]["epochs"] = 2
    execute(plan(validate(tiny_spec), tmp_path))
    folder = tmp_path / "tiny"

    result = compare([folder], metrics="nll", split="test")
    assert set(result.summary["n"]) == {2}  # 2 seeds per setting, never 4 of two settings
    assert len(result.summary) == 4
    assert {"uncalibrated [train.epochs=2]", "uncalibrated [train.epochs=3]"} <= set(result.summary["variant"])

    by = compare([folder], metrics="nll", split="test", by="train.epochs")
    assert sorted(set(by.summary["train.epochs"])) == ["2", "3"]
    assert set(by.summary["n"]) == {2}

    runs = load_runs(folder)
    assert sorted(runs["train.epochs"].unique()) == [2, 3]  # the configuration travels with each run
    assert runs.groupby("setting")["seed"].nunique().eq(2).all()
    assert len(list((folder / "specs").glob("*.yaml"))) == 2  # every spec version is kept


def test_cli_compare_by_any_config_key(tmp_path, write_spec, tiny_spec):
    out = tmp_path / "results"
    path = write_spec(tiny_spec)
    assert run_cli("run", str(path), "--out", str(out)).exit_code == 0
    assert run_cli("run", str(path), "--out", str(out), "--set", "train.epochs=2").exit_code == 0
    result = run_cli("compare", str(out / "tiny"), "--by", "train.epochs", "--metric", "nll", "--format", "csv")
    assert result.exit_code == 0, result.output
    frame = __import__("pandas").read_csv(__import__("io").StringIO(result.output))
    assert set(frame["n"]) == {2} and sorted(frame["train.epochs"].unique()) == [2, 3]


# ------------------------------------------------------------------ 2. stale models and data


def _npz(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(np.int64) if seed == 0 else rng.integers(0, 2, 300)
    np.savez(path, x=x, y=y)
    return path


def test_a_data_file_rewritten_under_the_same_name_is_never_scored_with_stale_runs_or_models(tmp_path):
    data = _npz(tmp_path / "d.npz", 0)
    spec = {"name": "npz", "task": "calibration", "seeds": [0], "dataset": {"name": "npz", "path": str(data)},
            "model": {"name": "mlp", "width": 8}, "train": {"epochs": 2}, "methods": ["uncalibrated"]}
    first = plan(validate(spec), tmp_path / "r")
    execute(first)
    before = metric_values(tmp_path / "r" / "npz", "accuracy")

    time.sleep(0.01)
    _npz(data, 1)  # other data under the same name
    second = plan(validate(spec), tmp_path / "r")
    assert second.todo and second.todo[0].run_id != first.runs[0].run_id  # the data's content is in the run id
    execute(second)
    log = (tmp_path / "r" / "npz" / "logs" / f"{second.todo[0].run_id}.log").read_text()
    assert "cache miss" in log  # the model is retrained on the new content
    after = metric_values(tmp_path / "r" / "npz", "accuracy")
    assert len(after) == 2 and set(before) < set(after)


def test_test_only_dataset_settings_never_retrain_the_model():
    from infobench.cache import model_key_parts

    def key(corruptions):
        dataset = {"name": "digits-c", "corruptions": corruptions, "severity": 5}
        return model_key_parts({"dataset": dataset, "model": {"name": "cnn2d"}, "seed": 0})

    assert key(["gaussian_noise"]) == key(["contrast", "defocus_blur"])
    moved = {"name": "digits", "val_fraction": 0.3}
    assert model_key_parts({"dataset": moved})["dataset"] != model_key_parts({"dataset": {"name": "digits"}})["dataset"]


def test_tests_never_use_the_users_cache():
    from infobench.cache import cache_root

    assert os.environ.get("INFOBENCH_CACHE")  # set by conftest before any fixture, module-scoped ones too
    assert not str(cache_root()).startswith(str(Path.home() / ".cache"))


# ------------------------------------------------------------------ 3. stale code


def test_edited_method_code_makes_its_runs_stale_and_reruns_them(tmp_path, tiny_spec, monkeypatch):
    spec = validate(tiny_spec)
    execute(plan(spec, tmp_path))
    assert not plan(spec, tmp_path).todo

    real = provenance._source
    target = "infobench.tasks.calibration.methods.temperature"

    def edited(module):
        data, digest = real(module)
        return (data + b"# edited\n", digest[::-1]) if module == target else (data, digest)

    monkeypatch.setattr(provenance, "_source", edited)
    monkeypatch.setattr(provenance, "_digests", {})  # an edit on disk changes the file's mtime, which drops this memo
    again = plan(spec, tmp_path)
    assert {r.method for r in again.todo} == {"temperature"}  # only the edited method's runs
    assert again.stale == {r.run_id for r in again.todo}
    result = compare([tmp_path / "tiny"], metrics="nll", split="test")
    stale = result.summary.set_index("method")["stale"]
    assert stale["temperature"] == 2 and stale["uncalibrated"] == 0
    assert "†" in render(result, "md")
    execute(again)
    assert not plan(spec, tmp_path).todo


# ------------------------------------------------------------------ 4. torn tables


def test_a_torn_metrics_file_is_refused_not_read_as_data(tmp_path, tiny_spec):
    execute(plan(validate(tiny_spec), tmp_path))
    path = tmp_path / "tiny" / "metrics.csv"
    text = path.read_text()
    path.write_text(text[: text.rstrip("\n").rfind(",") + 3])  # the last value cut to "0."
    with pytest.raises(InfobenchError, match="cut short"):
        compare([tmp_path / "tiny"])
    result = run_cli("show", str(tmp_path / "tiny"))
    assert result.exit_code == 2 and "cut short" in result.output


# ------------------------------------------------------------------ 7. --jobs and determinism


def test_deterministic_tables_do_not_depend_on_jobs(tmp_path, tiny_spec):
    spec = validate(tiny_spec)
    serial = execute(plan(spec, tmp_path / "a", deterministic=True), jobs=1)
    parallel = execute(plan(spec, tmp_path / "b", deterministic=True), jobs=2)
    assert serial.ok and parallel.ok
    a, b = metric_values(tmp_path / "a" / "tiny"), metric_values(tmp_path / "b" / "tiny")
    assert a == b  # bit-identical, not merely close
    for folder in ("a", "b"):
        rows = read_rows(tmp_path / folder / "tiny" / "runs.csv")
        assert {r["threads"] for r in rows} == {"1"}  # the threads of each run are recorded
        assert json.loads((tmp_path / folder / "tiny" / "manifest.json").read_text())["deterministic"] is True


# ------------------------------------------------------------------ 8, 11. --force never loses results


def test_force_interrupted_keeps_every_finished_result(tmp_path, tiny_spec, monkeypatch):
    import infobench.runner as runner_module

    spec = validate(tiny_spec)
    execute(plan(spec, tmp_path))
    before = metric_values(tmp_path / "tiny")
    real = runner_module.execute_run
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # Ctrl-C during the second forced rerun
        return real(*args, **kwargs)

    monkeypatch.setattr(runner_module, "execute_run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        execute(plan(spec, tmp_path, force=True))
    after = metric_values(tmp_path / "tiny")
    assert set(after) == set(before) and len(after) == 4  # nothing lost, nothing doubled
    assert after == before  # runs are deterministic, so even the replaced run reads the same
    assert set(compare([tmp_path / "tiny"], metrics="nll").summary["n"]) == {2}


def test_a_failed_forced_rerun_keeps_the_earlier_result_and_exits_2_for_a_bad_file(tmp_path):
    data = _npz(tmp_path / "d.npz", 0)
    spec = write(tmp_path / "s.yaml", {
        "name": "npz", "task": "calibration", "seeds": [0], "dataset": {"name": "npz", "path": str(data)},
        "model": {"name": "mlp", "width": 8}, "train": {"epochs": 1}, "methods": ["uncalibrated"]})
    out = tmp_path / "r"
    assert run_cli("run", str(spec), "--out", str(out)).exit_code == 0
    before = metric_values(out / "npz")
    data.write_bytes(b"not an npz archive at all")  # the file turns bad
    result = run_cli("run", str(spec), "--out", str(out), "--force")
    assert result.exit_code == 2, result.output  # a bad data file is bad input, as the README promises
    assert metric_values(out / "npz") == before  # the earlier result stands
    assert run_cli("show", str(out / "npz")).exit_code == 0
    assert run_cli("compare", str(out / "npz")).exit_code == 0


def test_a_folder_whose_runs_all_failed_reads_as_empty_not_damaged(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    from infobench.results import METRIC_COLUMNS, RUN_COLUMNS

    (folder / "runs.csv").write_text(",".join(RUN_COLUMNS) + "\n")
    (folder / "metrics.csv").write_text(",".join(METRIC_COLUMNS) + "\n")
    assert load_metrics(folder).empty
    with pytest.raises(InfobenchError, match="no metrics of finished runs"):
        compare([folder])


# ------------------------------------------------------------------ 9, 10. the folder is ours alone


@pytest.mark.parametrize("link", [".lock", "logs", "plots", "logs/RUN.log"])
def test_links_inside_a_results_folder_are_never_followed(tmp_path, tiny_spec, link):
    spec = validate(tiny_spec)
    execute(plan(spec, tmp_path / "r"))
    victim = tmp_path / "victim"
    victim.mkdir() if link in ("logs", "plots") else victim.write_text("precious\n")
    folder = tmp_path / "r" / "tiny"
    run_id = plan(spec, tmp_path / "r").runs[0].run_id
    where = folder / link.replace("RUN", run_id)
    if where.is_dir():
        import shutil

        shutil.rmtree(where)
    elif where.exists():
        where.unlink()
    where.symlink_to(victim, target_is_directory=victim.is_dir())
    with pytest.raises(InfobenchError, match="symbolic link"):
        execute(plan(spec, tmp_path / "r", force=True))
    assert (victim.read_text() == "precious\n") if victim.is_file() else not any(victim.iterdir())


def test_a_folder_infobench_did_not_make_is_refused(tmp_path, tiny_spec):
    mine = tmp_path / "r" / "tiny"
    mine.mkdir(parents=True)
    own = {"spec.yaml": "my: notes\n", "metrics.csv": "a,b\n1,2\n", "manifest.json": '{"mine": 1}\n'}
    for name, text in own.items():
        (mine / name).write_text(text)
    with pytest.raises(InfobenchError, match="not a folder infobench made.*manifest.json"):
        plan(validate(tiny_spec), tmp_path / "r")
    assert {p.name: p.read_text() for p in mine.iterdir()} == own


def test_results_and_cache_files_follow_the_umask(tmp_path, tiny_spec):
    from infobench.cache import models_dir

    execute(plan(validate(tiny_spec), tmp_path))
    for path in [tmp_path / "tiny" / "runs.csv", tmp_path / "tiny" / "metrics.csv", *models_dir().glob("*.pt")]:
        assert path.stat().st_mode & 0o044 == 0o044 & ~_umask(), path  # group/other read as the umask allows


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------ 12. inputs that exhaust the machine


def test_a_yaml_alias_bomb_is_refused_quickly():
    levels = ["a0: &a0 [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]"]
    for i in range(1, 9):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    text = "\n".join(levels) + "\nseeds: *a8\n"
    with pytest.raises(SpecError, match="expands to more than"):
        parse_yaml(text, "bomb.yaml")


def test_grids_beyond_the_run_limit_are_refused_before_expanding(tiny_spec):
    tiny_spec["train"]["lr"] = {"grid": [10.0 ** -i for i in range(1, 101)]}
    tiny_spec["train"]["batch_size"] = {"grid": list(range(1, 101))}
    tiny_spec["methods"] = [{"name": "temperature", "max_iter": {"grid": list(range(1, 101))}}]
    with pytest.raises(SpecError, match=r"2,000,000 runs.*--max-runs"):
        validate(tiny_spec)
    tiny_spec["seeds"] = list(range(100))
    with pytest.raises(SpecError, match=r"100,000,000 runs"):
        validate(tiny_spec)


@pytest.mark.parametrize("override", ["train.lr=" + "[" * 3000 + "]" * 3000, "train.epochs=1e40",
                                      "train.batch_size=1e21", "train.lr=.inf"])
def test_hostile_overrides_get_a_message(write_spec, tiny_spec, override):
    path = write_spec(tiny_spec)
    with pytest.raises(SpecError):
        load_spec(path, [override])
    result = run_cli("validate", str(path), "--set", override)
    assert result.exit_code == 2 and "Traceback" not in result.output


@pytest.mark.parametrize("name", ["x" * 300, "tiny\n", "tiny\nevil"])
def test_names_that_cannot_name_a_folder_are_refused(tiny_spec, name):
    tiny_spec["name"] = name
    with pytest.raises(SpecError, match="name:"):
        validate(tiny_spec)


# ------------------------------------------------------------------ 14. workers never outlive the driver


def test_jobs_beyond_the_cores_are_capped_and_said(tmp_path, write_spec, tiny_spec):
    path = write_spec(tiny_spec)
    result = run_cli("run", str(path), "--out", str(tmp_path), "--jobs", "64", "--dry-run")
    assert result.exit_code == 0
    assert "more than this machine's" in result.output


def test_a_worker_ends_when_its_driver_is_killed(tmp_path):
    flag = tmp_path / "worker.pid"
    driver = textwrap_dedent(f"""
        import multiprocessing as mp, os, sys, time
        def worker():
            from infobench.executors import end_with_parent
            end_with_parent(poll_seconds=0.1)
            open({str(flag)!r}, "w").write(str(os.getpid()))
            time.sleep(60)
        if __name__ == "__main__":
            mp.set_start_method("fork")
            mp.Process(target=worker).start()
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", driver])
    deadline = time.time() + 30
    while not flag.exists() or not flag.read_text():
        assert time.time() < deadline, "the worker never started"
        time.sleep(0.1)
    worker = int(flag.read_text())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while _alive(worker):
        assert time.time() < deadline, "the worker outlived its killed driver"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


def textwrap_dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text)


def test_sigterm_ends_a_parallel_sweep_with_130_and_its_workers(tmp_path, write_spec, tiny_spec):
    tiny_spec["seeds"] = list(range(8))
    tiny_spec["train"]["epochs"] = 30
    path = write_spec(tiny_spec)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "infobench.cli", "run", str(path), "--out", str(tmp_path / "r"),
                             "--jobs", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    deadline = time.time() + 60
    while not list((tmp_path / "r" / "tiny").glob("logs/*.log")):
        assert time.time() < deadline and proc.poll() is None, "the sweep never started"
        time.sleep(0.2)
    assert len(_session_members(proc.pid)) >= 3  # the driver and its two workers are seen
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the driver hung after SIGTERM")
    assert code == 130
    deadline = time.time() + 10
    while True:
        leftovers = _session_members(proc.pid)
        if not leftovers or time.time() > deadline:
            break
        time.sleep(0.2)
    assert not leftovers, f"processes outlived the driver: {leftovers}"


def _session_members(session: int) -> list[str]:
    """Command lines of the live processes of a session, read from /proc (no pgrep needed)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":  # fields after the name: state, ppid, pgrp, session
            found.append(cmdline)
    return found


# ------------------------------------------------------------------ 15. messages, not tracebacks


def test_broken_files_in_a_results_folder_get_messages(tmp_path, tiny_spec):
    execute(plan(validate(tiny_spec), tmp_path))
    folder = tmp_path / "tiny"
    (folder / "spec.yaml").write_text("- a list\n- not a spec\n")
    result = run_cli("show", str(folder))
    assert result.exit_code == 0 and "Traceback" not in result.output
    (folder / "manifest.json").write_text("{broken")
    result = run_cli("show", str(folder))
    assert "not a readable manifest" in result.output
    (folder / "runs.csv").write_bytes(b"\xff\xfe\x00binary\n")
    for args in (["show", str(folder)], ["compare", str(folder)]):
        result = run_cli(*args)
        assert result.exit_code == 2 and "not a readable infobench table" in result.output


def test_compare_out_onto_a_folder_and_a_bad_scheduler_get_messages(tmp_path, write_spec, tiny_spec):
    execute(plan(validate(tiny_spec), tmp_path))
    result = run_cli("compare", str(tmp_path / "tiny"), "--out", str(tmp_path))
    assert result.exit_code == 2 and "is a folder" in result.output
    out = tmp_path / "fresh"
    result = run_cli("run", str(write_spec(tiny_spec)), "--out", str(out), "--executor", "dask", "--scheduler", "x!!")
    assert result.exit_code == 2 and "not a scheduler address" in result.output
    assert not out.exists()  # refused before anything was written


def test_a_missing_data_file_is_bad_input_before_any_run(tmp_path, write_spec):
    spec = {"name": "npz", "task": "calibration", "dataset": {"name": "npz", "path": str(tmp_path / "none.npz")},
            "model": {"name": "mlp"}, "methods": ["uncalibrated"]}
    result = run_cli("run", str(write_spec(spec)), "--out", str(tmp_path / "r"))
    assert result.exit_code == 2 and "none.npz" in result.output
    assert not (tmp_path / "r" / "npz").exists()


@pytest.mark.parametrize("damage", ["folder", "binary_sidecar", "dev_zero"])
def test_damaged_cache_entries_are_a_miss_not_a_failure(tmp_path, tiny_spec, damage, monkeypatch):
    from infobench.cache import models_dir

    monkeypatch.setenv("INFOBENCH_CACHE", str(tmp_path / "cache"))
    tiny_spec["seeds"] = [0]
    spec = validate(tiny_spec)
    execute(plan(spec, tmp_path / "a"))
    (entry,) = models_dir().glob("*.pt")
    if damage == "folder":
        entry.unlink()
        entry.mkdir()
    elif damage == "binary_sidecar":
        entry.with_suffix(".sha256").write_bytes(b"\xff\xfe\x00\x01")
    else:
        entry.unlink()
        entry.symlink_to("/dev/zero")
    second = plan(spec, tmp_path / "b")
    summary = execute(second)
    assert summary.statuses == {"done": 2}
    logs = "".join((tmp_path / "b" / "tiny" / "logs" / f"{r.run_id}.log").read_text() for r in second.runs)
    assert "retraining" in logs


# ------------------------------------------------------------------ 16. what a new user reads


def test_dry_run_prints_setting_labels_literally(tmp_path, write_spec, tiny_spec):
    tiny_spec["train"]["lr"] = {"grid": [0.1, 0.01]}
    result = run_cli("run", str(write_spec(tiny_spec)), "--out", str(tmp_path), "--dry-run")
    assert result.exit_code == 0
    assert "[train.lr=0.1]" in result.output and "[train.lr=0.01]" in result.output


def test_load_metrics_takes_one_folder_as_a_plain_string(tmp_path, tiny_spec):
    execute(plan(validate(tiny_spec), tmp_path))
    assert len(load_metrics(str(tmp_path / "tiny"))) == len(load_metrics([tmp_path / "tiny"])) > 0


def test_one_seed_shows_no_spread_and_spreads_share_the_means_precision(tmp_path, tiny_spec):
    from infobench.compare import _mean_std

    assert _mean_std(0.5, 0.0, 1, 3) == "0.500"
    assert _mean_std(0.014, 0.000807, 3, 3) == "0.014 ± 0.001"
    assert _mean_std(0.014, 0.0004, 3, 3) == "0.014 ± < 0.001"
    tiny_spec["seeds"] = [0]
    execute(plan(validate(tiny_spec), tmp_path))
    assert "±" not in render(compare([tmp_path / "tiny"]), "md").split("_mean")[0]


def test_p_values_from_few_seeds_carry_a_caution(tmp_path, tiny_spec):
    execute(plan(validate(tiny_spec), tmp_path / "a"))
    execute(plan(validate(tiny_spec), tmp_path / "b"))
    text = render(compare([tmp_path / "a" / "tiny", tmp_path / "b" / "tiny"]), "md")
    assert "fewer than 5 seeds" in text


# ------------------------------------------------------------------ 2. the cache from the command line


def test_cache_list_clear_and_retrain(tmp_path, write_spec, tiny_spec, monkeypatch):
    monkeypatch.setenv("INFOBENCH_CACHE", str(tmp_path / "cache"))
    tiny_spec["seeds"] = [0]
    path = write_spec(tiny_spec)
    assert run_cli("run", str(path), "--out", str(tmp_path / "r")).exit_code == 0
    listed = run_cli("cache", "list")
    assert listed.exit_code == 0 and "1 cached model" in listed.output and "digits" in listed.output
    (weights,) = (tmp_path / "cache" / "models").glob("*.pt")
    trained = weights.stat().st_mtime_ns

    result = run_cli("run", str(path), "--out", str(tmp_path / "r"), "--retrain")
    assert result.exit_code == 0
    assert weights.stat().st_mtime_ns > trained  # retrained once for the sweep, shared by both methods
    assert "2 done" in result.output  # and the runs redone with it

    assert run_cli("cache", "clear").exit_code == 2  # no question can be asked here: --yes is needed
    cleared = run_cli("cache", "clear", "--yes")
    assert cleared.exit_code == 0 and not list((tmp_path / "cache").glob("models/*.pt"))


def test_warnings_of_finished_runs_reach_the_table_and_the_summary(tmp_path):
    from tests_support import toy_spec

    spec = validate(toy_spec(seeds=[0], methods=[{"name": "behave", "mode": "warn"}]))
    summary = execute(plan(spec, tmp_path))
    assert summary.ok and summary.warnings == ["behave(mode=warn) seed 0: the filter kept 2% of the samples"]
    assert read_rows(tmp_path / "toy" / "runs.csv")[0]["warnings"] == "the filter kept 2% of the samples"


def test_a_loss_takes_its_parameters_inline_like_a_method(tiny_spec):
    inline = validate({**tiny_spec, "loss": {"name": "focal", "gamma": 3}})
    nested = validate({**tiny_spec, "loss": {"name": "focal", "params": {"gamma": 3}}})
    assert inline.runs()[0].config["loss"] == nested.runs()[0].config["loss"]
    assert inline.runs()[0].config["loss"]["params"]["gamma"] == 3
    grid = validate({**tiny_spec, "loss": {"name": "focal", "gamma": {"grid": [1, 3]}}})
    assert len(grid.settings) == 2
    with pytest.raises(SpecError, match="gamma"):
        validate({**tiny_spec, "loss": {"name": "focal", "gamma": -1}})
