"""``make reproduce``: run every shipped experiment, judge its claims, and write docs/reproduction.md.

The page is generated from the claims.csv of each results folder (``infobench.report.claims``),
never written by hand: one row per declared claim with its paper, the paper's number, infobench's
number (the measured means, the mean difference and its interval), the verdict, the scale it ran
at (data, model, seeds, epochs) and the sweep's wall time (manifest.json).

    python -m infobench.report.reproduction                       # full size: hours
    python -m infobench.report.reproduction --quick --only quickstart tta_digits_c
    python -m infobench.report.reproduction --no-run              # the page from the folders there are

Experiments whose data files are absent (the four real-data ones, unless ``$INFOBENCH_DATA``
holds them) are skipped, saying so on screen and on the page, where their claims are listed as
not run. ``--quick`` runs each experiment's ``quick:`` version into ``<name>-quick`` and labels
the page as such: those verdicts are about a short run, not about the paper.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from infobench.errors import DataError, InfobenchError
from infobench.report.claims import HOLDS, check, number, read_claims_csv, shared_decimals
from infobench.spec import Claim

ROOT = Path(__file__).resolve().parents[2]  # the repository: experiments/ and docs/ are beside the package
PAGE = ROOT / "docs" / "reproduction.md"
EXPERIMENTS = ROOT / "experiments"


@dataclass
class Entry:
    """One experiment on the page: its results folder, or why there is none."""

    name: str  # the spec's file name, without .yaml
    claims: list[Claim]
    folder: Path | None = None
    skipped: str = ""  # why it did not run (its data is absent)
    error: str = ""  # why its claims could not be judged
    rows: list[dict[str, str]] = field(default_factory=list)  # its claims.csv
    departures: list[str] = field(default_factory=list)  # "key: ran X (the spec: Y)" where the folder's run differs
    finished: tuple[int, int] | None = None  # (runs finished, runs the experiment plans) when some are missing


# ------------------------------------------------------------------------------- the page


def paper_number(row: dict[str, str]) -> str:
    """The paper's number: the expected value ± tolerance, or the ``published`` values."""
    if row.get("expect"):
        return f"{number(row['expect'])} ± {number(row['tolerance'])}"
    published = json.loads(row["published"]) if row.get("published") else {}
    return ", ".join(f"{name} {number(value)}" for name, value in published.items()) or "—"


def infobench_number(row: dict[str, str]) -> str:
    """The measured means, and the mean difference with its interval (its value alone at n = 1)."""
    n = int(row["n"])
    try:
        float(row["reference"])
        against_number = True
    except ValueError:
        against_number = False
    means = number(row["subject_mean"]) + ("" if against_number else f" vs {number(row['reference_mean'])}")
    if n > 1:
        difference, low, high = shared_decimals([float(row[k]) for k in ("difference", "ci_low", "ci_high")])
        spread = f"Δ {difference} [{low}, {high}]"
    else:
        spread = f"Δ {number(row['difference'])}"
    return f"{means}; {spread}; n={n}"


def shown_verdict(row: dict[str, str]) -> str:
    verdict = row["verdict"]
    verdict = f"**{verdict}**" if verdict == HOLDS else verdict
    return f"{verdict} (n=1)" if row["n"] == "1" else verdict


def scale(folder: Path, quick: bool) -> str:
    """Data, model, seeds and epochs of a folder's latest sweep (its spec.yaml)."""
    from infobench.spec import read_spec_file

    spec = read_spec_file(folder / "spec.yaml") if (folder / "spec.yaml").is_file() else {}

    def names(block) -> str:
        blocks = block if isinstance(block, list) else [block] if block else []
        return "/".join(dict.fromkeys(str(b.get("name", "?")) if isinstance(b, dict) else str(b) for b in blocks))

    parts = [names(spec.get("dataset")), names(spec.get("model"))]
    seeds = spec.get("seeds") or []
    parts.append(f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}")
    train = spec.get("train")
    if isinstance(train, dict) and "epochs" in train:
        parts.append(f"{train['epochs']} epochs")
    text = ", ".join(p for p in parts if p)
    return f"quick: {text}" if quick else text


