"""Human-readable views for the CLI: what is registered (``list``) and what a folder holds (``show``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from infobench import registry
from infobench.errors import InfobenchError

KIND_ALIASES = {"tasks": "task", "datasets": "dataset", "models": "model", "methods": "methods"}


def _params_text(cls: Any) -> str:
    params = getattr(cls, "Params", None)
    if params is None or not params.model_fields:
        return "-"
    parts = []
    for name, info in params.model_fields.items():
        default = "required" if info.is_required() else repr(info.get_default(call_default_factory=True))
        parts.append(f"{name}={default}")
    return ", ".join(parts)


def _source_of(kind: str, name: str, cls: Any) -> str:
    """Where a plug-in comes from: "infobench", the distribution of an entry point, or its module."""
    if cls.__module__.split(".")[0] == "infobench":
        return "infobench"
    return registry.origin(kind, name) or cls.__module__


def _plugin_table(title: str, kind: str) -> Table:
    """One row per plug-in of ``kind``; a "from" column, shown when some plug-in is not
    infobench's own, names the installed distribution of those that came from an entry point."""
    rows = [(name, cls, _source_of(kind, name, cls)) for name, cls in registry.items(kind)]
    outside = any(source != "infobench" for _, _, source in rows)
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("name", style="bold cyan", no_wrap=True)
    if outside:
        table.add_column("from", style="magenta")
    table.add_column("description")
    table.add_column("parameters (defaults)", style="dim")
    for name, cls, source in rows:
        table.add_row(name, *([source] if outside else []), registry.describe(cls), _params_text(cls))
    return table


def tables(kind: str | None, task: str | None) -> list[Table]:
    """Tables for ``infobench list [kind] [task]``."""
    if kind is None:
        kinds = ["tasks", "datasets", "models", "methods"]
    else:
        if kind not in KIND_ALIASES:
            raise InfobenchError(f"unknown kind {kind!r}{registry.did_you_mean(kind, list(KIND_ALIASES))}; one of {', '.join(KIND_ALIASES)}")
        kinds = [kind]
    out = []
    for k in kinds:
        if k == "methods":
            task_names = [task] if task else registry.names("task")
            for t in task_names:
                task_cls = registry.get("task", t)
                out.append(_plugin_table(f"methods of task {t}", task_cls.method_kind))
                for label, extra_kind in task_cls.extra_kinds.items():
                    out.append(_plugin_table(f"{label} of task {t}", extra_kind))
        else:
            out.append(_plugin_table(k, KIND_ALIASES[k]))
    return out


def show_folder(folder: Path, console) -> None:
    """Print what a results folder holds; a damaged spec.yaml or manifest.json is reported, not fatal."""
    from rich.text import Text

    from infobench.results import load_metrics, load_runs, read_manifest
    from infobench.spec import SpecError, read_spec_file

    runs = load_runs([folder])
    metrics = load_metrics([folder])
    spec_path = folder / "spec.yaml"
    console.print(Text(str(folder), style="bold"))
    if spec_path.exists():
        try:
            spec = read_spec_file(spec_path)
        except SpecError as exc:
            spec = exc
        if isinstance(spec, dict):
            dataset = spec.get("dataset")
            dataset = dataset.get("name") if isinstance(dataset, dict) else dataset
            console.print(Text(f"spec: {spec.get('name')} (task {spec.get('task')}, dataset {dataset}, seeds {spec.get('seeds')}); "
                               f"{len(list((folder / 'specs').glob('*.yaml')))} version(s) in specs/"))
        else:
            console.print(Text(f"spec.yaml: unreadable ({'; '.join(spec.problems) if isinstance(spec, SpecError) else type(spec).__name__})",
                               style="yellow"))
    try:
        info = read_manifest(folder)
    except InfobenchError as exc:
        info = {}
        console.print(Text(str(exc), style="yellow"))
    if info:
        dirty = " (uncommitted changes)" if info.get("git_dirty") else ""
        console.print(Text(f"written by infobench {info.get('infobench')} at {info.get('started')} on {info.get('host')} "
                           f"(torch {info.get('torch')}, commit {str(info.get('git_commit'))[:10] or '-'}{dirty})"))
    counts = runs["status"].value_counts().to_dict()
    console.print("runs: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    if not metrics.empty:
        table = Table(title="metrics", title_justify="left")
        for col in ("metric", "splits", "rows"):
            table.add_column(col)
        for name, group in metrics.groupby("metric"):
            splits = sorted(group["split"].unique())
            table.add_row(name, ", ".join(splits[:6]) + (f" (+{len(splits) - 6})" if len(splits) > 6 else ""), str(len(group)))
        console.print(table)
    files = sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    plots = [str(p) for p in files if p.parts[0] == "plots" and p.suffix in (".png", ".pdf", ".svg")]
    logs = [p for p in files if p.parts[0] == "logs"]
    console.print(f"files: {len(files)} ({len(plots)} plots, {len(logs)} logs)")
    for p in plots[:20]:
        console.print(f"  {p}")
