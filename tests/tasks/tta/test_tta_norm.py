"""Normalisation methods: norm (Schneider et al. 2020) and alpha_bn (You et al. 2021)."""

from __future__ import annotations

import copy

import pytest
import torch

from infobench import registry
from infobench.tasks.tta.common import bn_modules
from infobench.tasks.tta.methods.base import SourceInfo


def make(name: str, model, **params):
    cls = registry.get("tta.method", name)
    method = cls(cls.Params(**params))
    method.setup(copy.deepcopy(model), SourceInfo(num_classes=10))
    return method


def batch(digits_c, domain="defocus_blur@5", n=64):
    return torch.as_tensor(digits_c.domains[domain].x[:n])


def test_norm_changes_nothing_when_batch_stats_equal_source_stats(source_model, digits_c):
    x = batch(digits_c)
    # record each BN layer's input statistics under test-batch normalisation ...
    norm = make("norm", source_model)
    seen = []
    hooks = [m.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0])) for m in norm.model.modules()
             if type(m).__name__ == "MixedBatchNorm"]
    with torch.no_grad():
        adapted = norm.adapt_and_predict(x)
    for h in hooks:
        h.remove()
    # ... and make them the source model's running statistics
    model = copy.deepcopy(source_model)
    for bn, inp in zip(bn_modules(model), seen):
        var, mean = torch.var_mean(inp, dim=[0, 2, 3], unbiased=False)
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
    with torch.no_grad():
        assert torch.allclose(model(x), adapted, atol=1e-5)
    with torch.no_grad():  # and on the original source model the two differ under shift
        assert not torch.allclose(source_model(x), adapted, atol=1e-2)


def test_norm_prior_strength_interpolates_between_test_and_source(source_model, digits_c):
    x = batch(digits_c)
    with torch.no_grad():
        source = source_model(x)
        pure = make("norm", source_model).adapt_and_predict(x)
        huge_prior = make("norm", source_model, prior_strength=1e9).adapt_and_predict(x)
        zero_weight = make("alpha_bn", source_model, test_weight=0.0).adapt_and_predict(x)
        full_weight = make("alpha_bn", source_model, test_weight=1.0).adapt_and_predict(x)
        # N = n gives the test batch a weight of 1/2, as alpha_bn with test_weight 0.5
        half = make("norm", source_model, prior_strength=len(x)).adapt_and_predict(x)
        half_alpha = make("alpha_bn", source_model, test_weight=0.5).adapt_and_predict(x)
    assert torch.allclose(huge_prior, source, atol=1e-4)
    assert torch.allclose(zero_weight, source, atol=1e-5)
    assert torch.allclose(full_weight, pure, atol=1e-5)
    assert torch.allclose(half, half_alpha, atol=1e-5)


def test_norm_recovers_accuracy_on_a_severe_corruption(source_model, digits_c):
    split = digits_c.domains["defocus_blur@5"]
    x, y = torch.as_tensor(split.x), torch.as_tensor(split.y)
    norm = make("norm", source_model)
    with torch.no_grad():
        src_acc = (source_model(x).argmax(1) == y).float().mean()
        norm_acc = torch.cat([norm.adapt_and_predict(xb) for xb in x.split(64)]).argmax(1).eq(y).float().mean()
    assert norm_acc > src_acc + 0.1


def test_source_and_norm_never_change_the_weights(source_model, digits_c):
    for name in ("source", "norm", "alpha_bn"):
        method = make(name, source_model)
        before = copy.deepcopy(method.model.state_dict())
        for xb in batch(digits_c, n=192).split(64):
            method.adapt_and_predict(xb)
        after = method.model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_model_without_batchnorm_is_refused_by_name(digits_c):
    from infobench.errors import InfobenchError
    from infobench.models.train import build_model

    mlp = build_model({"name": "mlp", "width": 8}, digits_c.input_shape, 10, seed=0)
    for name in ("norm", "tent"):
        with pytest.raises(InfobenchError, match=f"{name}.*has none"):
            make(name, mlp)


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_mixed_bn_fast_path_equals_the_differentiable_one(weight):
    from infobench.tasks.tta.common import MixedBatchNorm

    gen = torch.Generator().manual_seed(0)
    bn = torch.nn.BatchNorm2d(4).eval()
    bn.running_mean.normal_(generator=gen)
    bn.running_var.uniform_(0.5, 2.0, generator=gen)
    x = torch.randn(16, 4, 5, 5, generator=gen) * 3 + 1
    layer = MixedBatchNorm(bn, test_weight=weight)
    with torch.inference_mode():
        fast = layer(x)
    graph = layer(x.clone().requires_grad_(True))
    assert torch.allclose(fast, graph.detach(), atol=1e-5)
    if weight == 0.0:  # the source model's normalisation
        with torch.inference_mode():
            assert torch.allclose(fast, bn(x), atol=1e-6)
