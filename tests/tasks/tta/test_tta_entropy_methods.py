"""Entropy-minimisation methods: tent, eta, eata, sar, woc (and the shared base class)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from infobench import registry
from infobench.tasks.tta.common import entropy, use_batch_stats, woc_mask
from infobench.tasks.tta.methods.base import SourceInfo


def make(name: str, model, train=None, **params):
    cls = registry.get("tta.method", name)
    method = cls(cls.Params(**params))
    method.setup(copy.deepcopy(model), SourceInfo(num_classes=10, train=train))
    return method


def stream(digits_c, domain="contrast@5"):
    return torch.as_tensor(digits_c.domains[domain].x).split(64)


def bn_affine(model):
    return torch.cat([p.detach().flatten() for n, p in model.named_parameters() if n.endswith(("1.weight", "1.bias"))
                      and p.dim() == 1])


def test_entropy_by_hand():
    logits = torch.tensor([[0.0, 0.0], [100.0, 0.0]])
    assert torch.allclose(entropy(logits), torch.tensor([math.log(2), 0.0]))


def test_tent_lowers_mean_entropy_on_the_stream(source_model, digits_c):
    batches = stream(digits_c)
    reference = copy.deepcopy(source_model)
    use_batch_stats(reference)
    tent = make("tent", source_model)
    with torch.no_grad():
        before = torch.cat([entropy(reference(xb)) for xb in batches]).mean()
    for _ in range(3):
        for xb in batches:
            tent.adapt_and_predict(xb)
    with torch.no_grad():
        after = torch.cat([entropy(tent.model(xb)) for xb in batches]).mean()
    assert after < before - 0.05


def test_tent_updates_only_bn_affine_parameters_and_reset_restores_them(source_model, digits_c):
    tent = make("tent", source_model)
    start = copy.deepcopy(tent.model.state_dict())
    for xb in stream(digits_c):
        tent.adapt_and_predict(xb)
    now = tent.model.state_dict()
    changed = {k for k in start if not torch.equal(start[k], now[k])}
    bn_names = {n for n, m in tent.model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert changed and all(k.rsplit(".", 1)[0] in bn_names and k.endswith(("weight", "bias")) for k in changed)
    tent.reset()
    assert all(torch.equal(start[k], v) for k, v in tent.model.state_dict().items())


def test_eta_weights_are_exp_of_e0_minus_entropy_on_reliable_samples_only(source_model):
    eta = make("eta", source_model)
    logits = torch.tensor([[10.0] + [0.0] * 9, [0.0] * 10, [3.0, 3.0] + [0.0] * 8])
    ent = entropy(logits)
    e0 = 0.4 * math.log(10)
    weights = eta.sample_weights(logits, ent, torch.zeros(3, 1, 8, 8))
    assert ent[1] > e0 and ent[2] > e0 and ent[0] < e0
    assert torch.allclose(weights, torch.tensor([math.exp(e0 - float(ent[0])), 0.0, 0.0]))


def test_eta_redundancy_filter_drops_a_repeated_prediction(source_model):
    eta = make("eta", source_model)
    logits = torch.tensor([[10.0] + [0.0] * 9] * 4)
    first = eta.sample_weights(logits, entropy(logits), torch.zeros(4, 1, 8, 8))
    assert (first > 0).all()  # no moving average yet: only the entropy filter applies
    again = eta.sample_weights(logits, entropy(logits), torch.zeros(4, 1, 8, 8))
    assert (again == 0).all()  # cosine 1 with the average prediction >= d_margin
    other = torch.tensor([[0.0] * 9 + [10.0]])
    assert eta.sample_weights(other, entropy(other), torch.zeros(1, 1, 8, 8)) > 0


def test_no_selected_sample_means_no_update_and_no_nan(source_model, digits_c):
    eta = make("eta", source_model, entropy_factor=1e-9)  # E0 ~ 0: nothing is reliable
    before = bn_affine(eta.model)
    for xb in stream(digits_c):
        logits = eta.adapt_and_predict(xb)
        assert torch.isfinite(logits).all() and eta.batch_stats["kept"] == 0.0
    assert torch.equal(before, bn_affine(eta.model))


def test_woc_mask_by_hand():
    original = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    adapted = torch.tensor([[3.0, 0.0], [0.0, 0.0]])
    assert woc_mask(original, adapted).tolist() == [True, False]
    assert woc_mask(original, original).all()  # an unchanged model keeps everything


def test_woc_never_updates_on_an_empty_selection(source_model, digits_c):
    woc = make("woc", source_model)
    with torch.no_grad():  # the adapted head now ranks the original prediction last
        woc.model.head.weight.neg_()
        woc.model.head.bias.neg_()
    before = bn_affine(woc.model)
    for xb in stream(digits_c):
        logits = woc.adapt_and_predict(xb)
        assert torch.isfinite(logits).all() and woc.batch_stats["kept"] == 0.0
    assert torch.equal(before, bn_affine(woc.model))
    fresh = make("woc", source_model)
    fresh.adapt_and_predict(stream(digits_c)[0])
    assert fresh.batch_stats["kept"] == 1.0  # the first batch: adapted == original


def test_tent_with_woc_keeps_no_more_than_tent(source_model, digits_c):
    tent = make("tent", source_model, woc=True)
    kept = []
    for xb in stream(digits_c, "defocus_blur@5"):
        tent.adapt_and_predict(xb)
        kept.append(tent.batch_stats["kept"])
    assert kept[0] == 1.0 and min(kept) < 1.0


def test_eata_fisher_penalty_is_zero_at_source_and_anchors_the_parameters(source_model, digits_c):
    eata = make("eata", source_model, train=digits_c.train, fisher_size=256)
    assert all((f >= 0).all() for f in eata.fisher) and any((f > 0).any() for f in eata.fisher)
    assert float(eata.regulariser().detach()) == 0.0
    free = make("eata", source_model, train=digits_c.train, fisher_size=256, fisher_alpha=0.0)
    anchored = make("eata", source_model, train=digits_c.train, fisher_size=256, fisher_alpha=1e6)
    start = bn_affine(free.model)
    for xb in stream(digits_c, "defocus_blur@5"):
        free.adapt_and_predict(xb)
        anchored.adapt_and_predict(xb)
    assert (bn_affine(anchored.model) - start).norm() < (bn_affine(free.model) - start).norm()
    with pytest.raises(ValueError, match="needs source samples"):
        make("eata", source_model)


def test_sar_resets_when_the_loss_average_collapses(source_model, digits_c):
    sar = make("sar", source_model, reset_constant=100.0)  # any loss is below: reset every step
    start = bn_affine(sar.model)
    sar.adapt_and_predict(stream(digits_c)[0])
    assert sar.batch_stats["reset"] == 1.0 and torch.equal(start, bn_affine(sar.model))
    keep = make("sar", source_model, reset_constant=0.0)
    keep.adapt_and_predict(stream(digits_c)[0])
    assert keep.batch_stats["reset"] == 0.0
    assert keep.batch_stats["kept"] == 0.0 or not torch.equal(start, bn_affine(keep.model))
