"""The field's tables: methods x domains pivots, bootstrap intervals over seeds, one number format
per table, and the renderers (Markdown, LaTeX booktabs, rich) that every ``compare`` table uses.

A pivot (:func:`pivot`) puts one key's values side by side as columns, the way TTA and robustness
papers report error per corruption: rows are the methods (variants), columns the splits (domains,
corruptions), then a ``mean`` column, with the best mean of each column in bold. Any other row
key of a comparison can be the columns instead (``seed``, ``source``, a ``--by`` key path).

Intervals (:func:`bootstrap_ci`) are percentile bootstrap intervals of the mean over seeds
(Efron & Tibshirani 1993, *An Introduction to the Bootstrap*, ch. 13): the seeds' values are
resampled with replacement :data:`RESAMPLES` times, and the interval is the (1 - level)/2 and
(1 + level)/2 quantiles of the resampled means (numpy's default linear quantile). Each interval
draws from its own generator seeded with :data:`BOOTSTRAP_SEED`, so a cell's interval is the same
whichever other cells share its table. With fewer than :data:`FEW_SEEDS` seeds the percentile
interval is too narrow (it never reaches beyond the observed values, and the bootstrap variance of
the mean is (n - 1)/n of the plug-in one); tables say so. A single seed has no interval.

Numbers: a table (for a pivot) or a column (for the long summary, whose columns hold metrics of
different units) shows every number with the same decimals, chosen once so that the largest
magnitude keeps ``significant`` digits (:func:`decimals_for`): 0.873 and 0.051 print as 0.873 and
0.051, never 0.873 and 0.0512.

:func:`input_differences` names what two folders compared side by side disagree on in their data
and streams (the runs' dataset and scenario blocks and data content digests).

Imports pandas, numpy and rich only (``infobench compare`` must start fast); nothing here
imports :mod:`infobench.compare`, which imports this module.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from infobench.errors import InfobenchError
from infobench.metrics import higher_is_better

# Bootstrap resamples per interval (Efron & Tibshirani advise at least 1,000 for percentile
# intervals): with 10,000, bounds drawn with another generator seed move by under 1 % of the
# seeds' standard deviation (measured over 50 generator seeds at n = 3, 5 and 10).
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
FEW_SEEDS = 5  # seeds below which a percentile bootstrap interval is flagged as too narrow
SIGNIFICANT = 3  # significant digits of a table's (column's) largest magnitude
MEAN_COLUMN = "mean"
# Splits that pool others (TTA records them next to its domains): a pivot over splits leaves them
# out of its columns, and so out of the mean, unless they were asked for by name.
POOLED_SPLITS = ("stream",)
POOLED_SPLIT_PREFIXES = ("severity@",)
# Config blocks that decide what a method is evaluated on; "data" holds the files' content digests.
INPUT_BLOCKS = ("dataset", "scenario", "data")
FORMATS = ("md", "csv", "latex")


# --------------------------------------------------------------------------- numbers


def decimals_for(values: Iterable[float], significant: int = SIGNIFICANT, most: int = 10) -> int:
    """Decimals that give the largest finite magnitude of ``values`` ``significant`` digits
    (0.873 -> 3, 12.3 -> 1, 1234 -> 0); ``significant - 1`` when there is none or it is 0."""
    array = np.abs(np.asarray([v for v in values if v is not None], dtype=float))
    array = array[np.isfinite(array) & (array > 0)]
    if array.size == 0:
        return significant - 1
    return int(min(most, max(0, significant - 1 - math.floor(math.log10(array.max())))))


def fixed(x: float | None, decimals: int, sign: bool = False) -> str:
    """``x`` with ``decimals`` decimals ("–" when missing); never "-0.000"."""
    if x is None or pd.isna(x):
        return "–"
    text = f"{x:{'+' if sign else ''}.{decimals}f}"
    if float(text) == 0:  # -0.0001 at 3 decimals: a sign for a number shown as zero misleads
        text = f"{0.0:{'+' if sign else ''}.{decimals}f}"
    return text


def mean_spread(mean: float, std: float, n: int, decimals: int) -> str:
    """``mean ± std`` at one precision; a single run shows its value alone (no "± 0.000"), and a
    spread that rounds to zero reads ``< 0.001`` rather than a false 0."""
    text = fixed(mean, decimals)
    if n < 2 or std is None or pd.isna(std):
        return text
    spread = fixed(std, decimals)
    if std > 0 and float(spread) == 0:
        spread = f"< {fixed(10.0 ** -decimals, decimals)}"
    return f"{text} ± {spread}"


def mean_interval(mean: float, lo: float, hi: float, n: int, decimals: int) -> str:
    """``mean [lo, hi]`` at one precision; the value alone for a single run (no interval)."""
    if n < 2 or pd.isna(lo) or pd.isna(hi):
        return fixed(mean, decimals)
    return f"{fixed(mean, decimals)} [{fixed(lo, decimals)}, {fixed(hi, decimals)}]"


# --------------------------------------------------------------------------- intervals


def check_level(level: float) -> float:
    """A confidence level in percent (95), as a fraction (0.95)."""
    if isinstance(level, bool) or not (isinstance(level, numbers.Real) and 0 < level < 100):
        raise InfobenchError(f"confidence level {level!r}: give a percentage between 0 and 100, e.g. 95")
    return float(level) / 100.0


@lru_cache(maxsize=16)
def _resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    # Every interval over n seeds resamples the same way: computed once per n.
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap_ci(values: Sequence[float], level: float, resamples: int = RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` at ``level`` percent.

    ``np.random.default_rng(seed).integers(0, n, size=(resamples, n))`` picks the resamples; the
    bounds are ``np.quantile`` of their means at (1 -/+ level/100)/2. NaN values are dropped first;
    fewer than two values give (NaN, NaN): one seed has no spread to resample.
    """
    fraction = check_level(level)
    array = np.asarray(values, dtype=float)
    array = array[~np.isnan(array)]
    if array.size < 2:
        return float("nan"), float("nan")
    means = array[_resample_indices(array.size, resamples, seed)].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - fraction) / 2, (1 + fraction) / 2])
    return float(lo), float(hi)


