"""The one style module of infobench's figures: series styles, legends, file names and formats,
and the two shared figures (reliability diagrams, line plots over steps).

Matplotlib is imported inside the functions, so importing this module (and ``infobench
compare``) stays cheap. Figures are built with the object-oriented API on an explicit Agg
canvas rather than through ``pyplot``: no display is needed, no global backend is switched
under a user who has pyplot open in a notebook, and no figure is kept in pyplot's registry,
so nothing has to be closed and nothing leaks across many runs. Each figure is rendered into
memory and written with :func:`infobench.results.atomic_write` (temp file, fsync, rename), so a
killed process never leaves a truncated image.

House style, applied by every task's figures:

- series (methods, layers, estimators) get a colour from a fixed 10-colour palette and a line
  style from a 4-entry dash cycle, both cycling with the series' position, so up to 20 series
  get distinct (colour, dash) pairs and neighbours differ in both; a 7-entry marker cycle
  separates series beyond that and is the second cue of scatter plots. :func:`series_styles`
  assigns them in a fixed order (the results' order), so one method keeps its style in every
  figure of a spec;
- legends sit outside the axes (:func:`legend_outside`), never over the data;
- reference lines (a teacher, perfect calibration, a domain border) are black or grey, a
  colour no series gets;
- axis labels carry units: ``[bits]``, ``[nats]``, ``[%]``;
- file names are ``[a-z0-9_-]`` plus the format's suffix (:func:`slug`), the format one of
  :data:`FORMATS` (:func:`set_format`), PNG at :data:`DPI`.

Every plotting function has a ``*_figure`` twin that returns the figure without writing it; the
writers return the numbers they drew, so tests check the data path rather than pixels.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from infobench.errors import InfobenchError
from infobench.metrics import ReliabilityBins, reliability_bins
from infobench.results import atomic_write

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("png", "pdf", "svg")
DPI = 300
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
"""Matplotlib's tab10 colours in their order: the series colours."""
DASHES = ("-", "--", ":", "-.")
"""The line-style cycle; its length 4 and the palette's 10 repeat together only after 20 series."""
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
REFERENCE = "black"
"""Colour of reference lines (a teacher's accuracy, perfect calibration): no series has it."""
BORDER = "0.55"
"""Colour of domain borders on stream plots."""
LEGEND_ROWS = 22
"""A legend longer than this gets a second column, so that it stays within the figure's height."""
LABEL_GAP = 9.0
"""Least distance in points between two domain names along the top of a stream plot."""
MAX_NAME = 80
"""Longest file-name stem :func:`slug` returns."""

_format = "png"


def set_format(fmt: str) -> None:
    """Write every following figure as ``fmt`` (png, pdf or svg); the CLI's ``--plot-format``."""
    global _format
    if fmt not in FORMATS:
        raise InfobenchError(f"plot format {fmt!r} is not one of {', '.join(FORMATS)}")
    _format = fmt


def figure_format() -> str:
    """The format figures are written in now (see :func:`set_format`)."""
    return _format


@dataclass(frozen=True)
class Style:
    """How one series is drawn: colour, line style, marker."""

    color: str
    linestyle: str
    marker: str


def series_style(index: int) -> Style:
    """The style of the ``index``-th series (0-based): colour, dash and marker each cycle with it."""
    return Style(PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)], MARKERS[index % len(MARKERS)])


def series_styles(names: Iterable) -> dict:
    """A style per distinct name, in order of first appearance: pass every series of a spec (all
    its figures) so that a name keeps its style in each of them."""
    return {name: series_style(i) for i, name in enumerate(dict.fromkeys(names))}


def slug(text: str) -> str:
    """``text`` as a file-name part of ``[a-z0-9_-]`` only: lowercased, every run of other
    characters (``=``, ``.``, spaces, brackets) one ``_``, no ``_`` at the ends; ``figure`` when
    nothing is left. ``binning(range=[-1, 1])`` -> ``binning_range_-1_1``. A name longer than
    :data:`MAX_NAME` (a setting that lists a whole model block) keeps its start and ends in 8 hex
    digits of a hash of ``text``, so that names stay short and still differ."""
    name = re.sub(r"_+", "_", re.sub(r"[^a-z0-9_-]+", "_", str(text).lower())).strip("_") or "figure"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(str(text).encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9].rstrip('_')}_{digest}"


