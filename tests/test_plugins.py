"""Plug-ins from outside infobench (issue 13, item 4): a ``module:Class`` name in a spec, and the
``infobench.plugins`` entry-point group of installed distributions.

A user's file is written into ``tmp_path``, which becomes the working folder, as it would be
for someone running ``infobench`` beside their spec. The import path is a copy without that
folder (like the ``infobench`` console script's), so that only the registry's own handling of
the working folder can make the file importable.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from infobench import provenance, registry
from infobench.cli import app
from infobench.errors import RegistryError
from infobench.results import load_metrics, load_runs

cli = CliRunner()
REPO = Path(__file__).resolve().parents[1]

# A TTA method as a user would write it: BN statistics mixed with a fixed weight. With weight 1
# it is exactly the built-in ``norm`` (pure test-batch statistics), which the tests use as truth.
HALFWAY = '''
from pydantic import BaseModel, ConfigDict, Field

from infobench.tasks.tta.common import MixedStatsMethod

SCALE = 1


class Halfway(MixedStatsMethod):
    """BN statistics mixed: weight * test batch + (1 - weight) * source."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        weight: float = Field(0.5, ge=0, le=1)

    def mixing(self):
        return {"test_weight": self.params.weight * SCALE}


class NotAMethod:
    pass


def a_function():
    return 1
