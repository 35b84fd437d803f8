"""Loading checkpoints into models, and the input-normalising wrapper."""

from __future__ import annotations

import copy
import fractions
import hashlib
import logging

import pytest
import torch

from infobench.errors import DataError, InfobenchError
from infobench.models.checkpoint import (
    COMMON_MODEL_KEYS,
    NORMALIZATIONS,
    ModelCommon,
    Normalized,
    apply_checkpoint,
    checkpoint_digest,
    finish_model,
    load_state,
    match_keys,
    split_common,
)
from infobench.models.train import build_model

SHAPE = (3, 32, 32)


def _resnet(seed: int, classes: int = 10):
    return build_model({"name": "resnet8x4"}, SHAPE, classes, seed=seed).eval()


def _logits(model, x):
    with torch.no_grad():
        return model.eval()(x)


@pytest.fixture
def x():
    return torch.rand(2, *SHAPE, generator=torch.Generator().manual_seed(0))


def _as_published(model, prefix: str = "") -> dict:
    """The model's state dict named as the reference repositories save it (``fc.``, optional prefix)."""
    return {prefix + k.replace("head.", "fc.", 1): v.clone() for k, v in model.state_dict().items()}


def test_common_keys_and_split():
    assert COMMON_MODEL_KEYS == ("checkpoint", "normalize", "strict")
    assert ModelCommon().model_dump() == {"checkpoint": None, "normalize": "none", "strict": True}
    own, common = split_common({"name": "wrn", "depth": 16, "checkpoint": "w.pt", "normalize": "cifar10"})
    assert own == {"name": "wrn", "depth": 16}
    assert common == {"checkpoint": "w.pt", "normalize": "cifar10"}
    with pytest.raises(ValueError):
        ModelCommon(normalize="svhn")


def test_match_keys_strips_wrappers_then_renames_by_first_matching_prefix():
    t = torch.zeros(1)
    renames = {"classifier.1.": "head.", "": "net."}
    own = {"net.features.0.weight", "net.model.weight", "head.weight"}
    state = {"module.features.0.weight": t, "module.classifier.1.weight": t, "module.model.weight": t}
    assert set(match_keys(state, own, renames)) == own
    # a prefix the model itself has is not a wrapper's, and keys the model has keep their names
    assert set(match_keys({"net.model.weight": t, "head.weight": t}, own, renames)) == {"net.model.weight",
                                                                                        "head.weight"}


@pytest.mark.parametrize("nest", [None, "model", "state_dict", "net"])
def test_published_state_dict_loads_with_prefix_and_fc_names(tmp_path, x, nest):
    reference = _resnet(seed=0)
    state = _as_published(reference, prefix="module.")
    path = tmp_path / "teacher.pth"
    torch.save(state if nest is None else {nest: state, "epoch": 240, "best_acc": 79.4}, path)
    model = _resnet(seed=1)
    assert not torch.allclose(_logits(model, x), _logits(reference, x))
    apply_checkpoint(model, path)
    torch.testing.assert_close(_logits(model, x), _logits(reference, x), rtol=0, atol=0)


def test_robustbench_style_wrn_checkpoint_loads(tmp_path, x):
    cfg = {"name": "wrn", "depth": 10, "widen_factor": 1}
    reference = build_model(cfg, SHAPE, 10, seed=0).eval()
    torch.save({"state_dict": _as_published(reference, prefix="module.")}, tmp_path / "Standard.pt")
    model = finish_model(build_model(cfg, SHAPE, 10, seed=1),
                         ModelCommon(checkpoint=str(tmp_path / "Standard.pt")))
    torch.testing.assert_close(_logits(model, x), _logits(reference, x), rtol=0, atol=0)


def test_infobench_own_state_dict_loads_unchanged(tmp_path, x):
    reference = _resnet(seed=0)
    torch.save(reference.state_dict(), tmp_path / "own.pt")
    model = apply_checkpoint(_resnet(seed=1), tmp_path / "own.pt")
    torch.testing.assert_close(_logits(model, x), _logits(reference, x), rtol=0, atol=0)


