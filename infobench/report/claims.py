"""Published claims an experiment declares (``claims:`` in its spec), judged from its results.

A claim names a metric, a split and what it says about them, in one of four forms::

    {id: ..., paper: ..., metric: error, split: stream, lower: tent, than: source}
    {id: ..., paper: ..., metric: ece, split: test, higher: uncalibrated, than: temperature}
    {id: ..., paper: ..., metric: accuracy, split: test, equal: temperature, to: uncalibrated, tolerance: 0.002}
    {id: ..., paper: ..., metric: accuracy, split: test, method: cnn1d, expect: 0.94, tolerance: 0.02}

``than`` and ``to`` take a variant or a number (``higher: binning, than: 0``: a positive mean).
Optional keys: ``where: {key.path: value}`` keeps the runs whose configuration has those values
(one setting of a grid: ``where: {scenario.rounds: 1}``); ``published: {name: value}`` records
the paper's numbers in infobench's units (the reproduction page shows them); ``note`` says how
the experiment departs from the paper, where it does. Claims are not part of any run's identity:
adding or editing one reruns nothing. Their schema is ``infobench.spec.Claim`` (a spec's keys are
validated there, and no task's code digest may depend on this module); this module judges them.

Names. A name is a variant label of the results folder (``tent``, ``tent(lr=0.0001)``,
``tent [scenario.rounds=1]``); failing that, a variant with part of its setting bracket, or none
(``kd [model.name=mlp]`` picks ``kd [model.depth=1,model.name=mlp,...]``); failing that, the same
with a method name (``rmt`` picks ``rmt(warmup_samples=3200)``, as ``--quick`` labels it). Among
the finished runs that ``where`` keeps it must pick out exactly one variant, else the claim is an
error naming the variants there. Validating a spec checks only that each name's variant or method
is in it and that its bracket and ``where`` use key paths of the runs' configuration: ``--quick``
and ``--set`` may run other values than the full spec.

Values. Final values only (metric rows with an empty step), one per seed.

Statistics. For each seed s both sides have, the difference d_s = A_s - B_s (A_s - c against a
number or an expected value c): pairing by seed cancels what one seed's runs share (the trained
model, the data split, the stream order). The interval is the two-sided :data:`LEVEL` Student t
interval of the mean difference, mean(d) +- t_{n-1, 0.975} sd(d) / sqrt(n): the interval of the
paired t-test, which excludes 0 exactly when that test rejects at the 5% level. A t interval
rather than a bootstrap one because experiments run 3 to 5 seeds: a percentile bootstrap interval
of 3 values never reaches past them, and the range of 3 draws from a symmetric distribution holds
its centre only 75% of the time, far from the nominal 95%. The verdict:

    lower   holds when the interval is below 0, fails when it is at or above 0
    higher  holds when the interval is above 0, fails when it is at or below 0
    equal   holds when the interval lies inside [-tolerance, tolerance] (two one-sided tests,
    expect  each at 2.5%), fails when it lies entirely outside it

and ``inconclusive`` otherwise: at this number of seeds the data cannot tell. A single seed has no
interval: its verdict is the point value's, and the row says ``n=1``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infobench.errors import InfobenchError
from infobench.spec import Claim, split_label

LEVEL = 0.95  # the interval's confidence level
HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "fails", "inconclusive", "not run"


class NotRun(InfobenchError):
    """A claim names a method no finished run of the folder used (a ``--set methods=...`` left it
    out): it is reported "not run", never judged, and is no error."""
CLAIMS_FILE = "claims.csv"
COLUMNS = ("id", "paper", "claim", "metric", "split", "where", "subject", "subject_mean", "reference",
           "reference_mean", "n", "difference", "ci_low", "ci_high", "tolerance", "expect", "published",
           "verdict", "test", "note")


# ------------------------------------------------------------------------------------ judging


@dataclass
class Judgement:
    """A claim measured on one results folder."""

    claim: Claim
    subject: str  # the variant label the subject resolved to
    reference: str  # the other side's variant label, or the number
    subject_mean: float
    reference_mean: float
    n: int  # seeds judged (paired seeds when both sides are variants)
    difference: float  # mean over seeds of subject - reference
    low: float  # the interval of the mean difference (the point value when n = 1)
    high: float
    verdict: str
    note: str = ""

    @property
    def test(self) -> str:
        if self.n < 2:
            return "n=1: the single value, no interval"
        return f"paired t, {LEVEL:.0%} interval" if self.claim.form != "method" else f"t, {LEVEL:.0%} interval"

    def row(self) -> dict[str, Any]:
        c = self.claim
        return {"id": c.id, "paper": c.paper, "claim": c.text(), "metric": c.metric, "split": c.split,
                "where": json.dumps(c.where) if c.where else "", "subject": self.subject,
                "subject_mean": self.subject_mean, "reference": self.reference,
                "reference_mean": self.reference_mean, "n": self.n, "difference": self.difference,
                "ci_low": self.low, "ci_high": self.high, "tolerance": c.tolerance, "expect": c.expect,
                "published": json.dumps(c.published) if c.published else "", "verdict": self.verdict,
                "test": self.test, "note": "; ".join(filter(None, (self.note, c.note)))}


def mean_interval(differences: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """Mean of ``differences`` and its two-sided Student t interval (the point itself for n = 1)."""
    import numpy as np

    d = np.asarray(differences, dtype=float)
    mean = float(d.mean())
    if len(d) < 2:
        return mean, mean, mean
    from scipy.special import stdtrit  # scipy.stats costs a second to import; this does not

    half = float(stdtrit(len(d) - 1, (1 + level) / 2)) * float(d.std(ddof=1)) / math.sqrt(len(d))
    return mean, mean - half, mean + half


def verdict(form: str, low: float, high: float, tolerance: float | None = None) -> str:
    """holds / fails / inconclusive from the interval [low, high] of subject minus reference."""
    if form == "lower":
        return HOLDS if high < 0 else FAILS if low >= 0 else INCONCLUSIVE
    if form == "higher":
        return HOLDS if low > 0 else FAILS if high <= 0 else INCONCLUSIVE
    tol = float(tolerance or 0.0)
    return HOLDS if -tol <= low and high <= tol else FAILS if low > tol or high < -tol else INCONCLUSIVE


def judge(folder: str | Path, claims: Sequence[Claim]) -> list[Judgement]:
    """Judge ``claims`` on the finished runs of one results folder (read once). A claim that names
    what the folder lacks (a variant, a metric on a split, a key path) is an ``InfobenchError``."""
    from infobench.results import folder_tables

    folder = Path(folder)
    runs, metrics = folder_tables(folder)
    if metrics is None or metrics.empty:
        raise InfobenchError(f"{folder}: no metric rows to judge claims on (no finished run)")
    done = runs[runs["status"] == "done"]
    final = metrics[metrics["step"].isna()]
    judgements, problems = [], []
    for claim in claims:  # every claim's problem at once, as a spec's are
        try:
            judgements.append(_judge_one(folder, claim, done, final))
        except NotRun as exc:
            nan = float("nan")
            judgements.append(Judgement(claim=claim, subject=claim.subject, reference=str(claim.reference),
                                        subject_mean=nan, reference_mean=nan, n=0, difference=nan, low=nan,
                                        high=nan, verdict=NOT_RUN, note=str(exc)))
        except InfobenchError as exc:
            problems.append(str(exc))
    if problems:
        raise InfobenchError("\n".join(problems))
    return judgements


def _judge_one(folder: Path, claim: Claim, done, final) -> Judgement:
    where = f"claim {claim.id!r} of {folder}"
    kept = _kept_runs(where, claim, done)
    subject = _resolve(where, claim.form, claim.subject, kept, claim.where)
    a = _values(where, subject, claim, kept, final)
    reference = claim.reference
    note = ""
    if isinstance(reference, str):
        key = "than" if claim.form in ("lower", "higher") else "to"
        reference = _resolve(where, key, reference, kept, claim.where)
        b = _values(where, reference, claim, kept, final)
        seeds = a.index.intersection(b.index)
        if seeds.empty:
            raise InfobenchError(f"{where}: {subject!r} and {reference!r} share no seed to pair "
                                 f"({sorted(a.index)} and {sorted(b.index)})")
        unpaired = sorted(set(a.index).symmetric_difference(b.index))
        if unpaired:
            note = f"seeds {unpaired} have one side only: left out"
        a, b = a.loc[seeds], b.loc[seeds]
        differences, reference_mean = a - b, float(b.mean())
    else:
        reference_mean = float(reference)
        differences = a - reference_mean
        reference = number(reference_mean)
    mean, low, high = mean_interval(differences.to_numpy())
    return Judgement(claim=claim, subject=subject, reference=str(reference), subject_mean=float(a.mean()),
                     reference_mean=reference_mean, n=len(differences), difference=mean, low=low, high=high,
                     verdict=verdict(claim.form, low, high, claim.tolerance), note=note)


def _kept_runs(where: str, claim: Claim, done):
    """The finished runs whose configuration has every value of ``claim.where``."""
    if not claim.where:
        return done
    from infobench.registry import did_you_mean
    from infobench.results import flat_config

    flats = [flat_config(c) for c in done["config"]]
    paths = sorted(set().union(*flats)) if flats else []
    for key in claim.where:
        if key not in paths:
            raise InfobenchError(f"{where}: where: no run has the key path {key!r}{did_you_mean(key, paths)}; "
                                 f"key paths: {', '.join(paths)}")
    mask = [all(_same(flat.get(k), v) for k, v in claim.where.items()) for flat in flats]
    if not any(mask):
        seen = {k: sorted({json.dumps(f.get(k)) for f in flats}) for k in claim.where}
        raise InfobenchError(f"{where}: where: {json.dumps(claim.where)} keeps no finished run; the runs have "
                             + "; ".join(f"{k} in {', '.join(v)}" for k, v in seen.items()))
    return done[mask]


def _same(value: Any, wanted: Any) -> bool:
    """Configuration equality as YAML means it: 1000 and 1000.0 agree, true and 1 do not."""
    if isinstance(value, bool) or isinstance(wanted, bool):
        return value is wanted
    return value == wanted


def _resolve(where: str, key: str, name: str, runs, narrowed: dict) -> str:
    """The one variant label ``name`` picks out among ``runs``: the label itself; else a label
    whose variant is the name's and whose setting bracket holds the name's (``tent`` or
    ``tent [scenario.rounds=1]`` for ``tent [scenario.rounds=1,train.lr=0.1]``); else the same
    with the name's variant read as a method name (``rmt`` for ``rmt(warmup_samples=3200)``)."""
    labels = list(dict.fromkeys(runs["variant"]))
    method_of = dict(zip(runs["variant"], runs["method"]))
    base, setting = split_label(name)

    def within(label: str, variant: str) -> bool:
        label_base, label_setting = split_label(label)
        return label_base == variant and setting.items() <= label_setting.items()

    for matches in (lambda label: label == name, lambda label: within(label, base),
                    lambda label: within(label, split_label(label)[0]) and method_of[label] == base):
        found = [label for label in labels if matches(label)]
        if len(found) == 1:
            return found[0]
        if found:
            raise InfobenchError(f"{where}: {key}: {name!r} names {len(found)} variants ({', '.join(found)}); "
                                 "give one label in full, or choose its setting with where: {key.path: value}")
    from infobench.registry import did_you_mean

    among = f" among the runs where {json.dumps(narrowed)}" if narrowed else ""
    method = base.split("(", 1)[0]
    if method not in set(method_of.values()) and not narrowed and _a_method_of_the_task(method, runs):
        raise NotRun(f"{key}: method {method!r} has no finished run in this folder")
    raise InfobenchError(f"{where}: {key}: no variant {name!r}{among}{did_you_mean(name, labels)}; "
                         f"known variants: {', '.join(labels) or 'none (no finished run)'}")


