"""The ``infobench`` command line. Thin: parse, call the library, print with rich.

Torch is never imported at module level so ``--help`` and ``compare`` start fast.
Exit codes: 0 every run done, 1 some runs failed or diverged, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from infobench.errors import InfobenchError
from infobench.limits import MAX_RUNS

app = typer.Typer(
    name="infobench",
    help="Run information-theoretic deep learning experiments from YAML specs and compare the results.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Messages hold paths: never break them mid-line. Written to a file or pipe, tables get room to be
# read whole (rich would assume 80 columns and squeeze the numbers out of a wide summary).
_PIPED_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 240
console = Console(soft_wrap=True, width=_PIPED_WIDTH)
err_console = Console(stderr=True, soft_wrap=True)


class Executor(str, Enum):
    auto = "auto"
    loky = "loky"
    dask = "dask"


class Format(str, Enum):
    rich = "rich"
    md = "md"
    csv = "csv"
    latex = "latex"


def _fail(exc: InfobenchError) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(exc.exit_code)


@app.command()
def run(
    specs: Annotated[list[Path], typer.Argument(help="spec files (YAML)", show_default=False)],
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="override a value: key.path=value (YAML scalar)")] = None,
    out: Annotated[Path, typer.Option("--out", help="results root; each spec writes to OUT/<name>/")] = Path("results"),
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="runs in parallel (loky processes)")] = 1,
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help="torch threads per run (default: cores / jobs)")] = None,
    executor: Annotated[Executor, typer.Option("--executor", help="auto: serial for 1 job, loky processes for more; dask: a Dask cluster")] = Executor.auto,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="Dask scheduler address tcp://host:port (default: a LocalCluster of --jobs workers)")] = None,
    force: Annotated[bool, typer.Option("--force", help="rerun runs already finished")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the planned runs and exit")] = False,
    quick: Annotated[bool, typer.Option("--quick", help="apply the spec's quick: overrides (a short version of the experiment)")] = False,
    max_runs: Annotated[int, typer.Option("--max-runs", min=1, help="refuse a spec that expands into more runs than this")] = MAX_RUNS,
    deterministic: Annotated[bool, typer.Option("--deterministic", help="one thread per run and torch's deterministic algorithms: bit-identical tables whatever --jobs")] = False,
    device: Annotated[str | None, typer.Option("--device", help="where runs compute: auto (CUDA when present), cpu, cuda, cuda:N or mps; overrides the spec's device:")] = None,
    retrain: Annotated[bool, typer.Option("--retrain", help="retrain cached models once in this sweep (implies --force)")] = False,
    plot_format: Annotated[str, typer.Option("--plot-format", help="figures as png (300 dpi), pdf or svg")] = "png",
    log_to: Annotated[Optional[list[str]], typer.Option("--log-to", help="also copy each run and the figures to mlflow or tensorboard (repeatable; stores inside the results folder unless MLFLOW_TRACKING_URI is set)")] = None,
) -> None:
    """Run every run of the given specs, skipping those already finished."""
    import time

    from infobench import runner
    from infobench.executors import available_cores, check_scheduler, make_executor
    from infobench.spec import load_spec

    if retrain:  # read by the model cache in this process and in the workers started below
        os.environ["INFOBENCH_RETRAIN_SINCE"] = repr(time.time())
        force = True
    with _terminated_as_interrupt():
        try:
            from infobench import plots

            plots.set_format(plot_format)  # every figure is drawn in this process, after the runs
            check_scheduler(scheduler)
            if jobs > available_cores() and executor is not Executor.dask:
                err_console.print(f"[yellow]--jobs {jobs} is more than this machine's {available_cores()} cores: "
                                  f"running {available_cores()} at a time", highlight=False)
                jobs = available_cores()
            pool = make_executor(jobs, executor.value, scheduler)
        except InfobenchError as exc:
            raise _fail(exc) from None
        try:
            outlooks = {runner.sweep_outlook(path, set_ or [], out) for path in specs}
            if not dry_run and "unreadable" not in outlooks and (force or "open" in outlooks):
                pool.prestart()  # workers start and import while the specs are validated
            try:
                loaded = [load_spec(path, set_ or [], quick=quick, max_runs=max_runs) for path in specs]  # all valid first
                plans = [runner.plan(spec, out, force=force, deterministic=deterministic, device=device,
                                     log_to=log_to or ()) for spec in loaded]
            except InfobenchError as exc:
                raise _fail(exc) from None
            if dry_run:
                for the_plan in plans:
                    _print_plan(the_plan)
                return
            code = 0
            for the_plan in plans:
                try:
                    summary = runner.execute(the_plan, jobs=jobs, threads=threads, console=console, executor=pool)
                except InfobenchError as exc:
                    raise _fail(exc) from None
                except KeyboardInterrupt:
                    err_console.print(f"[yellow]interrupted: finished runs are saved in {the_plan.folder.root}; run again to continue")
                    raise typer.Exit(130) from None
                code = max(code, summary.exit_code)
                _print_summary(summary, the_plan.spec.task)
                _print_claims(the_plan.spec.claims, summary.folder)
        finally:
            pool.close()
    raise typer.Exit(code)


@contextlib.contextmanager
def _terminated_as_interrupt():
    """SIGTERM and SIGHUP (a closed terminal, a killed pipeline) end a sweep like Ctrl-C: workers are
    stopped and exit code 130, instead of dying with the workers left running."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _print_plan(the_plan) -> None:
    from rich.table import Table
    from rich.text import Text

    counts = f"{len(the_plan.todo)} to run, {len(the_plan.runs) - len(the_plan.todo)} finished"
    if the_plan.stale:
        counts += f" ({len(the_plan.stale & {r.run_id for r in the_plan.runs})} of those to run are stale: their code changed)"
    table = Table(title=Text(f"{the_plan.spec.name}: {counts}"))
    for col in ("run_id", "method", "variant", "seed", "status"):
        table.add_column(col)
    for r in the_plan.runs:
        status = "finished" if r.run_id in the_plan.finished else ("stale: rerun" if r.run_id in the_plan.stale else "to run")
        # Text, not markup: a setting label such as [loss.name=focal] must print as written
        table.add_row(*(Text(v) for v in (r.run_id, r.method, r.variant, str(r.seed), status)))
    console.print(table)


