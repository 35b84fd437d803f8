"""The command line: exit codes, messages, and start-up without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from infobench.cli import app

runner = CliRunner()


def test_malformed_spec_exits_2_lists_every_problem_and_writes_nothing(tmp_path, write_spec, tiny_spec):
    tiny_spec["train"]["epochs"] = -1
    tiny_spec["methods"] = ["uncalibratd"]
    path = write_spec(tiny_spec)
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "train.epochs" in result.output and "methods[0].name" in result.output
    assert "2 problem(s)" in result.output
    assert not (tmp_path / "out").exists()


def test_run_then_compare_then_show(tmp_path, write_spec, tiny_spec, monkeypatch):
    from infobench import cli

    monkeypatch.setattr(cli.console, "width", 160)
    path = write_spec(tiny_spec)
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "temperature" in result.output and "ece" in result.output
    again = runner.invoke(app, ["run", str(path), "--out", str(out)])
    assert again.exit_code == 0 and "4 already finished" in again.output
    md = runner.invoke(app, ["compare", str(out / "tiny"), "--metric", "ece", "--split", "test", "--format", "md"])
    assert md.exit_code == 0 and "| temperature" in md.output.replace("|  ", "| ")
    bad = runner.invoke(app, ["compare", str(out / "tiny"), "--metric", "ecee"])
    assert bad.exit_code == 2 and "did you mean 'ece'" in bad.output
    shown = runner.invoke(app, ["show", str(out / "tiny")])
    assert shown.exit_code == 0 and "4 done" in shown.output


def test_dry_run_plans_without_running(tmp_path, write_spec, tiny_spec):
    path = write_spec(tiny_spec)
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out"), "--dry-run", "--set", "seeds=[0,1,2]"])
    assert result.exit_code == 0
    assert "6 to run" in result.output
    assert not (tmp_path / "out" / "tiny" / "runs.csv").exists()


def test_list_shows_methods_with_parameters():
    result = runner.invoke(app, ["list", "methods", "calibration"])
    assert result.exit_code == 0
    assert "temperature" in result.output and "max_iter=100" in result.output
    unknown = runner.invoke(app, ["list", "metods"])
    assert unknown.exit_code == 2 and "did you mean 'methods'" in unknown.output


def test_validate_reports_each_file(write_spec, tiny_spec):
    good = write_spec(tiny_spec, "good.yaml")
    bad = write_spec("name: x\n", "bad.yaml")
    result = runner.invoke(app, ["validate", str(good), str(bad)])
    assert result.exit_code == 2
    assert "good.yaml: calibration, 4 runs" in result.output
    assert "bad.yaml" in result.output and "task: missing" in result.output


def test_help_and_compare_do_not_import_torch(tmp_path):
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from infobench.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "r = CliRunner().invoke(app, ['compare', sys.argv[1]])\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


@pytest.fixture
def png_after():
    """The figure format is the driver process's setting: put the default back for later tests."""
    from infobench import plots

    yield
    plots.set_format("png")


def test_plot_format_writes_the_figures_as_asked_and_refuses_others(tmp_path, write_spec, tiny_spec, png_after):
    path = write_spec({**tiny_spec, "seeds": [0]})
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(path), "--out", str(out), "--plot-format", "svg"])
    assert result.exit_code == 0, result.output
    figures = list((out / tiny_spec["name"] / "plots").iterdir())
    assert figures and all(f.suffix == ".svg" for f in figures)
    assert figures[0].read_text().lstrip().startswith(("<?xml", "<svg"))
    result = runner.invoke(app, ["run", str(path), "--out", str(out), "--plot-format", "gif"])
    assert result.exit_code == 2 and "gif" in result.output
