"""Properties from the papers of deyo, adanpc, rmt, sfda_prior and upl, on a small trained CNN."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from infobench import registry
from infobench.errors import InfobenchError
from infobench.tasks.tta.common import bn_modules, entropy
from infobench.tasks.tta.methods.base import SourceInfo
from infobench.tasks.tta.methods.deyo import plpd
from infobench.tasks.tta.methods.rmt import supervised_contrastive, symmetric_cross_entropy
from infobench.tasks.tta.methods.sfda_prior import prior_kl
from infobench.tasks.tta.methods.upl import confident_pseudo_labels


def make(name, model, train=None, **params):
    cls = registry.get("tta.method", name)
    method = cls(cls.Params(**params))
    torch.manual_seed(0)
    method.setup(copy.deepcopy(model), SourceInfo(num_classes=10, train=train))
    return method


def batch(digits_c, domain="gaussian_noise@5", n=64, start=0):
    return torch.as_tensor(digits_c.domains[domain].x[start:start + n])


def bn_affine(method):
    return torch.cat([torch.cat([m.weight.detach().flatten(), m.bias.detach().flatten()])
                      for m in bn_modules(method.model)])


# ---------------------------------------------------------------- deyo


def test_plpd_is_the_drop_of_the_predicted_class_probability():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]))
    destroyed = torch.log(torch.tensor([[0.4, 0.4, 0.2], [0.1, 0.1, 0.8]]))
    assert torch.allclose(plpd(logits, destroyed), torch.tensor([0.3, -0.2]), atol=1e-6)
    assert torch.equal(plpd(logits, logits), torch.zeros(2))


def test_deyo_plpd_is_zero_and_nothing_is_updated_when_the_transform_changes_nothing(source_model, digits_c):
    deyo = make("deyo", source_model)
    deyo.destroy = lambda x: x  # a transform that leaves the object intact
    before = bn_affine(deyo)
    deyo.adapt_and_predict(batch(digits_c, "defocus_blur@5"))
    assert torch.equal(deyo.last_plpd, torch.zeros_like(deyo.last_plpd))
    assert deyo.batch_stats["kept"] == 0.0  # PLPD 0 never exceeds tau_PLPD = 0.2
    assert torch.equal(bn_affine(deyo), before)


def test_deyo_weights_follow_the_paper(source_model, digits_c):
    deyo = make("deyo", source_model)
    x = torch.as_tensor(digits_c.test.x[:64])  # clean digits: some samples pass both filters
    logits = deyo.model(x)
    ent = entropy(logits).detach()
    w = deyo.sample_weights(logits, ent, x)
    score, log_c = deyo.last_plpd, math.log(10)
    keep = (ent < 0.5 * log_c) & (score > 0.2)
    expected = torch.where(keep, torch.exp(-(ent - 0.4 * log_c)) + torch.exp(score), torch.zeros_like(ent))
    assert torch.allclose(w, expected)
    assert 0 < int(keep.sum()) < len(x)  # both filters are active on this batch


# ---------------------------------------------------------------- adanpc


def knn_by_hand(feats_src, y_src, feats, k, tau):
    a = feats_src / np.linalg.norm(feats_src, axis=1, keepdims=True)
    b = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    sim = b @ a.T
    out = np.zeros((len(b), 10))
    for i, row in enumerate(sim):
        top = np.argsort(-row)[:k]
        w = np.exp(row[top] / tau)
        w /= w.sum()
        np.add.at(out[i], y_src[top], w)
    return out


def test_adanpc_with_an_empty_test_memory_is_knn_on_source_features(source_model, digits_c):
    from infobench.models.train import extract_features

    train = digits_c.train
    x = batch(digits_c, "defocus_blur@5", n=32)
    method = make("adanpc", source_model, train=train, k=20)
    expected = knn_by_hand(extract_features(source_model, train.x), train.y, extract_features(source_model, x.numpy()), 20, 0.1)
    # the first batch is predicted before any test sample enters the memory
    probs = method.adapt_and_predict(x).exp().numpy()
    assert np.allclose(probs, np.minimum(expected + 1e-5, 1.0), atol=1e-5)


def test_adanpc_appends_confident_samples_within_max_memory_and_resets(source_model, digits_c):
    train = digits_c.train
    method = make("adanpc", source_model, train=train, k=20, max_memory=len(train) + 10)
    x = torch.as_tensor(digits_c.test.x[:64])
    probs = method.adapt_and_predict(x).exp()
    n_conf = int((probs.max(1).values >= 0.9).sum())
    assert n_conf > 10
    assert method.batch_stats["kept"] == pytest.approx(n_conf / len(x))
    assert len(method.memory) == len(train) + 10  # bounded: the oldest entries went first
    method.reset()
    assert len(method.memory) == len(train)


def test_adanpc_needs_source_data(source_model):
    with pytest.raises(InfobenchError, match="source"):
        make("adanpc", source_model, train=None)


# ---------------------------------------------------------------- sfda_prior


def test_prior_kl_vanishes_at_the_prior_and_is_log_c_minus_entropy_for_a_uniform_prior():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]])
    assert prior_kl(probs, torch.tensor([0.4, 0.2, 0.4])).item() == pytest.approx(0.0, abs=1e-7)
    mean = probs.mean(0)
    uniform = torch.full((3,), 1 / 3)
    assert prior_kl(probs, uniform).item() == pytest.approx(math.log(3) + (mean * mean.log()).sum().item(), abs=1e-6)
    assert prior_kl(probs, torch.tensor([0.8, 0.1, 0.1])).item() > 0


def test_sfda_prior_loss_is_the_entropy_alone_when_the_batch_mean_equals_the_prior(source_model, digits_c):
    method = make("sfda_prior", source_model, prior="uniform")
    # two rows whose classes are cyclic shifts of each other: the batch mean is uniform
    row = torch.log(torch.tensor([0.5, 0.3, 0.2] + [0.0] * 7).clamp_min(1e-9))
    logits = torch.stack([row.roll(s) for s in range(10)])
    x = batch(digits_c, n=10)
    assert method.loss(logits, x).item() == pytest.approx(entropy(logits).mean().item(), rel=1e-5)
    skewed = torch.stack([row] * 10)
    assert method.loss(skewed, x).item() > entropy(skewed).mean().item() + 1.0


def test_sfda_prior_source_prior_reads_source_labels(source_model, digits_c):
    method = make("sfda_prior", source_model, train=digits_c.train)
    counts = np.bincount(digits_c.train.y, minlength=10)
    assert np.allclose(method.prior.numpy(), (counts + 1) / (counts.sum() + 10), atol=1e-6)
    assert registry.get("tta.method", "sfda_prior")(None).needs_source
    assert not registry.get("tta.method", "sfda_prior")(
        registry.get("tta.method", "sfda_prior").Params(prior="uniform")).needs_source
    with pytest.raises(InfobenchError, match="classes"):
        make("sfda_prior", source_model, prior=[1.0, 2.0])
    with pytest.raises(ValidationError):
        registry.get("tta.method", "sfda_prior").Params(prior=[1.0, -1.0])


# ---------------------------------------------------------------- rmt


def test_symmetric_cross_entropy_is_symmetric_and_is_the_entropy_on_equal_inputs():
    a, b = torch.randn(5, 4, generator=torch.Generator().manual_seed(0)), torch.randn(5, 4)
    assert torch.allclose(symmetric_cross_entropy(a, b), symmetric_cross_entropy(b, a))
    assert torch.allclose(symmetric_cross_entropy(a, a), entropy(a), atol=1e-6)


def test_contrastive_loss_matches_the_hand_value_for_orthogonal_samples():
    # two samples, two identical views each, the samples orthogonal: each anchor has one positive
    # (similarity 1) and two negatives (similarity 0): loss = log(1 + 2 exp(-1/T))
    e1, e2 = torch.eye(2)
    feats = torch.stack([torch.stack([e1, e1]), torch.stack([e2, e2])])
    for t in (0.1, 0.5):
        assert supervised_contrastive(feats, t).item() == pytest.approx(math.log(1 + 2 * math.exp(-1 / t)), rel=1e-3)


def test_rmt_teacher_is_the_ema_of_the_student(source_model, digits_c):
    method = make("rmt", source_model, train=digits_c.train, warmup_samples=0)
    x = batch(digits_c)
    teacher_before = [p.detach().clone() for p in method.teacher.parameters()]
    # before any update the teacher equals the student: the ensemble is twice the student's logits
    with torch.no_grad():
        student = method.model(x)
    logits = method.adapt_and_predict(x)
    assert torch.allclose(logits, 2 * student, atol=1e-5)
    for t_old, t_new, s in zip(teacher_before, method.teacher.parameters(), method.model.parameters(), strict=True):
        assert torch.allclose(t_new, 0.999 * t_old + 0.001 * s.detach(), atol=1e-7)
    assert not all(torch.equal(a, b) for a, b in zip(teacher_before, method.model.parameters(), strict=True))


def test_rmt_warm_up_moves_the_student_and_reset_returns_to_after_the_warm_up(source_model, digits_c):
    method = make("rmt", source_model, train=digits_c.train, warmup_samples=256)
    warmed = [p.detach().clone() for p in method.model.parameters()]
    assert not all(torch.equal(a, b) for a, b in zip(warmed, source_model.parameters(), strict=True))
    method.adapt_and_predict(batch(digits_c))
    method.reset()
    assert all(torch.equal(a, b) for a, b in zip(warmed, method.model.parameters(), strict=True))


def test_rmt_source_free_mode_reads_no_source(source_model, digits_c):
    cls = registry.get("tta.method", "rmt")
    assert cls(cls.Params(source_free=True)).needs_source is False
    method = make("rmt", source_model, train=None, source_free=True)
    assert torch.equal(method.prototypes, source_model.head.weight)
    assert torch.isfinite(method.adapt_and_predict(batch(digits_c))).all()
    with pytest.raises(InfobenchError, match="source"):
        make("rmt", source_model, train=None)


# ---------------------------------------------------------------- upl


def test_upl_pseudo_labels_only_from_confident_mean_predictions():
    mean = torch.tensor([[0.95, 0.05], [0.6, 0.4], [0.02, 0.98]])
    labels, reliable = confident_pseudo_labels(mean, 0.9)
    assert labels.tolist() == [0, 0, 1]
    assert reliable.tolist() == [True, False, True]


def test_upl_heads_start_as_the_source_head_and_unreliable_batches_train_on_entropy_only(source_model, digits_c):
    method = make("upl", source_model, feature_noise=0.0, threshold=0.999999)
    x = batch(digits_c, "defocus_blur@5")
    with torch.no_grad():
        expected = method.model(x).log_softmax(1)
    logits = method.adapt_and_predict(x)
    assert torch.allclose(logits, expected, atol=1e-5)  # K identical heads: their mean is the source head
    assert method.batch_stats["kept"] == 0.0
    heads = list(method.heads)
    assert all(torch.allclose(h.weight, heads[0].weight) for h in heads)  # same loss gradient for each copy
    assert not torch.equal(heads[0].weight, source_model.head.weight)  # the entropy term still moved them


def test_upl_with_reliable_samples_lowers_the_disagreement_with_its_pseudo_labels(source_model, digits_c):
    method = make("upl", source_model, lr=1e-3, threshold=0.5, feature_noise=0.0)
    x = torch.as_tensor(digits_c.test.x[:64])
    first = method.adapt_and_predict(x)
    labels, reliable = confident_pseudo_labels(first.exp(), 0.5)
    assert method.batch_stats["kept"] == pytest.approx(float(reliable.float().mean()))
    assert 0 < int(reliable.sum())
    with torch.no_grad():  # one step of L lowers the cross-entropy of the mean prediction to the pseudo-labels
        after = method.head_logits(method.model.features(x)).softmax(2).mean(0).log()
    ce_before = -first[reliable].gather(1, labels[reliable, None]).mean()
    ce_after = -after[reliable].gather(1, labels[reliable, None]).mean()
    assert ce_after < ce_before
    method.reset()
    again = method.adapt_and_predict(x)  # a reset returns to the source state: same prediction
    assert torch.allclose(again, first, atol=1e-5)


# ---------------------------------------------------------------- core


def test_core_is_alpha_bn_and_mixing_weight_zero_is_the_source_model(source_model, digits_c):
    x = batch(digits_c, "contrast@5")
    core = make("core", source_model, test_weight=0.3)
    alpha = make("alpha_bn", source_model, test_weight=0.3)
    assert torch.allclose(core.adapt_and_predict(x), alpha.adapt_and_predict(x))
    with torch.no_grad():
        source = source_model.eval()(x)
    assert torch.allclose(make("core", source_model, test_weight=0.0).adapt_and_predict(x), source, atol=1e-5)
    assert not torch.allclose(core.adapt_and_predict(x), source, atol=1e-3)


def test_rmt_and_upl_train_every_parameter_with_test_batch_bn(source_model):
    for name in ("rmt", "upl"):
        method = make(name, source_model, train=None, **({"source_free": True} if name == "rmt" else {}))
        assert all(p.requires_grad for p in method.model.parameters())
        layers = bn_modules(method.model)
        assert layers and all(m.training and m.running_mean is None for m in layers)


def test_rmt_prototypes_are_class_means_of_the_classes_the_source_has(source_model, digits_c):
    from infobench.data.base import Split
    from infobench.models.train import extract_features

    keep = digits_c.train.y < 8  # an open-set source: digits 8 and 9 held out
    source = Split(digits_c.train.x[keep], digits_c.train.y[keep])
    method = make("rmt", source_model, train=source, warmup_samples=0)
    feats = extract_features(source_model, source.x)
    expected = np.stack([feats[source.y == c].mean(0) for c in range(8)])
    assert method.prototypes.shape == (8, feats.shape[1])
    assert np.allclose(method.prototypes.numpy(), expected, atol=1e-5)
    assert torch.isfinite(method.adapt_and_predict(batch(digits_c))).all()