def _print_summary(summary, task_name: str) -> None:
    from rich.text import Text

    from infobench.compare import compare, rich_tables

    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.statuses.items())) or "nothing new"
    console.print(Text(f"{summary.folder}: {summary.planned} runs, {summary.skipped} already finished, {counts} "
                       f"({summary.seconds:.1f} s)", style="bold"))
    if summary.kept:
        console.print(Text(f"{summary.kept} rerun(s) failed; their earlier finished results are kept (see logs/)", style="yellow"))
    for line in summary.warnings:
        console.print(Text(f"warning: {line}", style="yellow"))
    for line in summary.tracking_problems:
        console.print(Text(f"tracking: {line}; the results folder is complete: run again with --log-to to send "
                           "what was missed", style="red"))
    from infobench import registry

    task = registry.get("task", task_name)
    try:
        result = compare([summary.folder], metrics=list(task.summary_metrics) if task.summary_metrics else None,
                         split=task.summary_split)
    except InfobenchError as exc:
        console.print(f"[yellow]{exc}")
        return
    for table in rich_tables(result):
        console.print(table)
    for path in summary.plots:
        console.print(f"plot: {path}")
    for line in summary.tracked:
        console.print(Text(line))


def _print_claims(claims, folder: Path) -> bool:
    """Judge ``claims`` on ``folder``, print their table and write its claims.csv; a claim that
    cannot be judged (a name the folder lacks) is printed as an error. Returns False then."""
    from infobench.report.claims import check, rich_table

    if not claims:
        return True
    try:
        judgements = check(folder, claims=claims)
    except InfobenchError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
        return False
    console.print(rich_table(judgements, f"{folder}: claims (written to claims.csv)"))
    return True