def intervals(values: pd.DataFrame, group_keys: list[str], level: float) -> pd.DataFrame:
    """``group_keys`` plus ``ci_lo``/``ci_hi``: the bootstrap interval of each group's ``value``."""
    rows = []
    for key, group in values.groupby(group_keys, sort=False, dropna=False):
        lo, hi = bootstrap_ci(group["value"].to_numpy(), level)
        rows.append((*(key if isinstance(key, tuple) else (key,)), lo, hi))
    return pd.DataFrame(rows, columns=[*group_keys, "ci_lo", "ci_hi"])


def interval_note(level: float, few: bool) -> str:
    note = (f"mean [{level:g}% CI] over seeds: percentile bootstrap of the mean, {RESAMPLES:,} resamples "
            f"(seed {BOOTSTRAP_SEED}); a single seed shows its value alone")
    if few:
        note += (f"; intervals over fewer than {FEW_SEEDS} seeds are too narrow (they never reach "
                 "beyond the values seen): run more seeds before reading them")
    return note


# --------------------------------------------------------------------------- best marks


def mark_best(summary: pd.DataFrame, block: list[str]) -> pd.Series:
    """True where a row's ``mean`` is the best of its ``metric`` within ``block`` (ties all marked),
    in the direction of :func:`infobench.metrics.higher_is_better`.

    Metrics of unknown direction and blocks with fewer than two finite means get no mark.
    """
    sign = summary["metric"].map(lambda m: {True: 1.0, False: -1.0}.get(higher_is_better(m), np.nan))
    score = summary["mean"].astype(float) * sign
    groups = score.groupby([summary[c] for c in [*block, "metric"]], sort=False, dropna=False)
    top = groups.transform("max")
    candidates = groups.transform("count")
    return (score == top) & (candidates >= 2) & score.notna()


