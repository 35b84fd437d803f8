"""Throughput of every TTA method against bare hand-written loops of the same model (issues 3, 13).

On a digits-c stream (8x8 images, severity 5) with a cnn2d (width 32, BatchNorm) trained for a
few epochs on the CPU, each registered ``tta.method`` adapts online at batch size 64 on the
chosen device (``--device auto|cpu|cuda``; auto takes CUDA when present), with its parameters
for the data's family (``family_defaults["cifar"]``, as a spec applies them). Two bare loops
run on the same batches, with the same model, on the same device, in the same process:

- ``forward``: ``model(x)`` under ``inference_mode`` with BN on test-batch statistics (what
  source/norm-like methods must at least do);
- ``forward+backward``: the same forward, the mean softmax entropy, ``zero_grad``,
  ``backward`` and one Adam step on the BN affine parameters (what Tent must at least do).

Each method's samples/s is divided by the bare loop matching its kind (``updates`` of
``nothing``/``bn_stats``/``memory`` -> forward, otherwise forward+backward). Target: tent, eta
and norm within 10% of their bare loop (ratio >= 0.9); the script exits non-zero when one is
below. Set-up (rmt's warm-up, eata's Fisher) is not timed. Batches are on the device before the
clock starts, as the task streams them, and every timing waits for the device's queued work
(``infobench.device.synchronize``) before it stops, so a GPU time is the work and not its launch.

Each method is timed right after its bare loop, over several rounds, on ``--threads`` torch
threads (default 1: the development machine is shared; more threads only contend); a ratio is
the median over rounds, samples/s the best round. On a CUDA device each method is also timed on
the CPU (best of ``--cpu-rounds``, same threads) and the table adds the GPU/CPU ratio of
samples/s.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable

import torch

from infobench import device as devices
from infobench import registry
from infobench.data.digits_c import DigitsC
from infobench.errors import InfobenchError
from infobench.models.train import TrainConfig, build_model, train_classifier
from infobench.tasks.tta.common import entropy, use_batch_stats
from infobench.tasks.tta.methods.base import SourceInfo

BATCH = 64
TARGETS = ("tent", "eta", "norm")  # methods that must run at >= 0.9x their bare loop
TARGET = 0.9


def timed(work: Callable[[], None]) -> float:
    """Seconds ``work`` takes, with the device's queue drained before and after."""
    devices.synchronize()
    start = time.perf_counter()
    work()
    devices.synchronize()
    return time.perf_counter() - start


def bare_forward(model, batches) -> float:
    model = copy.deepcopy(model)
    use_batch_stats(model)

    def loop():
        with torch.inference_mode():
            for xb in batches:
                model(xb)

    return timed(loop)


def bare_backward(model, batches) -> float:
    model = copy.deepcopy(model)
    params = use_batch_stats(model)
    opt = torch.optim.Adam(params, lr=1e-3)

    def loop():
        for xb in batches:
            loss = entropy(model(xb)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return timed(loop)


def bare_kind(name: str) -> str:
    """The bare loop a method is measured against: forward for methods that learn nothing."""
    kind = registry.get("tta.method", name).updates
    return "forward" if kind in ("nothing", "bn_stats", "memory") else "forward+backward"


def bare_time(name: str, model, batches) -> float:
    return (bare_forward if bare_kind(name) == "forward" else bare_backward)(model, batches)


def method_time(name, model, batches, source) -> float:
    """Seconds of ``name`` adapting on ``batches`` (set-up excluded), with its cifar-family parameters."""
    cls = registry.get("tta.method", name)
    method = cls(cls.Params.model_validate(cls.family_defaults.get("cifar", {})))
    torch.manual_seed(0)
    method.setup(copy.deepcopy(model), SourceInfo(num_classes=10, train=source if method.needs_source else None))

    def loop():
        for xb in batches:
            method.adapt_and_predict(xb)

    return timed(loop)


def measure(names, model, batches, source, rounds: int, with_bare: bool):
    """Best seconds per method (and bare loop) and the per-round ratios bare / method."""
    best: dict[str, float] = {}
    ratios: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            # each method right after its bare loop, so that the load of a shared machine hits
            # both sides of a ratio alike
            if with_bare:
                kind = bare_kind(name)
                bare_seconds = bare_time(name, model, batches)
                best[kind] = min(best.get(kind, float("inf")), bare_seconds)
            seconds = method_time(name, model, batches, source)
            best[name] = min(best.get(name, float("inf")), seconds)
            if with_bare:
                ratios[name].append(bare_seconds / seconds)
    return best, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where methods run")
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds on the device (best / median)")
    parser.add_argument("--cpu-rounds", type=int, default=2, help="rounds of the CPU timing on a GPU run")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    try:
        device = devices.resolve(args.device)
    except InfobenchError as err:
        sys.exit(str(err))
    data = DigitsC(DigitsC.Params(severity=5)).load(0)
    model = build_model({"name": "cnn2d", "width": 32}, data.input_shape, data.num_classes, seed=0)
    train_classifier(model, data.train, TrainConfig(epochs=10, lr=3e-3, batch_size=64), seed=0)
    model.eval()
    x = torch.cat([torch.as_tensor(split.x) for split in data.domains.values()])
    host_batches = [b for b in x.split(BATCH) if len(b) == BATCH]
    n = len(host_batches) * BATCH
    names = sorted(registry.names("tta.method"))

    with devices.use(device):
        batches = [b.to(device) for b in host_batches]
        best, ratios = measure(names, model.to(device), batches, data.train, args.rounds, with_bare=True)
    on_gpu = device.type == "cuda"
    if on_gpu:
        with devices.use(torch.device("cpu")):
            cpu_best, _ = measure(names, model.cpu(), host_batches, data.train, args.cpu_rounds, with_bare=False)

    print(f"{n} samples per timing, batch {BATCH}, cnn2d width 32 on {devices.describe(device)}, "
          f"{args.threads} CPU thread(s), best of {args.rounds}")
    gpu_col = f"{'gpu/cpu':>9}" if on_gpu else ""
    print(f"{'loop':<18}{'samples/s':>12}{'ratio':>8}{gpu_col}  vs")
    for loop in ("forward", "forward+backward"):
        print(f"{loop:<18}{n / best[loop]:>12.0f}{1.0:>8.2f}")
    below = []
    for name in names:
        ratio = statistics.median(ratios[name])
        speedup = f"{cpu_best[name] / best[name]:>9.1f}" if on_gpu else ""
        print(f"{name:<18}{n / best[name]:>12.0f}{ratio:>8.2f}{speedup}  {bare_kind(name)}")
        if name in TARGETS and ratio < TARGET:
            below.append(f"{name} {ratio:.2f}")
    if below:
        sys.exit(f"below {TARGET}x of the bare loop: {', '.join(below)}")


if __name__ == "__main__":
    main()
