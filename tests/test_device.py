"""Where runs compute: --device and the spec's device:/precision:, recorded in the manifest;
CPU/GPU parity of whole runs (gpu marker: skipped without CUDA)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from tests_support import TTA_DIGITS
from typer.testing import CliRunner

from infobench import device as devices
from infobench.cli import app
from infobench.errors import InfobenchError, SpecError
from infobench.results import load_metrics
from infobench.runner import execute, plan
from infobench.spec import validate

TTA = {**TTA_DIGITS, "name": "dev-tta", "methods": ["source", "norm", "tent"]}

cli = CliRunner()


def test_device_names_are_checked_with_a_message():
    for good in ("auto", "cpu", "cuda", "cuda:1", "mps"):
        assert devices.check_name(good) == good
    for bad in ("gpu", "cuda:", "cuda:x", "CPU", "cuda:0 ", ""):
        with pytest.raises(InfobenchError, match="is not one of auto, cpu, cuda, cuda:N, mps"):
            devices.check_name(bad)


def test_auto_is_cpu_without_cuda_and_cuda_is_refused_there():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: auto resolves to it")
    assert devices.resolve("auto") == torch.device("cpu")
    with pytest.raises(InfobenchError, match="CUDA is not available here"):
        devices.resolve("cuda")


def test_run_with_a_missing_device_exits_2_before_any_run(write_spec, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    spec = write_spec({**copy.deepcopy(TTA), "methods": ["source"]})
    out = tmp_path / "out"
    result = cli.invoke(app, ["run", str(spec), "--out", str(out), "--device", "cuda"])
    assert result.exit_code == 2
    assert "CUDA is not available" in result.output
    assert not (out / "dev-tta").exists()  # nothing written before the sweep can run
    result = cli.invoke(app, ["run", str(spec), "--out", str(out), "--device", "gpu"])
    assert result.exit_code == 2 and "is not one of auto, cpu" in result.output


def test_spec_device_and_precision_are_validated():
    with pytest.raises(SpecError, match="device: expected auto, cpu"):
        validate({**copy.deepcopy(TTA), "device": "gpu0"})
    with pytest.raises(SpecError, match="precision: expected fp32, bf16 or fp16"):
        validate({**copy.deepcopy(TTA), "precision": "fp8"})


def test_precision_enters_the_run_identity_only_when_reduced():
    fp32 = validate(copy.deepcopy(TTA)).runs()
    assert all("precision" not in r.config for r in fp32)  # ids of fp32 runs stay what they were
    bf16 = validate({**copy.deepcopy(TTA), "precision": "bf16"}).runs()
    assert {r.config["precision"] for r in bf16} == {"bf16"}
    assert {r.run_id for r in fp32}.isdisjoint({r.run_id for r in bf16})


def test_reduced_precision_needs_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    spec = validate({**copy.deepcopy(TTA), "precision": "bf16"})
    with pytest.raises(InfobenchError, match="precision 'bf16' needs a CUDA device"):
        plan(spec, tmp_path, device="cpu")


def test_manifest_and_log_record_the_device(tmp_path):
    spec = validate({**copy.deepcopy(TTA), "methods": ["source"], "device": "cpu"})
    summary = execute(plan(spec, tmp_path))
    assert summary.statuses == {"done": 1}
    manifest = json.loads((tmp_path / "dev-tta" / "manifest.json").read_text())
    assert manifest["device_requested"] == "cpu" and manifest["device"] == "cpu"
    log = next((tmp_path / "dev-tta" / "logs").glob("*.log")).read_text()
    assert " on cpu at fp32" in log


def test_device_is_not_part_of_a_run_id(tmp_path):
    """A spec run on another device is the same experiment: its finished runs are not redone."""
    spec = validate({**copy.deepcopy(TTA), "methods": ["source"]})
    execute(plan(spec, tmp_path, device="cpu"))
    again = plan(validate({**copy.deepcopy(TTA), "methods": ["source"], "device": "auto"}), tmp_path)
    assert again.todo == []


def test_train_none_needs_a_checkpoint():
    with pytest.raises(SpecError, match="train: none uses the model as its checkpoint has it"):
        validate({**copy.deepcopy(TTA), "train": "none"})


@pytest.mark.gpu
def test_a_tta_sweep_gives_the_same_numbers_on_cpu_and_cuda(tmp_path):
    """The whole protocol (source training, stream, per-batch adaptation) on both devices: the
    online error of each method agrees within a few samples (cuDNN's convolutions sum in
    another order, so the trained source models differ in the last bits)."""
    spec = validate(copy.deepcopy(TTA))
    errors = {}
    for name in ("cpu", "cuda"):
        out = tmp_path / name
        summary = execute(plan(spec, out, device=name))
        assert summary.statuses == {"done": 3}
        m = load_metrics(out / "dev-tta")
        rows = m[(m.metric == "error") & (m.split == "stream") & m.step.isna()]
        errors[name] = rows.set_index("method")["value"].sort_index()
        manifest = json.loads((out / "dev-tta" / "manifest.json").read_text())
        assert manifest["device"].startswith(name)
    np.testing.assert_allclose(errors["cpu"].to_numpy(), errors["cuda"].to_numpy(), atol=0.02)


@pytest.mark.gpu
def test_bf16_runs_on_cuda_and_is_recorded(tmp_path):
    spec = validate({**copy.deepcopy(TTA), "precision": "bf16", "methods": ["tent"]})
    summary = execute(plan(spec, tmp_path, device="cuda"))
    assert summary.statuses == {"done": 1}
    log = next((tmp_path / "dev-tta" / "logs").glob("*.log")).read_text()
    assert "at bf16" in log
