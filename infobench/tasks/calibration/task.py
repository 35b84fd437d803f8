"""Task ``calibration``: train a model, fit a post-hoc calibrator on validation, evaluate on test.

Every run reports, for the clean test set and each shifted domain of the dataset, the
calibrated predictions' accuracy, error, NLL, Brier score, ECE (15 equal-width and
equal-mass bins) and MCE, plus the calibrator's fitted scalars on split ``val``, and draws a
reliability diagram of the clean test set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from infobench.metrics import classification_metrics
from infobench.registry import register
from infobench.tasks.base import RunContext, Task
from infobench.tasks.common import load_data, trained_model


class CalibrationScenario(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_bins: int = Field(15, ge=1, le=1000, description="bins of the ECE/MCE and the reliability diagram")
    shifted: bool = Field(True, description="also evaluate on the dataset's shifted domains (split = domain)")


@register("task", "calibration")
class CalibrationTask(Task):
    """Post-hoc calibration of a trained classifier, evaluated clean and under shift."""

    method_kind = "calibration.method"
    Scenario = CalibrationScenario
    summary_metrics = ("accuracy", "nll", "ece", "brier")

    def run(self, run, ctx: RunContext) -> None:
        from infobench import registry
        from infobench.models.train import predict_logits

        cfg = run.config
        scenario = CalibrationScenario.model_validate(cfg["scenario"])
        data = load_data(cfg["dataset"], run.seed)
        model = trained_model(data, cfg["dataset"], cfg["model"], cfg["train"], run.seed)

        method_cls = registry.get(self.method_kind, run.method)
        calibrator = method_cls(method_cls.Params.model_validate(run.params))
        val_logits = predict_logits(model, data.val.x)
        ctx.check_finite(val_logits, "validation logits")
        calibrator.fit(val_logits, data.val.y)
        for name, value in calibrator.fitted().items():
            ctx.metric(name, value, split="val")

        splits = {"test": data.test}
        if scenario.shifted:
            splits.update(data.domains)
        for split_name, split in splits.items():
            logits = predict_logits(model, split.x)
            ctx.check_finite(logits, f"logits on {split_name}")
            calibrated = calibrator.calibrated_logits(logits)
            ctx.metrics(classification_metrics(calibrated, split.y, n_bins=scenario.n_bins), split=split_name)
            if split_name == "test":
                self._reliability_plot(ctx, calibrator.transform(logits), split.y, scenario.n_bins)

    @staticmethod
    def _reliability_plot(ctx: RunContext, probs: np.ndarray, labels: np.ndarray, n_bins: int) -> None:
        from infobench.plots import reliability_diagram

        run = ctx.run
        slug = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in run.variant)
        path = Path(ctx.plots_dir) / f"reliability_{slug}_seed{run.seed}.png"
        reliability_diagram(probs, labels, path, n_bins=n_bins, title=f"{run.variant}, seed {run.seed}")
