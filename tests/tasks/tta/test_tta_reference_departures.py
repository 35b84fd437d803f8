"""The documented departures of deyo, adanpc and rmt from their authors' code, pinned down."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from infobench import registry
from infobench.data.base import Split
from infobench.models.train import build_model
from infobench.tasks.tta.methods.base import SourceInfo


def small_cnn():
    return build_model({"name": "cnn2d", "width": 8}, (1, 8, 8), 10, seed=0).eval()


def source_split(n=40):
    rng = np.random.default_rng(0)
    return Split(rng.standard_normal((n, 1, 8, 8)).astype(np.float32), (np.arange(n) % 10).astype(np.int64))


def make(name, train=None, **params):
    cls = registry.get("tta.method", name)
    method = cls(cls.Params(**params))
    torch.manual_seed(0)
    method.setup(small_cnn(), SourceInfo(num_classes=10, train=train))
    return method


@pytest.mark.parametrize(("samples", "steps"), [(30, 1), (64, 1), (70, 2), (128, 2)])
def test_rmt_warm_up_runs_the_ceiling_of_samples_over_batch_steps(samples, steps):
    method = make("rmt", train=source_split(), warmup_samples=samples, source_batch_size=64)
    first = next(iter(method.model.parameters()))
    assert int(method.optimizer.state[first]["step"]) == steps  # the reference's floor: 0, 1, 1, 2


def test_adanpc_memory_is_the_normalised_source_features_and_nothing_else():
    train = source_split()
    method = make("adanpc", train=train)
    with torch.no_grad():
        expected = F.normalize(method.model.features(torch.from_numpy(train.x)), dim=1)
    assert method.memory.shape == expected.shape  # no extra (random, class-0) first row
    assert torch.allclose(method.memory, expected, atol=1e-6)
    assert torch.equal(method.labels, torch.from_numpy(train.y))


@pytest.mark.parametrize("shape", [(2, 1, 3, 3), (2, 3, 6, 10)])
def test_deyo_shuffle_keeps_any_image_size_even_below_the_grid(shape):
    # the reference's multiple below, (W // 4) * 4, is 0 for W = 3 and forces a square
    deyo = make("deyo")
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    y = deyo.destroy(x)
    assert y.shape == x.shape and bool(torch.isfinite(y).all())
