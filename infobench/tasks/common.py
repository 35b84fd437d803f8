"""Steps shared by every task: load the run's dataset, train (or load from cache) its model."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from infobench import registry
from infobench.data.base import DataBundle

if TYPE_CHECKING:
    from torch import nn


def load_data(dataset_cfg: dict[str, Any], seed: int) -> DataBundle:
    """Build the dataset plugin named in ``dataset_cfg`` and load it for ``seed``."""
    cls = registry.get("dataset", dataset_cfg["name"])
    params = cls.Params.model_validate({k: v for k, v in dataset_cfg.items() if k != "name"})
    return cls(params).load(seed)


def trained_model(
    data: DataBundle,
    dataset_cfg: dict[str, Any],
    model_cfg: dict[str, Any],
    train_cfg: dict[str, Any],
    seed: int,
    role: str = "model",
    loss_fn: Callable | None = None,
    loss_key: Any = None,
) -> nn.Module:
    """The model ``model_cfg`` trained on ``data.train`` with ``train_cfg``, cached by all of these.

    ``role`` ("source", "teacher", ...) and ``loss_key`` (a description of a non-default
    training loss) enter the cache key, so different training objectives never share weights.
    The dataset enters it as what shapes training (``cache.model_key_parts``): test-only
    parameters and file paths stay out, file content goes in.

    ``train: none`` (``train_cfg == "none"``) trains nothing: the model is built, loaded from
    its ``checkpoint`` and used as it is (a pretrained source model or teacher), uncached.
    The model comes back in eval mode on the run's device (``infobench.device.current()``);
    it trains there too. A reduced ``precision`` enters the cache key: it changes the weights.
    """
    from infobench import device as devices
    from infobench.cache import cached_model, model_key_parts
    from infobench.models.train import TrainConfig, build_model, train_classifier

    where = devices.current()

    def build() -> nn.Module:
        return build_model(model_cfg, data.input_shape, data.num_classes, seed=seed).to(where)

    if is_untrained(train_cfg):
        model = build()
        model.eval()
        return model
    config = TrainConfig.model_validate(train_cfg)

    def train(model: nn.Module) -> None:
        train_classifier(model, data.train, config, seed, loss_fn=loss_fn)

    key = {"dataset": dataset_cfg, "model": model_cfg, "train": config.model_dump(mode="json"),
           "seed": seed, "role": role, "loss": loss_key}
    if devices.precision() != "fp32":
        key["precision"] = devices.precision()
    model = cached_model(model_key_parts(key), build, train)
    model.eval()
    return model


UNTRAINED = "none"
"""The value of a ``train:`` block that trains nothing (a model used as its checkpoint has it)."""


def is_untrained(train_cfg: Any) -> bool:
    return train_cfg == UNTRAINED