def test_mismatch_lists_missing_unexpected_and_shapes(tmp_path):
    state = _as_published(_resnet(seed=0, classes=100))
    del state["layer2.0.conv1.weight"]
    state["layer9.bogus"] = torch.zeros(1)
    path = tmp_path / "other.pt"
    torch.save(state, path)
    with pytest.raises(DataError) as err:
        apply_checkpoint(_resnet(seed=1), path)
    message = str(err.value)
    assert str(path) in message
    assert "1 missing key(s): layer2.0.conv1.weight" in message
    assert "1 unexpected key(s): layer9.bogus" in message
    assert "2 shape mismatch(es): head.weight (checkpoint (100, 256), model (10, 256))" in message
    assert "strict: false" in message


def test_many_missing_keys_are_counted_not_all_listed(tmp_path):
    path = tmp_path / "tiny.pt"
    torch.save({"fc.weight": torch.zeros(10, 256), "fc.bias": torch.zeros(10)}, path)
    with pytest.raises(DataError) as err:
        apply_checkpoint(_resnet(seed=0), path)
    message = str(err.value)
    missing = len([k for k in _resnet(seed=0).state_dict() if not k.endswith("num_batches_tracked")]) - 2
    assert f"{missing} missing key(s)" in message and f"({missing - 10} more)" in message


def test_non_strict_loads_what_fits(tmp_path, x, caplog):
    source = _resnet(seed=0, classes=100)  # e.g. a CIFAR-100 teacher reused for 10 classes
    torch.save({"model": _as_published(source)}, tmp_path / "teacher.pth")
    model = _resnet(seed=1)
    head_before = model.head.weight.clone()
    with caplog.at_level(logging.WARNING, logger="infobench.models"):
        finish_model(model, ModelCommon(checkpoint=str(tmp_path / "teacher.pth"), strict=False))
    with torch.no_grad():
        torch.testing.assert_close(model.features(x), source.features(x), rtol=0, atol=0)
    assert torch.equal(model.head.weight, head_before)
    assert "head.weight" in caplog.text