def _a_method_of_the_task(method: str, runs) -> bool:
    """Whether ``method`` names a method of the task the folder's runs ran (a spelling that names
    none stays an error)."""
    from infobench import registry

    tasks = set(runs["task"]) if "task" in runs else set()
    try:
        return any(method in registry.names(registry.get("task", task).method_kind) for task in tasks)
    except InfobenchError:
        return False


def _values(where: str, label: str, claim: Claim, runs, final):
    """The final value of ``claim.metric`` on ``claim.split`` per seed for variant ``label``."""
    rows = final[(final["variant"] == label) & final["run_id"].isin(runs["run_id"])]
    mine = rows[(rows["metric"] == claim.metric) & (rows["split"] == claim.split)]
    values = mine.dropna(subset=["value"]).groupby("seed")["value"].mean()
    if values.empty:
        metrics_there = sorted(set(rows.loc[rows["split"] == claim.split, "metric"]))
        splits_there = sorted(set(rows.loc[rows["metric"] == claim.metric, "split"]))
        raise InfobenchError(
            f"{where}: variant {label!r} has no final value of {claim.metric!r} on split {claim.split!r}; "
            f"its metrics on that split: {', '.join(metrics_there) or 'none'}; "
            f"its splits with {claim.metric!r}: {', '.join(splits_there) or 'none'}")
    values.index = values.index.astype(int)
    return values


