"""Task ``ib``: the information plane of every layer during training, for any MI estimator.

Each run trains the network of the spec once per (setting, seed) (the activations are cached,
see ``recording.py``), records every layer on a fixed evaluation set at log-spaced epochs, and
asks the run's estimator (a ``mi.estimator`` plugin: the spec's ``methods``) for

    I(X; T) = estimate(X, T) / ln 2      and      I(T; Y) = estimate(T, Y) / ln 2   (bits)

per layer T per recorded epoch: metrics ``mi_xt_bits`` and ``mi_ty_bits`` with split = layer
and step = epoch. X is the flattened input (or, with ``x_variable: index``, the integer id of
each distinct input, a discrete label); Y is the class label, one column. The argument order
follows the estimators' convention for noisy-representation estimators (KDE): with two real
arrays the second is the representation; with a label, the first is.

Also reported: ``accuracy`` on the train and test rows of the evaluation set and the training
``loss`` per recorded epoch; per layer the compression summary of Chelombiev et al. (ICLR 2019),
``compression_bits`` = max over epochs of I(X;T) minus its value at the last epoch, with
``fitting_bits`` = that maximum minus its first recorded value (the fitting phase of
Shwartz-Ziv & Tishby) and ``peak_epoch``, the epoch of the maximum; the final ``accuracy`` and ``generalization_gap``
(train minus test accuracy); and the cost: ``epoch_seconds`` (one training epoch),
``mi_seconds_per_record`` (both quantities for every layer at one recorded epoch) and their
ratio ``mi_overhead``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt

from infobench.errors import InfobenchError
from infobench.models.train import TrainConfig
from infobench.registry import register
from infobench.tasks.base import RunContext, Task
from infobench.tasks.common import load_data
from infobench.tasks.ib.recording import (
    Recording,
    cached_recording,
    record_epochs,
    train_and_record,
)

LN2 = math.log(2.0)


class IBScenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_records: int = Field(50, ge=2, le=10000, description="Recorded epochs, 0 and the last included (log spacing merges repeats).")
    spacing: Literal["log", "linear"] = Field("log", description="Spacing of the recorded epochs.")
    record_at: list[NonNegativeInt] | None = Field(
        None, description="Explicit epochs to record (0 = before training), instead of n_records/spacing.")
    eval_set: Literal["all", "train", "val", "test"] = Field(
        "all", description="Rows the activations are recorded on (Shwartz-Ziv & Tishby: all 4096 inputs).")
    max_eval: int | None = Field(None, ge=10, description="Keep at most this many evaluation rows (a fixed random subset).")
    l2: float = Field(0.0, ge=0, description="L2 penalty l2 * sum ||W||^2 on the weight matrices added to the loss.")
    x_variable: Literal["auto", "inputs", "index"] = Field(
        "auto", description="X for I(X;T): flattened inputs, or each distinct input's id (a discrete label); "
                            "auto: ids for integer inputs and a discrete-capable estimator, or when it takes no real X; else inputs.")


class IBTrainConfig(TrainConfig):
    """Training of the network under study; defaults are Shwartz-Ziv & Tishby's (Adam 4e-4, batch 256)."""

    epochs: int = Field(8000, ge=0, description="Passes over the training split (paper: up to 8000).")
    lr: float = Field(4e-4, gt=0, description="Learning rate (paper: Adam, 4e-4).")
    batch_size: int = Field(256, ge=1, description="Examples per mini-batch (paper: 256).")


