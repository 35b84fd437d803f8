"""Core overheads a user feels: CLI start-up, compare over many folders, re-running a finished sweep.

Targets (issue 2/7): `infobench --help` under 1 s, `compare` over 100 folders under 2 s,
re-running a finished 100-run sweep under 3 s (the skip logic loads no model).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from infobench.results import METRIC_COLUMNS, ResultsFolder


def timed(cmd: list[str]) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def fake_folder(root: Path, index: int, runs: int = 3) -> None:
    folder = ResultsFolder(root / f"exp{index:03d}")
    for seed in range(runs):
        rid = f"{index:04d}{seed:08d}"
        ident = {"run_id": rid, "task": "calibration", "dataset": "digits", "model": "mlp",
                 "method": "temperature", "variant": "temperature", "seed": seed}
        metrics = [{**ident, "split": "test", "step": None, "metric": m, "value": 0.1 * seed + i}
                   for i, m in enumerate(("accuracy", "nll", "ece", "brier"))]
        folder.record({**ident, "params": "{}", "status": "done", "error": "", "seconds": 1.0}, metrics)
    assert set(METRIC_COLUMNS) <= set(metrics[0])


def main() -> None:
    exe = [sys.executable, "-m", "infobench"]
    rows = [("infobench --help", timed([*exe, "--help"]), 1.0)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for i in range(100):
            fake_folder(tmp / "many", i)
        folders = sorted(str(p) for p in (tmp / "many").iterdir())
        rows.append(("compare over 100 folders", timed([*exe, "compare", *folders, "--format", "csv"]), 2.0))
        spec = {"name": "sweep", "task": "calibration", "seeds": list(range(50)), "dataset": {"name": "digits"},
                "model": {"name": "linear"}, "train": {"epochs": 1}, "scenario": {"shifted": False},
                "methods": ["uncalibrated", "temperature"]}
        spec_path = tmp / "sweep.yaml"
        spec_path.write_text(yaml.safe_dump(spec))
        first = time.perf_counter()
        subprocess.run([*exe, "run", str(spec_path), "--out", str(tmp / "out"), "--threads", "1"], check=True, capture_output=True)
        first = time.perf_counter() - first
        rows.append(("first run of a 100-run sweep", first, float("nan")))
        rows.append(("re-run of the finished 100-run sweep", timed([*exe, "run", str(spec_path), "--out", str(tmp / "out")]), 3.0))
    print(f"{'what':45s} {'seconds':>8s} {'target':>8s}")
    for what, seconds, target in rows:
        print(f"{what:45s} {seconds:8.2f} {target:8.1f}")


if __name__ == "__main__":
    main()
