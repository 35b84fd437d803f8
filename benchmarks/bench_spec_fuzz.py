"""Spec fuzzing at scale: 10,000+ generated specs through the loader, ``--set`` and validation.

Every spec must end as a valid spec or a ``SpecError`` (the CLI's exit 2): no other exception
(a traceback), none taking longer than 10 s (a hang), and the process's peak memory bounded.
The test suite keeps a fast sample of the same idea (tests/test_spec_fuzz.py); this is the long run.

    python benchmarks/bench_spec_fuzz.py [--n 10000] [--seed 0]

Generated, in equal parts: mutations of a small valid spec (random values, grids of random
size, dataset/model lists, method lists), random YAML text with anchors and aliases (including
alias bombs of random depth and width), and random ``--set`` overrides.
"""

from __future__ import annotations

import argparse
import copy
import random
import resource
import signal
import string
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from tests_support import TINY  # noqa: E402

from infobench.errors import SpecError  # noqa: E402
from infobench.spec import apply_overrides, parse_yaml, validate  # noqa: E402

HANG_SECONDS = 10
KEYS = ["name", "task", "seeds", "dataset", "model", "train", "scenario", "methods", "threads", "quick",
        "deterministic", "loss", "teacher", "extra"]
SUBKEYS = ["name", "epochs", "lr", "batch_size", "width", "depth", "max_iter", "grid", "n_bins", "severity",
           "corruptions", "path", "order", "params"]


class Hang(Exception):
    pass


def scalar(rng: random.Random, grids: bool = True):
    kind = rng.randrange(9 if grids else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randint(-10, 10 ** rng.randint(1, 40))
    if kind == 3:
        return rng.choice([float("nan"), float("inf"), -float("inf"), 1e308, -0.0, 1e-300, rng.random()])
    if kind == 4:
        return "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 30)))
    if kind == 5:
        return rng.choice(["digits", "digits-c", "mlp", "cnn2d", "temperature", "tent", "ksg", "calibration", "tta"])
    if kind == 6:
        return {"grid": [scalar(rng, grids=False) for _ in range(rng.randint(0, 200))]}
    if kind == 7:
        return "x" * rng.choice([0, 100, 101, 300, 10_000])
    return rng.uniform(-1e6, 1e6)


def value(rng: random.Random, depth: int = 0):
    if depth > 3 or rng.random() < 0.5:
        return scalar(rng)
    if rng.random() < 0.5:
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    return {rng.choice(SUBKEYS + ["", "é"]): value(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def mutated_spec(rng: random.Random) -> dict:
    raw = copy.deepcopy(TINY)
    for _ in range(rng.randint(1, 4)):
        key = rng.choice(KEYS)
        block = raw.get(key)
        if isinstance(block, dict) and rng.random() < 0.8:
            block[rng.choice(SUBKEYS)] = value(rng)
        elif isinstance(block, list) and block and rng.random() < 0.8:
            block[rng.randrange(len(block))] = value(rng)
        else:
            raw[key] = value(rng)
    return raw


def yaml_text(rng: random.Random) -> str:
    if rng.random() < 0.3:  # an alias bomb of random depth and width
        width, depth = rng.randint(2, 20), rng.randint(2, 12)
        lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
        for i in range(1, depth):
            lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
        where = rng.choice(["seeds", "methods", "train", "name"])
        return "\n".join(lines) + f"\n{where}: *a{depth - 1}\ntask: calibration\n"
    if rng.random() < 0.5:  # nesting of random depth
        depth = rng.choice([10, 100, 1000, 5000])
        return "name: x\ntask: calibration\nmethods: " + "[" * depth + "]" * depth + "\n"
    alphabet = string.printable + "&*!|>-:{}[]äö€\u2028"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))


def override(rng: random.Random) -> str:
    path = rng.choice(["train.lr", "train.epochs", "methods[1].max_iter", "methods[9].x", "seeds", "name",
                       "dataset.name", "a.b.c.d", "model.width", "", "[3]", "train..lr", "methods[-1]"])
    text = rng.choice([
        repr(scalar(rng)), "[" * 3000 + "]" * 3000, "{grid: [" + ", ".join(map(str, range(rng.randint(0, 500)))) + "]}",
        "&a [1, *a]", "1e40", ".nan", "!!python/object/apply:os.system ['true']", "",
    ])
    return f"{path}={text}" if rng.random() < 0.9 else text


def one(rng: random.Random, kind: int) -> str:
    if kind == 0:
        raw = mutated_spec(rng)
    elif kind == 1:
        raw = parse_yaml(yaml_text(rng), "fuzz.yaml")
    else:
        raw = apply_overrides(copy.deepcopy(TINY), [override(rng) for _ in range(rng.randint(1, 3))], "fuzz.yaml")
    spec = validate(raw, "fuzz.yaml")
    len(spec.runs())
    return "valid"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    def alarm(signum, frame):
        raise Hang

    signal.signal(signal.SIGALRM, alarm)
    rng = random.Random(args.seed)
    outcomes = {"valid": 0, "error": 0}
    tracebacks, hangs, slowest = [], 0, 0.0
    started = time.perf_counter()
    for i in range(args.n):
        kind = i % 3
        state = rng.getstate()
        t0 = time.perf_counter()
        signal.alarm(HANG_SECONDS)
        try:
            outcomes[one(rng, kind)] += 1
        except SpecError as exc:
            assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
            outcomes["error"] += 1
        except Hang:
            hangs += 1
        except Exception:  # noqa: BLE001 - any other exception is the finding
            tracebacks.append((i, kind, state, traceback.format_exc()))
        finally:
            signal.alarm(0)
        slowest = max(slowest, time.perf_counter() - t0)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.n} generated specs in {seconds:.1f} s ({args.n / seconds:.0f}/s): {outcomes['valid']} valid, "
          f"{outcomes['error']} clear errors, {len(tracebacks)} tracebacks, {hangs} hangs (> {HANG_SECONDS} s); "
          f"slowest {slowest:.2f} s; peak memory {peak_mib:.0f} MiB")
    for i, kind, _, text in tracebacks[:5]:
        print(f"--- spec {i} (kind {kind}):\n{text}")
    return 1 if tracebacks or hangs or peak_mib > 2048 else 0


if __name__ == "__main__":
    sys.exit(main())
