"""Information-plane overhead on the 12-bit task (issue 6): the MI computation of one recorded
epoch (I(X;T) and I(T;Y) of all six layers of the 12-10-7-5-4-3-2 network on all 4096 inputs)
as a multiple of one training epoch (Adam, batch 256, 3277 training inputs), per estimator.

Also: the cost of the idle forward hooks during training (hooks attached, not recording) and
of one recording pass, relative to a training epoch. One torch thread, as the ib specs use.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import torch

from infobench import registry
from infobench.models.train import TrainConfig, build_model, train_classifier
from infobench.tasks.base import RunContext
from infobench.tasks.ib.recording import Recording, record_epochs, train_and_record
from infobench.tasks.ib.task import estimate_layers, x_variable
from infobench.tasks.ib.tishby_data import Tishby12

EPOCHS = 200
# (estimator, params, recorded epochs to time: the slow pairwise/kNN ones on fewer)
ESTIMATORS = [
    ("binning", {"n_bins": 30, "range": (-1.0, 1.0)}, None),
    ("binning", {"n_bins": 30}, None),
    ("adaptive_binning", {}, None),
    ("ksg", {}, 1),
    ("kde", {}, 1),
    ("kde_adaptive", {}, 1),
]


def last_records(rec: Recording, count: int | None) -> Recording:
    """``rec`` cut to its last ``count`` recorded epochs (all when None)."""
    if count is None:
        return rec
    return replace(rec, epochs=rec.epochs[-count:], layers={k: v[-count:] for k, v in rec.layers.items()})


def mi_seconds_per_record(rec: Recording, name: str, params: dict) -> float:
    cls = registry.get("mi.estimator", name)
    estimator = cls(cls.Params(**params))
    ctx = RunContext(run=None, plots_dir=None, logger=logging.getLogger("bench"))
    estimate_layers(ctx, rec, estimator, x_variable(rec, "auto", cls.kinds), rec.y[:, None])
    return next(r["value"] for r in ctx.rows if r["metric"] == "mi_seconds_per_record")


def plain_epoch_seconds(data, activation: str) -> float:
    model = build_model({"name": "ib_mlp", "activation": activation}, data.input_shape, 2, seed=0)
    start = time.perf_counter()
    train_classifier(model, data.train, TrainConfig(epochs=EPOCHS, lr=4e-4, batch_size=256), seed=0)
    return (time.perf_counter() - start) / EPOCHS


def main() -> None:
    torch.set_num_threads(1)
    data = Tishby12().load(0)
    cfg = TrainConfig(epochs=EPOCHS, lr=4e-4, batch_size=256).model_dump()
    known = set(registry.names("mi.estimator"))
    print(f"{'activation':<10} {'estimator':<40} {'MI s/record':>12} {'epoch s':>9} {'MI/epoch':>9}")
    for activation in ("tanh", "relu"):
        plain = plain_epoch_seconds(data, activation)
        rec = train_and_record(data, {"name": "ib_mlp", "activation": activation}, cfg, seed=0,
                               epochs=record_epochs(EPOCHS, 20))
        for name, params, count in ESTIMATORS:
            if name not in known or (activation == "relu" and params.get("range")):
                continue
            seconds = mi_seconds_per_record(last_records(rec, count), name, params)
            label = name + (f"({', '.join(f'{k}={v}' for k, v in params.items())})" if params else "")
            print(f"{activation:<10} {label:<40} {seconds:12.4f} {rec.epoch_seconds:9.4f} "
                  f"{seconds / rec.epoch_seconds:9.2f}")
        print(f"{activation:<10} idle hooks during training: epoch {rec.epoch_seconds:.4f} s with, {plain:.4f} s "
              f"without ({rec.epoch_seconds / plain:.2f}x); one recording pass = "
              f"{rec.record_seconds / rec.epoch_seconds:.2f} epochs; {len(rec.epochs)} records")


if __name__ == "__main__":
    main()