def direction_note(metric: str) -> str:
    better = higher_is_better(metric)
    if better is None:
        return f"no best marked: infobench does not know whether {metric} is better high or low"
    return f"best per column in bold ({'higher' if better else 'lower'} {metric} is better)"


# --------------------------------------------------------------------------- grids and renderers


@dataclass
class Grid:
    """A table ready for any output format: header, rows of (text, bold) cells, caption, notes."""

    title: str
    caption: str
    header: list[str]
    rows: list[list[tuple[str, bool]]]
    notes: list[str]
    key_count: int  # leading columns that name the row rather than hold numbers


def ordered_unique(values) -> list:
    return list(pd.unique(pd.Series(values, dtype=object)))


def shown_keys(frame: pd.DataFrame, keys: list[str]) -> tuple[list[str], str]:
    """Key columns worth a column (they vary), and a caption naming the constant ones."""
    shown, constant = [], []
    for key in keys:
        values = ordered_unique(frame[key])
        if key == "variant" and "method" in frame and all(
                v in ("", m) for v, m in zip(frame["variant"], frame["method"])):
            continue  # only default settings: the method column already says it
        if key == "method" or len(values) > 1:
            shown.append(key)
        elif values[0] != "":
            constant.append(f"{key}={values[0]}")
    if not shown and keys:  # every key constant: the rows still need a name
        shown.append(keys[-1])
        constant = [c for c in constant if not c.startswith(f"{keys[-1]}=")]
    return shown, " · ".join(constant)


def markdown(grid: Grid) -> str:
    def cell(text: str, bold: bool) -> str:
        text = text.replace("|", "\\|")
        return f"**{text}**" if bold and text else text

    lines = [f"**{grid.title}**" + (f" ({grid.caption})" if grid.caption else ""), ""]
    lines.append("| " + " | ".join(cell(h, False) for h in grid.header) + " |")
    lines.append("|" + "|".join("---" for _ in grid.header) + "|")
    lines.extend("| " + " | ".join(cell(t, b) for t, b in row) + " |" for row in grid.rows)
    lines.append("")
    lines.extend(f"_{note}_" for note in grid.notes)
    return "\n".join(lines)


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "Δ": r"$\Delta$", "−": r"$-$", "–": r"--", "<": r"$<$", ">": r"$>$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def latex(grid: Grid) -> str:
    """A booktabs ``tabular`` (``\\usepackage{booktabs}``), bold cells in ``\\textbf``."""
    def cell(text: str, bold: bool) -> str:
        text = latex_escape(text)
        return f"\\textbf{{{text}}}" if bold else text

    lines = [f"% {grid.title}" + (f": {grid.caption}" if grid.caption else "")]
    lines.extend(f"% {note}" for note in grid.notes)
    align = "l" * grid.key_count + "r" * (len(grid.header) - grid.key_count)
    lines.append("\\begin{tabular}{" + align + "}")
    lines.append("\\toprule")
    lines.append(" & ".join(cell(h, False) for h in grid.header) + r" \\")
    lines.append("\\midrule")
    lines.extend(" & ".join(cell(t, b) for t, b in row) + r" \\" for row in grid.rows)
    lines.append("\\bottomrule")
    lines.append("\\end{tabular}")
    return "\n".join(lines)


def rich_table(grid: Grid):
    """``grid`` as a ``rich.table.Table``, bold cells in bold."""
    from rich.table import Table
    from rich.text import Text

    title = grid.title + (f" — {grid.caption}" if grid.caption else "")
    table = Table(title=Text(title), caption=Text("; ".join(grid.notes)))
    for i, name in enumerate(grid.header):
        # keys (method, variant, split) are never cut: a narrow terminal squeezes numbers first
        is_key = i < grid.key_count
        width = max([len(name)] + [len(row[i][0]) for row in grid.rows]) if is_key else None
        table.add_column(Text(name), justify="left" if is_key else "right", no_wrap=is_key, min_width=width)
    for row in grid.rows:
        # Text objects, not markup strings: a variant like "mix[0.5]" must print literally.
        table.add_row(*(Text(t, style="bold" if b else "") for t, b in row))
    return table


