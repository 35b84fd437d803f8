"""Task ``mi``: benchmark MI estimators on distributions whose mutual information is known.

One run draws ``scenario.n`` samples of the dataset's distribution (seeded by the run seed
and n), applies one estimator, and reports, in bits: the estimate ``mi_bits``, the truth
``true_mi_bits``, ``abs_error_bits`` = |estimate - truth|, ``rel_error`` = abs error / truth
(left out when the truth is 0), the estimator's wall-clock ``seconds`` and the sample size
``samples`` (the plot's panels). A pair the
estimator does not support (sklearn's 1-D estimator on 5-D data) records ``supported`` = 0 and
nothing else; so does a continuous pair for an estimator of a noisy deterministic
representation (the KDE bounds, which take y = f(x)). After a sweep, ``plots/mi_vs_truth.png``
shows estimate against truth, one panel per sample size.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from infobench import registry
from infobench.registry import register
from infobench.tasks.base import RunContext, Task
from infobench.tasks.mi.distributions import MIDistribution

LN2 = float(np.log(2))


class MIScenario(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = Field(4000, ge=2, le=10_000_000, description="sample size (write {grid: [1000, 4000, 16000]} for a sweep)")


def distribution(dataset_cfg: dict[str, Any]) -> MIDistribution:
    """The distribution named by a resolved ``dataset`` block."""
    cls = registry.get(MITask.dataset_kind, dataset_cfg["name"])
    return cls(cls.Params.model_validate({k: v for k, v in dataset_cfg.items() if k != "name"}))


@register("task", "mi")
class MITask(Task):
    """MI estimators against distributions with known mutual information (estimate, error, seconds)."""

    method_kind = "mi.estimator"
    dataset_kind = "mi.distribution"
    extra_kinds = {"distributions (the dataset block)": "mi.distribution"}
    Scenario = MIScenario
    uses_model = False
    summary_metrics = ("mi_bits", "true_mi_bits", "abs_error_bits", "seconds")

    @classmethod
    def train_config(cls):
        return None

    def run(self, run, ctx: RunContext) -> None:
        cfg = run.config
        scenario = MIScenario.model_validate(cfg["scenario"])
        dist = distribution(cfg["dataset"])
        x, y = dist.sample(scenario.n, np.random.default_rng([run.seed, scenario.n]))
        est_cls = registry.get(self.method_kind, run.method)
        estimator = est_cls(est_cls.Params.model_validate(run.params))
        reason = estimator.unsupported(x, y)
        if reason is None and estimator.deterministic_y and estimator.kind_of(x, y) == "continuous":
            reason = f"{run.method} measures I(X; T) for a representation T = f(X) plus noise, not I(X; Y) of a pair"
        if reason is not None:
            ctx.log(f"skipped: {reason}")
            ctx.metric("supported", 0.0)
            return
        started = time.perf_counter()
        estimate = estimator.estimate(x, y)
        seconds = time.perf_counter() - started
        ctx.check_finite(estimate, f"{run.method} estimate")
        truth = dist.true_mi()
        error = abs(estimate - truth)
        ctx.metrics({"supported": 1.0, "mi_bits": estimate / LN2, "true_mi_bits": truth / LN2,
                     "abs_error_bits": error / LN2, "seconds": seconds, "samples": float(scenario.n)})
        if truth > 0:
            ctx.metric("rel_error", error / truth)
        ctx.log(f"{run.method}: {estimate / LN2:.4f} bits (truth {truth / LN2:.4f}) in {seconds:.3f} s")

    def summarize(self, spec_name: str, metrics, plots_dir: Path) -> list[Path]:
        from infobench.tasks.mi.plots import mi_vs_truth

        path = mi_vs_truth(metrics, Path(plots_dir) / "mi_vs_truth.png", title=spec_name)
        return [path] if path is not None else []
