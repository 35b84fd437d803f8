"""``infobench report``: one self-contained HTML page of one or more results folders.

The page holds, per folder: the claims table, the result tables, every figure of ``plots/``, the
runs by status, the resolved spec (``spec.yaml``) and the manifest (versions, device, times);
with several folders, a comparison across them comes first. It is one file that reads offline:
CSS is inline, figures are embedded as base64 ``data:`` URIs (PNG, SVG, JPEG), and there is no
script, font or stylesheet to fetch. PDF figures cannot be shown inline by every browser and are
listed with a link to the file instead.

Everything that comes from a folder (spec text, labels, metric names, file names, error
messages) is HTML-escaped; an SVG is embedded as an image (``<img src="data:...">``), never
inline, so a script inside it does not run in the page. A section that cannot be read (a damaged
manifest, a folder without finished runs) shows its problem in place and the rest of the page is
still written; :func:`build_report` returns those problems so the CLI can print them.

The tables come from the rest of the ``report`` package and from :mod:`infobench.compare` through
:func:`_result_tables`, :func:`_pivot_grids` and :func:`_claims_table`, each a few lines;
any object with ``title, caption, header, rows, notes, key_count`` (``rows`` of ``(text, bold)``
cells) renders as a table.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from infobench.errors import InfobenchError
from infobench.results import (
    MANIFEST_FILE,
    RUNS_FILE,
    atomic_write,
    is_results_folder,
    read_manifest,
    read_rows,
)

IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
LINKED_TYPES = (".pdf",)  # figures not every browser shows in an <img>: listed with a link
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SPEC_FILE = "spec.yaml"
CLAIMS_FILE = "claims.csv"
# manifest keys shown first, in this order (the rest follow alphabetically)
MANIFEST_FIRST = ("infobench", "started", "finished", "seconds", "runs", "device", "device_requested", "gpus",
                  "torch", "python", "numpy", "platform", "host", "git_commit", "git_dirty", "jobs",
                  "threads_per_run", "deterministic", "command")

CSS = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1200px;
       padding: 0 16px; color: #1a1a1a; background: #ffffff; line-height: 1.4; }
h1 { font-size: 1.6em; border-bottom: 2px solid #333; padding-bottom: 4px; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #999; }
h3 { font-size: 1.1em; margin-top: 1.5em; }
nav ul { padding-left: 1.2em; }
.scroll { overflow-x: auto; }
.tables { display: flex; flex-wrap: wrap; gap: 0 40px; align-items: flex-start; }
.table { max-width: 100%; min-width: 0; margin-bottom: 1em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
caption { caption-side: top; text-align: left; font-weight: bold; padding: 4px 0; }
th, td { border-top: 1px solid #ccc; border-bottom: 1px solid #ccc; padding: 3px 8px; }
thead th { border-top: 2px solid #333; border-bottom: 2px solid #333; background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.key, th.key { text-align: left; }
td.best { font-weight: bold; background: #eef6ee; }
td.verdict-holds { color: #1e7b34; font-weight: bold; }
td.verdict-fails { color: #b52a1d; font-weight: bold; }
td.verdict-inconclusive { color: #9a6a00; font-weight: bold; }
p.note { font-size: 0.85em; color: #555; margin: 2px 0; }
p.problem { color: #8a1f11; background: #fbeae5; padding: 4px 8px; border-left: 4px solid #c0392b; }
pre { background: #f6f6f6; border: 1px solid #ddd; padding: 8px; overflow-x: auto; font-size: 0.85em; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 16px; }
figure { margin: 0; border: 1px solid #ddd; padding: 8px; background: #fff; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { font-size: 0.85em; color: #444; text-align: center; margin-top: 4px; word-break: break-all; }
footer { margin-top: 3em; font-size: 0.8em; color: #777; }
"""


@dataclass
class _Table:
    """A table to render: the shape of :mod:`infobench.compare`'s grids (``rows`` of ``(text, bold)``)."""

    title: str
    caption: str
    header: list[str]
    rows: list[list[tuple[str, bool]]]
    notes: list[str] = field(default_factory=list)
    key_count: int = 1


@dataclass
class Report:
    """What :func:`build_report` made: the page, and the problems shown in it (one line each)."""

    html: str
    problems: list[str]


def _e(text: Any) -> str:
    """HTML-escape anything shown on the page (quotes too: text also lands in attributes)."""
    return html.escape(str(text), quote=True)