def render_grids(grids: list[Grid], fmt: str) -> str:
    """Markdown or LaTeX of several grids, one after the other."""
    write = markdown if fmt == "md" else latex
    return "\n\n".join(write(grid) for grid in grids) + "\n"


# --------------------------------------------------------------------------- pivot


@dataclass
class Pivot:
    """One metric with one key's values as columns.

    Attributes:
        metric: the metric shown.
        over: the key whose values are the columns (``split``, ``seed``, ``source``...).
        row_keys: the other keys of the comparison, naming each row.
        columns: the column labels, in order of first appearance, then ``mean`` when there are
            two or more.
        cells: one row per (row, column): ``*row_keys, <over>, metric, mean, std, n, ci_lo,
            ci_hi, best``. ``std`` has ddof=1 (NaN for one seed); ``ci_*`` are NaN without a
            level or for one seed. The ``mean`` column of a row averages, seed by seed, the
            row's values over its columns, over the seeds that have every column (its ``n``);
            with every seed complete it equals the average of the column means. Pivoting over
            ``seed`` itself, the ``mean`` column is the mean over the seed columns and its
            interval resamples them.
        level: the confidence level in percent, or None.
        left_out: pooled splits (``stream``, ``severity@N``) not shown as columns.
    """

    metric: str
    over: str
    row_keys: list[str]
    columns: list[str]
    cells: pd.DataFrame
    level: float | None = None
    left_out: list[str] = field(default_factory=list)


def is_pooled_split(name: str) -> bool:
    return name in POOLED_SPLITS or name.startswith(POOLED_SPLIT_PREFIXES)


def pivot(result, over: str = "split", level: float | None = None, keep_pooled: bool = False) -> list[Pivot]:
    """One :class:`Pivot` per metric of a :class:`infobench.compare.CompareResult`.

    Args:
        result: what ``compare()`` returned; ``over`` must be one of its keys (``split`` always
            is, ``source`` with several folders; pass ``by=[key]`` to ``compare`` for others).
        over: the key whose values become the columns.
        level: confidence level in percent (95) for bootstrap intervals over seeds; default the
            level ``compare`` was given (``result.ci``), else none.
        keep_pooled: over ``split``, keep the pooled splits (``stream``, ``severity@N``) as
            columns. By default they are left out when the metric has other splits: they pool
            the domains the other columns show, and would count them twice in the mean.

    The best mean of each column is marked within each block of rows that differ only in
    model, method or variant (as in the summary), in the metric's direction.
    """
    if over not in result.keys:
        hint = ("it needs several folders" if over == "source"
                else f"compare(..., by=[{over!r}]) (--by {over}) makes it one")
        raise InfobenchError(
            f"cannot pivot over {over!r}: it is not a row key of this comparison "
            f"(keys: {', '.join(result.keys)}); {hint}"
        )
    if result.values is None:
        raise InfobenchError("this comparison carries no per-seed values to pivot")
    if level is None:
        level = result.ci
    if level is not None:
        check_level(level)
    row_keys = [k for k in result.keys if k != over]
    block = [k for k in row_keys if k not in ("model", "method", "variant")]
    out = []
    for metric in result.metrics:
        summary = result.summary[result.summary["metric"] == metric]
        values = result.values[result.values["metric"] == metric]
        columns = ordered_unique(summary[over])
        left_out = []
        if over == "split" and not keep_pooled:
            left_out = [c for c in columns if is_pooled_split(c)]
            if len(left_out) == len(columns):
                left_out = []  # nothing but pooled splits: they are the table
            columns = [c for c in columns if c not in left_out]
            summary = summary[summary[over].isin(columns)]
            values = values[values[over].isin(columns)]
        cells = summary[[*row_keys, over, "metric", "mean", "std", "n"]].copy()
        cells.loc[cells["n"] < 2, "std"] = np.nan
        if level is not None and not values.empty:
            cells = cells.merge(intervals(values, [*row_keys, over], level), on=[*row_keys, over], how="left")
        else:
            cells["ci_lo"] = cells["ci_hi"] = np.nan
        if len(columns) >= 2:
            cells = pd.concat([cells, _mean_column(values, row_keys, over, metric, level)], ignore_index=True)
            columns = [*columns, MEAN_COLUMN]
        cells["best"] = mark_best(cells, [*block, over])
        out.append(Pivot(metric, over, row_keys, columns, cells.reset_index(drop=True), level, left_out))
    return out


