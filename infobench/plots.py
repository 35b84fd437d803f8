"""Figures written as PNG next to the result tables: reliability diagrams and line plots.

Matplotlib is imported inside the functions, so importing this module (and ``infobench
compare``) stays cheap. Figures are built with the object-oriented API on an explicit Agg
canvas rather than through ``pyplot``: no display is needed, no global backend is switched
under a user who has pyplot open in a notebook, and no figure is kept in pyplot's registry,
so nothing has to be closed and nothing leaks across many runs. Each PNG is rendered into
memory and written with :func:`infobench.results.atomic_write` (temp file, fsync, rename), so a
killed process never leaves a truncated image.

Every plotting function has a ``*_figure`` twin that returns the figure without writing it; the
writers return the numbers they drew, so tests check the data path rather than pixels.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from infobench.errors import InfobenchError
from infobench.metrics import ReliabilityBins, reliability_bins
from infobench.results import atomic_write

DPI = 120
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def new_figure(figsize: tuple[float, float], height_ratios: list[float] | None = None, columns: int = 1):
    """A new Agg-backed figure and its axes: one per entry of ``height_ratios`` (stacked, sharing
    x), or ``columns`` side by side (sharing both axes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    if columns > 1:
        return fig, list(fig.subplots(1, columns, sharex=True, sharey=True))
    if height_ratios is None:
        return fig, [fig.add_subplot()]
    axes = fig.subplots(len(height_ratios), 1, sharex=True, gridspec_kw={"height_ratios": height_ratios})
    return fig, list(axes)


def save_png(fig, path: str | Path) -> Path:
    """Render ``fig`` to PNG at ``DPI`` and write it to ``path`` atomically; returns the path."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    path = Path(path)
    atomic_write(path, buffer.getvalue())
    return path


def reliability_figure(bins: ReliabilityBins, title: str = ""):
    """Reliability diagram of precomputed bins (a matplotlib ``Figure``).

    Top panel: accuracy per non-empty bin as bars spanning the bin's edges, the gap between
    accuracy and mean confidence shaded in red, and the diagonal of perfect calibration.
    Bottom panel: number of samples per bin. The title ends with the ECE of these bins.
    """
    fig, (top, bottom) = new_figure((5.0, 6.0), height_ratios=[3.0, 1.0])
    left = bins.edges[:-1]
    widths = np.diff(bins.edges)
    filled = bins.counts > 0

    top.bar(left[filled], bins.accuracy[filled], width=widths[filled], align="edge",
            color="#4C72B0", edgecolor="black", linewidth=0.6, label="accuracy")
    low = np.minimum(bins.accuracy, bins.confidence)[filled]
    top.bar(left[filled], bins.gaps[filled], bottom=low, width=widths[filled], align="edge",
            color="#DD8452", alpha=0.45, edgecolor="#C44E52", hatch="//", linewidth=0.6, label="gap")
    top.plot([0, 1], [0, 1], linestyle="--", color="gray", linewidth=1.0, label="perfect calibration")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.legend(loc="upper left", fontsize="small")
    kind = "equal-width" if bins.binning == "width" else "equal-mass"
    heading = f"ECE = {bins.ece:.3f} ({bins.n_bins} {kind} bins, n = {int(bins.counts.sum())})"
    top.set_title(f"{title}\n{heading}" if title else heading)

    bottom.bar(left, bins.counts, width=widths, align="edge", color="#8C8C8C", edgecolor="black", linewidth=0.6)
    bottom.set_xlabel("confidence (top-label probability)")
    bottom.set_ylabel("count")
    return fig


def reliability_diagram(
    probs, labels, path: str | Path, n_bins: int = 15, title: str = "", binning: str = "width"
) -> ReliabilityBins:
    """Write a reliability diagram of a classifier's predictions to ``path`` (PNG).

    ``probs``: (n, C) probabilities; ``labels``: (n,) integers in [0, C). Bins come from
    :func:`infobench.metrics.reliability_bins` (its docstring states the conventions), so the
    ECE in the title is the one :func:`infobench.metrics.ece` reports. Returns those bins.
    """
    bins = reliability_bins(probs, labels, n_bins=n_bins, binning=binning)
    save_png(reliability_figure(bins, title=title), path)
    return bins


def line_stats(df, x: str, y: str, hue: str | None):
    """Mean, std (ddof=1, 0 for one value) and count of ``y`` per (``hue``, ``x``) over the other rows.

    ``df`` is a tidy DataFrame (e.g. one row per seed and step); rows with a missing ``x`` or
    ``y`` are dropped. Returns a DataFrame with columns ``hue, x, mean, std, n`` (the hue
    column only when ``hue`` is given), hues in order of first appearance, ``x`` ascending.
    """
    import pandas as pd

    wanted = [c for c in (x, y, hue) if c is not None]
    absent = [c for c in wanted if c not in df.columns]
    if absent:
        raise InfobenchError(f"cannot plot: no column {', '.join(map(repr, absent))}; columns: {', '.join(map(str, df.columns))}")
    data = df[wanted].copy()
    data[x] = pd.to_numeric(data[x], errors="coerce")
    data[y] = pd.to_numeric(data[y], errors="coerce")
    data = data.dropna(subset=[x, y])
    if data.empty:
        raise InfobenchError(f"cannot plot {y!r} against {x!r}: no rows with numeric values for both")
    keys = [hue, x] if hue is not None else [x]
    stats = data.groupby(keys, sort=False)[y].agg(mean="mean", std="std", n="count").reset_index()
    stats.loc[stats["n"] == 1, "std"] = 0.0
    if hue is None:
        return stats.sort_values(x, kind="stable", ignore_index=True)
    order = {h: i for i, h in enumerate(pd.unique(data[hue]))}
    stats["_hue_order"] = stats[hue].map(order)
    stats = stats.sort_values(["_hue_order", x], kind="stable", ignore_index=True)
    return stats.drop(columns="_hue_order")


def line_figure(stats, x: str, hue: str | None, title: str = "", xlabel: str | None = None,
                ylabel: str | None = None, logx: bool = False):
    """One line per hue through the means of :func:`line_stats`, with a shaded ±std band."""
    if logx and (stats[x] <= 0).any():
        raise InfobenchError(f"cannot use a log x axis: {x!r} has values <= 0")
    fig, (ax,) = new_figure((6.4, 4.0))
    groups = stats.groupby(hue, sort=False) if hue is not None else [(None, stats)]
    for label, group in groups:
        xs, mean, std = group[x].to_numpy(float), group["mean"].to_numpy(float), group["std"].to_numpy(float)
        # Markers show where the measurements are when there are few of them; a long stream
        # would turn them into a smear.
        marker = "o" if len(xs) <= 40 else None
        (line,) = ax.plot(xs, mean, marker=marker, markersize=3, linewidth=1.5,
                          label=None if label is None else str(label))
        ax.fill_between(xs, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel if xlabel is not None else x)
    ax.set_ylabel(ylabel if ylabel is not None else "value")
    if title:
        ax.set_title(title)
    if hue is not None:
        ax.legend(title=hue, fontsize="small")
    ax.grid(True, alpha=0.3)
    return fig


def line_plot(df, x: str, y: str, hue: str | None, path: str | Path, title: str = "",
              xlabel: str | None = None, ylabel: str | None = None, logx: bool = False):
    """Write a per-``hue`` line plot of ``y`` against ``x`` (mean over seeds, ±std band) to ``path``.

    ``df`` is tidy: one row per observation (e.g. seed x step) with columns ``x``, ``y`` and
    ``hue`` (e.g. ``method``); rows sharing (hue, x) are averaged. Used for online error along
    a stream, mutual information over epochs and similar curves. ``ylabel`` defaults to ``y``.
    Returns the plotted statistics (see :func:`line_stats`).
    """
    stats = line_stats(df, x, y, hue)
    fig = line_figure(stats, x, hue, title=title, xlabel=xlabel,
                      ylabel=ylabel if ylabel is not None else y, logx=logx)
    save_png(fig, path)
    return stats
