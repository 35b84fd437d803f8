"""The trained-model cache: keys, hits and misses, integrity checks and cross-process locking."""

from __future__ import annotations

import logging
import multiprocessing
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from infobench.cache import cache_key, cache_root, cached_model, models_dir

KEY_PARTS = {
    "dataset": {"name": "digits", "params": {}},
    "model": {"name": "mlp", "width": 8},
    "train": {"epochs": 2, "lr": 0.001},
    "seed": 0,
    "role": "teacher",
}


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("INFOBENCH_CACHE", str(tmp_path / "cache"))


def _build() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(4, 3)


class CountingTrainer:
    """A ``train`` callable that shifts the weights (so trained != fresh) and counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, model: nn.Module) -> None:
        self.calls += 1
        with torch.no_grad():
            for p in model.parameters():
                p.add_(float(self.calls))


def _entry(suffix: str) -> Path:
    return models_dir() / f"{cache_key(**KEY_PARTS)}.{suffix}"


def test_cache_root_follows_env(monkeypatch, tmp_path):
    assert cache_root() == tmp_path / "cache"
    monkeypatch.delenv("INFOBENCH_CACHE")
    assert cache_root() == Path.home() / ".cache" / "infobench"


def test_key_is_stable_and_changes_with_every_part():
    key = cache_key(**KEY_PARTS)
    assert len(key) == 20 and set(key) <= set("0123456789abcdef")
    assert cache_key(**dict(reversed(list(KEY_PARTS.items())))) == key  # order does not matter
    variants = [
        {**KEY_PARTS, "dataset": {"name": "digits", "params": {"val_fraction": 0.2}}},
        {**KEY_PARTS, "model": {"name": "mlp", "width": 9}},
        {**KEY_PARTS, "train": {"epochs": 3, "lr": 0.001}},
        {**KEY_PARTS, "seed": 1},
        {**KEY_PARTS, "role": "source"},
        {**KEY_PARTS, "extra": "anything"},
    ]
    keys = {cache_key(**v) for v in variants}
    assert key not in keys and len(keys) == len(variants)


def test_key_accepts_pydantic_models():
    from infobench.models.train import TrainConfig

    cfg = TrainConfig(epochs=2)
    assert cache_key(train=cfg) == cache_key(train=cfg.model_dump(mode="json"))


def test_miss_then_hit(caplog):
    trainer = CountingTrainer()
    with caplog.at_level(logging.INFO, logger="infobench.cache"):
        first = cached_model(KEY_PARTS, _build, trainer)
        second = cached_model(KEY_PARTS, _build, trainer)
    assert trainer.calls == 1
    assert not first.training and not second.training
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(second.weight, _build().weight)  # the trained weights were loaded
    key = cache_key(**KEY_PARTS)
    assert f"cache miss {key} (teacher)" in caplog.text
    assert f"cache hit {key} (teacher)" in caplog.text
    assert _entry("json").exists() and _entry("sha256").exists()


def test_tampered_file_is_detected_and_retrained(caplog):
    trainer = CountingTrainer()
    cached_model(KEY_PARTS, _build, trainer)
    data = bytearray(_entry("pt").read_bytes())
    data[-10] ^= 0xFF
    _entry("pt").write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="infobench.cache"):
        model = cached_model(KEY_PARTS, _build, trainer)
    assert trainer.calls == 2
    assert "checksum" in caplog.text
    assert torch.equal(model.weight, _build().weight + 2.0)  # the retrained model, not the torn one
    cached_model(KEY_PARTS, _build, trainer)
    assert trainer.calls == 2  # the rewritten entry verifies again


def test_missing_checksum_counts_as_a_miss():
    trainer = CountingTrainer()
    cached_model(KEY_PARTS, _build, trainer)
    _entry("sha256").unlink()
    cached_model(KEY_PARTS, _build, trainer)
    assert trainer.calls == 2


def test_failed_training_stores_nothing():
    def failing(model: nn.Module) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cached_model(KEY_PARTS, _build, failing)
    assert not _entry("pt").exists()
    trainer = CountingTrainer()
    cached_model(KEY_PARTS, _build, trainer)
    assert trainer.calls == 1


# Spawned children import their target by module name, and test modules are not importable
# by name under pytest's importlib mode; the worker therefore lives in a module written to
# a folder on sys.path, which spawn passes on to the children.
WORKER_SOURCE = textwrap.dedent(
    '''
    import time

    import torch
    from torch import nn

    from infobench.cache import cached_model


    def build():
        torch.manual_seed(0)
        return nn.Linear(4, 3)


    def work(barrier, log_path, result_path, key_parts):
        def train(model):
            with open(log_path, "a") as f:
                f.write("trained\\n")
            time.sleep(1.0)  # long enough that the other process is surely waiting on the lock
            with torch.no_grad():
                model.weight.add_(1.0)

        barrier.wait()
        model = cached_model(key_parts, build, train)
        with open(result_path, "w") as f:
            f.write(repr(model.weight.sum().item()))
    '''
)


def test_two_processes_train_once(tmp_path, monkeypatch):
    worker_dir = tmp_path / "worker"
    worker_dir.mkdir()
    (worker_dir / "cache_test_worker.py").write_text(WORKER_SOURCE)
    monkeypatch.syspath_prepend(str(worker_dir))
    import cache_test_worker

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    log_path = tmp_path / "train.log"
    results = [tmp_path / f"result{i}.txt" for i in range(2)]
    procs = [
        ctx.Process(target=cache_test_worker.work, args=(barrier, str(log_path), str(r), KEY_PARTS))
        for r in results
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert log_path.read_text().splitlines() == ["trained"]
    assert results[0].read_text() == results[1].read_text()