@register("task", "ib")
class IBTask(Task):
    """Information plane during training: I(X;T), I(T;Y) per layer per epoch for an MI estimator."""

    method_kind = "mi.estimator"
    Scenario = IBScenario
    summary_metrics = ("fitting_bits", "compression_bits", "accuracy", "mi_overhead")

    @classmethod
    def train_config(cls) -> type[BaseModel]:
        return IBTrainConfig

    @classmethod
    def check_spec(cls, blocks: dict) -> list[str]:
        record_at = (blocks.get("scenario") or {}).get("record_at")
        epochs = (blocks.get("train") or {}).get("epochs")
        if record_at and epochs is not None and max(record_at) > epochs:
            return [f"scenario.record_at: epoch {max(record_at)} is after the last epoch (train.epochs = {epochs})"]
        return []

    def run(self, run, ctx: RunContext) -> None:
        from infobench import device as devices
        from infobench import registry

        cfg = run.config
        scenario = IBScenario.model_validate(cfg["scenario"])
        train = IBTrainConfig.model_validate(cfg["train"])
        estimator_cls = registry.get(self.method_kind, run.method)
        estimator = estimator_cls(estimator_cls.Params.model_validate(run.params))
        kinds = check_estimator_kinds(run.method, tuple(getattr(estimator_cls, "kinds", ())))

        data = load_data(cfg["dataset"], run.seed)
        epochs = (sorted(set(scenario.record_at)) if scenario.record_at
                  else record_epochs(train.epochs, scenario.n_records, scenario.spacing))
        # what the activations depend on: not the estimator, x_variable or how the epochs were chosen
        recording_options = scenario.model_dump(include={"eval_set", "max_eval", "l2"})
        key = {"dataset": cfg["dataset"], "model": cfg["model"], "train": train.model_dump(mode="json"),
               "recording": recording_options, "epochs": epochs, "seed": run.seed}
        if devices.precision() != "fp32":  # a reduced precision changes the training, as for cached models
            key["precision"] = devices.precision()
        rec = cached_recording(key, lambda: train_and_record(
            data, cfg["model"], cfg["train"], run.seed, epochs,
            eval_set=scenario.eval_set, max_eval=scenario.max_eval, l2=scenario.l2))
        ctx.log(f"recorded {len(rec.epochs)} epochs x {len(rec.layers)} layers on {len(rec.y)} rows")

        x_var = x_variable(rec, scenario.x_variable, kinds)
        y_var = rec.y[:, None]
        mi_xt = estimate_layers(ctx, rec, estimator, x_var, y_var)
        report_recording(ctx, rec, mi_xt)

    def summarize(self, spec_name: str, metrics, plots_dir: Path) -> list[Path]:
        from infobench.tasks.ib.plots import ib_figures

        return ib_figures(metrics, Path(plots_dir))


def estimate_layers(ctx: RunContext, rec: Recording, estimator, x_var, y_var) -> dict[str, np.ndarray]:
    """Both quantities for every layer at every recorded epoch; returns I(X;T) (bits) per layer."""
    mi_xt = {name: np.empty(len(rec.epochs)) for name in rec.layers}
    start = time.perf_counter()
    for i, epoch in enumerate(rec.epochs.tolist()):
        for name, acts in rec.layers.items():
            t = acts[i]
            xt = estimator.estimate(x_var, t) / LN2
            ty = estimator.estimate(t, y_var) / LN2
            ctx.check_finite(xt, f"I(X;T) of {name} at epoch {epoch}")
            ctx.check_finite(ty, f"I(T;Y) of {name} at epoch {epoch}")
            ctx.metric("mi_xt_bits", xt, split=name, step=epoch)
            ctx.metric("mi_ty_bits", ty, split=name, step=epoch)
            mi_xt[name][i] = xt
    per_record = (time.perf_counter() - start) / len(rec.epochs)
    ctx.metric("mi_seconds_per_record", per_record, split="all")
    ctx.metric("epoch_seconds", rec.epoch_seconds, split="all")
    if rec.epoch_seconds > 0:  # no training epochs: no overhead to report
        ctx.metric("mi_overhead", per_record / rec.epoch_seconds, split="all")
    return mi_xt


def check_estimator_kinds(name: str, kinds: tuple[str, ...]) -> tuple[str, ...]:
    """``kinds`` when the estimator can take I(T;Y) with a class label Y; else a clear error."""
    if not {"mixed", "discrete"} & set(kinds):
        raise InfobenchError(
            f"estimator {name!r} supports only {', '.join(kinds) or 'no'} pairs; I(T;Y) against a "
            "class label needs one that takes 'mixed' or 'discrete' pairs")
    return kinds


