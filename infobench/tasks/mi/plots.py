"""Figures of the ``mi`` task: estimate against truth per estimator."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def mi_vs_truth_points(metrics):
    """Mean over seeds of (true_mi_bits, mi_bits) per method and variant: a DataFrame with
    columns method, variant, truth, estimate, std."""
    final = metrics[metrics["step"].isna() & metrics["metric"].isin(["mi_bits", "true_mi_bits"])]
    wide = final.pivot_table(index=["method", "variant", "seed"], columns="metric", values="value").dropna()
    if wide.empty:
        return wide
    grouped = wide.groupby(level=["method", "variant"])
    out = grouped.mean().rename(columns={"true_mi_bits": "truth", "mi_bits": "estimate"})
    out["std"] = grouped["mi_bits"].std().fillna(0.0)
    return out.reset_index()


def mi_vs_truth(metrics, path: str | Path, title: str = "") -> Path | None:
    """Scatter of each estimator's mean estimate (±std over seeds) against the true MI, in bits,
    with the diagonal; written to ``path``. Returns None when there is nothing to draw."""
    from infobench import registry
    from infobench.plots import new_figure, save_png

    points = mi_vs_truth_points(metrics)
    if len(points) == 0:
        return None
    from matplotlib import colormaps

    fig, (ax,) = new_figure((6.5, 5.0))
    colours, markers = colormaps["tab20"], "osD^vP*Xh<>p"
    for i, (method, group) in enumerate(points.groupby("method")):
        try:
            bound = registry.get("mi.estimator", method).is_bound
        except Exception:  # a method no longer registered still gets plotted
            bound = False
        ax.errorbar(group["truth"], group["estimate"], yerr=group["std"], fmt=markers[i % len(markers)], ms=4,
                    capsize=2, alpha=0.8, color=colours(i % 20), label=f"{method} (bound)" if bound else method)
    top = float(np.nanmax(points[["truth", "estimate"]].to_numpy())) * 1.05 + 1e-9
    ax.plot([0, top], [0, top], color="black", lw=1, ls="--", label="truth")
    ax.set_xlabel("true I(X; Y) [bits]")
    ax.set_ylabel("estimate [bits]")
    ax.set_title(title or "MI estimate vs truth")
    ax.legend(fontsize=7, loc="upper left")
    return save_png(fig, path)
