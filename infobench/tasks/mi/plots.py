"""Figures of the ``mi`` task: estimate against truth per estimator."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def mi_vs_truth_points(metrics):
    """Mean over seeds of (true_mi_bits, mi_bits) per method and variant: a DataFrame with
    columns method, variant, series (the method with its own settings, one plotted series),
    truth, estimate, std and samples (the sample size; NaN for results written before runs
    recorded it)."""
    final = metrics[metrics["step"].isna() & metrics["metric"].isin(["mi_bits", "true_mi_bits", "samples"])]
    wide = final.pivot_table(index=["method", "variant", "seed"], columns="metric", values="value")
    if "samples" not in wide:
        wide["samples"] = np.nan
    wide = wide.dropna(subset=[c for c in ("mi_bits", "true_mi_bits") if c in wide])
    if wide.empty or "mi_bits" not in wide:
        return wide.iloc[0:0]
    grouped = wide.groupby(level=["method", "variant"])
    out = grouped.mean().rename(columns={"true_mi_bits": "truth", "mi_bits": "estimate"})
    out["std"] = grouped["mi_bits"].std().fillna(0.0)
    out = out.reset_index()
    # a series per method and its own settings: the variant without the grid values in brackets
    out["series"] = out["variant"].str.split(" [", n=1, regex=False).str[0]
    return out


def dodge_offsets(truths, n_series: int, span: float) -> np.ndarray:
    """Horizontal offsets of ``n_series`` series around each true value, so that estimators at the
    same truth sit side by side instead of on top of each other: spread over at most 60% of the
    smallest gap between distinct truths and at most 8% of the axis ``span``; centred on 0."""
    if n_series < 2:
        return np.zeros(n_series)
    distinct = np.unique(np.asarray(truths, float))
    gap = float(np.min(np.diff(distinct))) if len(distinct) > 1 else span
    width = min(0.6 * gap, 0.08 * span)
    return (np.arange(n_series) - (n_series - 1) / 2) * width / (n_series - 1)


def mi_vs_truth(metrics, path: str | Path, title: str = "") -> Path | None:
    """Scatter of each estimator's mean estimate (±std over seeds) against the true MI, in bits,
    with the diagonal, one panel per sample size (estimators converge at different rates, and
    points of different n at the same truth would hide each other); written to ``path`` in the
    current figure format. The estimators at one truth are dodged sideways (:func:`dodge_offsets`;
    the x axis is read at each cluster's centre) and each has its own colour and marker. Returns the
    path written, or None when there is nothing to draw."""
    from infobench.plots import REFERENCE, legend_outside, new_figure, save_figure, series_styles

    points = mi_vs_truth_points(metrics)
    if len(points) == 0:
        return None
    sizes = sorted(points["samples"].dropna().unique()) or [np.nan]
    fig, axes = new_figure((4.6 * len(sizes) + 2.6, 4.6), columns=len(sizes))
    series = sorted(points["series"].unique())
    styles = series_styles(series)  # the same colour and marker per series in every panel
    top = float(np.nanmax(points[["truth", "estimate"]].to_numpy())) * 1.05 + 1e-9
    offsets = dict(zip(series, dodge_offsets(points["truth"], len(series), top)))
    for ax, size in zip(axes, sizes):
        panel = points if np.isnan(size) else points[points["samples"] == size]
        for name in series:
            group = panel[panel["series"] == name]
            if group.empty:
                continue
            label = f"{name} (bound)" if _is_bound(group["method"].iloc[0]) else name
            style = styles[name]
            ax.errorbar(group["truth"] + offsets[name], group["estimate"], yerr=group["std"], fmt=style.marker,
                        ms=4.5, capsize=2, color=style.color, markeredgecolor="black", markeredgewidth=0.3,
                        label=label)
        ax.plot([0, top], [0, top], color=REFERENCE, lw=1, ls="--", label="truth", zorder=0)
        ax.set_xlabel("true I(X; Y) [bits]\n(estimators side by side around each truth)")
        ax.set_title("all sample sizes" if np.isnan(size) else f"n = {int(size)}")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("estimate [bits]")
    legend_outside(fig, axes, title="estimator")  # a series may be missing from some panels
    fig.suptitle(title or "MI estimate vs truth")
    return save_figure(fig, path)


def _is_bound(method: str) -> bool:
    from infobench import registry

    try:
        return registry.get("mi.estimator", method).is_bound
    except Exception:  # a method no longer registered still gets plotted
        return False