@app.command("compare")
def compare_cmd(
    dirs: Annotated[list[Path], typer.Argument(help="result folders", show_default=False)],
    metric: Annotated[Optional[list[str]], typer.Option("--metric", "-m", help="metric to show (repeatable)")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="only these splits/domains, comma-separated")] = None,
    by: Annotated[Optional[str], typer.Option("--by", help="extra grouping columns, comma-separated")] = None,
    baseline: Annotated[Optional[str], typer.Option("--baseline", help="method to report deltas against")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="output format")] = Format.rich,
    out_file: Annotated[Optional[Path], typer.Option("--out", help="write the table to this file")] = None,
    pivot: Annotated[Optional[str], typer.Option("--pivot", help="one table per metric with this key's values as columns and a mean column, best per column in bold: split (methods x domains), seed, source, or any --by key")] = None,
    ci: Annotated[Optional[float], typer.Option("--ci", help="LEVEL: percentile bootstrap interval (e.g. 95) of each mean over its seeds, 10,000 resamples, seeded")] = None,
) -> None:
    """Final metrics aggregated over seeds (mean ± std), side by side across result folders;
    --pivot split gives the methods x domains table of papers."""
    from infobench.compare import RUN_KEYS, compare, render, rich_tables
    from infobench.report.tables import pivot as pivot_tables
    from infobench.report.tables import render_pivot, rich_pivot

    splits = [s.strip() for s in split.split(",") if s.strip()] if split else None
    by_keys = [c.strip() for c in by.split(",") if c.strip()] if by else []
    try:
        if pivot is not None and baseline is not None:
            raise InfobenchError("--pivot and --baseline do not combine: a pivot table marks the best of each "
                                 "column instead of showing deltas")
        if pivot is not None and pivot not in ("split", "source", *RUN_KEYS, *by_keys):
            by_keys.append(pivot)  # a config key or metric column: made a row key, then spread into columns
        result = compare(dirs, metrics=metric or None, split=splits, by=by_keys or None, baseline=baseline, ci=ci)
        pivots = pivot_tables(result, pivot, keep_pooled=bool(splits)) if pivot is not None else None
    except InfobenchError as exc:
        raise _fail(exc) from None
    for line in result.warnings:
        err_console.print(f"warning: {line}", style="yellow", markup=False, highlight=False)
    if fmt is Format.rich and out_file is None:
        for table in rich_pivot(pivots) if pivots is not None else rich_tables(result):
            console.print(table)
        return
    chosen = "md" if fmt is Format.rich else fmt.value
    text = render_pivot(pivots, chosen) if pivots is not None else render(result, chosen)
    if out_file is not None:
        from infobench.results import atomic_write

        if out_file.is_dir() or out_file.is_symlink():
            raise _fail(InfobenchError(f"--out {out_file}: is a folder or a link; give the path of a file to write"))
        try:
            atomic_write(out_file, text)
        except OSError as exc:
            raise _fail(InfobenchError(f"--out {out_file}: cannot write it ({exc.strerror or exc})")) from None
        console.print(f"wrote {out_file}")
    else:
        sys.stdout.write(text)


@app.command()
def report(
    dirs: Annotated[list[Path], typer.Argument(help="result folders", show_default=False)],
    out_file: Annotated[Path, typer.Option("--out", help="the HTML file to write")] = Path("report.html"),
    title: Annotated[Optional[str], typer.Option("--title", help="page title (default: the folders' names)")] = None,
    ci: Annotated[Optional[float], typer.Option("--ci", help="bootstrap intervals over seeds at this level (percent, e.g. 95) instead of ± std")] = None,
) -> None:
    """One self-contained HTML page of the folders: claims, tables, figures, spec and manifest (reads offline)."""
    from infobench.report.html import write_report

    try:
        written = write_report(dirs, out_file, title=title, ci=ci)
    except InfobenchError as exc:
        raise _fail(exc) from None
    from rich.text import Text

    for problem in written.problems:  # Text: a label such as [loss.name=focal] prints as written
        err_console.print(Text.assemble(("warning: ", "yellow"), problem), highlight=False)
    console.print(Text(f"wrote {out_file}"), highlight=False)


@app.command("list")
def list_cmd(
    kind: Annotated[Optional[str], typer.Argument(help="tasks | methods | datasets | models")] = None,
    task: Annotated[Optional[str], typer.Argument(help="task whose methods to list")] = None,
) -> None:
    """What is registered, with one-line descriptions and each plugin's parameters."""
    from infobench import catalog

    try:
        for table in catalog.tables(kind, task):
            console.print(table)
    except InfobenchError as exc:
        raise _fail(exc) from None


