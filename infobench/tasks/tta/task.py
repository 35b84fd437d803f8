"""Task ``tta``: online test-time adaptation of a source model on a shifted, unlabeled stream.

A source model is trained on the clean training split (cached), copied, and handed to the
method. The stream (see :mod:`infobench.tasks.tta.streams`) arrives in batches; every batch is
predicted by ``adapt_and_predict`` *before* the method updates on it, in one pass, without
labels. ``reset: per_domain`` calls ``method.reset()`` at every domain change (a ``mixed``
stream has one segment, so it never resets); episodic methods reset themselves per batch.

Metrics (``split`` / ``step``):

- per batch (``stream`` / batch index): ``error`` (online, inliers only), ``seconds`` and
  every diagnostic the method reports in ``batch_stats`` (``kept``: fraction a filter kept);
- per domain (the domain key, e.g. ``contrast@5``), per severity (``severity@5``) and for the
  whole stream (``stream``, no step): online ``error``/``accuracy``, ``error_before``/
  ``accuracy_before`` (the source model, no adaptation), ``nll``, ``ece`` of the online
  predictions (15 equal-width bins), ``kept``, ``seconds_per_batch``, ``samples``;
  for the stream also ``samples_per_second``; on ``open_set`` streams ``auroc_msp``,
  ``fpr95_msp``, ``auroc_energy``, ``fpr95_energy`` (outlier detection with inliers positive)
  and ``outliers``;
- per domain visit (the domain key / index of the visit's first batch): ``domain_start``, the
  stream row where the visit begins (a stream of several rounds visits a domain more than once);
- run facts (``run``): ``needs_source`` (0/1), ``reset_per_domain`` (0/1), ``updates_<what>`` = 1.

``summarize`` draws ``plots/online_error.png``: online error along the stream per variant, domain
borders marked (one file per setting when the spec has a grid over the scenario or other blocks).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from infobench.data.base import DataBundle, Split
from infobench.metrics import classification_metrics
from infobench.registry import register
from infobench.tasks.base import RunContext, Task
from infobench.tasks.common import load_data, trained_model
from infobench.tasks.tta.streams import Stream, build_stream, severity_of

MIN_KEPT = 0.05
"""A filter keeping less of a domain than this has not adapted on it: the run warns."""

Order = Literal["single", "continual", "gradual", "mixed", "dirichlet", "open_set"]


class TTAScenario(BaseModel):
    """The stream a TTA method adapts on and how it is cut into batches."""

    model_config = ConfigDict(extra="forbid")

    order: Order = Field("continual", description="stream order: single | continual | gradual | mixed | dirichlet | open_set")
    batch_size: int = Field(64, ge=1, description="test samples per batch (the unit of one adaptation step)")
    rounds: int = Field(1, ge=1, description="visit the whole sequence of domains this many times (a longer stream)")
    reset: Literal["never", "per_domain"] = Field("never", description="reset the method at every domain change")
    domain: str | None = Field(None, description="the domain of order: single (default: the dataset's first)")
    shuffle: bool = Field(True, description="shuffle samples within each domain (seeded by the run seed)")
    max_per_domain: int | None = Field(None, ge=1, description="subsample each domain to at most this many samples")
    delta: float = Field(0.1, gt=0, description="Dirichlet concentration of order: dirichlet (small: label-correlated)")
    outlier_ratio: float = Field(0.2, ge=0, lt=1, description="fraction of each open_set domain made of outliers")
    outliers: Literal["noise", "held_out", "both"] = Field(
        "noise", description="open_set outliers: uniform-noise images, held-out classes, or both"
    )
    held_out_classes: list[int] = Field(
        default_factory=list, description="classes removed from source training and used as open_set outliers"
    )
    n_bins: int = Field(15, ge=1, le=1000, description="bins of the ECE of the online predictions")

    @model_validator(mode="after")
    def _consistent(self) -> TTAScenario:
        if self.outliers in ("held_out", "both") and not self.held_out_classes:
            raise ValueError(f"outliers: {self.outliers} needs held_out_classes (e.g. [8, 9])")
        if self.held_out_classes and self.order != "open_set":
            raise ValueError("held_out_classes is only used with order: open_set")
        if len(set(self.held_out_classes)) != len(self.held_out_classes):
            raise ValueError(f"held_out_classes must not repeat, got {self.held_out_classes}")
        return self


def _without_classes(data: DataBundle, classes: list[int]) -> DataBundle:
    """``data`` with the training and validation samples of ``classes`` removed."""

    from infobench.data.images import take

    def keep(split: Split) -> Split:
        mask = ~np.isin(split.y, classes)
        return Split(take(split.x, np.flatnonzero(mask)), split.y[mask])

    return DataBundle(data.name, keep(data.train), keep(data.val), data.test, data.num_classes,
                      data.input_shape, data.domains)


@register("task", "tta")
class TTATask(Task):
    """Online test-time adaptation of a source model on shifted unlabeled streams."""

    method_kind = "tta.method"
    Scenario = TTAScenario
    summary_metrics = ("error", "error_before", "ece", "kept", "seconds_per_batch")
    summary_split = "stream"

    def run(self, run, ctx: RunContext) -> None:
        from infobench import device as devices
        from infobench import registry
        from infobench.errors import InfobenchError
        from infobench.models.train import predict_logits
        from infobench.tasks.tta.methods.base import SourceInfo

        cfg = run.config
        scenario = TTAScenario.model_validate(cfg["scenario"])
        data = load_data(cfg["dataset"], run.seed)
        bad = [c for c in scenario.held_out_classes if not 0 <= c < data.num_classes]
        if bad:
            raise InfobenchError(f"scenario.held_out_classes: {bad} are not classes of {data.name!r} (0..{data.num_classes - 1})")
        source_data = _without_classes(data, scenario.held_out_classes) if scenario.held_out_classes else data
        loss_key = {"held_out_classes": scenario.held_out_classes} if scenario.held_out_classes else None
        model = trained_model(source_data, cfg["dataset"], cfg["model"], cfg["train"], run.seed,
                              role="source", loss_key=loss_key)

        rng = np.random.default_rng([run.seed % 2**63, 7])
        stream = build_stream(
            data, scenario.order, scenario.batch_size, rng, domain=scenario.domain, shuffle=scenario.shuffle,
            max_per_domain=scenario.max_per_domain, delta=scenario.delta, rounds=scenario.rounds, outlier_ratio=scenario.outlier_ratio,
            noise_outliers=scenario.outliers in ("noise", "both"),
            held_out_classes=tuple(scenario.held_out_classes) if scenario.outliers != "noise" else (),
        )

        method_cls = registry.get(self.method_kind, run.method)
        method = method_cls(method_cls.Params.model_validate(run.params))
        # read from the instance: a parameter (rmt's source_free, sfda_prior's prior) can turn it off
        source = SourceInfo(num_classes=data.num_classes, train=source_data.train if method.needs_source else None)
        ctx.metric("needs_source", float(method.needs_source), split="run")
        ctx.metric("reset_per_domain", float(scenario.reset == "per_domain"), split="run")
        ctx.metric(f"updates_{method.updates}", 1.0, split="run")
        ctx.log(f"method {run.method}: updates {method.updates}, needs_source={method.needs_source}, "
                f"reset={scenario.reset}, order={scenario.order}, {len(stream)} samples in "
                + ", ".join(f"{s.name}={s.stop - s.start}" for s in stream.segments))

        before = predict_logits(model, stream.x)
        method.setup(copy.deepcopy(model), source)

        batches = stream.batches(scenario.batch_size)
        online = np.empty((len(stream), data.num_classes), dtype=np.float32)
        batch_of = np.empty(len(stream), dtype=np.int64)
        seconds, kept = [], []
        inputs = _stream_inputs(stream.x, [(start, stop) for start, stop, _ in batches], devices.current())
        segment_at = {seg.start: seg.name for seg in stream.segments}
        for b, ((start, stop, new_segment), x) in enumerate(zip(batches, inputs, strict=True)):
            if new_segment:
                # where each domain visit begins, for the borders on the online-error plot
                ctx.metric("domain_start", start, split=segment_at[start], step=b)
            if new_segment and start > 0 and scenario.reset == "per_domain":
                method.reset()
            method.batch_stats = {}
            t0 = time.perf_counter()
            with devices.autocast():
                logits = method.adapt_and_predict(x)
            devices.synchronize()  # so that the time is the batch's work, not its launch
            seconds.append(time.perf_counter() - t0)
            ctx.check_finite(logits, f"logits of batch {b} (stream rows {start}-{stop})")
            online[start:stop] = logits.detach().float().cpu().numpy()
            batch_of[start:stop] = b
            kept.append(float(method.batch_stats.get("kept", 1.0)))
            y = stream.y[start:stop]
            inl = y >= 0
            if inl.any():
                ctx.metric("error", float(np.mean(online[start:stop][inl].argmax(1) != y[inl])), split="stream", step=b)
            ctx.metric("seconds", seconds[-1], split="stream", step=b)
            for name, value in method.batch_stats.items():
                ctx.metric(name, value, split="stream", step=b)

        self._report(ctx, stream, online, before, batch_of, np.array(seconds), np.array(kept), scenario.n_bins)

    @staticmethod
    def _report(ctx: RunContext, stream: Stream, online: np.ndarray, before: np.ndarray, batch_of: np.ndarray,
                seconds: np.ndarray, kept: np.ndarray, n_bins: int) -> None:
        """Per-domain, per-severity and whole-stream metrics of the online predictions."""
        groups: dict[str, np.ndarray] = {}
        for i, name in enumerate(stream.domain_names):
            groups[name] = stream.domain == i
        severities = sorted({s for s in map(severity_of, stream.domain_names) if s is not None})
        if len(severities) > 1:
            for level in severities:
                ids = [i for i, n in enumerate(stream.domain_names) if severity_of(n) == level]
                groups[f"severity@{level}"] = np.isin(stream.domain, ids)
        groups["stream"] = np.ones(len(stream), dtype=bool)
        sample_kept = kept[batch_of]  # each sample carries its batch's kept fraction
        sample_seconds = seconds[batch_of] / np.bincount(batch_of)[batch_of]
        for split, mask in groups.items():
            inl = mask & (stream.y >= 0)
            if inl.any():
                now = classification_metrics(online[inl], stream.y[inl], n_bins=n_bins)
                src = classification_metrics(before[inl], stream.y[inl], n_bins=n_bins)
                ctx.metrics({"error": now["error"], "accuracy": now["accuracy"], "nll": now["nll"], "ece": now["ece"],
                             "error_before": src["error"], "accuracy_before": src["accuracy"]}, split=split)
            n_batches = len(np.unique(batch_of[mask]))
            if split in stream.domain_names and sample_kept[mask].mean() < MIN_KEPT:
                ctx.warn(f"{split}: the method's sample filter kept {sample_kept[mask].mean():.1%} of the "
                         f"samples (under {MIN_KEPT:.0%}), so it barely adapted there; check its margins "
                         "for this dataset (the family defaults, or the method's parameters)")
            ctx.metrics({"kept": float(sample_kept[mask].mean()), "samples": float(mask.sum()),
                         "seconds_per_batch": float(sample_seconds[mask].sum() / n_batches)}, split=split)
        ctx.metric("samples_per_second", len(stream) / float(seconds.sum()), split="stream")
        if stream.outlier.any():
            ctx.metric("outliers", float(stream.outlier.sum()), split="stream")
            ctx.metrics(outlier_detection(online, stream.outlier), split="stream")

    def summarize(self, spec_name: str, metrics, plots_dir: Path) -> list[Path]:
        """Online error along the stream in %, one line per method variant (mean ± std over seeds),
        domain borders marked where the runs recorded ``domain_start``.

        Each run's per-batch error is smoothed by a trailing mean over ``max(1, batches / 40)``
        batches (said on the y axis).

        ``online_error.<format>`` when the spec has one setting; with a grid over the other blocks,
        one ``online_error_<setting>`` per setting (the label in the variant's brackets), so that
        lines are only drawn against others on the same stream. A method keeps its style in each.
        """
        from infobench.plots import line_plot, series_styles, split_settings, unique_slugs, wrapped

        rows = metrics[(metrics["metric"] == "error") & (metrics["split"] == "stream") & metrics["step"].notna()]
        if rows.empty:
            return []
        # sorted by batch alone (stable): the runs keep the results' order, which fixes the styles
        data = rows.rename(columns={"value": "online error", "step": "batch"}).sort_values("batch", kind="stable")
        data["online error"] *= 100
        # a trailing moving average per run, so that a long stream shows trends, not batch noise
        window = max(1, round(data["batch"].max() / 40))
        data["online error"] = data.groupby("run_id", sort=False)["online error"].transform(
            lambda v: v.rolling(window, min_periods=1).mean())
        data["variant"], setting = split_settings(data["variant"])
        styles = series_styles(data["variant"])
        starts = metrics[(metrics["metric"] == "domain_start") & metrics["step"].notna()]
        names = unique_slugs(setting)
        written = []
        for label, name in names.items():
            part = data[setting == label]
            title = f"{spec_name}: online error along the stream" + (f"\n{wrapped(label)}" if label else "")
            ylabel = "online error [%]" + (f"\n(mean of the last {window} batches)" if window > 1 else "")
            path, _ = line_plot(part, x="batch", y="online error", hue="variant",
                                path=Path(plots_dir) / (f"online_error_{name}" if label else "online_error"),
                                title=title, ylabel=ylabel, styles=styles,
                                segments=stream_segments(starts, part["run_id"].iloc[0]))
            written.append(path)
        return written


def stream_segments(starts, run_id: str) -> list[tuple[float, str]]:
    """(first batch, domain) of each domain visit of run ``run_id``, from its ``domain_start`` rows
    (every run of a setting has the same stream); empty for results recorded before them."""
    own = starts[starts["run_id"] == run_id].sort_values("step")
    return [(float(step), str(name)) for step, name in zip(own["step"], own["split"])]


def _stream_inputs(x, ranges: list[tuple[int, int]], where):
    """The stream's batches as tensors on ``where``: an array in memory moves there once and is
    sliced; a lazy image array (ImageNet-C) is decoded by loader workers ahead of use."""
    import torch

    if isinstance(x, np.ndarray):
        on_device = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(where)
        return (on_device[start:stop] for start, stop in ranges)
    from infobench.data.images import iter_batches

    return iter_batches(x, ranges, where)


def outlier_detection(logits: np.ndarray, outlier: np.ndarray) -> dict[str, float]:
    """AUROC and FPR at 95% TPR of two outlier scores, inliers as positives.

    Scores (higher = more inlier-like): maximum softmax probability (Hendrycks & Gimpel, ICLR
    2017) and negative energy ``logsumexp(z)`` (Liu et al., NeurIPS 2020). FPR@95TPR is the
    fraction of outliers scoring at least the threshold that keeps 95% of the inliers.
    ``logits``: (n, C); ``outlier``: (n,) booleans with both values present.
    """
    from scipy.special import logsumexp, softmax
    from sklearn.metrics import roc_auc_score, roc_curve

    inlier = ~np.asarray(outlier, dtype=bool)
    if inlier.all() or not inlier.any():
        raise ValueError("outlier detection needs both inliers and outliers")
    z = logits.astype(np.float64)
    out: dict[str, float] = {}
    for name, score in (("msp", softmax(z, axis=1).max(1)), ("energy", logsumexp(z, axis=1))):
        out[f"auroc_{name}"] = float(roc_auc_score(inlier, score))
        fpr, tpr, _ = roc_curve(inlier, score)
        out[f"fpr95_{name}"] = float(fpr[np.searchsorted(tpr, 0.95, side="left")])
    return out
