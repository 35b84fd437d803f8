"""Task ``calibration``: train a model (with a chosen loss), fit a post-hoc calibrator on
validation, evaluate on test and on every shifted domain.

Every run reports, for the clean test set and each shifted domain of the dataset (split =
domain), the calibrated predictions' accuracy, error, NLL, Brier score, ECE (equal-width and
equal-mass bins), MCE, ACE, classwise ECE, the debiased L2 calibration error and the AUROC of
confidence for correctness (:func:`infobench.metrics.calibration_metrics`), plus the
calibrator's fitted scalars on split ``val``, and its reliability bins per split (``step`` = bin
index of ``n_bins`` equal-width bins): ``reliability_count``, ``reliability_correct`` and
``reliability_confidence_sum`` (samples, correct ones, summed confidence) per bin. After a
sweep, ``summarize`` pools each variant's bins over seeds into ``plots/reliability_<variant>``:
one figure per variant, a reliability-diagram panel per split.

The base model's training loss comes from the spec's ``loss`` block (default ``ce``; see
:mod:`infobench.tasks.calibration.losses`): a grid over ``loss.name`` crossed with a list of
post-hoc methods compares calibration-aware training and post-hoc calibration in one table.
Calibrators that output probabilities only are evaluated through their floored
log-probabilities (``Calibrator.calibrated_log_probs``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from infobench.metrics import calibration_metrics
from infobench.registry import register
from infobench.tasks.base import RunContext, Task
from infobench.tasks.common import load_data, trained_model

LOSS_KIND = "calibration.loss"


class CalibrationScenario(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_bins: int = Field(15, ge=1, le=1000, description="bins of the ECE/MCE and the reliability diagram")
    shifted: bool = Field(True, description="also evaluate on the dataset's shifted domains (split = domain)")


class LossBlock(BaseModel):
    """The ``loss`` block: which training loss the base model is trained with."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field("ce", description="a registered calibration.loss (ce, focal, flsd53, ...)")
    params: dict[str, Any] = Field(default_factory=dict, description="that loss's parameters")

    @model_validator(mode="before")
    @classmethod
    def _inline_params(cls, data: Any) -> Any:
        """``{name: focal, gamma: 3}`` as methods are written: keys other than name and params
        are the loss's parameters (``{name: focal, params: {gamma: 3}}`` works as well)."""
        if not isinstance(data, dict):
            return data
        inline = {k: v for k, v in data.items() if k not in ("name", "params")}
        if not inline:
            return data
        params = data.get("params") or {}
        if not isinstance(params, dict):
            return data  # the field's own validation names the problem
        clash = sorted(set(inline) & set(params))
        if clash:
            raise ValueError(f"{', '.join(clash)} given both inline and under params")
        return {"name": data.get("name", "ce"), "params": {**params, **inline}}

    @model_validator(mode="after")
    def _resolve(self) -> LossBlock:
        from pydantic import ValidationError

        from infobench import registry
        from infobench.errors import RegistryError

        try:
            cls = registry.get(LOSS_KIND, self.name)
        except RegistryError as exc:
            raise ValueError(str(exc)) from None
        try:
            self.params = cls.Params.model_validate(self.params).model_dump(mode="json")
        except ValidationError as exc:
            lines = [f"params.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
            raise ValueError(f"loss {self.name!r}: " + "; ".join(lines)) from None
        return self


def base_model(data, cfg: dict[str, Any], seed: int, role: str = "model"):
    """The run's base model, trained with its ``loss`` block and cached under that loss.

    The default ``ce`` shares the cache entry of every task training with cross-entropy.
    ``role`` enters the cache key: a model trained on other labels than the dataset's own (the
    event labels of ``probability_estimation``) names them there.
    """
    from infobench import registry

    loss_cfg = LossBlock.model_validate(cfg.get("loss", {}))
    if loss_cfg.name == "ce":
        return trained_model(data, cfg["dataset"], cfg["model"], cfg["train"], seed, role=role)
    loss_cls = registry.get(LOSS_KIND, loss_cfg.name)
    loss = loss_cls(loss_cls.Params.model_validate(loss_cfg.params))
    key = loss_cfg.model_dump(mode="json")
    if not loss.needs_loop:
        return trained_model(data, cfg["dataset"], cfg["model"], cfg["train"], seed, role=role,
                             loss_fn=loss.batch_loss, loss_key=key)
    return _trained_in_own_loop(data, cfg, seed, loss, key, role)


def _trained_in_own_loop(data, cfg: dict[str, Any], seed: int, loss, key: dict[str, Any], role: str):
    """Like ``trained_model``: on the run's device, a reduced precision in the cache key."""
    from infobench import device as devices
    from infobench.cache import cached_model
    from infobench.models.train import TrainConfig, build_model
    from infobench.tasks.calibration.losses.base import train_with_loss

    config = TrainConfig.model_validate(cfg["train"])
    parts = {"dataset": cfg["dataset"], "model": cfg["model"], "train": config.model_dump(mode="json"),
             "seed": seed, "role": role, "loss": key}
    if devices.precision() != "fp32":
        parts["precision"] = devices.precision()
    where = devices.current()
    return cached_model(
        parts,
        lambda: build_model(cfg["model"], data.input_shape, data.num_classes, seed=seed).to(where),
        lambda model: train_with_loss(model, data, config, seed, loss),
    )


def fitted_calibrator(run, model, val, ctx: RunContext):
    """The run's calibrator fitted on the ``val`` split's logits, and ``inputs(split)``: the
    extra keyword arguments (``x=``) its ``calibrated_log_probs`` needs for a split."""
    from infobench import registry
    from infobench.models.train import predict_logits

    method_cls = registry.get("calibration.method", run.method)
    calibrator = method_cls(method_cls.Params.model_validate(run.params))
    if calibrator.uses_inputs:
        calibrator.bind(model)

    def inputs(split) -> dict[str, Any]:
        return {"x": split.x} if calibrator.uses_inputs else {}

    val_logits = predict_logits(model, val.x)
    ctx.check_finite(val_logits, "validation logits")
    calibrator.fit(val_logits, val.y, **inputs(val))
    if calibrator.reports_degenerate_fit:
        # 1.0 when the paper's objective has no finite optimum on this validation set (it is
        # separable, say) and the calibrator fitted its documented fallback instead
        ctx.metric("degenerate_fit", float(bool(calibrator.degenerate_reason)), split="val")
        if calibrator.degenerate_reason:
            ctx.warn(f"{run.method}: {calibrator.degenerate_reason}")
    return calibrator, inputs


@register("task", "calibration")
class CalibrationTask(Task):
    """Post-hoc calibration and calibration-aware training, evaluated clean and under shift."""

    method_kind = "calibration.method"
    Scenario = CalibrationScenario
    blocks = {"loss": LossBlock}
    extra_kinds = {"training losses (the loss block)": "calibration.loss"}
    summary_metrics = ("accuracy", "nll", "ece", "brier")

    def run(self, run, ctx: RunContext) -> None:
        from infobench.models.train import predict_logits

        cfg = run.config
        scenario = CalibrationScenario.model_validate(cfg["scenario"])
        data = load_data(cfg["dataset"], run.seed)
        model = base_model(data, cfg, run.seed)

        calibrator, inputs = fitted_calibrator(run, model, data.val, ctx)
        for name, value in calibrator.fitted().items():
            ctx.metric(name, value, split="val")

        splits = {"test": data.test}
        if scenario.shifted:
            splits.update(data.domains)
        for split_name, split in splits.items():
            logits = predict_logits(model, split.x)
            ctx.check_finite(logits, f"logits on {split_name}")
            log_probs = calibrator.calibrated_log_probs(logits, **inputs(split))
            ctx.metrics(calibration_metrics(log_probs, split.y, n_bins=scenario.n_bins), split=split_name)
            record_reliability(ctx, np.exp(log_probs), split.y, scenario.n_bins, split_name)

    def summarize(self, spec_name: str, metrics, plots_dir: Path) -> list[Path]:
        """One reliability figure per variant: a panel per split (test, then each shifted domain), the
        bins of every seed pooled (their samples together); returns the files written."""
        from infobench.plots import reliability_figure, save_figure, unique_slugs

        rows = metrics[metrics["metric"].str.startswith("reliability_") & metrics["step"].notna()]
        written = []
        for variant, name in unique_slugs(rows["variant"]).items():
            part = rows[rows["variant"] == variant]
            panels = {split: pooled_reliability(by_split) for split, by_split in part.groupby("split", sort=False)}
            seeds = sorted(part["seed"].unique())
            pooled = f"{len(seeds)} seeds pooled" if len(seeds) > 1 else f"seed {seeds[0]}"
            title = f"{spec_name}: {variant}, {pooled}"
            written.append(save_figure(reliability_figure(panels, title=title), Path(plots_dir) / f"reliability_{name}"))
        return written


def record_reliability(ctx: RunContext, probs: np.ndarray, labels: np.ndarray, n_bins: int, split: str) -> None:
    """The equal-width reliability bins of ``split`` as metric rows (``step`` = bin index): the
    samples, the correct ones and the sum of their confidences per bin. Sums rather than means, so
    that seeds pool by adding them and every bin has a row, empty ones included."""
    from infobench.metrics import reliability_bins

    bins = reliability_bins(probs, labels, n_bins=n_bins)
    filled = bins.counts > 0
    correct = np.where(filled, bins.counts * np.nan_to_num(bins.accuracy), 0.0)
    confidence = np.where(filled, bins.counts * np.nan_to_num(bins.confidence), 0.0)
    for b in range(bins.n_bins):
        ctx.metrics({"reliability_count": bins.counts[b], "reliability_correct": round(correct[b]),
                     "reliability_confidence_sum": confidence[b]}, split=split, step=b)


def pooled_reliability(rows):
    """The :class:`~infobench.metrics.ReliabilityBins` of all samples of the runs in ``rows`` (one
    split's rows of :func:`record_reliability`, e.g. every seed of a variant): NaN accuracy and
    confidence in a bin that is empty in every run."""
    from infobench.metrics import ReliabilityBins

    sums = rows.pivot_table(index="step", columns="metric", values="value", aggfunc="sum")
    n_bins = int(sums.index.max()) + 1
    sums = sums.reindex(range(n_bins), fill_value=0.0)
    counts = sums["reliability_count"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = sums["reliability_correct"].to_numpy(float) / counts
        confidence = sums["reliability_confidence_sum"].to_numpy(float) / counts
    return ReliabilityBins(counts=counts.astype(np.int64), accuracy=accuracy, confidence=confidence,
                           edges=np.linspace(0.0, 1.0, n_bins + 1), binning="width")