# --------------------------------------------------------------------------- the tables' sources


def _result_tables(folders: list[Path], ci: float | None) -> tuple[list, list[str]]:
    """The result tables of one folder, or of several side by side, and compare's cautions
    (folders that differ in their data or streams): compare's summary (and its paired table for
    two folders sharing runs), then a methods x splits pivot of every metric measured on two or
    more splits (domains, corruptions)."""
    from infobench import compare

    result = compare.compare(folders, ci=ci)
    return [*compare.grids(result), *_pivot_grids(result, folders)], list(result.warnings)


def _pivot_grids(result, folders: list[Path]) -> list:
    """A pivot over splits of each headline metric (those ``infobench run`` prints for the
    folders' tasks) that was measured on two or more splits."""
    from infobench.report.tables import MEAN_COLUMN, pivot, pivot_grid

    try:
        pivots = pivot(result, over="split")
    except InfobenchError:  # e.g. a comparison without per-seed values
        return []
    headline = _headline_metrics(folders)
    return [pivot_grid(p) for p in pivots
            if MEAN_COLUMN in p.columns and (headline is None or p.metric in headline)]


def _headline_metrics(folders: list[Path]) -> set[str] | None:
    """The union of the folders' tasks' ``summary_metrics``; None (every metric) when a task
    declares none or is not registered here."""
    from infobench import registry

    names = {row.get("task", "") for folder in folders for row in read_rows(folder / RUNS_FILE, ("task",))}
    headline: set[str] = set()
    for name in names:
        try:
            metrics = registry.get("task", name).summary_metrics
        except InfobenchError:
            return None
        if not metrics:
            return None
        headline.update(metrics)
    return headline


def _claims_table(folder: Path) -> _Table | None:
    """The folder's claims judged now (:mod:`infobench.report.claims`, the claims its spec.yaml
    declares); else its claims.csv (claims judged with another spec file); None when neither."""
    judged = _judged_claims(folder)
    if judged is not None:
        return judged
    path = folder / CLAIMS_FILE
    if not path.is_file() or path.is_symlink():
        return None
    return _csv_table(path, CLAIMS_FILE)


def _judged_claims(folder: Path) -> _Table | None:
    """The claims of the folder's spec.yaml judged on its runs (nothing is written), as
    ``infobench claims`` shows them; None when it declares none."""
    try:
        from infobench.report import claims
    except ImportError:
        return None
    if not (folder / SPEC_FILE).is_file():
        return None
    declared = claims.folder_claims(folder)
    if not declared:
        return None
    rows = []
    for j in claims.judge(folder, declared):
        c = j.claim
        verdict = f"{j.verdict} (n=1)" if j.n == 1 else j.verdict
        rows.append([(c.id, False), (c.paper or "", False), (c.text(), False), (f"{c.metric} @ {c.split}", False),
                     (claims.measured(j), False), (str(j.n), False), (claims.interval(j), False), (verdict, False)])
    note = (f"difference = subject − reference, mean over seeds [{claims.LEVEL:.0%} Student t interval, paired "
            "by seed]; a single seed (n=1) is judged on its value")
    return _Table(f"the claims of {SPEC_FILE}, judged on the finished runs", "",
                  ["claim", "paper", "says", "metric @ split", "measured", "n", "difference", "verdict"],
                  rows, [note], key_count=5)


