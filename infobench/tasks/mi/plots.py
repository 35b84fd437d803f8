"""Figures of the ``mi`` task: estimate against truth per estimator."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def mi_vs_truth_points(metrics):
    """Mean over seeds of (true_mi_bits, mi_bits) per method and variant: a DataFrame with
    columns method, variant, truth, estimate, std and samples (the sample size; NaN for results
    written before runs recorded it)."""
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
    return out.reset_index()


def mi_vs_truth(metrics, path: str | Path, title: str = "") -> Path | None:
    """Scatter of each estimator's mean estimate (±std over seeds) against the true MI, in bits,
    with the diagonal, one panel per sample size (estimators converge at different rates, and
    points of different n at the same truth would hide each other); written to ``path``.
    Returns None when there is nothing to draw."""
    from infobench.plots import new_figure, save_png

    points = mi_vs_truth_points(metrics)
    if len(points) == 0:
        return None
    from matplotlib import colormaps

    sizes = sorted(points["samples"].dropna().unique()) or [np.nan]
    fig, axes = new_figure((5.0 * len(sizes) + 1.5, 5.0), columns=len(sizes))
    colours, markers = colormaps["tab20"], "osD^vP*Xh<>p"
    top = float(np.nanmax(points[["truth", "estimate"]].to_numpy())) * 1.05 + 1e-9
    for ax, size in zip(axes, sizes):
        panel = points if np.isnan(size) else points[points["samples"] == size]
        for i, (method, group) in enumerate(points.groupby("method")):  # same colour per method in every panel
            group = panel[panel["method"] == method]
            if group.empty:
                continue
            label = f"{method} (bound)" if _is_bound(method) else method
            ax.errorbar(group["truth"], group["estimate"], yerr=group["std"], fmt=markers[i % len(markers)], ms=4,
                        capsize=2, alpha=0.8, color=colours(i % 20), label=label)
        ax.plot([0, top], [0, top], color="black", lw=1, ls="--", label="truth")
        ax.set_xlabel("true I(X; Y) [bits]")
        ax.set_title("all sample sizes" if np.isnan(size) else f"n = {int(size)}")
    axes[0].set_ylabel("estimate [bits]")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(title or "MI estimate vs truth")
    return save_png(fig, path)


def _is_bound(method: str) -> bool:
    from infobench import registry

    try:
        return registry.get("mi.estimator", method).is_bound
    except Exception:  # a method no longer registered still gets plotted
        return False