def departures(folder: Path, resolved: dict) -> list[str]:
    """Where the folder's latest sweep (its spec.yaml) differs from the experiment as declared
    (``resolved``, the spec's resolved form): a run reduced with ``--set``, or made by a spec
    that has changed since. Each as ``key: ran X (the spec: Y)``."""
    from infobench.results import flat_config
    from infobench.spec import read_spec_file

    if not (folder / "spec.yaml").is_file():
        return []
    ran = flat_config(read_spec_file(folder / "spec.yaml"))
    declared = flat_config(json.loads(json.dumps(resolved, default=str)))
    return [f"{key}: ran {json.dumps(ran.get(key))} (the spec: {json.dumps(declared.get(key))})"
            for key in dict.fromkeys([*declared, *ran]) if ran.get(key) != declared.get(key)]


def wall_time(folder: Path) -> str:
    """The last sweep's wall time from manifest.json ("—" when that sweep did not finish); a sweep
    that resumed an earlier one says how many of the runs its time covers."""
    from infobench.results import read_manifest

    manifest = read_manifest(folder)
    seconds = manifest.get("seconds")
    if not isinstance(seconds, (int, float)):
        return "—"
    if seconds < 120:
        shown = f"{seconds:.0f} s"
    else:
        shown = f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
    runs = manifest.get("runs") if isinstance(manifest.get("runs"), dict) else {}
    skipped, planned = runs.get("skipped"), runs.get("planned")
    if isinstance(skipped, int) and isinstance(planned, int) and skipped:
        # a resumed sweep: its time covers the runs it did, not those an earlier sweep finished
        shown += f" (the last sweep, {planned - skipped} of {planned} runs)"
    return shown


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def page(entries: Sequence[Entry], quick: bool, command: str, when: str | None = None) -> str:
    """docs/reproduction.md from the experiments' claims tables (see the module docstring)."""
    when = when or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# Reproduction: published claims checked by infobench", "",
             f"Generated by `{command}` on {when} from the `claims.csv` of each results folder "
             "(`infobench.report.reproduction`); do not edit it by hand.", ""]
    reduced = [e.name for e in entries if e.rows and (e.departures or e.finished)]
    if reduced:
        lines += [f"> **Not every experiment ran as declared:** {', '.join(f'`{n}`' for n in reduced)} ran at a "
                  "reduced size or did not finish every run (their scale column says *reduced* or how many "
                  "runs finished; the notes list what differs). Their verdicts are about those runs.", ""]
    if quick:
        lines += ["> **Generated from `--quick` runs, not the full-size experiments.** Each experiment ran its "
                  "`quick:` version (one seed, a few epochs or samples; the scale column says what): these "
                  "verdicts show the mechanism, not whether the papers' claims hold. `make reproduce` runs "
                  "every experiment at full size (hours) and writes this page again.", ""]
    lines += ["Each claim is declared in its experiment's spec (`claims:`) and judged by `infobench claims`: "
              "Δ is the mean over seeds of subject minus reference (paired by seed), with its 95% Student "
              "t interval; **holds** when the interval lies on the claimed side (inside the tolerance for "
              "an equality or an expected value), fails when it lies entirely on the other side (outside), "
              "inconclusive otherwise. A single seed (n=1) is judged on its value. Values are in "
              "infobench's units (error and accuracy as fractions, information in bits).", "",
              "| experiment | claim | paper | paper's number | infobench's number | verdict | scale | wall time |",
              "|---|---|---|---|---|---|---|---|"]
    notes = []
    for entry in entries:
        if entry.rows:
            time_taken, size = wall_time(entry.folder), scale(entry.folder, quick)
            marks = (["reduced"] if entry.departures else []) + (
                [f"{entry.finished[0]} of {entry.finished[1]} runs"] if entry.finished else [])
            if marks:
                size = f"{', '.join(marks)}: {size}"
            if entry.departures:
                notes.append(f"- `{entry.name}` ran reduced: " + "; ".join(entry.departures))
            if entry.finished:
                notes.append(f"- `{entry.name}`: {entry.finished[0]} of the {entry.finished[1]} runs it plans "
                             "finished (the others failed or were not run); its claims are judged on those")
            for row in entry.rows:
                claim = f"`{row['id']}`: {row['claim']} ({row['metric']} @ {row['split']}"
                where = json.loads(row["where"]) if row.get("where") else {}
                claim += "".join(f", {k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in where.items()) + ")"
                lines.append("| " + " | ".join(_cell(c) for c in (
                    entry.name, claim, row["paper"], paper_number(row), infobench_number(row), shown_verdict(row),
                    size, time_taken)) + " |")
                if row.get("note"):
                    notes.append(f"- `{entry.name}` / `{row['id']}`: {row['note']}")
            continue
        why = "not run: its data is absent" if entry.skipped else "not judged"
        for c in entry.claims:  # none when the spec itself is invalid: the note says why
            lines.append("| " + " | ".join(_cell(x) for x in (
                entry.name, f"`{c.id}`: {c.text()} ({c.metric} @ {c.split})", c.paper,
                paper_number(_declared(c)), "—", why, "—", "—")) + " |")
        notes.append(f"- `{entry.name}`: {why}: {entry.skipped or entry.error}")
    if notes:
        lines += ["", "## Notes", "", *notes]
    return "\n".join(lines) + "\n"