@app.command("claims")
def claims_cmd(
    dirs: Annotated[list[Path], typer.Argument(help="result folders", show_default=False)],
    spec: Annotated[Optional[Path], typer.Option("--spec", help="judge the claims of this spec file (default: each folder's spec.yaml)")] = None,
) -> None:
    """Judge the published claims a spec declares (claims:) on its results: measured values, a 95%
    paired t interval over seeds and a verdict (holds / fails / inconclusive); writes claims.csv.
    Exit 0 whatever the verdicts; 2 when a folder or a claim is bad input."""
    from infobench.report.claims import folder_claims

    bad = False
    for folder in dirs:
        try:
            claims = folder_claims(folder, spec)
        except InfobenchError as exc:
            bad = True
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
            continue
        if not claims:
            err_console.print(f"{folder}: its spec declares no claims (add claims: to it, or pass --spec FILE)",
                              highlight=False)
            continue
        bad = not _print_claims(claims, folder) or bad
    raise typer.Exit(2 if bad else 0)


@app.command()
def validate(specs: Annotated[list[Path], typer.Argument(help="spec files", show_default=False)],
             set_: Annotated[Optional[list[str]], typer.Option("--set", help="override key.path=value")] = None,
             quick: Annotated[bool, typer.Option("--quick", help="apply the spec's quick: overrides")] = False,
             max_runs: Annotated[int, typer.Option("--max-runs", min=1, help="refuse specs of more runs than this")] = MAX_RUNS) -> None:
    """Check specs without running them; prints every problem with its key path."""
    from infobench.spec import load_spec

    bad = 0
    for path in specs:
        try:
            spec = load_spec(path, set_ or [], quick=quick, max_runs=max_runs)
        except InfobenchError as exc:
            err_console.print(f"[red]✗[/] {exc}", highlight=False)
            bad += 1
            continue
        console.print(f"[green]✓[/] {path}: {spec.task}, {len(spec.runs())} runs ({len(spec.variants)} variants x {len(spec.settings)} settings x {len(spec.seeds)} seeds)")
    raise typer.Exit(2 if bad else 0)


@app.command()
def show(folder: Annotated[Path, typer.Argument(help="a result folder", show_default=False)]) -> None:
    """What a result folder holds: its spec, runs by status, metrics, splits and files."""
    from infobench import catalog

    try:
        catalog.show_folder(folder, console)
    except InfobenchError as exc:
        raise _fail(exc) from None


@app.command()
def export(folder: Annotated[Path, typer.Argument(help="a result folder", show_default=False)]) -> None:
    """Write the folder's metrics.csv again: every metric row of its finished runs, from the per-run
    Parquet files (a sweep writes it at its end; this is for a folder whose export was removed)."""
    from infobench import runner
    from infobench.results import ResultsFolder

    try:
        results = ResultsFolder(folder)
        results.check_owned()
        with runner.folder_lock(results):
            written = results.export_csv()
    except InfobenchError as exc:
        raise _fail(exc) from None
    console.print(f"wrote {written}", highlight=False)


cache_app = typer.Typer(help="The trained-model cache ($INFOBENCH_CACHE, default ~/.cache/infobench).",
                        no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("list")
def cache_list() -> None:
    """Every cached model: key, role, dataset, model, seed, size and when it was trained."""
    from datetime import datetime

    from rich.table import Table
    from rich.text import Text

    from infobench.cache import cache_root, entries

    found = entries()
    table = Table(title=Text(f"{cache_root()}: {len(found)} cached model(s)"))
    for col in ("key", "role", "dataset", "model", "seed", "size", "trained"):
        table.add_column(col)
    for e in found:
        when = datetime.fromtimestamp(e["written"]).strftime("%Y-%m-%d %H:%M")
        table.add_row(*(Text(str(v)) for v in (e["key"], e["role"], e["dataset"], e["model"], e["seed"],
                                                 f"{e['bytes'] / 1024:.0f} KiB", when)))
    console.print(table)


@cache_app.command("clear")
def cache_clear(yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False) -> None:
    """Delete every cached model, IB recording and file digest (the next runs retrain)."""
    from infobench.cache import cache_root, clear

    if not yes:
        if not sys.stdin.isatty():
            raise _fail(InfobenchError("cache clear: pass --yes to clear without a question"))
        if not typer.confirm(f"delete the cached models in {cache_root()}?"):
            raise typer.Exit(1)
    console.print(f"removed {clear()} file(s) from {cache_root()}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
