"""The training loop, inference helpers and their determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from infobench.data.base import Split
from infobench.errors import DivergedError
from infobench.models.train import (
    TrainConfig,
    accuracy,
    build_model,
    extract_features,
    predict_logits,
    train_classifier,
)
from infobench.progress import use_progress


@pytest.fixture(scope="module")
def digits() -> Split:
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    return Split(x, data.target.astype(np.int64))


def _subset(split: Split, n: int) -> Split:
    return Split(split.x[:n], split.y[:n])


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_mlp_learns_digits(digits):
    model = build_model({"name": "mlp"}, (1, 8, 8), 10, seed=0)
    history = train_classifier(model, digits, TrainConfig(epochs=10, lr=3e-3), seed=0)
    assert [row["epoch"] for row in history] == list(range(1, 11))
    assert history[-1]["train_accuracy"] > 0.9
    assert history[-1]["loss"] < history[0]["loss"]
    assert accuracy(model, digits) > 0.9
    assert not model.training


def test_same_seed_same_weights_different_seed_different(digits):
    small = _subset(digits, 300)
    cfg = TrainConfig(epochs=2, batch_size=32)
    model_cfg = {"name": "mlp", "width": 32, "dropout": 0.3}  # dropout draws random numbers too

    def trained(seed: int) -> dict[str, torch.Tensor]:
        model = build_model(model_cfg, (1, 8, 8), 10, seed=0)
        train_classifier(model, small, cfg, seed=seed)
        return _state(model)

    rng_before = torch.get_rng_state()
    a, b, c = trained(1), trained(1), trained(2)
    assert torch.equal(torch.get_rng_state(), rng_before)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert any(not torch.equal(a[key], c[key]) for key in a)


def test_nan_loss_raises_diverged(digits):
    small = _subset(digits, 64)
    model = build_model({"name": "linear"}, (1, 8, 8), 10, seed=0)

    batches_seen = 0

    def nan_after_first_epoch(logits, y):
        nonlocal batches_seen
        batches_seen += 1
        loss = torch.nn.functional.cross_entropy(logits, y)
        return loss * float("nan") if batches_seen > 2 else loss

    cfg = TrainConfig(epochs=3, batch_size=32)  # two batches per epoch: nan from epoch 2 on
    with pytest.raises(DivergedError, match="loss became nan at epoch 2"):
        train_classifier(model, small, cfg, seed=0, loss_fn=nan_after_first_epoch)


def test_huge_learning_rate_diverges(digits):
    model = build_model({"name": "mlp"}, (1, 8, 8), 10, seed=0)
    cfg = TrainConfig(epochs=3, lr=1e10, optimizer="sgd")
    with pytest.raises(DivergedError, match=r"loss became (nan|inf) at epoch"):
        train_classifier(model, _subset(digits, 512), cfg, seed=0)


def test_val_accuracy_and_epoch_hook(digits):
    train, val = _subset(digits, 256), Split(digits.x[256:400], digits.y[256:400])
    seen = []

    def hook(epoch, model, row):
        seen.append((epoch, model.training))
        row["feature_norm"] = float(np.linalg.norm(extract_features(model, val.x[:8])))

    model = build_model({"name": "mlp", "dropout": 0.5}, (1, 8, 8), 10, seed=0)
    history = train_classifier(model, train, TrainConfig(epochs=2), seed=0, val=val, on_epoch=hook)
    assert [e for e, _ in seen] == [1, 2]
    assert all(training for _, training in seen)  # the hook's inference did not flip the mode
    for row in history:
        assert set(row) == {"epoch", "loss", "train_accuracy", "val_accuracy", "feature_norm"}
        assert 0.0 <= row["val_accuracy"] <= 1.0


@pytest.mark.parametrize(
    "cfg",
    [
        TrainConfig(epochs=2, optimizer="sgd", lr=0.05, schedule="cosine", weight_decay=1e-4),
        TrainConfig(epochs=2, schedule="cosine"),
    ],
)
def test_optimizer_and_schedule_variants(digits, cfg):
    model = build_model({"name": "mlp", "width": 32}, (1, 8, 8), 10, seed=0)
    history = train_classifier(model, _subset(digits, 256), cfg, seed=0)
    assert len(history) == 2
    assert np.isfinite(history[-1]["loss"])


def test_batchnorm_survives_a_trailing_batch_of_one(digits):
    model = build_model({"name": "cnn2d", "width": 4}, (1, 8, 8), 10, seed=0)
    history = train_classifier(model, _subset(digits, 33), TrainConfig(epochs=1, batch_size=16), 0)
    assert len(history) == 1


def test_training_loop_reports_progress(digits):
    calls = []

    class FakeProgress:
        def add_task(self, description, total):
            calls.append(("add", description, total))
            return 0

        def advance(self, task):
            calls.append(("advance",))

        def remove_task(self, task):
            calls.append(("remove",))

    model = build_model({"name": "linear"}, (1, 8, 8), 10, seed=0)
    with use_progress(FakeProgress()):
        train_classifier(model, _subset(digits, 64), TrainConfig(epochs=3), seed=0)
    assert calls[0] == ("add", "  train", 3)
    assert calls.count(("advance",)) == 3
    assert calls[-1] == ("remove",)


def test_train_config_rejects_unknown_and_invalid_fields():
    with pytest.raises(ValueError):
        TrainConfig(epoch=3)
    with pytest.raises(ValueError):
        TrainConfig(optimizer="rmsprop")
    assert TrainConfig().model_dump() == {
        "epochs": 30, "lr": 1e-3, "batch_size": 128, "optimizer": "adam",
        "weight_decay": 0.0, "momentum": 0.9, "schedule": "none", "milestones": [], "gamma": 0.1,
    }


def test_predict_logits_and_features(digits):
    model = build_model({"name": "mlp", "dropout": 0.5, "batchnorm": True}, (1, 8, 8), 10, seed=0)
    model.train()
    x = digits.x[:50]
    logits = predict_logits(model, x)
    assert logits.dtype == np.float32 and logits.shape == (50, 10)
    np.testing.assert_allclose(predict_logits(model, x, batch_size=7), logits, rtol=1e-5, atol=1e-6)
    assert model.training  # mode restored
    feats = extract_features(model, x, batch_size=16)
    assert feats.dtype == np.float32 and feats.shape == (50, model.feature_dim)
    head = model.head.weight.detach().numpy() @ feats.T + model.head.bias.detach().numpy()[:, None]
    np.testing.assert_allclose(head.T, logits, rtol=1e-4, atol=1e-5)
    assert predict_logits(model, x[:0]).shape == (0, 10)
    assert extract_features(model, x[:0]).shape == (0, model.feature_dim)


def test_step_schedule_drops_the_rate_at_each_milestone():
    """CRD/DKD's CIFAR recipe: the rate times gamma after each milestone epoch."""
    import torch

    from infobench.models.train import TrainConfig, make_scheduler

    cfg = TrainConfig(epochs=6, lr=0.05, optimizer="sgd", schedule="step", milestones=[2, 4], gamma=0.1)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    scheduler = make_scheduler(optimizer, cfg)
    rates = []
    for _ in range(cfg.epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([0.05, 0.05, 0.005, 0.005, 0.0005, 0.0005])
    with pytest.raises(ValueError, match="schedule: step needs milestones"):
        TrainConfig(schedule="step")