def test_non_strict_still_refuses_a_checkpoint_with_nothing_in_common(tmp_path):
    torch.save({"encoder.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="1 unexpected key"):
        apply_checkpoint(_resnet(seed=0), tmp_path / "other.pt", strict=False)


def test_old_checkpoints_without_batch_counters_load(tmp_path, x):
    reference = _resnet(seed=0)
    state = {k: v for k, v in _as_published(reference).items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.pt")
    model = apply_checkpoint(_resnet(seed=1), tmp_path / "old.pt")
    torch.testing.assert_close(_logits(model, x), _logits(reference, x), rtol=0, atol=0)


def test_safetensors_round_trip(tmp_path, x):
    safetensors = pytest.importorskip("safetensors.torch")
    reference = _resnet(seed=0)
    path = tmp_path / "weights.safetensors"
    safetensors.save_file(_as_published(reference), path)
    assert set(load_state(path)) == set(_as_published(reference))
    model = apply_checkpoint(_resnet(seed=1), path)
    torch.testing.assert_close(_logits(model, x), _logits(reference, x), rtol=0, atol=0)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="cannot be read as a .safetensors file"):
        load_state(path)


def test_truncated_file_is_a_data_error(tmp_path):
    path = tmp_path / "cut.pt"
    torch.save(_resnet(seed=0).state_dict(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=r"cut\.pt: cannot be read as a torch checkpoint.*expected a state dict"):
        load_state(path)


def test_pickled_object_is_refused(tmp_path):
    path = tmp_path / "whole_model.pt"
    torch.save(_resnet(seed=0), path)  # the whole module, not its state dict
    with pytest.raises(DataError, match=r"whole_model\.pt: holds pickled Python objects \(infobench\.models\.base\.NoParams, .*ResNet8x4"):
        load_state(path)
    torch.save({"model": {"w": torch.zeros(2)}, "best": fractions.Fraction(1, 3)}, path)
    with pytest.raises(DataError, match=r"pickled Python objects \(fractions\.Fraction\).*state_dict\(\)"):
        load_state(path)


@pytest.mark.parametrize(("content", "complaint"), [
    ({"epoch": 3, "weights": [1, 2]}, "entries that are not tensors: 'epoch' \\(int\\)"),
    ({}, "holds an empty dict"),
    (torch.zeros(3), "holds a Tensor"),
    (b"hello", "cannot be read as a torch checkpoint"),
])
def test_files_that_hold_no_state_dict(tmp_path, content, complaint):
    path = tmp_path / "odd.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(DataError, match=complaint):
        load_state(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.pt: checkpoint file not found; expected a state dict"):
        load_state(tmp_path / "nope.pt")
    with pytest.raises(DataError, match="nope.pt"):
        checkpoint_digest(tmp_path / "nope.pt")


def test_checkpoint_digest_is_sha256(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"a": torch.arange(5)}, path)
    assert checkpoint_digest(path) == hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------- normalisation


def test_normalized_features_are_inner_features_of_standardised_input(x):
    inner = _resnet(seed=0)
    model = finish_model(inner, ModelCommon(normalize="cifar100"))
    assert isinstance(model, Normalized) and model.inner is inner
    mean, std = (torch.tensor(v).reshape(1, 3, 1, 1) for v in NORMALIZATIONS["cifar100"])
    with torch.no_grad():
        torch.testing.assert_close(model.features(x), inner.features((x - mean) / std))
        torch.testing.assert_close(model(x), inner((x - mean) / std))
        assert not torch.allclose(model.features(x), inner.features(x))


def test_normalized_model_keeps_the_bare_architecture(tmp_path, x):
    inner = _resnet(seed=0)
    model = finish_model(inner, ModelCommon(normalize="cifar10"))
    assert model.head is inner.head
    assert list(model.state_dict()) == list(inner.state_dict())
    assert [n for n, _ in model.named_modules()][1:] == [n for n, _ in inner.named_modules()][1:]
    assert model.feature_dim == 256 and model.in_shape == (3, 32, 32)  # attributes of the inner model
    # a forward hook on a named layer of the wrapper sees the normalised forward pass
    seen = []
    model.layer3.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    _logits(model, x)
    assert seen == [(2, 256, 8, 8)]
    # replacing the head on the wrapper replaces it in the model that runs
    new_head = torch.nn.Linear(256, 3)
    model.head = new_head
    assert inner.head is new_head and _logits(model, x).shape == (2, 3)
    # train/eval reach the shared layers and the inner model's own flag
    model.train()
    assert inner.training and inner.bn1.training
    model.eval()
    assert not inner.training and not inner.bn1.training


def test_bare_checkpoint_loads_into_normalized_model(tmp_path, x):
    reference = finish_model(_resnet(seed=0), ModelCommon(normalize="cifar100"))
    torch.save({"model": _as_published(reference.inner)}, tmp_path / "teacher.pth")
    common = ModelCommon(checkpoint=str(tmp_path / "teacher.pth"), normalize="cifar100")
    model = finish_model(_resnet(seed=1), common)
    torch.testing.assert_close(_logits(model, x), _logits(reference, x), rtol=0, atol=0)
    # also after wrapping, and from the wrapped model's own state dict
    torch.save(reference.state_dict(), tmp_path / "own.pt")
    again = apply_checkpoint(finish_model(_resnet(seed=2), ModelCommon(normalize="cifar100")), tmp_path / "own.pt")
    torch.testing.assert_close(_logits(again, x), _logits(reference, x), rtol=0, atol=0)


def test_normalized_model_copies_and_converts(x):
    model = finish_model(_resnet(seed=0), ModelCommon(normalize="imagenet"))
    twin = copy.deepcopy(model)
    twin.head.weight.data.zero_()
    assert twin.inner.head is twin.head and model.head.weight.abs().sum() > 0
    wide = copy.deepcopy(model).double()
    with torch.no_grad():
        torch.testing.assert_close(wide.eval()(x.double()).float(), _logits(model, x), rtol=1e-4, atol=1e-4)


def test_normalize_needs_three_channel_images():
    mlp = build_model({"name": "mlp"}, (40,), 10)
    with pytest.raises(InfobenchError, match="normalize: 'cifar10' normalises 3-channel images"):
        finish_model(mlp, ModelCommon(normalize="cifar10"))
    assert finish_model(mlp, ModelCommon()) is mlp
