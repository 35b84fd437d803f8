"""Figures of the ``ib`` task, drawn over every finished run of a results folder.

- ``ib_plane_<variant>``: the information plane, I(X;T) against I(T;Y), one trajectory
  per layer, points coloured by epoch (log colour scale), means over seeds;
- ``ib_mi_epochs_<variant>``: I(X;T) and I(T;Y) of every layer over epochs;
- ``ib_compression``: the compression summary, the drop of I(X;T) from its peak to the
  last epoch per layer and estimator variant (mean and std over seeds).

Files are written in the figure format of :mod:`infobench.plots` (``.png`` by default), named
with its :func:`~infobench.plots.slug`; a layer has the same style (marker, colour, dash) in each.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from infobench.plots import legend_outside, new_figure, save_figure, series_styles, unique_slugs


def layer_order(names) -> list[str]:
    """``layer1, layer2, ..., layer10, output``: hidden layers by number, the output last."""
    def key(name: str) -> tuple[int, int, str]:
        match = re.fullmatch(r"layer(\d+)", name)
        return (0, int(match.group(1)), name) if match else (1, 0, name)

    return sorted(set(names), key=key)


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
    layers = layer_order(table["layer"])
    styles = series_styles(layers)
    for layer in layers:
        part = table[table["layer"] == layer]
        ax.plot(part["xt"], part["ty"], color="0.6", linewidth=0.8, zorder=1)
        points = ax.scatter(part["xt"], part["ty"], c=part["epoch"] + 1.0, cmap=cmap, norm=norm, s=16,
                            marker=styles[layer].marker, zorder=2, edgecolors="none")
        # the legend tells layers apart by marker only: the colour is the epoch
        ax.scatter([], [], marker=styles[layer].marker, color="0.3", s=16, label=layer)
    if points is not None:
        fig.colorbar(points, ax=ax, label="epoch + 1 (log scale)")
        legend_outside(fig, [ax], title="layer")
    ax.set_xlabel("I(X;T) [bits]")
    ax.set_ylabel("I(T;Y) [bits]")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return fig


def epochs_figure(table: pd.DataFrame, title: str):
    """I(X;T) (top) and I(T;Y) (bottom) of each layer over epochs (symmetric-log x axis, epoch 0 shown)."""
    fig, axes = new_figure((7.2, 6.0), height_ratios=[1.0, 1.0])
    layers = layer_order(table["layer"])
    styles = series_styles(layers)
    for ax, column, label in zip(axes, ("xt", "ty"), ("I(X;T) [bits]", "I(T;Y) [bits]")):
        for layer in layers:
            part = table[table["layer"] == layer]
            style = styles[layer]
            ax.plot(part["epoch"], part[column], color=style.color, linestyle=style.linestyle, marker=style.marker,
                    markersize=3, linewidth=1.3, label=layer)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[0].set_title(title)
    legend_outside(fig, axes[:1], title="layer")
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
    layers = layer_order(stats["layer"])
    styles = series_styles(stats["variant"])
    # about 0.12 inch per bar, and room for the axis labels and the legend
    fig, (ax,) = new_figure((min(14.0, max(6.0, 0.12 * len(layers) * len(styles) + 0.3 * len(layers) + 5.0)), 4.0))
    width = 0.8 / len(styles)
    for j, (variant, style) in enumerate(styles.items()):
        part = stats[stats["variant"] == variant].set_index("layer").reindex(layers)
        ax.bar(np.arange(len(layers)) + j * width - 0.4 + width / 2, part["mean"], width=width,
               yerr=part["std"], capsize=2, color=style.color, edgecolor="black", linewidth=0.5, label=variant)
    ax.set_xticks(np.arange(len(layers)), layers)
    ax.set_xlabel("layer")
    ax.set_ylabel("peak - final I(X;T) [bits]")
    ax.set_title("compression per layer (mean ± std over seeds)")
    legend_outside(fig, [ax], title="variant")
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def ib_figures(metrics: pd.DataFrame, plots_dir: Path) -> list[Path]:
    """Every figure of the module docstring for the runs in ``metrics``; returns the paths written."""
    written = []
    table = plane_table(metrics)
    names = unique_slugs(table["variant"])
    for variant, part in table.groupby("variant", sort=False):
        span = epoch_span(part["epoch"])
        written.append(save_figure(plane_figure(part, f"information plane: {variant}\n{span}"),
                                   plots_dir / f"ib_plane_{names[variant]}"))
        written.append(save_figure(epochs_figure(part, f"MI per layer: {variant}\n{span}"),
                                   plots_dir / f"ib_mi_epochs_{names[variant]}"))
    stats = compression_table(metrics)
    if not stats.empty:
        written.append(save_figure(compression_figure(stats), plots_dir / "ib_compression"))
    return written