def x_variable(rec: Recording, choice: str, kinds: tuple[str, ...]) -> np.ndarray:
    """X for I(X;T): the flattened inputs (n, d) float32, or (n, 1) int64 ids of the distinct input rows.

    ``auto`` picks the ids when the estimator takes discrete pairs and every input value is an
    integer (the 12-bit task: X is then exactly the input pattern, never re-binned), or when it
    takes no real-valued X at all; otherwise the inputs.
    """
    if choice == "auto":
        integer_inputs = bool(np.all(rec.x == np.round(rec.x)))
        discrete = "discrete" in kinds and integer_inputs
        choice = "index" if discrete or "continuous" not in kinds else "inputs"
    if choice == "inputs":
        return rec.x
    rows = np.ascontiguousarray(rec.x)
    symbols = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, ids = np.unique(symbols, return_inverse=True)
    return ids.reshape(-1, 1).astype(np.int64)


def compression(mi_xt: np.ndarray, epochs: np.ndarray) -> tuple[float, float, int]:
    """One layer's I(X;T) over epochs: (fitting: peak minus first value, compression: peak minus
    last value, epoch of the peak)."""
    peak = int(np.argmax(mi_xt))
    return float(mi_xt[peak] - mi_xt[0]), float(mi_xt[peak] - mi_xt[-1]), int(epochs[peak])


def report_recording(ctx: RunContext, rec: Recording, mi_xt: dict[str, np.ndarray]) -> None:
    """Accuracy and loss per recorded epoch, the compression summary per layer, final accuracy."""
    for i, epoch in enumerate(rec.epochs.tolist()):
        for split, values in (("train", rec.train_accuracy), ("test", rec.test_accuracy)):
            if np.isfinite(values[i]):
                ctx.metric("accuracy", values[i], split=split, step=epoch)
        if np.isfinite(rec.loss[i]):
            ctx.metric("loss", rec.loss[i], split="train", step=epoch)
    for name, values in mi_xt.items():
        rise, drop, peak_epoch = compression(values, rec.epochs)
        ctx.metric("fitting_bits", rise, split=name)
        ctx.metric("compression_bits", drop, split=name)
        ctx.metric("peak_epoch", peak_epoch, split=name)
    final_train, final_test = rec.train_accuracy[-1], rec.test_accuracy[-1]
    warn_if_not_fitted(ctx, rec)
    if np.isfinite(final_test):
        ctx.metric("accuracy", final_test, split="test")
    if np.isfinite(final_train) and np.isfinite(final_test):
        ctx.metric("generalization_gap", final_train - final_test, split="test")


def warn_if_not_fitted(ctx: RunContext, rec: Recording, margin: float = 0.05) -> None:
    """Warn when training ended with the network near chance on its training rows.

    Its information plane then holds every recorded epoch but no fitting phase (points that
    barely move), which reads as an empty plane: a run too short for the question (e.g.
    ``train.epochs: 10`` on the 12-bit task, where the tanh network of Shwartz-Ziv & Tishby at
    Adam 4e-4 is at 0.51 after 10 epochs and passes 0.85 only after about 100). Chance is the
    majority class's share of those rows.
    """
    train_rows = rec.part == 0
    final = rec.train_accuracy[-1]
    if not train_rows.any() or not np.isfinite(final):
        return
    chance = float(np.bincount(rec.y[train_rows]).max() / train_rows.sum())
    if final < chance + margin:
        last = int(rec.epochs[-1])
        ctx.warn(f"after {last} epoch(s) the training accuracy is {final:.3f}, chance level {chance:.3f}: the "
                 f"network has not fitted yet, so its information plane ({len(rec.epochs)} recorded epochs) "
                 "shows no fitting phase; train for more epochs")
