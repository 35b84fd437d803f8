"""Forward hooks record every layer exactly, leave the model unchanged, and fire only when asked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from infobench.models.train import TrainConfig, build_model
from infobench.tasks.ib.recording import (
    ActivationRecorder,
    Recording,
    record_epochs,
    recorded_layers,
    train_and_record,
)
from infobench.tasks.ib.tishby_data import Tishby12, all_inputs


def tishby_net(activation: str = "tanh", seed: int = 0):
    return build_model({"name": "ib_mlp", "activation": activation}, (12,), 2, seed=seed)


def test_log_spaced_epochs_include_init_and_end():
    epochs = record_epochs(8000, 50, "log")
    assert epochs[0] == 0 and epochs[-1] == 8000
    assert epochs == sorted(set(epochs))
    ratios = np.diff(np.log(epochs[-20:]))
    assert np.allclose(ratios, ratios.mean(), rtol=0.1)  # equal steps in log epoch at the tail
    assert record_epochs(10, 11, "linear") == list(range(11))
    assert record_epochs(0, 5) == [0]
    with pytest.raises(ValueError, match="spacing"):
        record_epochs(10, 5, "cubic")


def test_network_is_12_10_7_5_4_3_2_with_the_chosen_activation():
    model = tishby_net("relu")
    names = [name for name, _ in recorded_layers(model)]
    assert names == ["layer1", "layer2", "layer3", "layer4", "layer5", "output"]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(12, 10), (10, 7), (7, 5), (5, 4), (4, 3), (3, 2)]
    assert all(isinstance(m, torch.nn.ReLU) for _, m in recorded_layers(model)[:-1])
    # the paper's initialisation: zero biases, weights within 2 / sqrt(fan_in)
    for m in linears:
        assert torch.all(m.bias == 0) and m.weight.abs().max() <= 2 / m.in_features**0.5


def test_recorded_layers_equal_a_hand_computed_forward_pass():
    model = tishby_net("tanh")
    x = all_inputs()
    with ActivationRecorder(model, batch_size=1000) as recorder:
        acts = recorder.record(x)
    h = torch.from_numpy(x)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for i, lin in enumerate(linears[:-1], 1):
            h = torch.tanh(lin(h))
            np.testing.assert_allclose(acts[f"layer{i}"], h.numpy(), atol=1e-6)
        probs = torch.softmax(linears[-1](h), dim=1).numpy()
    np.testing.assert_allclose(acts["output"], probs, atol=1e-6)
    np.testing.assert_allclose(acts["output"].sum(1), 1.0, atol=1e-6)


def test_hooks_leave_the_model_unchanged_and_are_removed():
    model = tishby_net("tanh")
    x = torch.from_numpy(all_inputs()[:64])
    before = model(x).detach().clone()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with ActivationRecorder(model) as recorder:
        recorder.record(all_inputs()[:64])
        assert torch.equal(model(x), before)  # a training-time forward is not recorded or changed
        assert recorder._current == {}
    assert all(not m._forward_hooks for m in model.modules())
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    with pytest.raises(RuntimeError, match="with"):
        recorder.record(all_inputs()[:4])


def test_training_records_the_asked_epochs_and_round_trips_through_bytes():
    data = Tishby12().load(0)
    epochs = [0, 1, 3]
    rec = train_and_record(data, {"name": "ib_mlp"}, TrainConfig(epochs=3, lr=4e-4, batch_size=256).model_dump(),
                           seed=0, epochs=epochs)
    assert rec.epochs.tolist() == epochs
    assert rec.layers["layer1"].shape == (3, 4096, 10) and rec.layers["output"].shape == (3, 4096, 2)
    assert (rec.part == 0).sum() == 3277 and (rec.part == 2).sum() == 819
    assert np.isnan(rec.loss[0]) and np.isfinite(rec.loss[1:]).all()
    assert not np.array_equal(rec.layers["layer1"][0], rec.layers["layer1"][-1])  # training moved the weights
    again = Recording.from_bytes(rec.to_bytes())
    for name, values in rec.layers.items():
        np.testing.assert_array_equal(again.layers[name], values)
    assert again.epoch_seconds == rec.epoch_seconds and again.train_accuracy.tolist() == rec.train_accuracy.tolist()


def test_l2_penalty_shrinks_the_weights():
    data = Tishby12().load(0)
    cfg = TrainConfig(epochs=3, lr=0.05, batch_size=256).model_dump()

    def weight_norm(l2: float) -> float:
        rec = train_and_record(data, {"name": "ib_mlp"}, cfg, seed=0, epochs=[3], l2=l2)
        return float(np.abs(rec.layers["layer1"]).mean())

    # layer1 = tanh(W1 x + b1): a strong weight penalty pulls the activations towards 0
    assert weight_norm(0.05) < 0.8 * weight_norm(0.0)


def test_any_classifier_with_activation_modules_is_recorded():
    """The core ``mlp`` on the 8x8 digits: its two relu layers and the softmax output."""
    from infobench.tasks.common import load_data

    data = load_data({"name": "digits"}, seed=0)
    rec = train_and_record(data, {"name": "mlp", "width": 16, "depth": 2}, TrainConfig(epochs=1).model_dump(),
                           seed=0, epochs=[0, 1], eval_set="test", max_eval=100)
    assert list(rec.layers) == ["layer1", "layer2", "output"]
    assert rec.layers["layer2"].shape == (2, 100, 16) and rec.x.shape == (100, 64)
    assert (rec.layers["layer1"] >= 0).all()  # relu outputs
    assert (rec.part == 2).all() and np.isnan(rec.train_accuracy).all() and np.isfinite(rec.test_accuracy).all()
