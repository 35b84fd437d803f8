"""The published architectures: WRN (RobustBench layout) and the CRD/DKD CIFAR ResNets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from infobench import registry
from infobench.errors import SpecError
from infobench.models.base import Classifier
from infobench.models.resnet_cifar import BasicBlock
from infobench.models.train import build_model
from infobench.models.wide_resnet import WideBasicBlock


def _param_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "classes", "count", "published"), [
    ("wrn", 10, 36_479_194, "36.5M"),  # Zagoruyko & Komodakis (2016), WRN-28-10 on CIFAR-10
    ("resnet8x4", 100, 1_233_540, "1.23M"),  # Tian et al. (2020), CRD Table 1 (CIFAR-100)
    ("resnet32x4", 100, 7_433_860, "7.43M"),
])
def test_parameter_counts_are_the_published_ones(name, classes, count, published):
    model = build_model({"name": name}, (3, 32, 32), classes)
    assert _param_count(model) == count
    digits = published.rstrip("M").split(".")[1]
    assert f"{count / 1e6:.{len(digits)}f}M" == published


def test_plugins_are_registered_with_documented_params():
    for name in ("wrn", "resnet8x4", "resnet32x4"):
        cls = registry.get("model", name)
        assert issubclass(cls, Classifier)
        assert registry.describe(cls)
        assert cls.Params.model_config.get("extra") == "forbid"
        assert all(f.description for f in cls.Params.model_fields.values())
        assert cls.checkpoint_renames == {"fc.": "head."}


def test_wrn_names_follow_robustbench():
    keys = set(build_model({"name": "wrn", "depth": 16, "widen_factor": 2}, (3, 32, 32), 10).state_dict())
    for key in ("conv1.weight", "block1.layer.0.bn1.running_var", "block1.layer.0.conv1.weight",
                "block1.layer.0.bn2.weight", "block1.layer.0.conv2.weight", "block1.layer.0.convShortcut.weight",
                "block2.layer.0.convShortcut.weight", "block3.layer.1.conv2.weight", "bn1.weight", "head.weight",
                "head.bias"):
        assert key in keys
    # only the width-changing first block of a group has a shortcut convolution
    assert not any("layer.1.convShortcut" in k for k in keys)
    assert not any(k.startswith("block3.layer.2") for k in keys)  # (16 - 4) / 6 = 2 blocks per group


def test_wrn_block_is_preactivation_with_shortcut_on_the_activated_input():
    torch.manual_seed(0)
    for in_ch, out_ch, stride in ((4, 8, 2), (8, 8, 1)):
        block = WideBasicBlock(in_ch, out_ch, stride, dropout=0.0).eval()
        for bn in (block.bn1, block.bn2):  # non-trivial statistics, so that BN's place matters
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
        x = torch.randn(2, in_ch, 8, 8)
        with torch.no_grad():
            pre = F.relu(block.bn1(x))
            branch = block.conv2(F.relu(block.bn2(block.conv1(pre))))
            shortcut = x if in_ch == out_ch else block.convShortcut(pre)
            torch.testing.assert_close(block(x), branch + shortcut)


def test_cifar_resnet_block_is_postactivation():
    torch.manual_seed(0)
    block = BasicBlock(4, 8, 2).eval()
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        branch = block.bn2(block.conv2(F.relu(block.bn1(block.conv1(x)))))
        torch.testing.assert_close(block(x), F.relu(branch + block.downsample(x)))


def test_cifar_resnets_follow_repdistiller_layout():
    small = build_model({"name": "resnet8x4"}, (3, 32, 32), 100, seed=0)
    big = build_model({"name": "resnet32x4"}, (3, 32, 32), 100, seed=0)
    for model, blocks in ((small, 1), (big, 5)):  # (depth - 2) / 6 blocks per stage
        keys = set(model.state_dict())
        assert {"conv1.weight", "bn1.running_mean", "layer1.0.downsample.0.weight",
                "layer2.0.downsample.1.running_var", "head.weight"} <= keys
        assert f"layer3.{blocks - 1}.conv2.weight" in keys and f"layer3.{blocks}.conv1.weight" not in keys
        assert model.feature_dim == 256
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert small.eval()(x).shape == (2, 100)
        # the 8x8 map of the last stage is pooled to one vector: 32 -> 32 -> 16 -> 8
        assert small.features(x).shape == (2, 256)


def test_wrn_28_10_forward_and_depth_check():
    model = build_model({"name": "wrn"}, (3, 32, 32), 10, seed=0).eval()
    with torch.no_grad():
        logits = model(torch.rand(2, 3, 32, 32))
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    assert model.feature_dim == 640
    with pytest.raises(SpecError, match="6n \\+ 4"):
        build_model({"name": "wrn", "depth": 27}, (3, 32, 32), 10)
