"""Shared fixtures: an isolated model cache and small spec files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import yaml
from tests_support import TINY

SESSION_CACHE = Path(tempfile.mkdtemp(prefix="infobench-test-cache-"))


def pytest_configure(config):
    """Point the model cache at a folder of this test session before any fixture runs: module-scoped
    fixtures train models before the per-test ``isolated_cache`` applies, and must never write
    into the user's cache."""
    os.environ["INFOBENCH_CACHE"] = str(SESSION_CACHE)
    os.environ.pop("INFOBENCH_RETRAIN_SINCE", None)


def pytest_collection_modifyitems(config, items):
    """``gpu`` tests skip without CUDA, ``vision`` tests without a working torchvision, each
    saying why, so that a CPU-only run reports what it did not check."""
    gpu = [item for item in items if "gpu" in item.keywords]
    if gpu:
        import torch

        if not torch.cuda.is_available():
            reason = f"needs CUDA; torch {torch.__version__} sees no CUDA device here"
            for item in gpu:
                item.add_marker(pytest.mark.skip(reason=reason))
    vision = [item for item in items if "vision" in item.keywords]
    if vision:
        problem = vision_problem()
        if problem:
            for item in vision:
                item.add_marker(pytest.mark.skip(reason=problem))


def vision_problem() -> str | None:
    """Why torchvision cannot be used here (not installed, or built for another torch), or None."""
    try:
        import torchvision  # noqa: F401
    except Exception as err:  # an ImportError, or torchvision's own ops failing to load
        return f"needs the vision extra (pip install infobench[vision]): torchvision does not import ({err})"
    return None


def pytest_unconfigure(config):
    import shutil

    shutil.rmtree(SESSION_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tests run on one torch/BLAS thread: their models and arrays are tiny, and on a shared
    2-core machine extra threads only contend (the 12-bit IB network trains ~15x faster)."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test session trains into its own cache, never the user's."""
    monkeypatch.setenv("INFOBENCH_CACHE", str(SESSION_CACHE))
    return SESSION_CACHE


@pytest.fixture
def full_float32_on_cuda():
    """TF32 off for a CPU/CUDA parity test: the GPU side is compared as float32 arithmetic, not
    TF32's 10-bit mantissa (which Ampere and later use for matmuls and convolutions when allowed)."""
    import torch

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.fixture
def tiny_spec() -> dict:
    """A calibration spec that runs in about a second (2 seeds x 2 methods = 4 runs)."""
    import copy

    return {**copy.deepcopy(TINY), "seeds": [0, 1]}


@pytest.fixture
def write_spec(tmp_path):
    def write(data, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
        return path

    return write