def _csv_table(path: Path, title: str) -> _Table:
    """A CSV file as a table, every cell as text (escaped when rendered)."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            records = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InfobenchError(f"{path}: not a readable CSV table ({exc})") from None
    if not records:
        raise InfobenchError(f"{path}: empty")
    header, body = records[0], records[1:]
    rows = [[(_number_text(cell), False) for cell in record] for record in body]
    return _Table(title, "", header, rows, [], key_count=1)


def _number_text(cell: str) -> str:
    """A CSV cell as shown: floats to 4 significant digits (a claims.csv keeps full precision),
    anything else as written."""
    try:
        value = float(cell)
    except ValueError:
        return cell
    if cell.strip().lstrip("+-").isdigit() or value != value:  # integers and nan as written
        return cell
    return f"{value:.4g}"


# --------------------------------------------------------------------------- HTML pieces


def _table_html(table) -> str:
    """A grid (see the module docstring) as an HTML table: keys left, numbers right, best in bold."""
    head = "".join(f'<th class="{"key" if i < table.key_count else "num"}">{_e(h)}</th>'
                   for i, h in enumerate(table.header))
    body = []
    for row in table.rows:
        cells = []
        for i, (text, bold) in enumerate(row):
            kind = "key" if i < table.key_count else "num"
            if i < len(table.header) and table.header[i] == "verdict":  # holds / fails / inconclusive coloured
                kind += f" verdict-{text.split(' ')[0]}" if text else ""
            cells.append(f'<td class="{_e(kind)}{" best" if bold else ""}">{_e(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = _e(table.title) + (f" — {_e(table.caption)}" if table.caption else "")
    notes = "".join(f'<p class="note">{_e(note)}</p>' for note in table.notes)
    return (f'<div class="table"><div class="scroll"><table><caption>{caption}</caption><thead><tr>{head}</tr>'
            f'</thead><tbody>{"".join(body)}</tbody></table></div>{notes}</div>')


def _tables_html(folders: list[Path], ci: float | None) -> str:
    tables, cautions = _result_tables(folders, ci)
    return "".join(_problem(c) for c in cautions) + f'<div class="tables">{"".join(map(_table_html, tables))}</div>'


def _problem(text: str) -> str:
    return f'<p class="problem">{_e(text)}</p>'


def _plot_files(plots: Path) -> list[Path]:
    """Every file under plots/, sorted; links are never followed (a results folder holds none)."""
    found = []
    for here, _, files in os.walk(plots, followlinks=False):
        found.extend(Path(here) / name for name in files if not os.path.islink(os.path.join(here, name)))
    return sorted(found)


def _figures_html(folder: Path, problems: list[str]) -> str:
    plots = folder / "plots"
    if not plots.is_dir() or plots.is_symlink():
        return '<p class="note">no plots/ folder</p>'
    shown, linked = [], []
    for path in _plot_files(plots):
        name = path.relative_to(folder).as_posix()
        suffix = path.suffix.lower()
        if suffix in LINKED_TYPES:
            linked.append(f'<li><a href="{_e(path.resolve().as_uri())}">{_e(name)}</a> (not embedded)</li>')
        elif suffix in IMAGE_TYPES:
            data = path.read_bytes()
            if suffix == ".png" and not data.startswith(PNG_SIGNATURE):
                message = f"{folder / name}: not a PNG file; left out"
                problems.append(message)
                shown.append(_problem(message))
                continue
            uri = f"data:{IMAGE_TYPES[suffix]};base64,{base64.b64encode(data).decode('ascii')}"
            shown.append(f'<figure><img src="{uri}" alt="{_e(name)}"><figcaption>{_e(name)}</figcaption></figure>')
    if not shown and not linked:
        return '<p class="note">no figures in plots/</p>'
    parts = [f'<div class="figures">{"".join(shown)}</div>'] if shown else []
    if linked:
        parts.append(f'<ul>{"".join(linked)}</ul>')
    return "".join(parts)


def _manifest_rows(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """The manifest as (key, value) rows, nested objects dotted (``runs.done``), lists as JSON."""
    flat: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))
        else:
            flat[prefix] = node if isinstance(node, str) else json.dumps(node, ensure_ascii=False)

    walk(manifest, "")
    first = [k for top in MANIFEST_FIRST for k in flat if k == top or k.startswith(top + ".")]
    return [(k, flat[k]) for k in [*first, *sorted(set(flat) - set(first))]]


def _runs_html(folder: Path) -> str:
    """Runs by status, and the error of each run that did not finish."""
    rows = list({r["run_id"]: r for r in read_rows(folder / RUNS_FILE, ("status",))}.values())
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.get("status", "")] = counts.get(r.get("status", ""), 0) + 1
    text = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"
    parts = [f"<p>{len(rows)} run(s): {_e(text)}</p>"]
    broken = [r for r in rows if r.get("status") != "done"]
    if broken:
        header = ["run_id", "method", "variant", "seed", "status", "error"]
        table = _Table("Runs that did not finish", "", header,
                       [[(r.get(c, ""), False) for c in header] for r in broken], [], key_count=len(header))
        parts.append(_table_html(table))
    return "".join(parts)


def _section(title: str, body: str, level: int = 3) -> str:
    return f"<h{level}>{_e(title)}</h{level}>{body}"


def _guarded(what: str, folder: Path | None, make, problems: list[str]) -> str:
    """``make()``'s HTML, or the problem it raised shown in its place (and collected)."""
    try:
        return make()
    except (InfobenchError, OSError) as exc:
        message = f"{what}: {exc}" if folder is None else f"{folder}: {what}: {exc}"
        problems.append(message)
        return _problem(message)


