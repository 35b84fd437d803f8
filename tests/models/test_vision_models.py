"""torchvision and timm architectures as classifiers (the vision extra)."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest
import torch

from infobench.errors import InfobenchError
from infobench.models import vision
from infobench.models.checkpoint import ModelCommon, apply_checkpoint, finish_model
from infobench.models.train import build_model

SHAPE = (3, 32, 32)


@pytest.fixture
def x():
    return torch.rand(2, *SHAPE, generator=torch.Generator().manual_seed(0))


def _logits(model, x):
    with torch.no_grad():
        return model.eval()(x)


def test_vision_module_imports_no_vision_library_when_loaded():
    # every plugin module is imported to list the registry: a broken torchvision must not break
    # that, so torchvision and timm are imported only inside the model classes
    tree = ast.parse(Path(vision.__file__).read_text())
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    imported = {alias.name for node in top_level if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in top_level if isinstance(node, ast.ImportFrom)}
    assert "torch" in imported and "infobench.registry" in imported  # the parse sees the imports
    assert not {name for name in imported if name.split(".")[0] in ("torchvision", "timm")}


@pytest.mark.parametrize(("name", "module"), [("torchvision", "torchvision.models"), ("timm", "timm")])
def test_missing_library_says_how_to_install(monkeypatch, name, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail, as an absent package does
    with pytest.raises(InfobenchError, match=rf"model '{name}' needs the vision extra: pip install 'infobench\[vision\]' "
                                             rf"\(importing {module} failed"):
        build_model({"name": name, "arch": "resnet18"}, SHAPE, 10)


def test_broken_torchvision_build_says_how_to_install(monkeypatch):
    # a torchvision wheel built for another torch fails inside its own import, not with ImportError
    real_import = importlib.import_module

    def broken(name, *args):
        if name.startswith("torchvision"):
            raise RuntimeError("operator torchvision::nms does not exist")
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(InfobenchError, match="pip install 'infobench\\[vision\\]'.*RuntimeError: operator torchvision::nms"):
        build_model({"name": "torchvision"}, SHAPE, 10)


@pytest.mark.vision
def test_torchvision_resnet18_with_its_own_state_dict_gives_its_logits(tmp_path, x):
    from torchvision.models import resnet18

    torch.manual_seed(0)
    reference = resnet18(num_classes=10).eval()
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    model = build_model({"name": "torchvision", "arch": "resnet18"}, SHAPE, 10, seed=1)
    assert model.feature_dim == 512 and isinstance(model.head, torch.nn.Linear) and model.head.out_features == 10
    assert not torch.allclose(_logits(model, x), _logits(reference, x))
    model = finish_model(model, ModelCommon(checkpoint=str(tmp_path / "resnet18.pth")))
    torch.testing.assert_close(_logits(model, x), _logits(reference, x), rtol=0, atol=0)
    with torch.no_grad():
        assert model.features(x).shape == (2, 512)
        # features are the pooled penultimate layer: the head applied to them gives the logits
        torch.testing.assert_close(model.head(model.features(x)), _logits(reference, x), rtol=0, atol=0)


@pytest.mark.vision
def test_timm_resnet18_with_its_own_state_dict_gives_its_logits(tmp_path, x):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    reference = timm.create_model("resnet18", pretrained=False, num_classes=10).eval()
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    model = build_model({"name": "timm", "arch": "resnet18"}, SHAPE, 10, seed=1)
    assert model.feature_dim == 512
    apply_checkpoint(model, tmp_path / "resnet18.pth")
    torch.testing.assert_close(_logits(model, x), _logits(reference, x), rtol=0, atol=0)


@pytest.mark.vision
def test_unknown_architecture_suggests_close_names():
    with pytest.raises(InfobenchError, match="torchvision has no architecture 'resnet19'.*did you mean 'resnet18'"):
        build_model({"name": "torchvision", "arch": "resnet19"}, SHAPE, 10)