'''

# digits-c and cnn2d as the tta task tests use them (the same cached source model), one corruption
TTA_SPEC = {
    "name": "outside",
    "task": "tta",
    "seeds": [0],
    "threads": 1,
    "dataset": {"name": "digits-c", "corruptions": ["defocus_blur"], "severity": 5},
    "model": {"name": "cnn2d", "width": 8},
    "train": {"epochs": 8, "lr": 3.0e-3, "batch_size": 64},
    "scenario": {"order": "continual", "batch_size": 64, "max_per_domain": 128},
}


def work_in(folder: Path, monkeypatch) -> None:
    """Make ``folder`` the working folder, with an import path that lacks it (as the console
    script's does) and entry points looked for afresh; ``monkeypatch`` restores all of it."""
    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(folder))])
    monkeypatch.setattr(registry, "_origins", None)
    monkeypatch.setattr(registry, "_entry_point_errors", [])


def forget_modules_under(root: Path) -> None:
    """Drop the modules imported from files under ``root``, and what they registered."""
    ours = {n for n, m in list(sys.modules.items()) if str(getattr(m, "__file__", "") or "").startswith(str(root))}
    for table in registry._REGISTRY.values():
        for name in [n for n, obj in table.items() if obj.__module__ in ours]:
            del table[name]
    for name in ours:
        del sys.modules[name]


@pytest.fixture
def user_folder(tmp_path, monkeypatch):
    """``tmp_path/user`` as the working folder (see ``work_in``); ``write(name, source)`` writes a
    module file there. Modules imported from ``tmp_path`` are forgotten afterwards."""
    folder = tmp_path / "user"
    folder.mkdir()
    work_in(folder, monkeypatch)

    def write(name: str, source: str, where: Path = folder) -> Path:
        path = where / name
        path.write_text(textwrap.dedent(source))
        return path

    yield write
    forget_modules_under(tmp_path)


def write_spec(data: dict, path: Path = Path("spec.yaml")) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def stream_error(metrics, method: str) -> float:
    rows = metrics[(metrics["method"] == method) & (metrics["metric"] == "error")
                   & (metrics["split"] == "stream") & metrics["step"].isna()]
    assert len(rows) == 1, method
    return float(rows["value"].iloc[0])


# ------------------------------------------------------------------------------ module:Class names


def test_a_module_class_name_resolves_from_the_working_folder(user_folder):
    user_folder("user_tta_get.py", HALFWAY)
    cls = registry.get("tta.method", "user_tta_get:Halfway")
    assert cls.__name__ == "Halfway" and cls.__module__ == "user_tta_get"
    assert cls.registered_name == "user_tta_get:Halfway"
    assert str(Path.cwd()) in sys.path
    # the built-in class it derives from keeps its own name
    assert registry.get("tta.method", "norm").registered_name == "norm"


def test_a_method_from_the_working_folder_runs_and_its_edits_make_its_runs_stale(user_folder, tmp_path):
    from infobench.runner import plan
    from infobench.spec import load_spec

    user_folder("user_tta_run.py", HALFWAY)
    spec = write_spec({**TTA_SPEC, "methods": ["norm", {"name": "user_tta_run:Halfway", "weight": 1.0}]})
    out = tmp_path / "out"
    result = cli.invoke(app, ["run", str(spec), "--out", str(out)])
    assert result.exit_code == 0, result.output
    runs = load_runs([out / "outside"])
    assert set(runs["method"]) == {"norm", "user_tta_run:Halfway"}
    assert set(runs["status"]) == {"done"}
    # weight 1 is pure test-batch normalisation: the built-in norm's numbers exactly
    metrics = load_metrics([out / "outside"])
    assert stream_error(metrics, "user_tta_run:Halfway") == stream_error(metrics, "norm")

    # editing the user's file changes the code its runs depend on: they, and only they, go stale
    assert not plan(load_spec(spec), out).stale
    user_folder("user_tta_run.py", HALFWAY.replace("SCALE = 1", "SCALE = 1  # edited\n"))
    again = plan(load_spec(spec), out)
    stale_methods = {r.method for r in again.runs if r.run_id in again.stale}
    assert stale_methods == {"user_tta_run:Halfway"}


@pytest.mark.parametrize(("name", "expected"), [
    ("user_tta_bad:Missing", "has no attribute 'Missing'"),
    ("user_tta_bad:NotAMethod", "not a subclass of infobench.tasks.tta.methods.base.TTAMethod"),
    ("user_tta_bad:a_function", "is a function, not a class"),
    ("user_tta_bad:", "not a plug-in name"),
    (":Halfway", "not a plug-in name"),
    ("user tta:Halfway", "not a plug-in name"),
    ("no_such_module_for_infobench:Halfway", "no module named 'no_such_module_for_infobench'"),
    ("user_tta_raises:Thing", "ZeroDivisionError: division by zero (user_tta_raises.py, line 3)"),
])
def test_bad_module_class_names_say_what_is_wrong(user_folder, name, expected):
    user_folder("user_tta_bad.py", HALFWAY)
    user_folder("user_tta_raises.py", "import math\n\nRATIO = 1 / 0\n")
    with pytest.raises(RegistryError) as info:
        registry.get("tta.method", name)
    message = str(info.value)
    assert expected in message and repr(name) in message
    if name.startswith("no_such"):
        assert str(Path.cwd()) in message  # says where it looked


def test_each_kind_checks_its_own_base(user_folder):
    user_folder("user_tta_kinds.py", HALFWAY)
    with pytest.raises(RegistryError, match=r"not a subclass of infobench\.models\.base\.Classifier"):
        registry.get("model", "user_tta_kinds:Halfway")
    with pytest.raises(RegistryError, match=r"not a subclass of infobench\.data\.base\.Dataset"):
        registry.get("dataset", "user_tta_kinds:Halfway")
    # a model kind accepts a built-in model class named by its path, and leaves its name alone
    assert registry.get("model", "infobench.models.mlp:MLP").registered_name == "mlp"


def test_a_bad_name_in_a_spec_is_a_spec_problem(user_folder):
    user_folder("user_tta_spec.py", HALFWAY)
    spec = write_spec({**TTA_SPEC, "methods": ["user_tta_spec:Halfwya"]})
    result = cli.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 2
    assert "methods[0].name" in result.output and "has no attribute 'Halfwya'" in result.output
    assert "Traceback" not in result.output


def test_the_code_digest_follows_the_external_module_and_what_it_imports(user_folder):
    path = user_folder("user_tta_digest.py", HALFWAY)
    config = {"task": "tta", "method": {"name": "user_tta_digest:Halfway", "params": {}}}
    registry.get("tta.method", "user_tta_digest:Halfway")
    modules = provenance.closure(provenance.plugin_modules(config))
    assert "user_tta_digest" in modules and "infobench.tasks.tta.common" in modules
    before = provenance.code_digest(config)
    assert provenance.code_digest(config) == before
    path.write_text(HALFWAY.replace("SCALE = 1", "SCALE = 2"))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert provenance.code_digest(config) != before


def test_runs_in_worker_processes_resolve_the_name_there(user_folder, tmp_path):
    """A loky worker (one is enough) imports the user's module itself, from the same working folder."""
    user_folder("user_mi_worker.py", '''
        import numpy as np

        from infobench.mi.base import MIEstimator, check_pair


        class GaussianMI(MIEstimator):
            """I = -ln(1 - rho^2) / 2 from the sample correlation: exact for a bivariate normal."""

            def estimate(self, x, y):
                x, y = check_pair(x, y)
                rho = np.corrcoef(x[:, 0], y[:, 0])[0, 1]
                return float(-0.5 * np.log1p(-rho * rho))
    ''')
    spec = write_spec({"name": "outside-mi", "task": "mi", "seeds": [0, 1], "threads": 1,
                       "dataset": {"name": "mi-gaussian", "dim": 1}, "scenario": {"n": 4000},
                       "methods": ["user_mi_worker:GaussianMI"]})
    out = tmp_path / "out"
    result = cli.invoke(app, ["run", str(spec), "--out", str(out), "--jobs", "1", "--executor", "loky"])
    assert result.exit_code == 0, result.output
    metrics = load_metrics([out / "outside-mi"])
    error = metrics[(metrics["metric"] == "abs_error_bits") & metrics["step"].isna()]["value"]
    assert len(error) == 2 and (error < 0.05).all()  # truth: 0.737 bits (correlation 0.8)


# ------------------------------------------------------------------------------ entry points


FAKE_PLUGIN = '''
from infobench.registry import register
from infobench.tasks.tta.common import MixedStatsMethod
from pydantic import BaseModel, ConfigDict, Field