def _folder_html(folder: Path, name: str, anchor: str, ci: float | None, problems: list[str]) -> str:
    def claims() -> str:
        table = _claims_table(folder)
        return _table_html(table) if table is not None else '<p class="note">no claims checked in this folder</p>'

    def spec() -> str:
        path = folder / SPEC_FILE
        if not path.is_file():
            return '<p class="note">no spec.yaml</p>'
        return f"<pre>{_e(path.read_text(encoding='utf-8', errors='replace'))}</pre>"

    def manifest() -> str:
        rows = _manifest_rows(read_manifest(folder))
        if not rows:
            return f'<p class="note">no {MANIFEST_FILE}</p>'
        return _table_html(_Table("Manifest", "", ["key", "value"], [[(k, False), (v, False)] for k, v in rows],
                                  key_count=2))

    parts = [f'<section id="{anchor}"><h2>{_e(name)}</h2><p class="note">{_e(folder.resolve())}</p>']
    sections = (("Claims", claims), ("Results", lambda: _tables_html([folder], ci)),
                ("Figures", lambda: _figures_html(folder, problems)), ("Runs", lambda: _runs_html(folder)),
                ("Spec (resolved)", spec), ("Manifest", manifest))
    for title, make in sections:
        parts.append(_section(title, _guarded(title.lower(), folder, make, problems)))
    parts.append("</section>")
    return "".join(parts)


# --------------------------------------------------------------------------- the page


def build_report(dirs: Sequence[str | os.PathLike], title: str | None = None, ci: float | None = None) -> Report:
    """The HTML page of one or more results folders (see the module docstring); ``ci`` a
    confidence level in percent for bootstrap intervals over seeds in the tables (none: mean ± std).

    Raises:
        InfobenchError: no folder given, a folder given twice, a path that is not a results
            folder (no runs.csv), or a ``ci`` level outside (0, 100). Problems inside a folder are
            shown on the page instead.
    """
    from infobench import __version__

    folders = [Path(d) for d in dirs]
    if not folders:
        raise InfobenchError("report needs at least one results folder")
    for folder in folders:
        if not is_results_folder(folder):
            raise InfobenchError(f"{folder}: not a results folder (no {RUNS_FILE} in it)")
    if len({f.resolve() for f in folders}) != len(folders):
        raise InfobenchError(f"the same results folder is given twice: {', '.join(map(str, folders))}")
    if ci is not None:
        from infobench.report.tables import check_level

        check_level(ci)
    names = [f.name for f in folders] if len({f.name for f in folders}) == len(folders) else list(map(str, folders))
    title = title or ("infobench report: " + ", ".join(names))
    problems: list[str] = []
    anchors = [f"folder-{i}" for i in range(1, len(folders) + 1)]
    body = []
    if len(folders) > 1:
        body.append(_section("Across folders", _guarded(
            "comparison", None, lambda: _tables_html(folders, ci), problems), level=2))
    body.extend(_folder_html(*shown, ci, problems) for shown in zip(folders, names, anchors))
    toc = "".join(f'<li><a href="#{a}">{_e(name)}</a></li>' for name, a in zip(names, anchors))
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{_e(title)}</h1><nav><ul>{toc}</ul></nav>{''.join(body)}"
            f"<footer>made by infobench {_e(__version__)} on {made}</footer></body></html>\n")
    return Report(page, problems)


def write_report(dirs: Sequence[str | os.PathLike], out: str | os.PathLike, title: str | None = None,
                 ci: float | None = None) -> Report:
    """Build the page of ``dirs`` and write it to ``out`` atomically (temp file, fsync, rename).

    Raises:
        InfobenchError: as :func:`build_report`, or ``out`` is a folder or a symbolic link (a link
            could lead the write anywhere), or cannot be written.
    """
    out = Path(out)
    if out.is_symlink() or out.is_dir():
        raise InfobenchError(f"--out {out}: is a folder or a link; give the path of a file to write")
    report = build_report(dirs, title, ci)
    try:
        atomic_write(out, report.html)
    except OSError as exc:
        raise InfobenchError(f"--out {out}: cannot write it ({exc.strerror or exc})") from None
    return report
