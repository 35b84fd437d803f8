"""Architectures from torchvision and timm, as infobench classifiers (the optional vision extra).

No pretrained weights are downloaded: a model starts from its library's random initialisation
and gets weights only from the model block's ``checkpoint:`` (a state dict saved from the
library's own model loads as it is; see ``checkpoint_renames``). torchvision and timm are
imported when such a model is built, never when infobench starts.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from infobench.errors import InfobenchError
from infobench.models.base import Classifier
from infobench.models.layers import image_shape
from infobench.registry import did_you_mean, register


def import_vision(module: str, model: str) -> ModuleType:
    """Import ``module`` (torchvision, timm) for model ``model``, or say how to install it.

    Any exception counts, not only ImportError: a torchvision wheel built for another torch
    fails inside its own import ("operator torchvision::nms does not exist").
    """
    try:
        return importlib.import_module(module)
    except Exception as exc:
        raise InfobenchError(
            f"model {model!r} needs the vision extra: pip install 'infobench[vision]' "
            f"(importing {module} failed: {type(exc).__name__}: {exc}); torchvision must be the build "
            "that matches the installed torch") from exc


def _unknown_arch(model: str, arch: str, known: list[str]) -> InfobenchError:
    return InfobenchError(f"model.arch: {model} has no architecture {arch!r}{did_you_mean(arch, known)}")


class ArchParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arch: str = Field("resnet18", description="Architecture name in the library (e.g. resnet18, resnet50).")


@register("model", "torchvision")
class TorchvisionModel(Classifier):
    """A torchvision classification architecture: ``net`` up to its last Linear layer, then ``head``.

    The library model is built with ``num_classes`` outputs and its final ``nn.Linear`` (``fc``
    for ResNets, ``classifier.1`` for EfficientNets, ...) becomes ``head``, replaced inside
    ``net`` by the identity, so ``features`` is the pooled penultimate representation. The
    keys of a torchvision state dict are renamed onto this layout (``fc.`` -> ``head.``, the
    rest under ``net.``). Inputs are 3-channel images; torchvision's ImageNet weights expect
    ``normalize: imagenet``.
    """

    Params = ArchParams

    def __init__(self, params: ArchParams, input_shape: tuple[int, ...], num_classes: int):
        super().__init__(params, input_shape, num_classes)
        models = import_vision("torchvision.models", "torchvision")
        known = models.list_models(module=models)  # the classification architectures
        if params.arch not in known:
            raise _unknown_arch("torchvision", params.arch, known)
        self.in_shape = image_shape("torchvision", self.input_shape)
        if self.in_shape[0] != 3:
            raise InfobenchError(f"model 'torchvision' takes 3-channel images; got input shape {self.input_shape}")
        net = models.get_model(params.arch, weights=None, num_classes=num_classes)
        linears = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Linear)]
        if not linears or linears[-1][1].out_features != num_classes:
            raise InfobenchError(f"model.arch: torchvision {params.arch!r} does not end in a Linear classifier; "
                                 "infobench needs one to split it into features and head")
        name, head = linears[-1]
        net.set_submodule(name, nn.Identity())
        self.net = net
        self.feature_dim = head.in_features
        self.head = head
        # first matching prefix wins; keys already named as in this model are left alone
        self.checkpoint_renames = {f"{name}.": "head.", "": "net."}

    def features(self, x: Tensor) -> Tensor:
        """(n, 3, H, W) -> (n, feature_dim): the network with its classifier removed."""
        return self.net(x.reshape(len(x), *self.in_shape))


@register("model", "timm")
class TimmModel(Classifier):
    """A timm architecture: ``forward_features`` then ``forward_head(pre_logits=True)``, then ``head``.

    The library model is built without a classifier (``num_classes=0``) and with the input's
    channels; ``head`` is a new ``nn.Linear`` on its pre-logits features. The keys of a timm
    state dict are renamed onto this layout: the architecture's classifier (its
    ``pretrained_cfg['classifier']``, e.g. ``fc``, ``head.fc``) to ``head``, the rest under ``net.``.
    """

    Params = ArchParams

    def __init__(self, params: ArchParams, input_shape: tuple[int, ...], num_classes: int):
        super().__init__(params, input_shape, num_classes)
        timm = import_vision("timm", "timm")
        if not timm.is_model(params.arch):
            raise _unknown_arch("timm", params.arch, timm.list_models())
        self.in_shape = image_shape("timm", self.input_shape)
        self.net = timm.create_model(params.arch, pretrained=False, num_classes=0, in_chans=self.in_shape[0])
        # newer timm models name the width of their pre-logits output separately
        self.feature_dim = int(getattr(self.net, "head_hidden_size", None) or self.net.num_features)
        self.head = nn.Linear(self.feature_dim, num_classes)
        classifier = self.net.pretrained_cfg.get("classifier") or "head"
        if isinstance(classifier, (list, tuple)):  # distilled models have two heads; the first is the classifier
            classifier = classifier[0]
        self.checkpoint_renames = {f"{classifier}.": "head.", "": "net."}

    def features(self, x: Tensor) -> Tensor:
        """(n, C, H, W) -> (n, feature_dim): pooled pre-logits features."""
        return self.net.forward_head(self.net.forward_features(x.reshape(len(x), *self.in_shape)), pre_logits=True)