def unique_slugs(labels: Iterable[str]) -> dict[str, str]:
    """:func:`slug` of each distinct label, a ``_2``, ``_3`` appended where two labels would share
    one, so that no figure overwrites another."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for label in dict.fromkeys(labels):
        base = name = slug(label)
        k = 1
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        out[label] = name
    return out


def split_settings(variants) -> tuple:
    """``(method, setting)`` Series of variant labels: ``"tent(lr=1e-4) [scenario.rounds=5]"``
    -> ``"tent(lr=1e-4)"``, ``"scenario.rounds=5"``; the setting is ``""`` without brackets.
    Figures draw one file per setting, so that lines are only compared on the same stream,
    student or data."""
    setting = variants.str.extract(r" \[(.*)\]$", expand=False).fillna("")
    method = variants.str.replace(r" \[.*\]$", "", regex=True)
    return method, setting


def wrapped(text: str, width: int = 60) -> str:
    """``text`` broken after commas and spaces into lines of at most about ``width`` characters
    (long setting labels in titles; a single longer word stays whole)."""
    lines, line = [], ""
    for piece in re.split(r"(?<=[, ])", text):
        if line and len(line) + len(piece.rstrip()) > width:
            lines.append(line.rstrip())
            line = ""
        line += piece
    return "\n".join([*lines, line.rstrip()])


def _figure(figsize: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def new_figure(figsize: tuple[float, float], height_ratios: list[float] | None = None, columns: int = 1):
    """A new Agg-backed figure and its axes: one per entry of ``height_ratios`` (stacked, sharing
    x), or ``columns`` side by side (sharing both axes)."""
    fig = _figure(figsize)
    if columns > 1:
        return fig, list(fig.subplots(1, columns, sharex=True, sharey=True))
    if height_ratios is None:
        return fig, [fig.add_subplot()]
    axes = fig.subplots(len(height_ratios), 1, sharex=True, gridspec_kw={"height_ratios": height_ratios})
    return fig, list(axes)


def legend_outside(fig, axes, title: str | None = None, below: bool = False):
    """One legend for the labelled artists of ``axes`` (each label once), right of the axes (or
    ``below`` them, in one row: for a few entries under a wide title), in the figure's margin
    (constrained layout makes room); None when nothing is labelled."""
    entries: dict = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    if not entries:
        return None
    ncols = len(entries) if below else math.ceil(len(entries) / LEGEND_ROWS)
    return fig.legend(list(entries.values()), list(entries), loc="outside lower center" if below else "outside right upper",
                      title=title, fontsize="small", title_fontsize="small", ncols=ncols, frameon=False)


def reference_line(ax, y: float, label: str):
    """A horizontal black dashed line at ``y`` (a teacher's accuracy, a chance level), in the legend."""
    return ax.axhline(y, color=REFERENCE, linestyle=(0, (6, 3)), linewidth=1.3, label=label, zorder=3,
                      gid="reference")


def mark_segments(ax, starts: list[tuple[float, str]], end: float):
    """Domain borders on a plot over stream steps: a grey vertical line half a step before each
    segment's first step (between the last batch of one domain and the first of the next), and the
    domain names along the top axis at the segments' middles. ``starts``: (first step, name) per
    segment in stream order; ``end``: the last step. A name is shown at its first visit only (a
    stream of several rounds repeats them), and a name closer than :data:`LABEL_GAP` points to the
    previous one shown is left out, so that names never overlap. Returns the x positions of the lines."""
    starts = sorted(starts)
    lines = [start - 0.5 for start, _ in starts[1:]]
    for x in lines:  # thinner where there are many (a stream of several rounds)
        ax.axvline(x, color=BORDER, linestyle=":", linewidth=0.8 if len(lines) <= 30 else 0.5, zorder=0,
                   gid="domain_border")
    if len(starts) < 2:
        return lines
    stops = [start for start, _ in starts[1:]] + [end + 1]
    first: dict[str, float] = {}
    for (start, name), stop in zip(starts, stops):
        first.setdefault(name, (start + stop - 1) / 2)
    fig = ax.get_figure()
    points = fig.get_figwidth() * ax.get_position().width * 72  # the axes' width
    gap = LABEL_GAP * (end - starts[0][0] + 1) / points  # in steps
    shown: list[tuple[str, float]] = []
    for name, x in first.items():
        if not shown or x - shown[-1][1] >= gap:
            shown.append((name, x))
    top = ax.secondary_xaxis("top")
    top.set_xticks([x for _, x in shown], [name for name, _ in shown], rotation=90, fontsize="x-small")
    top.tick_params(length=0)
    return lines


def save_figure(fig, path: str | Path) -> Path:
    """Render ``fig`` in the current format (:func:`set_format`) and write it atomically; returns
    the path written: ``path``'s name made safe with :func:`slug` and given the format's suffix
    (a ``.png``, ``.pdf`` or ``.svg`` suffix on ``path`` is replaced). PNG at :data:`DPI`; PDF and
    SVG carry no creation date, so the same figure gives the same bytes."""
    path = Path(path)
    stem = path.name[: -len(path.suffix)] if path.suffix.lower() in {f".{f}" for f in FORMATS} else path.name
    path = path.with_name(f"{slug(stem)}.{_format}")
    from matplotlib import rc_context

    metadata = {"png": None, "pdf": {"CreationDate": None}, "svg": {"Date": None}}[_format]
    buffer = io.BytesIO()
    with rc_context({"svg.hashsalt": "infobench"}):  # SVG element ids from the content, not random
        fig.savefig(buffer, format=_format, dpi=DPI, metadata=metadata)
    atomic_write(path, buffer.getvalue())
    return path


def _reliability_panel(top, bottom, bins: ReliabilityBins, name: str, ylabels: bool = True) -> None:
    """Accuracy bars, gap outlines and the diagonal in ``top``; samples per bin in ``bottom``.

    The gap between accuracy and mean confidence is an unfilled hatched outline drawn over the
    bars: where the model is under-confident (accuracy above confidence) it lies on the accuracy
    bar and a filled patch would hide the bar's top, so that a bin of one correct sample at
    confidence 0.26 read as accuracy 0.26 instead of 1.
    """
    left = bins.edges[:-1]
    widths = np.diff(bins.edges)
    filled = bins.counts > 0
    top.bar(left[filled], bins.accuracy[filled], width=widths[filled], align="edge", color=PALETTE[0],
            edgecolor="black", linewidth=0.6, label="accuracy", zorder=2)
    low = np.minimum(bins.accuracy, bins.confidence)[filled]
    top.bar(left[filled], bins.gaps[filled], bottom=low, width=widths[filled], align="edge",
            facecolor="none", edgecolor=PALETTE[3], hatch="///", linewidth=1.0, label="gap to confidence", zorder=3)
    top.plot([0, 1], [0, 1], linestyle="--", color=REFERENCE, linewidth=1.0, label="perfect calibration", zorder=4)
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    heading = f"ECE = {100 * bins.ece:.2f}% (n = {int(bins.counts.sum())})"
    top.set_title(f"{name}\n{heading}" if name else heading, fontsize="medium")
    bottom.bar(left, bins.counts, width=widths, align="edge", color="0.55", edgecolor="black", linewidth=0.6)
    # log scale: most samples sit in the last bin; a linear axis hides the sparse bins the top panel shows
    bottom.set_yscale("log")
    bottom.set_ylim(0.8, None)
    kind = "equal-width" if bins.binning == "width" else "equal-mass"
    bottom.set_xlabel(f"confidence ({bins.n_bins} {kind} bins)")
    if ylabels:  # the first panel of a row says it for the row
        top.set_ylabel("accuracy")
        bottom.set_ylabel("samples")


MAX_PANEL_COLUMNS = 4


def reliability_figure(panels: Mapping[str, ReliabilityBins] | ReliabilityBins, title: str = ""):
    """Reliability diagrams of precomputed bins as panels of one figure (a matplotlib ``Figure``):
    one panel per entry of ``panels`` (split name -> bins, e.g. the clean test set and each shifted
    domain), :data:`MAX_PANEL_COLUMNS` to a row.

    Each panel: accuracy per non-empty bin as bars spanning the bin's edges, the gap between
    accuracy and mean confidence as a hatched red outline, the diagonal of perfect calibration,
    the ECE of these bins in the panel's title; under it the samples per bin (log scale).
    """
    if isinstance(panels, ReliabilityBins):
        panels = {"": panels}
    if not panels:
        raise InfobenchError("no reliability bins to draw")
    cols = min(len(panels), MAX_PANEL_COLUMNS)
    rows = math.ceil(len(panels) / cols)
    width = max(3.4 * cols + 0.6, 5.5)  # one panel still has room for the legend row
    fig = _figure((width, 4.4 * rows))
    grid = fig.add_gridspec(2 * rows, cols, height_ratios=[3.0, 1.0] * rows)
    tops = []
    for i, (name, bins) in enumerate(panels.items()):
        r, c = divmod(i, cols)
        top = fig.add_subplot(grid[2 * r, c])
        bottom = fig.add_subplot(grid[2 * r + 1, c], sharex=top)
        top.tick_params(labelbottom=False)
        _reliability_panel(top, bottom, bins, name, ylabels=c == 0)
        tops.append(top)
    legend_outside(fig, tops[:1], below=True)
    if title:  # about 8 characters to the inch: a long setting label is broken after its commas
        fig.suptitle(wrapped(title, int(8 * width)), fontsize="medium" if len(title) > 8 * width else "large")
    return fig


def reliability_diagram(
    probs, labels, path: str | Path, n_bins: int = 15, title: str = "", binning: str = "width"
) -> ReliabilityBins:
    """Write a one-panel reliability diagram of a classifier's predictions to ``path``.

    ``probs``: (n, C) probabilities; ``labels``: (n,) integers in [0, C). Bins come from
    :func:`infobench.metrics.reliability_bins` (its docstring states the conventions), so the
    ECE in the title is the one :func:`infobench.metrics.ece` reports. Returns those bins.
    """
    bins = reliability_bins(probs, labels, n_bins=n_bins, binning=binning)
    save_figure(reliability_figure(bins, title=title), path)
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
                ylabel: str | None = None, logx: bool = False, styles: Mapping | None = None,
                segments: list[tuple[float, str]] | None = None, reference: tuple[float, str] | None = None):
    """One line per hue through the means of :func:`line_stats`, with a shaded ±std band.

    ``styles``: hue -> :class:`Style` (default :func:`series_styles` of the hues in order);
    ``segments``: (first step, domain name) per stream segment, marked with :func:`mark_segments`;
    ``reference``: (y, label) of a :func:`reference_line`. The legend is outside the axes.
    """
    if logx and (stats[x] <= 0).any():
        raise InfobenchError(f"cannot use a log x axis: {x!r} has values <= 0")
    fig, (ax,) = new_figure((7.2, 4.2))
    groups = list(stats.groupby(hue, sort=False)) if hue is not None else [(None, stats)]
    styles = styles if styles is not None else series_styles(label for label, _ in groups)
    for label, group in groups:
        style = styles[label] if label is not None else series_style(0)
        xs, mean, std = group[x].to_numpy(float), group["mean"].to_numpy(float), group["std"].to_numpy(float)
        # markers show where the measurements are when there are few of them; on a long
        # stream every 10th point keeps the series' marker as a cue without a smear
        ax.plot(xs, mean, color=style.color, linestyle=style.linestyle, marker=style.marker, markersize=3.5,
                markevery=None if len(xs) <= 40 else max(1, len(xs) // 10), linewidth=1.4,
                label=None if label is None else str(label))
        ax.fill_between(xs, mean - std, mean + std, color=style.color, alpha=0.12, linewidth=0)
    if segments:
        mark_segments(ax, segments, float(stats[x].max()))
    if reference is not None:
        reference_line(ax, *reference)
    if logx:
        ax.set_xscale("log")
    elif np.all(np.mod(stats[x].to_numpy(float), 1) == 0):  # epochs, batches: no ticks between them
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel if xlabel is not None else x)
    ax.set_ylabel(ylabel if ylabel is not None else "value")
    if title:
        # a title of several lines (a setting under the spec's name) in a smaller font, to fit the axes
        ax.set_title(title, fontsize="large" if "\n" not in title else "medium")
    legend_outside(fig, [ax], title=hue)
    ax.grid(True, alpha=0.3)
    return fig


def line_plot(df, x: str, y: str, hue: str | None, path: str | Path, title: str = "",
              xlabel: str | None = None, ylabel: str | None = None, logx: bool = False,
              styles: Mapping | None = None, segments: list[tuple[float, str]] | None = None,
              reference: tuple[float, str] | None = None) -> tuple[Path, pd.DataFrame]:
    """Write a per-``hue`` line plot of ``y`` against ``x`` (mean over seeds, ±std band) to ``path``.

    ``df`` is tidy: one row per observation (e.g. seed x step) with columns ``x``, ``y`` and
    ``hue`` (e.g. ``method``); rows sharing (hue, x) are averaged. Used for online error along
    a stream, accuracy over epochs and similar curves. ``ylabel`` defaults to ``y``; the other
    options are :func:`line_figure`'s. Returns the path written (see :func:`save_figure`) and the
    plotted statistics (see :func:`line_stats`).
    """
    stats = line_stats(df, x, y, hue)
    fig = line_figure(stats, x, hue, title=title, xlabel=xlabel, ylabel=ylabel if ylabel is not None else y,
                      logx=logx, styles=styles, segments=segments, reference=reference)
    return save_figure(fig, path), stats
