"""Training with a calibration-aware loss: cache keys include the loss, CaPE keeps its best epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from infobench.models.train import TrainConfig, build_model, predict_logits
from infobench.tasks.calibration.losses.base import train_with_loss
from infobench.tasks.calibration.losses.cape import CaPE
from infobench.tasks.calibration.task import base_model
from infobench.tasks.common import load_data

CFG = {"dataset": {"name": "digits"}, "model": {"name": "mlp", "width": 16},
       "train": {"epochs": 2, "lr": 0.01, "batch_size": 64}}


@pytest.fixture(scope="module")
def data():
    return load_data(CFG["dataset"], 0)


def first_weight(model) -> np.ndarray:
    return next(model.parameters()).detach().numpy().copy()


def test_each_loss_gets_its_own_cached_model(data):
    ce = base_model(data, {**CFG, "loss": {"name": "ce", "params": {}}}, 0)
    focal = base_model(data, {**CFG, "loss": {"name": "focal", "params": {"gamma": 3.0}}}, 0)
    aldr = base_model(data, {**CFG, "loss": {"name": "aldr_kl", "params": {}}}, 0)
    assert not np.allclose(first_weight(ce), first_weight(focal))
    assert not np.allclose(first_weight(ce), first_weight(aldr))
    # a second request is a cache hit: the very same weights
    again = base_model(data, {**CFG, "loss": {"name": "aldr_kl", "params": {}}}, 0)
    np.testing.assert_array_equal(first_weight(again), first_weight(aldr))
    # no loss block is the default cross-entropy, sharing its cache entry
    np.testing.assert_array_equal(first_weight(base_model(data, CFG, 0)), first_weight(ce))


def test_cape_keeps_the_epoch_with_the_best_validation_nll(data):
    model = build_model(CFG["model"], data.input_shape, data.num_classes, seed=0)
    cfg = TrainConfig(epochs=4, lr=0.05, batch_size=64)
    history = train_with_loss(model, data, cfg, 0, CaPE(CaPE.Params(warmup_fraction=0.25)))
    val_logits = torch.from_numpy(predict_logits(model, data.val.x))
    final = float(F.cross_entropy(val_logits, torch.from_numpy(data.val.y)))
    assert final == pytest.approx(min(row["val_nll"] for row in history), rel=1e-5)
