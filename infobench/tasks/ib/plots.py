"""Figures of the ``ib`` task, drawn over every finished run of a results folder.

- ``ib_plane_<variant>.png``: the information plane, I(X;T) against I(T;Y), one trajectory
  per layer, points coloured by epoch (log colour scale), means over seeds;
- ``ib_mi_epochs_<variant>.png``: I(X;T) and I(T;Y) of every layer over epochs;
- ``ib_compression.png``: the compression summary, the drop of I(X;T) from its peak to the
  last epoch per layer and estimator variant (mean and std over seeds).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd

from infobench.plots import new_figure, save_png

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def layer_order(names) -> list[str]:
    """``layer1, layer2, ..., layer10, output``: hidden layers by number, the output last."""
    def key(name: str) -> tuple[int, int, str]:
        match = re.fullmatch(r"layer(\d+)", name)
        return (0, int(match.group(1)), name) if match else (1, 0, name)

    return sorted(set(names), key=key)


def slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", label).strip("_") or "run"


def plane_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of I(X;T) and I(T;Y) per (variant, layer, epoch): columns variant, layer, epoch, xt, ty."""
    rows = metrics[metrics["metric"].isin(["mi_xt_bits", "mi_ty_bits"]) & metrics["step"].notna()]
    if rows.empty:
        return pd.DataFrame(columns=["variant", "layer", "epoch", "xt", "ty"])
    table = (rows.assign(step=pd.to_numeric(rows["step"]))
             .pivot_table(index=["variant", "split", "step"], columns="metric", values="value", aggfunc="mean")
             .reset_index()
             .rename(columns={"split": "layer", "step": "epoch", "mi_xt_bits": "xt", "mi_ty_bits": "ty"}))
    return table.sort_values(["variant", "layer", "epoch"], ignore_index=True)


def epoch_span(epochs: pd.Series) -> str:
    """``epochs 0-300, 15 recorded``: says on the figure how far training went, so that a short run's
    plane (points that barely move) is not mistaken for an empty or broken one."""
    values = sorted(set(epochs.astype(int)))
    return f"epochs {values[0]}-{values[-1]}, {len(values)} recorded"


def plane_figure(table: pd.DataFrame, title: str):
    """Information plane of one variant: a line per layer through its epochs, points coloured by epoch."""
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm

    fig, (ax,) = new_figure((6.4, 4.8))
    epochs = table["epoch"].to_numpy(float) + 1.0
    norm = LogNorm(vmin=epochs.min(), vmax=max(epochs.max(), epochs.min() + 1))
    cmap = colormaps["viridis"]
    points = None
    for layer, marker in zip(layer_order(table["layer"]), itertools.cycle(MARKERS)):
        part = table[table["layer"] == layer]
        ax.plot(part["xt"], part["ty"], color="0.6", linewidth=0.8, zorder=1)
        points = ax.scatter(part["xt"], part["ty"], c=part["epoch"] + 1.0, cmap=cmap, norm=norm, s=16,
                            marker=marker, zorder=2, label=layer, edgecolors="none")
    if points is not None:
        fig.colorbar(points, ax=ax, label="epoch + 1")
        legend = ax.legend(fontsize="x-small", loc="lower right")
        for handle in legend.legend_handles:
            handle.set_color("0.3")
    ax.set_xlabel("I(X;T) [bits]")
    ax.set_ylabel("I(T;Y) [bits]")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return fig


def epochs_figure(table: pd.DataFrame, title: str):
    """I(X;T) (top) and I(T;Y) (bottom) of each layer over epochs (symmetric-log x axis, epoch 0 shown)."""
    fig, axes = new_figure((6.4, 6.0), height_ratios=[1.0, 1.0])
    for ax, column, label in zip(axes, ("xt", "ty"), ("I(X;T) [bits]", "I(T;Y) [bits]")):
        for layer in layer_order(table["layer"]):
            part = table[table["layer"] == layer]
            ax.plot(part["epoch"], part[column], marker="o", markersize=2, linewidth=1.2, label=layer)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[0].set_title(title)
    axes[0].legend(fontsize="x-small", ncol=2)
    axes[-1].set_xlabel("epoch")
    return fig


def compression_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (0 for one seed) and n of ``compression_bits`` per (variant, layer), variants in the
    order the results list them (the spec's order, not the string order that puts l2=0 after l2=0.001)."""
    rows = metrics[metrics["metric"] == "compression_bits"]
    stats = rows.groupby(["variant", "split"], sort=False)["value"].agg(mean="mean", std="std", n="count").reset_index()
    stats["std"] = stats["std"].fillna(0.0)
    return stats.rename(columns={"split": "layer"})


def compression_figure(stats: pd.DataFrame):
    """Grouped bars: per layer, one bar per variant with its std over seeds."""
    fig, (ax,) = new_figure((max(6.4, 1.2 * stats["layer"].nunique() + 2), 4.0))
    layers = layer_order(stats["layer"])
    variants = list(dict.fromkeys(stats["variant"]))
    width = 0.8 / len(variants)
    for j, variant in enumerate(variants):
        part = stats[stats["variant"] == variant].set_index("layer").reindex(layers)
        ax.bar(np.arange(len(layers)) + j * width - 0.4 + width / 2, part["mean"], width=width,
               yerr=part["std"], capsize=2, label=variant)
    ax.set_xticks(np.arange(len(layers)), layers)
    ax.set_ylabel("compression: peak I(X;T) - final I(X;T) [bits]")
    ax.legend(fontsize="x-small")
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def ib_figures(metrics: pd.DataFrame, plots_dir: Path) -> list[Path]:
    """Every figure of the module docstring for the runs in ``metrics``; returns the paths written."""
    written = []
    table = plane_table(metrics)
    for variant, part in table.groupby("variant", sort=False):
        span = epoch_span(part["epoch"])
        written.append(save_png(plane_figure(part, f"information plane: {variant}\n{span}"),
                                plots_dir / f"ib_plane_{slug(variant)}.png"))
        written.append(save_png(epochs_figure(part, f"MI per layer: {variant}\n{span}"),
                                plots_dir / f"ib_mi_epochs_{slug(variant)}.png"))
    stats = compression_table(metrics)
    if not stats.empty:
        written.append(save_png(compression_figure(stats), plots_dir / "ib_compression.png"))
    return written
