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
    fig, axes = new_figure((5.0 * len(sizes) + 2.5, 5.0), columns=len(sizes))
    tab20, markers = colormaps["tab20"], "osD^vP*Xh<>p"
    series = sorted(points["series"].unique())
    top = float(np.nanmax(points[["truth", "estimate"]].to_numpy())) * 1.05 + 1e-9
    for ax, size in zip(axes, sizes):
        panel = points if np.isnan(size) else points[points["samples"] == size]
        for i, name in enumerate(series):  # the same colour and marker per series in every panel
            group = panel[panel["series"] == name]
            if group.empty:
                continue
            label = f"{name} (bound)" if _is_bound(group["method"].iloc[0]) else name
            colour = tab20((2 * i) % 20 + (2 * i) // 20 % 2)  # the 10 strong colours first, then their light twins
            ax.errorbar(group["truth"], group["estimate"], yerr=group["std"], fmt=markers[i % len(markers)], ms=4,
                        capsize=2, alpha=0.8, color=colour, label=label)
        ax.plot([0, top], [0, top], color="black", lw=1, ls="--", label="truth")
        ax.set_xlabel("true I(X; Y) [bits]")
        ax.set_title("all sample sizes" if np.isnan(size) else f"n = {int(size)}")
    axes[0].set_ylabel("estimate [bits]")
    legend = {}
    for ax in axes:  # a series may be missing from some panels
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), fontsize=7, loc="outside right upper")
    fig.suptitle(title or "MI estimate vs truth")
    return save_png(fig, path)


def _is_bound(method: str) -> bool:
    from infobench import registry

    try:
        return registry.get("mi.estimator", method).is_bound
    except Exception:  # a method no longer registered still gets plotted
        return False