def _mean_column(values: pd.DataFrame, row_keys: list[str], over: str, metric: str,
                 level: float | None) -> pd.DataFrame:
    """Each row's mean over its columns, with std, n and interval over the seeds."""
    columns = ordered_unique(values[over])
    rows = []
    for key, group in values.groupby(row_keys, sort=False, dropna=False):
        if over == "seed":  # the columns are the seeds: each is one sample of the mean
            samples = group.groupby(over, sort=False)["value"].mean().to_numpy()
        else:
            per_seed = group.pivot_table(index="seed", columns=over, values="value", aggfunc="mean")
            per_seed = per_seed.reindex(columns=columns).dropna()  # a seed missing a column is left out
            samples = per_seed.mean(axis=1).to_numpy()
        n = len(samples)
        lo, hi = bootstrap_ci(samples, level) if level is not None else (np.nan, np.nan)
        rows.append({
            **dict(zip(row_keys, key if isinstance(key, tuple) else (key,))),
            over: MEAN_COLUMN, "metric": metric,
            "mean": samples.mean() if n else np.nan,
            "std": samples.std(ddof=1) if n > 1 else np.nan,
            "n": n, "ci_lo": lo, "ci_hi": hi,
        })
    return pd.DataFrame(rows)


def pivot_grid(table: Pivot, significant: int = SIGNIFICANT) -> Grid:
    """A :class:`Pivot` as a :class:`Grid`: one number format (decimals) for the whole table."""
    cells = table.cells
    rows_frame = cells[table.row_keys].drop_duplicates()
    shown, caption = shown_keys(rows_frame, table.row_keys)
    decimals = decimals_for(cells["mean"], significant)
    by_cell = {(tuple(rec[k] for k in table.row_keys), rec[table.over]): rec for rec in cells.to_dict("records")}
    row_keys = [tuple(r) for r in rows_frame.itertuples(index=False)]
    # One n per row (over its columns, the mean aside) fits in an n column; n varying along a row
    # goes in each cell, and a mean over fewer seeds than its row says so. Over seeds every column
    # is one seed by construction: no n column.
    columns = cells[cells[table.over] != MEAN_COLUMN]
    n_column = table.over != "seed" and bool(
        (columns.groupby(table.row_keys, sort=False, dropna=False)["n"].nunique() == 1).all())
    header = [*shown, *(["n"] if n_column else []), *map(str, table.columns)]
    rows, few = [], False
    for row_key in row_keys:
        named = dict(zip(table.row_keys, row_key))
        recs = [by_cell.get((row_key, c)) for c in table.columns]
        line = [(str(named[k]), False) for k in shown]
        row_n = next((int(r["n"]) for c, r in zip(table.columns, recs) if r is not None and c != MEAN_COLUMN), None)
        if n_column:
            line.append((str(row_n), False))
        for column, rec in zip(table.columns, recs):
            if rec is None:
                line.append(("–", False))
                continue
            n = int(rec["n"])
            if table.level is not None:
                text = mean_interval(rec["mean"], rec["ci_lo"], rec["ci_hi"], n, decimals)
                few |= 1 < n < FEW_SEEDS
            else:
                text = mean_spread(rec["mean"], rec["std"], n, decimals)
            if table.over != "seed" and (not n_column or (column == MEAN_COLUMN and n != row_n)):
                text += f" (n={n})"
            line.append((text, bool(rec["best"])))
        rows.append(line)
    notes = [interval_note(table.level, few) if table.level is not None
             else "mean ± std over seeds (n = seeds; a single seed shows its value)"]
    if MEAN_COLUMN in table.columns:
        notes.append("mean: each seed's average over the columns, averaged over the seeds that have every column")
    notes.append(direction_note(table.metric))
    if table.left_out:
        notes.append(f"left out: {', '.join(table.left_out)} (they pool the domains shown; name them with "
                     "--split to show them)")
    return Grid(f"{table.metric} by {table.over}", caption, header, rows, notes, len(shown))


