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
    """
    from infobench.cache import cached_model, model_key_parts
    from infobench.models.train import TrainConfig, build_model, train_classifier

    config = TrainConfig.model_validate(train_cfg)

    def build() -> nn.Module:
        return build_model(model_cfg, data.input_shape, data.num_classes, seed=seed)

    def train(model: nn.Module) -> None:
        train_classifier(model, data.train, config, seed, loss_fn=loss_fn)

    key = {"dataset": dataset_cfg, "model": model_cfg, "train": config.model_dump(mode="json"),
           "seed": seed, "role": role, "loss": loss_key}
    model = cached_model(model_key_parts(key), build, train)
    model.eval()
    return model