# ------------------------------------------------------------------------- reading and writing


def folder_claims(folder: str | Path, spec_path: str | Path | None = None) -> list[Claim]:
    """The claims to judge on ``folder``: those of ``spec_path`` if given, else of the folder's
    spec.yaml (the spec of its latest sweep). A malformed claim is a ``SpecError``."""
    from infobench.spec import read_claims

    path = Path(spec_path) if spec_path is not None else Path(folder) / "spec.yaml"
    if spec_path is None and not path.is_file():
        raise InfobenchError(f"{folder}: no spec.yaml to read claims from; pass --spec FILE")
    return read_claims(path)


def claims_csv(judgements: Sequence[Judgement]) -> str:
    """claims.csv's text: one row per claim, :data:`COLUMNS`, floats at full precision."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for j in judgements:
        writer.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v) for k, v in j.row().items()})
    return buffer.getvalue()


def write_claims(folder: str | Path, judgements: Sequence[Judgement]) -> Path:
    """Replace ``folder``/claims.csv in one rename, under the folder's lock; only a folder
    infobench made (no links inside) is written."""
    from infobench.results import ResultsFolder, atomic_write
    from infobench.runner import folder_lock

    results = ResultsFolder(Path(folder))
    results.check_owned()
    with folder_lock(results):
        results.check_owned()
        path = results.root / CLAIMS_FILE
        atomic_write(path, claims_csv(judgements))
    return path


def read_claims_csv(folder: str | Path) -> list[dict[str, str]]:
    """The rows of ``folder``/claims.csv ([] when absent); a torn or foreign file is an error."""
    from infobench.results import read_rows

    path = Path(folder) / CLAIMS_FILE
    if path.is_symlink():
        raise InfobenchError(f"{path} is a symbolic link; infobench never reads through a link: remove it")
    rows = read_rows(path)
    if rows and set(COLUMNS) - set(rows[0]):
        raise InfobenchError(f"{path}: missing columns {sorted(set(COLUMNS) - set(rows[0]))}; "
                             "run `infobench claims` on the folder again")
    return rows


def check(folder: str | Path, spec_path: str | Path | None = None,
          claims: Sequence[Claim] | None = None) -> list[Judgement]:
    """Judge a folder's claims (``claims``, or those :func:`folder_claims` reads) and write its
    claims.csv; [] (and nothing written) when there are none."""
    claims = list(claims) if claims is not None else folder_claims(folder, spec_path)
    if not claims:
        return []
    judgements = judge(folder, claims)
    write_claims(folder, judgements)
    return judgements


# ----------------------------------------------------------------------------------- showing


def number(x: float | str | None) -> str:
    """A value with 4 significant digits; "" for none or NaN (claims.csv's text cells too)."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(x) else f"{x:.4g}"


def shared_decimals(values: Sequence[float], significant: int = 4) -> list[str]:
    """``values`` with one number of decimals, enough for the largest magnitude to keep
    ``significant`` digits: a difference of 1e-17 beside bounds of 0.025 prints as 0.00000."""
    finite = [abs(v) for v in values if math.isfinite(v) and v != 0]
    decimals = min(10, max(0, significant - 1 - math.floor(math.log10(max(finite))))) if finite else 0
    texts = [f"{v:.{decimals}f}" if math.isfinite(v) else str(v) for v in values]
    return [t[1:] if t.startswith("-") and float(t) == 0 else t for t in texts]  # no "-0.000"


def measured(j: Judgement) -> str:
    """The means over seeds in the order the claim names them, ``0.2012 vs 0.4351`` (the
    subject's alone against a number); the variants they resolved to are in claims.csv."""
    if j.verdict == NOT_RUN:
        return "-"
    if isinstance(j.claim.reference, str):
        return f"{number(j.subject_mean)} vs {number(j.reference_mean)}"
    return number(j.subject_mean)


def interval(j: Judgement) -> str:
    """``-0.2339 [-0.2512, -0.2166]``; the value alone for n = 1."""
    if j.verdict == NOT_RUN:
        return j.note
    if j.n < 2:
        return f"{number(j.difference)} (n=1)"
    difference, low, high = shared_decimals([j.difference, j.low, j.high])
    return f"{difference} [{low}, {high}]"


VERDICT_STYLE = {HOLDS: "green", FAILS: "red", INCONCLUSIVE: "yellow", NOT_RUN: "dim"}


def rich_table(judgements: Sequence[Judgement], title: str):
    """The claims of one folder as a rich table: claim, measured means, n, the difference with
    its interval, and the verdict (n=1 marked)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), caption=Text(
        f"difference = subject - reference, mean over seeds [{LEVEL:.0%} Student t interval, paired by seed]; "
        "a single seed (n=1) is judged on its value"))
    for col in ("claim", "says", "metric @ split", "measured", "n", "difference", "verdict"):
        table.add_column(col, justify="right" if col == "n" else "left")
    for j in judgements:
        c = j.claim
        shown = f"{j.verdict} (n=1)" if j.n == 1 else j.verdict
        table.add_row(Text(c.id), Text(c.text()), Text(f"{c.metric} @ {c.split}"), Text(measured(j)),
                      Text(str(j.n)), Text(interval(j)), Text(shown, style=VERDICT_STYLE[j.verdict]))
    return table