def pivot_csv(tables: list[Pivot]) -> str:
    """The pivots as one wide CSV at full precision: ``metric``, the row keys, then per column
    ``C``, ``C_std``, ``C_n`` and, with a level, ``C_ci_lo``, ``C_ci_hi``."""
    frames = []
    for table in tables:
        wide = table.cells[table.row_keys].drop_duplicates().reset_index(drop=True)
        wide.insert(0, "metric", table.metric)
        indexed = table.cells.set_index([*table.row_keys, table.over])
        fields = ["mean", "std", "n", *(["ci_lo", "ci_hi"] if table.level is not None else [])]
        for column in table.columns:
            for name in fields:
                label = str(column) if name == "mean" else f"{column}_{name}"
                lookup = [(*r, column) for r in wide[table.row_keys].itertuples(index=False)]
                wide[label] = indexed[name].reindex(pd.MultiIndex.from_tuples(lookup)).to_numpy()
        frames.append(wide)
    return pd.concat(frames, ignore_index=True).to_csv(index=False, lineterminator="\n")


def render_pivot(tables: list[Pivot], fmt: str, significant: int = SIGNIFICANT) -> str:
    """Pivots as ``md``, ``latex`` (booktabs) or ``csv`` (wide, full precision) text."""
    if fmt not in FORMATS:
        raise InfobenchError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if fmt == "csv":
        return pivot_csv(tables)
    return render_grids([pivot_grid(t, significant) for t in tables], fmt)


def rich_pivot(tables: list[Pivot], significant: int = SIGNIFICANT) -> list:
    return [rich_table(pivot_grid(t, significant)) for t in tables]


# --------------------------------------------------------------------------- inputs of several folders


def _is_location(key: str) -> bool:
    # Where the files lie (dataset.path, dataset.train_path) says nothing of what they hold; the
    # content digests under "data" do.
    last = key.rsplit(".", 1)[-1]
    return last in ("path", "root") or last.endswith("_path")


def input_differences(runs_of: dict[str, pd.DataFrame], most: int = 6) -> list[str]:
    """Warnings naming the configuration keys of data and streams (the dataset and scenario
    blocks, and the data files' content digests under ``data``) on which the finished runs of
    several folders disagree: their numbers were measured on different inputs.

    ``runs_of`` maps each folder's label to its runs (runs.csv, with the ``config`` JSON); folders
    whose runs carry no configuration (written before results format 2) are not compared.
    """
    from infobench.results import _shown, flat_config

    seen: dict[str, dict[str, set[str]]] = {}
    for label, runs in runs_of.items():
        done = runs[runs["status"].astype(str) == "done"] if "status" in runs else runs
        keys: dict[str, set[str]] = {}
        for config in dict.fromkeys(c for c in done["config"] if isinstance(c, str) and c):
            for key, value in flat_config(config).items():
                if key.split(".", 1)[0] in INPUT_BLOCKS and not _is_location(key):
                    keys.setdefault(key, set()).add(_shown(key, value))
        if keys:
            seen[label] = keys
    if len(seen) < 2:
        return []
    every = sorted({k for keys in seen.values() for k in keys})
    absent = {"(absent)"}
    differing = [k for k in every if len({frozenset(keys.get(k, absent)) for keys in seen.values()}) > 1]
    if not differing:
        return []
    parts = []
    for key in differing[:most]:
        shown = "; ".join(f"{label}: {', '.join(sorted(keys.get(key, absent)))}" for label, keys in seen.items())
        parts.append(f"{key} ({shown})")
    more = f" and {len(differing) - most} more" if len(differing) > most else ""
    return [f"the folders differ in their data or streams: {' · '.join(parts)}{more}; "
            "their numbers were not measured on the same inputs"]
