"""Task ``probability_estimation``: calibration measured against a known ground truth.

In the spirit of Liu et al., "Deep Probability Estimation" (ICML 2022, Sec. 5, synthetic data):
every input carries a latent attribute z in [0, 1) and a true event probability p = psi(z);
its binary label is drawn y ~ Bernoulli(p). A classifier sees only (x, y), so the observable
metrics (ECE, Brier, NLL, ...) can be compared with metrics against the truth,

    mse_true = mean_i (p_hat_i - p_i)^2,
    kl_true  = mean_i KL(Bernoulli(p_i) || Bernoulli(p_hat_i))   (nats),

for every post-hoc calibrator (the ``calibration.method`` registry) and every training loss
(the ``loss`` block, as in the calibration task). After a sweep, the Spearman correlation over
methods between each observable metric and mse_true says which observable metric ranks methods
the way the truth does (figure ``rank_agreement.png``).

Documented choice (latent attribute): the dataset's own class c (of C classes) and a uniform
s ~ U[0, 1) drawn per sample give z = (c + s) / C; s is made visible by scaling the input's
amplitude by 0.25 + 0.75 s, so z is recoverable from x (the digit or MNIST-1D shape gives c,
the amplitude s). Documented choice (psi): uniform p = z; sigmoid p = 1 / (1 + e^(-12(z -
1/2))); skewed p = z^3 (mostly small probabilities); centred p = 0.3 + 0.4 z (all near 1/2);
discrete p in {0.1, 0.3, 0.5, 0.7, 0.9} by fifths of z. Labels and s are drawn from the run's
seed, so seeds repeat the whole experiment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from infobench.data.base import DataBundle, Split
from infobench.metrics import calibration_metrics
from infobench.registry import register
from infobench.tasks.base import RunContext, Task
from infobench.tasks.calibration.task import (
    CalibrationTask,
    LossBlock,
    base_model,
    fitted_calibrator,
)
from infobench.tasks.common import load_data

PSI = {
    "uniform": lambda z: z,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-12.0 * (z - 0.5))),
    "skewed": lambda z: z**3,
    "centred": lambda z: 0.3 + 0.4 * z,
    "discrete": lambda z: (np.floor(5.0 * z) + 0.5) / 5.0,
}
OBSERVABLE = ("ece", "ece_mass", "ace", "ce_l2_debiased", "ece_classwise", "brier", "nll")
EPS = 1e-12


class ProbabilityScenario(BaseModel):
    model_config = ConfigDict(extra="forbid")
    psi: Literal["uniform", "sigmoid", "skewed", "centred", "discrete"] = Field(
        "uniform", description="the map from the latent attribute z to the true probability p")
    n_bins: int = Field(15, ge=1, le=1000, description="bins of the observable calibration metrics")


def latent_event_split(split: Split, num_classes: int, psi: str, rng: np.random.Generator) -> tuple[Split, np.ndarray]:
    """The split with binary labels y ~ Bernoulli(psi(z)) and amplitude-coded s; returns (split, p)."""
    n = len(split)
    s = rng.uniform(size=n)
    z = (split.y + s) / num_classes
    p = np.clip(PSI[psi](z), 0.0, 1.0)
    labels = (rng.uniform(size=n) < p).astype(np.int64)
    scale = (0.25 + 0.75 * s).astype(np.float32).reshape((n,) + (1,) * (split.x.ndim - 1))
    return Split(x=split.x * scale, y=labels), p


def latent_event_data(data: DataBundle, psi: str, seed: int) -> tuple[DataBundle, dict[str, np.ndarray]]:
    """Binary event versions of train/val/test and the true p of each split."""
    splits, truth = {}, {}
    for i, name in enumerate(("train", "val", "test")):
        rng = np.random.default_rng([seed, i])
        splits[name], truth[name] = latent_event_split(getattr(data, name), data.num_classes, psi, rng)
    bundle = DataBundle(name=f"{data.name}-event-{psi}", num_classes=2, input_shape=data.input_shape, **splits)
    return bundle, truth


def truth_metrics(p_hat: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """MSE and mean KL(Bernoulli(p) || Bernoulli(p_hat)) in nats between predicted and true probabilities."""
    q = np.clip(p_hat, EPS, 1 - EPS)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = (np.where(p > 0, p * np.log(p / q), 0.0)
              + np.where(p < 1, (1 - p) * np.log((1 - p) / (1 - q)), 0.0))
    return {"mse_true": float(np.mean((p_hat - p) ** 2)), "kl_true": float(np.mean(kl))}


def rank_agreement(metrics, truth: str = "mse_true", split: str = "test", by: str = "scenario.psi"):
    """Spearman correlation over methods between each observable metric and ``truth``.

    ``metrics``: the long metrics table (pandas). A "method" is a post-hoc variant together with
    every setting choice except ``by`` (so ``[loss.name=cape,scenario.psi=skewed]`` ranks
    ``temperature`` with CaPE among all calibrator x loss pairs of psi = skewed). Means over
    seeds are ranked. Returns a DataFrame with columns setting (the value of ``by``), metric,
    spearman, n_methods; settings with fewer than three methods are left out.
    """
    import pandas as pd
    from scipy.stats import spearmanr

    df = metrics[(metrics["split"] == split) & metrics["step"].isna()].copy()
    parts = df["variant"].str.extract(r"^(?P<method>.*?)(?: \[(?P<setting>.*)\])?$")
    choices = parts["setting"].fillna("").str.split(",")
    df["setting"] = [next((c.split("=", 1)[1] for c in cs if c.startswith(by + "=")), "") for cs in choices]
    df["method_label"] = [m + "".join(f" {c}" for c in cs if c and not c.startswith(by + "="))
                          for m, cs in zip(parts["method"], choices)]
    rows = []
    for setting, group in df.groupby("setting"):
        table = group.pivot_table(index="method_label", columns="metric", values="value", aggfunc="mean")
        if truth not in table or len(table) < 3:
            continue
        for metric in OBSERVABLE:
            if metric in table:
                rho = spearmanr(table[metric], table[truth]).statistic
                rows.append({"setting": setting, "metric": metric, "spearman": float(rho), "n_methods": len(table)})
    return pd.DataFrame(rows, columns=["setting", "metric", "spearman", "n_methods"])


@register("task", "probability_estimation")
class ProbabilityEstimationTask(Task):
    """Probability estimation with a known true p (Deep Probability Estimation): truth vs observable metrics."""

    method_kind = "calibration.method"
    Scenario = ProbabilityScenario
    blocks = {"loss": LossBlock}
    extra_kinds = CalibrationTask.extra_kinds
    summary_metrics = ("mse_true", "kl_true", "ece", "brier", "nll")

    def run(self, run, ctx: RunContext) -> None:
        from infobench.models.train import predict_logits

        cfg = run.config
        scenario = ProbabilityScenario.model_validate(cfg["scenario"])
        data, truth = latent_event_data(load_data(cfg["dataset"], run.seed), scenario.psi, run.seed)
        # the cache key must tell event labels of each psi apart from the dataset's own labels
        model = base_model(data, cfg, run.seed, role=f"latent-event-{scenario.psi}")

        calibrator, inputs = fitted_calibrator(run, model, data.val, ctx)
        logits = predict_logits(model, data.test.x)
        ctx.check_finite(logits, "test logits")
        log_probs = calibrator.calibrated_log_probs(logits, **inputs(data.test))
        ctx.metrics(calibration_metrics(log_probs, data.test.y, n_bins=scenario.n_bins))
        ctx.metrics(truth_metrics(np.exp(log_probs[:, 1]), truth["test"]))

    def summarize(self, spec_name: str, metrics, plots_dir: Path) -> list[Path]:
        from infobench.plots import legend_outside, new_figure, save_figure, series_styles

        table = rank_agreement(metrics)
        if table.empty:
            return []
        styles = series_styles(table["setting"])
        fig, (ax,) = new_figure((9.0, 4.0))
        width = 0.8 / max(len(styles), 1)
        for i, (setting, style) in enumerate(styles.items()):
            rows = table[table["setting"] == setting].set_index("metric").reindex(list(OBSERVABLE))
            ax.bar(np.arange(len(OBSERVABLE)) + i * width, rows["spearman"], width=width, color=style.color,
                   edgecolor="black", linewidth=0.5, label=setting or spec_name)
        ax.set_xticks(np.arange(len(OBSERVABLE)) + width * (len(styles) - 1) / 2, OBSERVABLE, rotation=30)
        ax.set_xlabel("observable metric")
        ax.set_ylabel("Spearman correlation with mse_true\nover methods")
        ax.axhline(0.0, color="black", linewidth=0.5)
        ax.set_ylim(-1.05, 1.05)
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_title(f"{spec_name}: observable metrics ranking methods like the true error")
        legend_outside(fig, [ax], title="scenario.psi")
        return [save_figure(fig, Path(plots_dir) / "rank_agreement")]
