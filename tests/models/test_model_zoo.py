"""Properties every model plugin keeps, and the paper architectures the defaults reproduce."""

from __future__ import annotations

import pytest
import torch
from pydantic import BaseModel

from infobench import registry
from infobench.errors import RegistryError, SpecError
from infobench.models.base import Classifier
from infobench.models.layers import downsample_plan, make_activation
from infobench.models.train import build_model

MODEL_NAMES = ("linear", "mlp", "cnn1d", "cnn2d", "resnet")

# (model config, input shape) pairs each model must handle.
CASES = [
    ({"name": "linear"}, (1, 8, 8)),
    ({"name": "linear"}, (3, 32, 32)),
    ({"name": "linear"}, (1, 40)),
    ({"name": "mlp"}, (1, 8, 8)),
    ({"name": "mlp"}, (3, 32, 32)),
    ({"name": "mlp", "batchnorm": True, "dropout": 0.2, "activation": "tanh"}, (1, 40)),
    ({"name": "cnn1d"}, (1, 40)),
    ({"name": "cnn1d"}, (40,)),
    ({"name": "cnn1d", "batchnorm": True, "activation": "elu"}, (2, 40)),
    ({"name": "cnn2d"}, (1, 8, 8)),
    ({"name": "cnn2d"}, (3, 32, 32)),
    ({"name": "cnn2d", "depth": 4, "batchnorm": False}, (1, 8, 8)),
    ({"name": "resnet"}, (1, 8, 8)),
    ({"name": "resnet"}, (3, 32, 32)),
    ({"name": "resnet", "blocks": [2, 1], "width": 8}, (3, 32, 32)),
]


def _param_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("cfg", "shape"), CASES, ids=lambda v: str(v))
def test_forward_is_head_of_features(cfg, shape):
    model = build_model(cfg, shape, num_classes=7, seed=0).eval()
    x = torch.randn(5, *shape)
    with torch.no_grad():
        feats = model.features(x)
        logits = model(x)
    assert isinstance(model, Classifier)
    assert isinstance(model.head, torch.nn.Linear)
    assert feats.shape == (5, model.feature_dim)
    assert model.head.in_features == model.feature_dim
    assert logits.shape == (5, 7)
    torch.testing.assert_close(logits, model.head(feats))


@pytest.mark.parametrize(("cfg", "shape"), [c for c in CASES if c[0]["name"] in ("cnn2d", "resnet")])
def test_batchnorm_models_train_with_backward(cfg, shape):
    model = build_model(cfg, shape, num_classes=3, seed=0).train()
    model(torch.randn(4, *shape)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_plugin_metadata(name):
    cls = registry.get("model", name)
    assert issubclass(cls, Classifier)
    assert registry.describe(cls)
    assert issubclass(cls.Params, BaseModel)
    assert cls.Params.model_config.get("extra") == "forbid"
    for field_name, field in cls.Params.model_fields.items():
        assert field.description, f"{name}.{field_name} has no description"
    cls.Params()  # every field has a default


def test_all_registered_models_are_covered():
    assert set(MODEL_NAMES) <= set(registry.names("model"))


def test_paper_defaults_mnist1d():
    # Greydanus (2020): MLP 40-100-100-10 and ConvBase with 25 channels; their parameter counts.
    mlp = build_model({"name": "mlp"}, (40,), 10)
    assert mlp.feature_dim == 100
    assert _param_count(mlp) == 40 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10
    cnn = build_model({"name": "cnn1d"}, (1, 40), 10)
    assert cnn.feature_dim == 25 * 4
    assert _param_count(cnn) == (1 * 25 * 5 + 25) + 2 * (25 * 25 * 5 + 25) + (100 * 10 + 10)


def test_linear_features_are_the_flattened_input():
    model = build_model({"name": "linear"}, (3, 4, 4), 2)
    x = torch.randn(2, 3, 4, 4)
    assert model.feature_dim == 48
    torch.testing.assert_close(model.features(x), x.reshape(2, -1))


def test_mlp_depth_zero_is_logistic_regression():
    model = build_model({"name": "mlp", "depth": 0}, (1, 8, 8), 10)
    assert model.feature_dim == 64
    assert _param_count(model) == 64 * 10 + 10


def test_image_models_pool_to_the_same_features_for_both_sizes():
    for name, expected in (("cnn2d", 64), ("resnet", 64)):
        small = build_model({"name": name}, (1, 8, 8), 10)
        large = build_model({"name": name}, (3, 32, 32), 10)
        assert small.feature_dim == large.feature_dim == expected


def test_downsample_plan_stops_at_two_pixels():
    assert downsample_plan(8, 3) == [True, True, False]
    assert downsample_plan(32, 2) == [True, True]
    assert downsample_plan(2, 2) == [False, False]


@pytest.mark.parametrize("name", ["relu", "tanh", "elu", "softsign", "sigmoid"])
def test_each_activation_builds(name):
    act = make_activation(name)
    assert act(torch.zeros(3)).shape == (3,)
    assert make_activation(name) is not act  # fresh module each call, no shared state


def test_unknown_activation_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown activation 'rleu'.*'relu'"):
        make_activation("rleu")
    with pytest.raises(SpecError, match="activation"):
        build_model({"name": "mlp", "activation": "swish"}, (40,), 10)


def test_build_model_forms_and_errors():
    flat = build_model({"name": "mlp", "width": 20}, (40,), 10, seed=3)
    nested = build_model({"name": "mlp", "params": {"width": 20}}, (40,), 10, seed=3)
    for a, b in zip(flat.state_dict().values(), nested.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    assert flat.params.width == 20
    with pytest.raises(SpecError, match="wdith"):
        build_model({"name": "mlp", "wdith": 20}, (40,), 10)
    with pytest.raises(SpecError, match="depth"):
        build_model({"name": "mlp", "depth": -1}, (40,), 10)
    with pytest.raises(SpecError, match="not both"):
        build_model({"name": "mlp", "params": {}, "width": 3}, (40,), 10)
    with pytest.raises(RegistryError, match="did you mean 'mlp'"):
        build_model({"name": "mpl"}, (40,), 10)


def test_build_model_seed_fixes_init_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a = build_model({"name": "resnet"}, (1, 8, 8), 10, seed=1)
    b = build_model({"name": "resnet"}, (1, 8, 8), 10, seed=1)
    c = build_model({"name": "resnet"}, (1, 8, 8), 10, seed=2)
    assert torch.equal(torch.get_rng_state(), state)
    torch.testing.assert_close(a.head.weight, b.head.weight)
    assert not torch.equal(a.head.weight, c.head.weight)


def test_bad_input_shapes_are_rejected():
    with pytest.raises(ValueError, match="too short"):
        build_model({"name": "cnn1d"}, (1, 12), 10)
    with pytest.raises(ValueError, match="1-D signals"):
        build_model({"name": "cnn1d"}, (1, 8, 8), 10)
    with pytest.raises(ValueError, match="images"):
        build_model({"name": "cnn2d"}, (40,), 10)