def _declared(c: Claim) -> dict[str, str]:
    """The paper's side of a declared claim, as its claims.csv row would hold it."""
    return {"expect": "" if c.expect is None else repr(c.expect), "tolerance": repr(c.tolerance),
            "published": json.dumps(c.published) if c.published else ""}


# ----------------------------------------------------------------------------- the runs


def collect(name: str, spec_path: Path, out: Path, quick: bool, run: bool, extra: Sequence[str]) -> Entry:
    """Run one experiment (unless its data is absent, or ``run`` is False), then judge its claims."""
    from infobench import runner
    from infobench.spec import load_spec

    try:
        spec = load_spec(spec_path, quick=quick)
    except InfobenchError as exc:
        print(f"reproduce: {name}: not a valid spec: {exc}", file=sys.stderr)
        return Entry(name=name, claims=[], error=f"not a valid spec: {exc}")
    entry = Entry(name=name, claims=list(spec.claims))
    try:
        declared = runner.plan(spec, out)  # checks that every data file is there, before anything runs
    except DataError as exc:
        # the page names paths as the repository has them, not as this machine does
        entry.skipped = str(exc).replace(f"{ROOT}/", "").replace(str(ROOT), "the repository")
        print(f"reproduce: skipping {name}: its data is absent: {exc}", file=sys.stderr)
        return entry
    if run:
        command = [sys.executable, "-m", "infobench", "run", str(spec_path), "--out", str(out),
                   *(["--quick"] if quick else []), *extra]
        print(f"reproduce: {' '.join(command)}", file=sys.stderr, flush=True)
        subprocess.run(command, check=False)  # a failed run is reported by its claims (or their absence)
    folder = out / spec.name
    if not (folder / "runs.csv").is_file():
        entry.error = f"no results in {folder}"
        return entry
    entry.folder = folder
    if run:
        declared = runner.plan(spec, out)  # what the run just finished
    if len(declared.finished) < len(declared.runs):  # the folder lacks runs of the experiment as declared
        entry.departures = departures(folder, spec.resolved())
        # whether the sweep that made the folder (its spec.yaml: the experiment, or a reduced version
        # of it) finished every run with today's code; a reduced run is not counted against the full plan
        try:
            planned = runner.plan(load_spec(folder / "spec.yaml"), out) if entry.departures else declared
        except InfobenchError:
            planned = declared
        if len(planned.finished) < len(planned.runs):
            entry.finished = (len(planned.finished), len(planned.runs))
    try:
        check(folder, claims=spec.claims)  # the claims as the experiment declares them today
        entry.rows = read_claims_csv(folder)
    except InfobenchError as exc:
        entry.error = str(exc)
        print(f"reproduce: {name}: claims not judged: {exc}", file=sys.stderr)
    return entry


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infobench.report.reproduction", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="run each experiment's quick: version (and say so on the page)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these experiments only (file names without .yaml)")
    parser.add_argument("--no-run", action="store_true", help="run nothing: judge the folders there are and write the page")
    parser.add_argument("--out", type=Path, default=Path("results"), help="results root (default: results)")
    parser.add_argument("--page", type=Path, default=PAGE, help=f"the page to write (default: {PAGE.relative_to(ROOT)})")
    parser.add_argument("--experiments", type=Path, default=EXPERIMENTS, help="folder of the specs")
    args, extra = parser.parse_known_args(argv)  # anything else goes to `infobench run` (--jobs 2, --device cuda)
    specs = sorted(args.experiments.glob("*.yaml"))
    if args.only:
        unknown = sorted(set(args.only) - {p.stem for p in specs})
        if unknown:
            parser.error(f"no experiment {', '.join(unknown)} in {args.experiments}")
        specs = [p for p in specs if p.stem in args.only]
    entries = [collect(p.stem, p, args.out, args.quick, not args.no_run, extra) for p in specs]
    command = "python -m infobench.report.reproduction " + " ".join(argv if argv is not None else sys.argv[1:])
    from infobench.results import atomic_write

    atomic_write(args.page, page(entries, args.quick, command.strip()))
    print(f"reproduce: wrote {args.page}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