@register("tta.method", "fake-halfway")
class FakeHalfway(MixedStatsMethod):
    """Half-and-half BN statistics, from an installed distribution."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        weight: float = Field(0.5, ge=0, le=1)

    def mixing(self):
        return {"test_weight": self.params.weight}
'''


def install(tmp_path, monkeypatch, entry_points: str, modules: dict[str, str], dist="fake-infobench-dist") -> Path:
    """A distribution on the import path: its ``.dist-info`` (METADATA, entry_points.txt) and modules."""
    site = tmp_path / "site"
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[infobench.plugins]\n" + textwrap.dedent(entry_points))
    for name, source in modules.items():
        (site / name).write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(site))
    return site


def test_an_entry_point_plugin_is_listed_named_in_a_spec_and_run(user_folder, tmp_path, monkeypatch):
    site = install(tmp_path, monkeypatch, "halfway = fake_infobench_plugin\n", {"fake_infobench_plugin.py": FAKE_PLUGIN})
    assert "fake-halfway" in registry.names("tta.method")
    assert registry.origin("tta.method", "fake-halfway") == "fake-infobench-dist 1.0"
    assert registry.origin("tta.method", "tent") is None

    listed = cli.invoke(app, ["list", "methods", "tta"], terminal_width=200)
    assert listed.exit_code == 0, listed.output
    line = next(row for row in listed.output.splitlines() if "fake-halfway" in row)
    assert "fake-infobench-dist" in line and "weight=0.5" in line

    spec = write_spec({**TTA_SPEC, "methods": ["norm", {"name": "fake-halfway", "weight": 1.0}]})
    out = tmp_path / "out"
    result = cli.invoke(app, ["run", str(spec), "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = load_metrics([out / "outside"])
    assert stream_error(metrics, "fake-halfway") == stream_error(metrics, "norm")

    # the plug-in's module is part of the code its runs depend on
    config = {"task": "tta", "method": {"name": "fake-halfway", "params": {}}}
    before = provenance.code_digest(config)
    path = site / "fake_infobench_plugin.py"
    path.write_text(FAKE_PLUGIN + "\n# edited\n")
    assert provenance.code_digest(config) != before


def test_a_lookup_loads_entry_points_only_for_names_infobench_lacks(user_folder, tmp_path, monkeypatch):
    install(tmp_path, monkeypatch, "halfway = fake_infobench_lazy\n",
            {"fake_infobench_lazy.py": FAKE_PLUGIN.replace("fake-halfway", "fake-lazy")})
    registry.get("tta.method", "tent")
    assert "fake_infobench_lazy" not in sys.modules
    assert registry.get("tta.method", "fake-lazy").registered_name == "fake-lazy"
    assert "fake_infobench_lazy" in sys.modules


@pytest.mark.parametrize(("entry", "modules", "expected"), [
    ("gone = fake_infobench_missing\n", {}, "ModuleNotFoundError: No module named 'fake_infobench_missing'"),
    ("boom = fake_infobench_boom\n", {"fake_infobench_boom.py": "raise RuntimeError('no GPU here')\n"},
     "RuntimeError: no GPU here"),
    ("clash = fake_infobench_clash\n", {"fake_infobench_clash.py": FAKE_PLUGIN.replace("fake-halfway", "tent")},
     "tta.method 'tent' is a name infobench already uses"),
])
def test_a_broken_entry_point_is_named_with_its_distribution(user_folder, tmp_path, monkeypatch, entry, modules, expected):
    install(tmp_path, monkeypatch, entry, modules, dist="broken-infobench-dist")
    point = entry.split(" =")[0]
    with pytest.raises(RegistryError) as info:
        registry.get("tta.method", "not-a-method")
    message = str(info.value)
    assert f"entry point {point!r}" in message and "broken-infobench-dist 1.0" in message and expected in message
    assert registry.get("tta.method", "tent").registered_name == "tent"  # built-ins never need the entry points
    result = cli.invoke(app, ["list", "methods", "tta"])
    assert result.exit_code == 2 and "broken-infobench-dist" in result.output
    assert "Traceback" not in result.output


# ------------------------------------------------------------------------------ the example


def test_the_example_method_runs_from_its_folder(tmp_path, monkeypatch):
    """examples/my_tta_method run from its folder with --quick: the method's runs are recorded under
    its module:Class name, with diversity_weight 0 it is Tent exactly, and it adapts."""
    folder = REPO / "examples" / "my_tta_method"
    work_in(folder, monkeypatch)
    out = tmp_path / "out"
    try:
        result = cli.invoke(app, ["run", "spec.yaml", "--quick", "--out", str(out)])
    finally:
        forget_modules_under(folder)
    assert result.exit_code == 0, result.output
    runs = load_runs([out / "my_tta_method-quick"])
    assert set(runs["status"]) == {"done"}
    assert set(runs["method"]) == {"source", "tent", "my_tta:InfoMax"}
    metrics = load_metrics([out / "my_tta_method-quick"])
    final = metrics[(metrics["metric"] == "error") & (metrics["split"] == "stream") & metrics["step"].isna()]
    by_variant = dict(zip(final["variant"], final["value"]))
    assert by_variant["my_tta:InfoMax(diversity_weight=0)"] == by_variant["tent"]
    assert by_variant["my_tta:InfoMax"] < by_variant["source"] - 0.1
